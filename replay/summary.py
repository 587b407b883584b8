"""Who did what, when, and what happened to the patient: one pass over a session's log.

Built from the records alone, never from a scenario's internals, so it survives
changes to the case engine: intents (who asked for what, with which arguments),
replies and `refused` records (what came of it), and ops (the case's log entries, the
monitor's values, decision points, the answer key and the debrief the case published
when the room ended). Read through a view (`replay.views`), it holds what that view
may see: a facilitator sees every intent and refusal, a spectator the actions the
case logged publicly and the people whose avatars it saw (not the join records).

Times are session seconds (ticks / tick rate). An action's `tick` is the tick it took
effect in (its reply's), which is where a reviewer jumps to see its effect; `case_s`
is the case's own clock (scaled and paused by the facilitator), which rubric windows
are measured in.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Final

from netcode.state import HIDDEN
from netcode.views import View
from replay.errors import ReplayError
from replay.manifest import pseudonym
from replay.rating import SCALES as RATING_SCALES
from replay.reader import Session
from replay.views import view_records

SUMMARY_KINDS: Final = frozenset(
    {"start", "join", "leave", "expire", "intent", "refused", "reply", "ended", "op"}
)
CLINICAL: Final = frozenset({"examine", "order", "give", "stop", "oxygen", "call_help", "decide"})
"""Case log kinds that are someone's action (logged with `by`)."""
TRANSCRIPT: Final = {"chat": "chat", "questions": "question", "notes": "note", "hints": "hint"}
"""Log channels of things people said or wrote, and what each line is called."""
SPOKEN: Final = frozenset({"chat", "ask", "note", "hint"})
"""Intents whose content is a transcript line rather than an action."""


@dataclass(frozen=True, slots=True)
class Scale:
    """A clinically scaled axis: fixed range and normal band, whatever the data."""

    label: str
    unit: str
    low: float
    high: float
    normal: tuple[float, float]


SCALES: Final[dict[str, Scale]] = {
    "hr": Scale("Heart rate", "/min", 0, 200, (60, 100)),
    "sbp": Scale("Systolic pressure", "mmHg", 0, 220, (100, 140)),
    "dbp": Scale("Diastolic pressure", "mmHg", 0, 220, (60, 90)),
    "map": Scale("Mean arterial pressure", "mmHg", 0, 220, (70, 105)),
    "spo2": Scale("SpO\u2082", "%", 50, 100, (94, 100)),
    "rr": Scale("Respiratory rate", "/min", 0, 50, (12, 20)),
    "temp": Scale("Temperature", "\u00b0C", 34, 42, (36.1, 37.8)),
    "etco2": Scale("End-tidal CO\u2082", "mmHg", 0, 80, (35, 45)),
}


@dataclass(slots=True)
class Member:
    id: int
    role: str
    name: str
    pseudonym: str
    joined_s: float
    left_s: float | None = None


@dataclass(slots=True)
class Action:
    t: float
    """Session seconds of the tick it took effect in."""
    tick: int
    member: int | None
    actor: str
    role: str
    action: str
    args: dict[str, Any]
    ok: bool | None = None
    code: str = ""
    message: str = ""
    effect: str = ""
    """What the case logged for it ("Ceftriaxone 2 g iv")."""
    case_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """drug, dose, unit, route, test, region, decision, option, label... as logged."""

    @property
    def refused(self) -> bool:
        return self.ok is False

    def describe(self) -> str:
        """The action in a few words, with dose and route: "give ceftriaxone 2 g IV"."""
        d = {**self.args, **self.details}
        if self.action in ("give", "stop") and d.get("drug"):
            unit = f" {d['unit']}" if d.get("unit") else ""
            dose = f" {_num(d.get('dose'))}{unit}" if d.get("dose") is not None else ""
            route = f" {str(d['route']).upper()}" if d.get("route") else ""
            return f"{self.action} {d['drug']}{dose}{route}"
        for key in ("test", "region", "device", "team", "obj", "signal", "event", "item"):
            if key in d:
                return f"{self.action} {d[key]}"
        if self.action == "decide" and d.get("decision"):
            label = f" ({d['label']})" if d.get("label") else ""
            return f"decide {d['decision']}: {d.get('option')}{label}"
        return self.action.replace("_", " ")


