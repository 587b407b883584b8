"""Where a session lives on disk: `<data-dir>/sessions/<session-id>/`.

manifest.json        what the session is (rewritten atomically, never appended)
seg-NNNNNN.grs       the segment being written (raw frames)
seg-NNNNNN.grs.zst   a sealed segment: one zstd frame holding the raw bytes
index.json           keyframe index of sealed segments (derivable from the log)
annotations.jsonl    reviewers' overlay (never part of the record)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from replay.errors import ReplayError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RAW_SUFFIX = ".grs"
SEALED_SUFFIX = ".grs.zst"


def sessions_root(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "sessions"


def check_session_id(session_id: str) -> str:
    if not _ID.match(session_id):
        raise ReplayError(
            "bad-session-id",
            f"{session_id!r} is not a session id (letters, digits, '.', '_', '-')",
        )
    return session_id


def session_dir(data_dir: str | os.PathLike[str], session_id: str) -> Path:
    """The folder of an existing session; `unknown-session` when there is none."""
    path = sessions_root(data_dir) / check_session_id(session_id)
    if not (path / "manifest.json").is_file():
        raise ReplayError("unknown-session", f"no session {session_id!r} in this data folder")
    return path


def list_sessions(data_dir: str | os.PathLike[str]) -> list[str]:
    root = sessions_root(data_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file())


def segment_name(n: int, sealed: bool) -> str:
    return f"seg-{n:06d}{SEALED_SUFFIX if sealed else RAW_SUFFIX}"


def segment_files(path: Path) -> list[tuple[int, Path, bool]]:
    """(number, file, sealed) in order; a sealed copy wins over a leftover raw one."""
    found: dict[int, tuple[Path, bool]] = {}
    for p in path.iterdir():
        name = p.name
        if not name.startswith("seg-"):
            continue
        if name.endswith(SEALED_SUFFIX):
            found[int(name[4:10])] = (p, True)
        elif name.endswith(RAW_SUFFIX) and int(name[4:10]) not in found:
            found[int(name[4:10])] = (p, False)
    return [(n, *found[n]) for n in sorted(found)]


def write_json_atomic(path: Path, value: Any, durable: bool = True) -> None:
    """Replace `path` so a reader sees the old or the new file, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:  # its text would name the server's path
        raise ReplayError("bad-manifest", f"cannot read {path.name}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ReplayError("bad-manifest", f"cannot read {path.name}: {exc}") from exc
