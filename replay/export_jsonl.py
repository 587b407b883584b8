"""JSON lines export: one object per record, for any tool that reads JSON.

Each line: {"i": record index, "t": seconds, "tick", "kind", "data"}; msgpack-only
values become JSON ones (bytes as {"b64": ...}, non-string keys as strings).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any, TextIO

from replay.reader import Session


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    return value


def lines(session: Session) -> Iterator[str]:
    for seg_frame in session.frames():
        frame = seg_frame[1]
        r = frame.record
        yield json.dumps({
            "i": frame.index, "t": session.seconds(r.tick), "tick": r.tick, "kind": r.kind,
            "data": jsonable(r.data),
        }, separators=(",", ":"))


def write_jsonl(session: Session, out: TextIO) -> int:
    n = 0
    for line in lines(session):
        out.write(line + "\n")
        n += 1
    return n