@dataclass(slots=True)
class Line:
    """Something said or written: chat, a private question, a team note, a hint, a
    facilitator's scoring comment, a scripted character's line."""

    t: float
    tick: int
    kind: str
    who: str
    text: str
    level: int = 0
    """The lowest view that may read it (0 everyone, 1 the team, 2 the facilitator)."""


@dataclass(slots=True)
class Event:
    t: float
    tick: int
    kind: str
    text: str


@dataclass(slots=True)
class Decision:
    t: float
    tick: int
    decision: str
    prompt: str
    option: str
    label: str
    by: str
    recommended: list[str] | None = None


@dataclass(slots=True)
class Summary:
    session_id: str
    case: str
    title: str
    started_at: str
    tick_hz: int
    view: View = View.FACILITATOR
    end_s: float = 0.0
    end_reason: str = ""
    members: dict[int, Member] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    transcript: list[Line] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    vitals: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    case_clock: list[tuple[float, float]] = field(default_factory=list)
    """(session seconds, case seconds) samples: the case clock at each second it ticked."""
    debrief: dict[str, Any] | None = None
    answer_key: dict[str, Any] | None = None
    damage: str | None = None
    """Why the log could not be read to its end (the summary stops there)."""

    def vital_at(self, signal: str, t: float) -> float | None:
        """The monitor's value of `signal` shown at session second `t` (None before any)."""
        series = self.vitals.get(signal)
        if not series:
            return None
        i = bisect.bisect_right(series, (t, float("inf")))
        return series[i - 1][1] if i else None

    def vitals_at(self, t: float) -> dict[str, float]:
        return {s: v for s in self.vitals if (v := self.vital_at(s, t)) is not None}

    def case_time(self, t: float) -> float | None:
        i = bisect.bisect_right(self.case_clock, (t, float("inf")))
        return self.case_clock[i - 1][1] if i else None

    def said_before(self, t: float) -> Line | None:
        """The last transcript line at or before `t`."""
        before = [line for line in self.transcript if line.t <= t]
        return before[-1] if before else None


def summarize(session: Session, view: View = View.FACILITATOR) -> Summary:
    m = session.manifest
    s = Summary(
        session.session_id,
        str(m.case.get("name", "")),
        str(m.case.get("title", "")),
        m.started_at,
        session.tick_hz,
        view,
    )
    _Builder(session, s).run()
    return s


