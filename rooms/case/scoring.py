"""The rubric, scored as the session goes: each item's state changes when a matching
action or condition happens, never by re-reading a history.

The work per action and per second is bounded by the rubric's size, and so is the
state a keyframe carries, however many actions a session holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rooms.case.expressions import Env, holds
from rooms.case.model import Match, Rubric
from rooms.case.program import CaseProgram


@dataclass(frozen=True, slots=True)
class Act:
    """One applied clinical action, as the rubric matches it."""

    key: str
    t: float
    route: str | None = None
    dose: float | None = None


def key_matches(pattern: str, key: str) -> bool:
    """ "decide:cvs" matches "decide:cvs:yes"; otherwise keys must be equal."""
    return key == pattern or key.startswith(pattern + ":")


def matches(m: Match, act: Act) -> bool:
    if not any(key_matches(k, act.key) for k in m.keys):
        return False
    if m.routes and act.route not in m.routes:
        return False
    if m.dose_min is not None and (act.dose is None or act.dose < m.dose_min):
        return False
    return not (m.dose_max is not None and (act.dose is None or act.dose > m.dose_max))


class Scorer:
    """Live state of every rubric item."""

    def __init__(self, program: CaseProgram) -> None:
        self.rubric: Rubric = program.case.rubric
        self._when = program.rubric_when
        self.done: dict[str, float] = {}
        self.early: dict[str, float] = {}
        self.penalised: dict[str, float] = {}
        self.manual: dict[str, int] = {}

    def _critical(self, cid: str, t: float) -> None:
        item = self.rubric.critical[cid]
        ordered = all(a in self.done for a in item.after) and not any(
            b in self.done for b in item.before
        )
        if ordered:
            self.done[cid] = t
        else:
            self.early.setdefault(cid, t)

    def _penalty(self, pid: str, t: float) -> None:
        unless = self.rubric.penalties[pid].unless_done
        if unless is None or unless not in self.done:
            self.penalised[pid] = t

    def on_action(self, act: Act) -> bool:
        """Score one action; True if any item changed."""
        changed = False
        for cid, item in self.rubric.critical.items():
            if cid not in self.done and item.action is not None and matches(item, act):
                self._critical(cid, act.t)
                changed = True
        for pid, penalty in self.rubric.penalties.items():
            if pid not in self.penalised and penalty.action is not None and matches(penalty, act):
                self._penalty(pid, act.t)
                changed = True
        return changed

    def on_second(self, env: Env, t: float) -> bool:
        """Check the condition items not yet done; True if any changed."""
        changed = False
        for (group, iid), expression in self._when.items():
            if group == "critical":
                if iid not in self.done and holds(expression, env):
                    self._critical(iid, t)
                    changed = True
            elif iid not in self.penalised and holds(expression, env):
                self._penalty(iid, t)
                changed = iid in self.penalised or changed
        return changed

    def mark(self, item: str, points: int) -> None:
        self.manual[item] = points

    def summary(self, now: float) -> dict[str, Any]:
        """Score breakdown at `now`: each critical item's status, penalties, manual marks."""
        rubric = self.rubric
        critical = []
        earned = 0
        for cid, item in rubric.critical.items():
            at = self.done.get(cid)
            if at is not None:
                status = "done" if item.within_s is None or at <= item.within_s else "late"
            elif item.within_s is not None and now > item.within_s:
                status = "missed"
            else:
                status = "pending"
            points = item.points if status == "done" else 0
            earned += points
            entry: dict[str, Any] = {
                "id": cid,
                "description": item.description,
                "status": status,
                "at_s": at,
                "within_s": item.within_s,
                "points": points,
                "max": item.points,
            }
            if cid in self.early and at is None:
                entry["out_of_order_at_s"] = self.early[cid]
            critical.append(entry)
        harmful = [
            {
                "id": pid,
                "description": rubric.penalties[pid].description,
                "at_s": t,
                "points": -rubric.penalties[pid].points,
            }
            for pid, t in sorted(self.penalised.items(), key=lambda kv: (kv[1], kv[0]))
        ]
        marks = [
            {
                "id": mid,
                "description": m.description,
                "points": self.manual.get(mid),
                "max": m.points,
            }
            for mid, m in rubric.manual.items()
        ]
        earned += sum(self.manual.values()) - sum(
            rubric.penalties[pid].points for pid in self.penalised
        )
        maximum = sum(i.points for i in rubric.critical.values()) + sum(
            m.points for m in rubric.manual.values()
        )
        percent = round(100 * earned / maximum, 1)
        return {
            "earned": earned,
            "max": maximum,
            "percent": percent,
            "passed": percent >= rubric.pass_percent,
            "critical": critical,
            "penalties": harmful,
            "manual": marks,
        }

    def export(self) -> dict[str, Any]:
        return {
            "done": dict(self.done),
            "early": dict(self.early),
            "penalised": dict(self.penalised),
            "manual": dict(self.manual),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.done = dict(data["done"])
        self.early = dict(data["early"])
        self.penalised = dict(data["penalised"])
        self.manual = dict(data["manual"])
