"""Cross-reference checks: every id a case mentions must exist in that case.

Pydantic checks each field on its own; a rubric item naming a drug the case does not
have, or an event moving to a phase that does not exist, is only visible with the
whole case in hand. Each problem carries the path to the field and the ids allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rooms.case.errors import FieldPath, Problem
from rooms.case.model import DEVICES, Case, Effect, Intervention, Match, Trigger
from rooms.case.scoring import alternatives


def _allowed(ids: Iterable[str]) -> str:
    return ", ".join(sorted(ids)) or "(none defined)"


class _Checker:
    def __init__(self, case: Case, interventions: Mapping[str, Intervention]) -> None:
        self.case = case
        self.interventions = interventions
        self.phases = [p.id for p in case.phases]
        self.problems: list[Problem] = []

    def ref(self, path: FieldPath, value: str, ids: Iterable[str], what: str, of: str = "") -> bool:
        ids = list(ids)
        if value in ids:
            return True
        self.problems.append(Problem(path, f"unknown {what} {value!r}{of}", _allowed(ids)))
        return False

    def action_key(self, path: FieldPath, key: str) -> None:
        kind, _, item = key.partition(":")
        c = self.case
        targets: dict[str, tuple[Iterable[str], str]] = {
            "give": (self.interventions, "drug or fluid"),
            "order": (c.investigations, "investigation"),
            "examine": (c.exam, "exam region"),
            "oxygen": (DEVICES, "oxygen or airway device"),
            "call_help": (c.help, "help team"),
            "decide": (c.decisions, "decision"),
            "note": (["any"], "note"),
        }
        if not self.ref(path, kind, targets, "action kind") or not item:
            return  # a bare kind ("give") matches any action of that kind
        if kind == "decide":
            decision, _, option = item.partition(":")
            if self.ref(path, decision, c.decisions, "decision") and option:
                self.ref(path, option, c.decisions[decision].options, "option")
            return
        ids, what = targets[kind]
        self.ref(path, item, ids, what)

    def match(self, path: FieldPath, m: Match) -> None:
        keys = alternatives(m)
        for i, key in enumerate(keys):
            where = (*path, "action", i) if isinstance(m.action, list) else (*path, "action")
            self.action_key(where, key)
        drugs = [k.partition(":")[2] for k in keys if k.startswith("give:")]
        if len(drugs) == len(keys):
            for drug in (d for d in drugs if d in self.interventions):
                routes = self.interventions[drug].routes
                for i, route in enumerate(m.routes):
                    self.ref((*path, "routes", i), route, routes, "route", f" for {drug}")
        elif m.routes or m.dose_min is not None or m.dose_max is not None:
            self.problems.append(Problem(path, "routes and doses only apply to give:DRUG"))

    def trigger(self, path: FieldPath, t: Trigger) -> None:
        for name in ("done", "not_done"):
            key = getattr(t, name)
            if key is not None:
                self.action_key((*path, name), key)
        if t.phase is not None:
            self.ref((*path, "phase"), t.phase, self.phases, "phase")

    def effect(self, path: FieldPath, e: Effect) -> None:
        c = self.case
        if e.condition is not None:
            self.ref((*path, "condition"), e.condition, c.conditions, "condition")
        if e.phase is not None:
            self.ref((*path, "phase"), e.phase, self.phases, "phase")
        for i, result in enumerate(e.reveal):
            self.ref((*path, "reveal", i), result, c.investigations, "investigation")
        for region in e.exam:
            self.ref((*path, "exam", region), region, c.exam, "exam region")
        if e.say is not None:
            self.ref((*path, "say", "character"), e.say.character, c.roleplay, "character")

    def run(self) -> list[Problem]:
        c = self.case
        seen: set[str] = set()
        for i, phase in enumerate(c.phases):
            if phase.id in seen:
                self.problems.append(Problem(("phases", i, "id"), f"duplicate phase {phase.id!r}"))
            seen.add(phase.id)
        for iid, drug in c.interventions.items():
            for field in ("treats", "worsens"):
                for cond in getattr(drug, field):
                    self.ref(("interventions", iid, field, cond), cond, c.conditions, "condition")
        for eid, event in c.events.items():
            if event.when is not None:
                self.trigger(("events", eid, "when"), event.when)
            self.effect(("events", eid, "then"), event.then)
        for did, decision in c.decisions.items():
            if decision.phase is not None:
                self.ref(("decisions", did, "phase"), decision.phase, self.phases, "phase")
            for oid, option in decision.options.items():
                self.effect(("decisions", did, "options", oid, "then"), option.then)
        for hid, team in c.help.items():
            self.effect(("help", hid, "then"), team.then)
        rubric = c.rubric
        for cid, item in rubric.critical.items():
            self.match(("rubric", "critical", cid), item)
            for field in ("after", "before"):
                for i, other in enumerate(getattr(item, field)):
                    where_order = ("rubric", "critical", cid, field, i)
                    self.ref(where_order, other, rubric.critical, "critical item")
        for pid, penalty in rubric.penalties.items():
            self.match(("rubric", "penalties", pid), penalty)
            if penalty.unless_done is not None:
                where = ("rubric", "penalties", pid, "unless_done")
                self.ref(where, penalty.unless_done, rubric.critical, "critical item")
        return self.problems


def check(case: Case, interventions: Mapping[str, Intervention]) -> list[Problem]:
    """Problems for every dangling id in `case` (drugs looked up in `interventions`)."""
    return _Checker(case, interventions).run()