class _Builder:
    def __init__(self, session: Session, summary: Summary) -> None:
        self.session = session
        self.s = summary
        self.open: dict[tuple[Any, Any], Action] = {}
        self.monitors: set[int] = set()
        self.case_entities: set[int] = set()
        self.decisions: dict[int, dict[str, Any]] = {}
        self.keys: set[int] = set()
        self.logged: list[tuple[int, dict[str, Any]]] = []
        """Clinical case-log entries (tick, entry), matched to intents at the end."""
        self.from_intents = False

    def run(self) -> None:
        s = self.s
        s.end_s = self.session.time_range()[1]
        try:
            self._read()
        except ReplayError as exc:  # the timeline up to the damage
            s.damage = exc.message
        self._match_logged()
        s.actions.sort(key=lambda a: (a.tick, a.actor))
        s.transcript.sort(key=lambda line: line.tick)

    def _read(self) -> None:
        s = self.s
        for _, record in view_records(self.session, s.view, SUMMARY_KINDS):
            t, data, kind = self.session.seconds(record.tick), record.data, record.kind
            if kind == "join":
                member = int(data["member"])
                s.members[member] = Member(
                    member,
                    str(data.get("role", "")),
                    str(data.get("name", "")),
                    pseudonym(s.session_id, member),
                    t,
                )
            elif kind in ("leave", "expire") and data.get("member") in s.members:
                s.members[data["member"]].left_s = t
            elif kind in ("intent", "refused"):
                self._intent(record.tick, data, kind)
            elif kind == "reply":
                done = self.open.pop((data.get("member"), data.get("id")), None)
                if done is not None:
                    done.ok, done.code = bool(data.get("ok")), str(data.get("code") or "")
                    done.message = str(data.get("msg") or "")
                    done.tick, done.t = record.tick, t
            elif kind == "ended":
                s.end_reason = str(data.get("reason", ""))
            elif kind == "op" and isinstance(data.get("op"), list):
                self._op(record.tick, t, data["op"])

    # -- intents -----------------------------------------------------------------------
    def _intent(self, tick: int, data: dict[str, Any], kind: str) -> None:
        self.from_intents = True
        action = str(data.get("do", ""))
        if action in SPOKEN:
            return  # the log entry it makes is the transcript line
        member = data.get("member")
        who = self.s.members.get(member) if isinstance(member, int) else None
        args = data.get("args") if isinstance(data.get("args"), dict) else {}
        entry = Action(
            self.session.seconds(tick + 1),
            tick + 1,
            member if isinstance(member, int) else None,
            who.name if who else f"member {member}",
            who.role if who else "",
            action,
            dict(args or {}),
        )
        if kind == "refused":
            entry.ok, entry.code = False, str(data.get("code", ""))
            entry.message = str(data.get("msg", ""))
        self.open[(member, data.get("id"))] = entry
        self.s.actions.append(entry)

    # -- ops ---------------------------------------------------------------------------------
    def _op(self, tick: int, t: float, op: list[Any]) -> None:
        match op:
            case ["new", eid, kind, dict(fields), *_]:
                if self.s.view is View.FACILITATOR:  # the record's op: {field: [value, vis]}
                    values = {k: v[0] for k, v in fields.items() if isinstance(v, list) and v}
                else:  # the op as the view was sent it: {field: value or HIDDEN}
                    values = dict(fields)
                seen = {k: v for k, v in values.items() if v is not HIDDEN}
                self._new(tick, t, eid, kind, seen)
            case ["set", eid, name, value, *_] if value is not HIDDEN:
                self._set(t, eid, name, value)
            case ["log", str(channel), dict(entry), *rest]:
                level = rest[0] if rest and isinstance(rest[0], int) else 0
                self._log(tick, t, channel, entry, level)

    def _new(self, tick: int, t: float, eid: Any, kind: Any, values: dict[str, Any]) -> None:
        member = values.get("member")
        if kind == "avatar" and isinstance(member, int) and member not in self.s.members:
            # A view without the join records still saw each avatar, named as it was live.
            self.s.members[member] = Member(
                member,
                str(values.get("role", "")),
                str(values.get("name", "")),
                pseudonym(self.s.session_id, member),
                t,
            )
        elif kind == "monitor":
            self.monitors.add(eid)
            for name, value in values.items():
                self._sample(name, t, value)
        elif kind == "case":
            self.case_entities.add(eid)
        elif kind == "decision":
            self.decisions[eid] = values
        elif kind == "answer_key" and values:
            self.keys.add(eid)
            self.s.answer_key = values

    def _set(self, t: float, eid: Any, name: Any, value: Any) -> None:
        if eid in self.monitors:
            self._sample(name, t, value)
        elif eid in self.case_entities and name == "time_s" and _is_number(value):
            self.s.case_clock.append((t, float(value)))
        elif name == "debrief" and isinstance(value, dict):
            self.s.debrief = value
        elif eid in self.decisions and isinstance(name, str):
            self.decisions[eid][name] = value
        elif eid in self.keys and self.s.answer_key is not None and isinstance(name, str):
            self.s.answer_key[name] = value

    def _log(self, tick: int, t: float, channel: str, entry: dict[str, Any], level: int) -> None:
        s = self.s
        text = str(entry.get("text", ""))
        if channel in TRANSCRIPT:
            who = str(entry.get("from") or entry.get("by") or "")
            s.transcript.append(Line(t, tick, TRANSCRIPT[channel], who, text, level))
        elif channel == "script":
            s.transcript.append(
                Line(
                    t, tick, "script", str(entry.get("name", "")), str(entry.get("line", "")), level
                )
            )
        elif channel == "director" and entry.get("kind") == "score" and entry.get("comment"):
            s.transcript.append(
                Line(
                    t,
                    tick,
                    "score comment",
                    "facilitator",
                    f"{entry.get('item')}: {entry.get('comment')}",
                    level,
                )
            )
        elif channel == "director" and entry.get("kind") == "event":
            s.events.append(
                Event(
                    t,
                    tick,
                    "director",
                    f"event {entry.get('event')} "
                    f"({entry.get('how')}): {entry.get('note') or ''}".strip(),
                )
            )
        elif channel in ("case", "events"):
            kind = str(entry.get("kind", ""))
            if kind in CLINICAL and entry.get("by"):
                self.logged.append((tick, entry))
                if kind == "decide":
                    self._decided(tick, t, entry)
            else:
                s.events.append(Event(t, tick, kind or channel, text))

    def _decided(self, tick: int, t: float, entry: dict[str, Any]) -> None:
        did, option = str(entry.get("decision", "")), str(entry.get("option", ""))
        point = next((d for d in self.decisions.values() if d.get("id") == did), {})
        options = point.get("options") if isinstance(point.get("options"), dict) else {}
        key = (self.s.answer_key or {}).get("decisions")
        recommended = key.get(did) if isinstance(key, dict) else None
        self.s.decisions.append(
            Decision(
                t,
                tick,
                did,
                str(point.get("prompt", "")),
                option,
                str((options or {}).get(option, entry.get("text", ""))),
                str(entry.get("by", "")),
                list(recommended) if isinstance(recommended, list) else None,
            )
        )

    def _sample(self, name: Any, t: float, value: Any) -> None:
        if isinstance(name, str) and _is_number(value):
            self.s.vitals.setdefault(name, []).append((t, float(value)))

    # -- what the case logged, joined to who asked for it ----------------------------------
    def _match_logged(self) -> None:
        """Give each intent the case's log entry for it (same tick, actor and kind); a log
        entry with no intent (a view that sees no intents) is an action of its own."""
        unmatched = [a for a in self.s.actions if a.ok is not False]
        for tick, entry in self.logged:
            kind, by = str(entry.get("kind")), str(entry.get("by"))
            wanted = {"give", "stop"} if kind in ("give", "stop") else {kind}
            found = next(
                (a for a in unmatched if a.tick == tick and a.actor == by and a.action in wanted),
                None,
            )
            if found is None:
                if self.from_intents:
                    continue  # a facilitator's reveal logged as an exam, for instance
                found = Action(self.session.seconds(tick), tick, None, by, "", kind, {}, True)
                self.s.actions.append(found)
            else:
                unmatched.remove(found)
            found.effect = str(entry.get("text", ""))
            found.case_s = entry["t"] if _is_number(entry.get("t")) else None
            found.details = {k: v for k, v in entry.items() if k not in ("t", "kind", "by", "text")}
            if kind == "decide":
                found.details["label"] = found.effect
            if kind == "stop":
                found.action = "stop"


