"""Cross-reference checks: every id a case mentions must exist in that case.

Pydantic checks each field on its own; a rubric item naming a drug the case does not
have, or an event moving to a phase that does not exist, is only visible with the
whole case in hand. Each problem carries the path to the field and the ids allowed.
Expressions are checked by `CaseProgram`, which compiles them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from pydantic import ValidationError

from netcode.views import Role
from rooms.case.actions import ACTIONS
from rooms.case.errors import FieldPath, Problem
from rooms.case.model import (
    BUILT_IN_NAMES,
    DOSE_NAMES,
    Case,
    Effect,
    Intervention,
    Match,
    Procedure,
    TeamStep,
)
from rooms.case.program import SIGNALS, CaseScope

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _allowed(ids: Iterable[str]) -> str:
    return ", ".join(sorted(ids)) or "(none defined)"


class _Checker:
    def __init__(self, case: Case, declared: Mapping[str, Intervention]) -> None:
        self.case = case
        self.declared = declared
        self.scope = CaseScope(case)
        self.phases = [p.id for p in case.phases]
        self.problems: list[Problem] = []

    def ref(self, path: FieldPath, value: str, ids: Iterable[str], what: str, of: str = "") -> bool:
        ids = list(ids)
        if value in ids:
            return True
        self.problems.append(Problem(path, f"unknown {what} {value!r}{of}", _allowed(ids)))
        return False

    def match(self, path: FieldPath, m: Match) -> None:
        keys = m.keys
        for i, key in enumerate(keys):
            where = (*path, "action", i) if isinstance(m.action, list) else (*path, "action")
            problem = self.scope.check_key(key)
            if problem:
                message, _, allowed = problem.partition(" (allowed: ")
                self.problems.append(Problem(where, message, allowed.removesuffix(")")))
        drugs = [k.partition(":")[2] for k in keys if k.startswith("give:")]
        if keys and len(drugs) == len(keys):
            for drug in (d for d in drugs if d in self.case.interventions):
                routes = self.case.interventions[drug].routes
                for i, route in enumerate(m.routes):
                    self.ref((*path, "routes", i), route, routes, "route", f" for {drug}")
        elif m.routes or m.dose_min is not None or m.dose_max is not None:
            self.problems.append(Problem(path, "routes and doses only apply to give:DRUG"))

    def effect(self, path: FieldPath, e: Effect) -> None:
        c = self.case
        if e.phase is not None:
            self.ref((*path, "phase"), e.phase, self.phases, "phase")
        for i, result in enumerate(e.reveal):
            self.ref((*path, "reveal", i), result, c.investigations, "investigation")
        for region in e.exam:
            self.ref((*path, "exam", region), region, c.exam, "exam region")
        if e.say is not None:
            self.ref((*path, "say", "character"), e.say.character, c.roleplay, "character")

    def names(self) -> None:
        taken = {*SIGNALS, *BUILT_IN_NAMES, *DOSE_NAMES}
        for sid in self.case.state:
            if sid in taken:
                self.problems.append(
                    Problem(("state", sid), f"{sid!r} is a built-in name; choose another id")
                )
        for did in self.case.derived:
            if did in taken or did in self.case.state:
                self.problems.append(
                    Problem(("derived", did), f"{did!r} is already a name; choose another id")
                )
        for mid in self.case.measures:
            if mid in taken or mid in self.case.state or mid in self.case.derived:
                self.problems.append(
                    Problem(("measures", mid), f"{mid!r} is already a name; choose another id")
                )

    def calibration(self) -> None:
        c = self.case
        for name, cal in c.calibration.items():
            self.problems += check_steps(("calibration", name, "team"), cal.team)
            for i, penalty in enumerate(cal.penalties or []):
                self.ref(
                    ("calibration", name, "penalties", i), penalty, c.rubric.penalties, "penalty"
                )

    def run(self) -> list[Problem]:
        c = self.case
        seen: set[str] = set()
        for i, phase in enumerate(c.phases):
            if phase.id in seen:
                self.problems.append(Problem(("phases", i, "id"), f"duplicate phase {phase.id!r}"))
            seen.add(phase.id)
        self.names()
        sources: Mapping[str, Intervention | Procedure]
        for group, sources in (("interventions", self.declared), ("procedures", c.procedures)):
            for sid, source in sources.items():
                for var in source.acts_on:
                    path = (group, sid, "acts_on", var)
                    self.ref(path, var, c.state, "state variable")
        for tid, inv in c.investigations.items():
            for placeholder in _PLACEHOLDER.findall(inv.result):
                self.ref(("investigations", tid, "result"), placeholder, inv.values, "value")
        for eid, event in c.events.items():
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
        self.calibration()
        return self.problems


def check_steps(path: FieldPath, steps: Sequence[TeamStep]) -> list[Problem]:
    """Each scripted step names an action, a sender who may send it and arguments that
    fit its model (what a room checks before the case sees an intent)."""
    problems = []
    for i, step in enumerate(steps):
        where: FieldPath = (*path, i)
        spec = ACTIONS.get(step.do)
        if spec is None:
            problems.append(
                Problem((*where, "do"), f"unknown action {step.do!r}", _allowed(ACTIONS))
            )
            continue
        if Role(step.by) not in spec.roles:
            who = " or ".join(sorted(r.value for r in spec.roles))
            problems.append(Problem((*where, "by"), f"{step.do} is for the {who}"))
        try:
            spec.args.model_validate(step.args)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            field = tuple(str(p) for p in first["loc"])
            problems.append(Problem((*where, *field), first["msg"]))
    return problems


def check(case: Case, declared: Mapping[str, Intervention]) -> list[Problem]:
    """Problems for every dangling id in `case` (with the formulary merged in);
    `declared`: the interventions the case file itself declares."""
    return _Checker(case, declared).run()
