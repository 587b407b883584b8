"""What a review token's view may read of a recorded session: the live room's rules.

A reviewer who holds a spectator's (or a participant's) view reads exactly what a live
client of that view was sent, and nothing a live client of that view never saw:

- `start`: the `welcome` told it the room, title and tick rate: `{room, title, tick_hz}`.
- `op`: each op as `CaseState` projected it for the view (`Op.per_view`): a field it
  may not see as HIDDEN, an op it may not see not at all. Made again by the same code.
- `poses`: every published pose, as recorded. `gap`: as recorded (about the recording).
- `checksum`: its own view's checksum only, `{"sum": ...}`.
- `ended`: the reason its `bye room_ended` gave, `{reason}`.
- Everything else is left out, as the live client never got it: the inputs (`join`,
  `intent`, `pose`, ...), `reply` (sent to its sender only), `keyframe` (the full state
  with the scenario's internals), `expire`, `refused` and kinds this reader does not know.

The op projection is not a second visibility rule: the recorded canonical ops are made
again on a `CaseState`, whose own `per_view` projection is what the live publisher
encoded. The facilitator's view is the whole record (the facilitator sees the answer
key, scoring, refusals and private questions live).

Exports only a facilitator may have (the debrief and xAPI statements, which are made
of scores, refusals and who did what) are refused for other views by `may_export`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from netcode.state import CaseState
from netcode.views import View
from replay.errors import ReplayError
from replay.keyframes import MALFORMED, apply_op
from replay.reader import Session
from rooms.records import Record

PASSED: Final = frozenset({"poses", "gap"})
FACILITATOR_EXPORTS: Final = frozenset({"debrief", "xapi"})
"""Exports made of what only the facilitator sees live."""
PUBLIC_MANIFEST: Final = (
    "format",
    "format_version",
    "session_id",
    "status",
    "room_id",
    "tick_hz",
    "started_at",
    "ended_at",
    "end_tick",
    "keyframe_interval_s",
    "media_tracks",
)
"""Manifest fields any view may read (no seed, versions, participants or writer stats)."""


def may_export(view: View, export: str) -> bool:
    return view is View.FACILITATOR or export not in FACILITATOR_EXPORTS


def view_records(
    session: Session, view: View, kinds: frozenset[str] | None = None
) -> Iterator[tuple[int, Record]]:
    """(record index, record) as `view` may read them, in order (see the module's doc);
    with `kinds`, only those kinds (the others are skipped undecoded where they can be).

    Damage ends the iteration with the reader's `ReplayError`, as `Session.frames` does.
    """
    if view is View.FACILITATOR:
        for _, frame in session.frames(kinds=kinds):
            yield frame.index, frame.record
        return
    world = CaseState()
    wanted = None if kinds is None else kinds | {"op"}  # every op keeps the projection true
    for _, frame in session.frames(kinds=wanted):
        record, index = frame.record, frame.index
        kind, data, tick = record.kind, record.data, record.tick
        if kind == "op":
            projected = _projected(world, record, view)
            if kinds is None or "op" in kinds:
                yield from ((index, r) for r in projected)
            else:
                for _ in projected:
                    pass
        elif kind in PASSED:
            yield index, record
        elif kind == "start":
            yield index, Record(kind, tick, {k: data.get(k) for k in ("room", "title", "tick_hz")})
        elif kind == "checksum":
            sums = data.get("sums")
            if isinstance(sums, list) and len(sums) > view:
                yield index, Record(kind, tick, {"sum": sums[view]})
        elif kind == "ended":
            yield index, Record(kind, tick, {"reason": data.get("reason", "")})


def _projected(world: CaseState, record: Record, view: View) -> Iterator[Record]:
    try:
        apply_op(world, record.data["op"])
    except MALFORMED as exc:
        raise ReplayError("bad-op", f"op at tick {record.tick} does not apply: {exc!r}") from exc
    for op in world.drain():
        seen = op.per_view[view]
        if seen is not None:
            yield Record("op", record.tick, {"seq": op.seq, "op": seen})


def view_manifest(manifest: dict[str, Any], view: View) -> dict[str, Any]:
    """The manifest as `view` may read it (all of it for the facilitator)."""
    if view is View.FACILITATOR:
        return manifest
    case = manifest.get("case") or {}
    return {
        **{k: manifest.get(k) for k in PUBLIC_MANIFEST},
        "case": {k: case.get(k) for k in ("name", "title", "end_reason")},
        "view": view.name.lower(),
    }