def _is_number(value: Any) -> bool:
    """A finite number (a recorded NaN or infinity is not a value to chart or compare)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def as_json(s: Summary) -> dict[str, Any]:
    """The summary for the replay viewer's lanes, transcript and vitals (JSON-ready)."""
    return {
        "session": s.session_id,
        "view": s.view.name.lower(),
        "tick_hz": s.tick_hz,
        "end_s": s.end_s,
        "end_reason": s.end_reason,
        "damage": s.damage,
        "members": [{"id": m.id, "name": m.name, "role": m.role} for m in s.members.values()],
        "actions": [
            {
                "t": a.t,
                "tick": a.tick,
                "actor": a.actor,
                "role": a.role,
                "action": a.action,
                "text": a.describe(),
                "effect": a.effect,
                "ok": a.ok,
                "code": a.code,
                "message": a.message,
                "case_s": a.case_s,
            }
            for a in s.actions
        ],
        "transcript": [
            {"t": x.t, "tick": x.tick, "kind": x.kind, "who": x.who, "text": x.text}
            for x in s.transcript
        ],
        "events": [{"t": e.t, "tick": e.tick, "kind": e.kind, "text": e.text} for e in s.events],
        "decisions": [
            {
                "t": d.t,
                "tick": d.tick,
                "decision": d.decision,
                "prompt": d.prompt,
                "option": d.option,
                "label": d.label,
                "by": d.by,
            }
            for d in s.decisions
        ],
        "vitals": {name: [[t, v] for t, v in series] for name, series in s.vitals.items()},
        "scales": {
            name: {
                "label": x.label,
                "unit": x.unit,
                "low": x.low,
                "high": x.high,
                "normal": list(x.normal),
            }
            for name, x in SCALES.items()
        },
        "rating_scales": {
            sid: {
                "title": r.title,
                "anchors": r.anchors,
                "low": r.low,
                "high": r.high,
                "global_low": r.global_low,
                "global_high": r.global_high,
                "items": [{"id": i, "label": label} for i, label in r.items],
            }
            for sid, r in RATING_SCALES.items()
        },
    }
