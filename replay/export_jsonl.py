"""JSON lines export: one object per record, for any tool that reads JSON.

Each line: {"i": record index, "t": seconds, "tick", "kind", "data"}; msgpack-only
values become JSON ones (bytes as {"b64": ...}, non-string keys as strings, a field
hidden from the view as {"hidden": true}). With a view other than the facilitator's,
the records are those that view may read (`replay.views`).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from typing import Any, TextIO

from netcode.state import HIDDEN
from netcode.views import View
from replay.reader import Session
from replay.views import view_records


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if value is HIDDEN:
        return {"hidden": True}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}  # JSON has no inf or NaN; a recorded one stays visible
    return value


def lines(session: Session, view: View = View.FACILITATOR) -> Iterator[str]:
    """One JSON text per record; a damaged log raises its `ReplayError` where it stops."""
    for index, r in view_records(session, view):
        yield json.dumps(
            {
                "i": index,
                "t": session.seconds(r.tick),
                "tick": r.tick,
                "kind": r.kind,
                "data": jsonable(r.data),
            },
            separators=(",", ":"),
            allow_nan=False,
        )


def write_jsonl(session: Session, out: TextIO, view: View = View.FACILITATOR) -> int:
    n = 0
    for line in lines(session, view):
        out.write(line + "\n")
        n += 1
    return n
