"""What happened in a session, gathered in one pass for the exports (xAPI, debrief).

Generic over scenarios: actions come from intent/reply records, vitals from the
debrief's sampled trajectory when the case engine gave one, else from numeric fields
set on `monitor` entities; the debrief itself is the value the room set at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replay.manifest import pseudonym
from replay.reader import Session

SUMMARY_KINDS = frozenset({"join", "leave", "expire", "intent", "reply", "ended", "op"})


@dataclass(slots=True)
class Action:
    t: float
    tick: int
    member: int
    action: str
    args: dict[str, Any]
    ok: bool | None = None
    code: str = ""


@dataclass(slots=True)
class Summary:
    session_id: str
    case: str
    title: str
    started_at: str
    tick_hz: int
    end_s: float = 0.0
    end_reason: str = ""
    members: dict[int, dict[str, Any]] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    vitals: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    debrief: dict[str, Any] | None = None


def summarize(session: Session) -> Summary:
    m = session.manifest
    s = Summary(session.session_id, str(m.case.get("name", "")), str(m.case.get("title", "")),
                m.started_at, session.tick_hz)
    monitors: set[int] = set()
    open_intents: dict[tuple[Any, Any], Action] = {}
    s.end_s = session.time_range()[1]
    for record in session.records(kinds=SUMMARY_KINDS):
        t, data = session.seconds(record.tick), record.data
        if record.kind == "join":
            s.members[data["member"]] = {
                "role": data.get("role"), "name": data.get("name", ""), "joined_s": t,
                "pseudonym": pseudonym(session.session_id, data["member"]),
            }
        elif record.kind in ("leave", "expire") and data.get("member") in s.members:
            s.members[data["member"]]["left_s"] = t
        elif record.kind == "intent":
            action = Action(t, record.tick, data["member"], str(data.get("do")),
                            dict(data.get("args") or {}))
            open_intents[(data["member"], data.get("id"))] = action
            s.actions.append(action)
        elif record.kind == "reply":
            done = open_intents.pop((data.get("member"), data.get("id")), None)
            if done is not None:
                done.ok, done.code = bool(data.get("ok")), str(data.get("code") or "")
        elif record.kind == "ended":
            s.end_reason = str(data.get("reason", ""))
        elif record.kind == "op":
            _op(s, data["op"], t, monitors)
    return s


def _op(s: Summary, op: list[Any], t: float, monitors: set[int]) -> None:
    if op[0] == "new" and op[2] == "monitor":
        monitors.add(op[1])
        for name, (value, _) in op[3].items():
            _sample(s, name, t, value)
    elif op[0] == "set":
        if op[2] == "debrief" and isinstance(op[3], dict):
            s.debrief = op[3]
        elif op[1] in monitors:
            _sample(s, op[2], t, op[3])
    elif op[0] == "log" and op[1] == "events" and isinstance(op[2], dict):
        s.events.append(op[2])


def _sample(s: Summary, name: str, t: float, value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        s.vitals.setdefault(name, []).append((t, float(value)))


def vitals_series(s: Summary) -> dict[str, list[tuple[float, float]]]:
    """The case engine's sampled trajectory if the debrief has one, else the monitor's."""
    table = (s.debrief or {}).get("vitals")
    if isinstance(table, dict) and table.get("columns") and table.get("rows"):
        cols = list(table["columns"])
        series: dict[str, list[tuple[float, float]]] = {c: [] for c in cols[1:]}
        for row in table["rows"]:
            for c, v in zip(cols[1:], row[1:], strict=False):
                if isinstance(v, int | float):
                    series[c].append((float(row[0]), float(v)))
        return {k: v for k, v in series.items() if v}
    return s.vitals
