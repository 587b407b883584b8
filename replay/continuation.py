"""Carrying a session on in another process: a room's new owner after a failover.

The previous writer died (or stopped) mid-session. Its log is first made whole the way
`replay repair` does it (a torn tail cut only if genuinely incomplete, the segment
being written sealed and signed), then a new writer continues the same session: the
same directory, the next segment, the next record index, the signature chain carried
on. The records the new owner restored the room from (numbered as the old writer
numbered them) are appended where the log lacks them, so the log has every record in
order and re-simulates across the failover.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from replay import layout
from replay.errors import ReplayError
from replay.index import IndexFile
from replay.manifest import Manifest
from replay.repair import repair
from replay.writer import ContinuePoint, SessionWriter
from rooms.records import Record


def continue_session(
    data_dir: str | os.PathLike[str],
    session_id: str,
    first: int,
    records: Sequence[Record],
    *,
    signing_key: bytes | None = None,
    server_version: str = "",
) -> SessionWriter:
    """A writer that carries on `session_id` after the records numbered `first` onwards.

    `ReplayError` when the session is sealed (it ended) or its log is damaged beyond a
    torn tail. Records the log already holds are not written again; if the log ends
    before `first`, a `gap` record says how many are missing.
    """
    path = Path(layout.sessions_root(data_dir)) / layout.check_session_id(session_id)
    result = repair(path, signing_key)
    if result.already_sealed:
        raise ReplayError("sealed", f"session {session_id} has ended; it cannot go on")
    body = layout.read_json(path / "manifest.json")
    manifest = Manifest.from_json({k: v for k, v in body.items() if k != "signature"})
    manifest.repair = None
    held = result.records
    writer = SessionWriter(
        data_dir,
        session_id,
        server_version=server_version,
        signing_key=signing_key,
        continue_after=ContinuePoint(manifest, IndexFile.load(path), held),
    )
    if first > held:
        tick = records[0].tick if records else 0
        gap = {"count": first - held, "first_tick": tick, "last_tick": tick}
        writer.write(Record("gap", tick, gap))
    for number, record in enumerate(records, start=first):
        if number >= held:
            writer.write(record)
    return writer
