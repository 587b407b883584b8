"""The rubric applied to what the team did: live score and the end-of-case debrief.

Scoring is a pure function of the action log (and the facilitator's manual marks),
so the live score, the debrief and a re-simulated replay always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rooms.case.model import Match, Rubric

ActionRecord = dict[str, Any]
"""{"t", "kind", "item", "key", "dose", "route", "by"}: one applied clinical action."""


def key_matches(pattern: str, key: str) -> bool:
    """"decide:cvs" matches "decide:cvs:yes"; otherwise keys must be equal."""
    return key == pattern or key.startswith(pattern + ":")


def alternatives(m: Match) -> list[str]:
    return [m.action] if isinstance(m.action, str) else list(m.action)


def matches(m: Match, record: ActionRecord) -> bool:
    if not any(key_matches(a, record["key"]) for a in alternatives(m)):
        return False
    if m.routes and record.get("route") not in m.routes:
        return False
    dose = record.get("dose")
    if m.dose_min is not None and (dose is None or dose < m.dose_min):
        return False
    return not (m.dose_max is not None and (dose is None or dose > m.dose_max))


def evaluate(
    rubric: Rubric, actions: Sequence[ActionRecord], manual: Mapping[str, int], now: float
) -> dict[str, Any]:
    """Score breakdown at `now`: each critical item's status, penalties, manual marks."""
    done: dict[str, float] = {}
    early: dict[str, float] = {}
    penalties: dict[str, float] = {}
    for record in actions:
        t = record["t"]
        for cid, item in rubric.critical.items():
            if cid in done or not matches(item, record):
                continue
            ordered = all(a in done for a in item.after) and not any(
                b in done for b in item.before
            )
            if ordered:
                done[cid] = t
            else:
                early.setdefault(cid, t)
        for pid, penalty in rubric.penalties.items():
            if pid in penalties or not matches(penalty, record):
                continue
            if penalty.unless_done is None or penalty.unless_done not in done:
                penalties[pid] = t
    critical = []
    earned = 0
    for cid, item in rubric.critical.items():
        at = done.get(cid)
        if at is not None:
            status = "done" if item.within_s is None or at <= item.within_s else "late"
        elif item.within_s is not None and now > item.within_s:
            status = "missed"
        else:
            status = "pending"
        points = item.points if status == "done" else 0
        earned += points
        entry = {"id": cid, "description": item.description, "status": status,
                 "at_s": at, "within_s": item.within_s, "points": points,
                 "max": item.points}
        if cid in early and at is None:
            entry["out_of_order_at_s"] = early[cid]
        critical.append(entry)
    harmful = [
        {"id": pid, "description": rubric.penalties[pid].description, "at_s": t,
         "points": -rubric.penalties[pid].points}
        for pid, t in sorted(penalties.items(), key=lambda kv: kv[1])
    ]
    marks = [
        {"id": mid, "description": m.description, "points": manual.get(mid), "max": m.points}
        for mid, m in rubric.manual.items()
    ]
    earned += sum(manual.values()) - sum(rubric.penalties[pid].points for pid in penalties)
    maximum = sum(i.points for i in rubric.critical.values()) + sum(
        m.points for m in rubric.manual.values()
    )
    percent = round(100 * max(0, earned) / maximum, 1)
    return {
        "earned": earned, "max": maximum, "percent": percent,
        "passed": percent >= rubric.pass_percent,
        "critical": critical, "penalties": harmful, "manual": marks,
    }
