"""A case compiled for running: every expression parsed, checked and compiled once.

`CaseProgram(case)` resolves each expression against the names and ids the case declares
(state variables, vitals, measures, events, phases, decisions, action keys) and keeps the
compiled closures where the physiology, triggers, rubric and outcome look them up. A
case file that the loader accepted always compiles; the loader reports `problems` with
the field and the line and column inside the expression.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, get_args

from rooms.case.errors import FieldPath, Problem
from rooms.case.expressions import (
    Expression,
    ExpressionError,
    Ref,
    Type,
    compile_expression,
)
from rooms.case.model import (
    BUILT_IN_NAMES,
    DEVICES,
    DOSE_NAMES,
    Case,
    Effect,
    Expr,
    Intervention,
    Procedure,
    Signal,
    StateEffect,
    Vital,
)

VITALS: Final[tuple[Vital, ...]] = get_args(Vital)
SIGNALS: Final[tuple[Signal, ...]] = get_args(Signal)
ACTION_KINDS: Final = (
    "give",
    "stop",
    "perform",
    "order",
    "examine",
    "oxygen",
    "call_help",
    "decide",
    "note",
)


def _allowed(ids: Iterable[str]) -> str:
    ids = sorted(ids)
    return ", ".join(ids) if ids else "(none defined)"


class CaseScope:
    """The names and ids one case declares, for checking its expressions."""

    def __init__(self, case: Case, extra: Mapping[str, str] | None = None) -> None:
        self.case = case
        self._names: dict[str, str] = {}
        for sid, var in case.state.items():
            self._names[sid] = f"state: {var.name}" + (f" ({var.unit})" if var.unit else "")
        for did, derived in case.derived.items():
            self._names[did] = f"derived: {derived.name}" + (
                f" ({derived.unit})" if derived.unit else ""
            )
        for signal in SIGNALS:
            self._names[signal] = "vital sign on the monitor"
        for mid, measure in case.measures.items():
            self._names[mid] = f"measure: {measure.name}"
        self._names.update(BUILT_IN_NAMES)
        self._names.update(extra or {})
        self._events = list(case.events)
        self._phases = [p.id for p in case.phases]
        self._decisions = list(case.decisions)

    def without(self, names: Iterable[str]) -> CaseScope:
        narrower = CaseScope.__new__(CaseScope)
        narrower.__dict__.update(self.__dict__)
        narrower._names = {k: v for k, v in self._names.items() if k not in set(names)}
        return narrower

    def with_names(self, extra: Mapping[str, str]) -> CaseScope:
        wider = CaseScope.__new__(CaseScope)
        wider.__dict__.update(self.__dict__)
        wider._names = {**self._names, **extra}
        return wider

    def names(self) -> Mapping[str, str]:
        return self._names

    def refs(self, kind: Ref) -> Sequence[str] | None:
        if kind is Ref.EVENT:
            return self._events
        if kind is Ref.PHASE:
            return self._phases
        if kind is Ref.DECISION:
            return self._decisions
        return None

    def check_key(self, key: str) -> str:
        """ "" if `key` names an action this case can record, else what is wrong."""
        kind, _, item = key.partition(":")
        c = self.case
        infusions = [d for d, drug in c.interventions.items() if drug.infusion]
        targets: dict[str, tuple[Iterable[str], str]] = {
            "give": (c.interventions, "drug or fluid"),
            "stop": ([*infusions, *c.procedures], "infusion or procedure"),
            "perform": (c.procedures, "procedure"),
            "order": (c.investigations, "investigation"),
            "examine": (c.exam, "exam region"),
            "oxygen": (DEVICES, "oxygen or airway device"),
            "call_help": (c.help, "help team"),
            "decide": (c.decisions, "decision"),
            "note": (["any"], "note"),
        }
        if kind not in targets:
            return f"unknown action kind {kind!r} (allowed: {_allowed(targets)})"
        if not item:
            return ""  # a bare kind ("give") matches any action of that kind
        if kind == "decide":
            decision, _, option = item.partition(":")
            if decision not in c.decisions:
                return f"unknown decision {decision!r} (allowed: {_allowed(c.decisions)})"
            options = c.decisions[decision].options
            if option and option not in options:
                return f"unknown option {option!r} of {decision} (allowed: {_allowed(options)})"
            return ""
        ids, what = targets[kind]
        ids = list(ids)
        if item not in ids or ":" in item:
            return f"unknown {what} {item!r} (allowed: {_allowed(ids)})"
        return ""


@dataclass(frozen=True, slots=True)
class SourceEffect:
    """One compiled effect of a drug or procedure on one state variable."""

    var: int
    """Index of the state variable."""
    rate: float
    log_factor: float
    amount: Expression | None
    window: Expression | None


@dataclass(frozen=True, slots=True)
class Source:
    """A drug or procedure as the physiology uses it."""

    id: str
    vitals: tuple[tuple[int, float], ...]
    """(vital index, change at full effect)"""
    state: tuple[SourceEffect, ...]


@dataclass(slots=True)
class CompiledEffect:
    """An event's, option's or help team's effect on the state."""

    set: list[tuple[str, Expression]] = field(default_factory=list)
    add: list[tuple[str, Expression]] = field(default_factory=list)
    rate: list[tuple[str, Expression]] = field(default_factory=list)


class CaseProgram:
    """Every expression of a case, compiled; `problems` lists what did not compile."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.problems: list[Problem] = []
        self.scope = CaseScope(case)
        self.var_ids: list[str] = list(case.state)
        self.var_index = {v: i for i, v in enumerate(self.var_ids)}
        dynamic = self.scope.without(case.measures)
        self.rates = [
            self._number(("state", sid, "rate"), var.rate, dynamic)
            for sid, var in case.state.items()
        ]
        self.derived = [
            (did, self._number(("derived", did, "value"), d.value, dynamic))
            for did, d in case.derived.items()
        ]
        self.derive: dict[str, Expression | None] = {
            v: self._number(("vitals", "derive", v), case.vitals.derive[v], dynamic)
            if v in case.vitals.derive
            else None
            for v in VITALS
        }
        self.measures: dict[str, Expression] = {}
        for mid, m in case.measures.items():
            for kind, text in (
                ("lowest", m.lowest),
                ("highest", m.highest),
                ("seconds_while", m.seconds_while),
            ):
                if text is not None:
                    wanted = Type.BOOLEAN if kind == "seconds_while" else Type.NUMBER
                    found = self._expr(("measures", mid, kind), text, dynamic, wanted)
                    self.measures[mid] = found or (_FALSE if wanted is Type.BOOLEAN else _ZERO)
        dosing = self.scope.with_names(DOSE_NAMES)
        self.drugs = {
            did: self._source(("interventions", did), did, drug, dosing)
            for did, drug in case.interventions.items()
        }
        self.procedures = {
            pid: self._source(("procedures", pid), pid, proc, self.scope)
            for pid, proc in case.procedures.items()
        }
        self.lab_values = {
            (tid, vid): self._number(("investigations", tid, "values", vid, "value"), v.value)
            for tid, inv in case.investigations.items()
            for vid, v in inv.values.items()
        }
        self.triggers = {
            eid: self._bool(("events", eid, "when"), e.when)
            for eid, e in case.events.items()
            if e.when is not None
        }
        self.effects: dict[str, CompiledEffect] = {}
        self.rate_laws: dict[tuple[str, str], Expression] = {}
        """(effect key, variable) -> the rate that effect gives the variable."""
        for eid, event in case.events.items():
            self._effect(f"event:{eid}", ("events", eid, "then"), event.then)
        for did, decision in case.decisions.items():
            for oid, option in decision.options.items():
                path: FieldPath = ("decisions", did, "options", oid)
                self._effect(f"decide:{did}:{oid}", (*path, "then"), option.then)
        for hid, team in case.help.items():
            self._effect(f"help:{hid}", ("help", hid, "then"), team.then)
        self.correct = {
            (did, oid): self._bool(("decisions", did, "options", oid, "correct"), option.correct)
            for did, decision in case.decisions.items()
            for oid, option in decision.options.items()
            if isinstance(option.correct, str)
        }
        self.rubric_when = {
            (group, iid): self._bool(("rubric", group, iid, "when"), item.when)
            for group, items in (
                ("critical", case.rubric.critical),
                ("penalties", case.rubric.penalties),
            )
            for iid, item in items.items()
            if item.when is not None
        }
        self.good_if = self._bool(("outcome", "good_if"), case.outcome.good_if)
        self.promises = {
            (cid, i): self._bool(("calibration", cid, "promises", i, "holds"), p.holds)
            for cid, cal in case.calibration.items()
            for i, p in enumerate(cal.promises)
        }

    # -- compiling ---------------------------------------------------------------------
    def _expr(
        self, path: FieldPath, text: Expr, scope: CaseScope, wanted: Type
    ) -> Expression | None:
        source = repr(text) if isinstance(text, float | int) else text
        try:
            return compile_expression(source, scope, wanted)
        except ExpressionError as exc:
            self.problems.append(
                Problem(path, f"column {exc.column}: {exc.message}", expr_line=exc.line)
            )
            return None

    def _number(self, path: FieldPath, text: Expr, scope: CaseScope | None = None) -> Expression:
        found = self._expr(path, text, scope or self.scope, Type.NUMBER)
        return found or _ZERO

    def _bool(self, path: FieldPath, text: Expr) -> Expression:
        if isinstance(text, bool):
            return _TRUE if text else _FALSE
        return self._expr(path, text, self.scope, Type.BOOLEAN) or _FALSE

    def _source(
        self, path: FieldPath, sid: str, source: Intervention | Procedure, scope: CaseScope
    ) -> Source:
        vitals = tuple((VITALS.index(v), d) for v, d in source.effects.items())
        effects: list[SourceEffect] = []
        for var, effect in source.acts_on.items():
            index = self.var_index.get(var)
            if index is None:
                continue  # the formulary acts on variables this case does not model
            effects.append(self._state_effect((*path, "acts_on", var), index, effect, scope))
        return Source(sid, vitals, tuple(effects))

    def _state_effect(
        self, path: FieldPath, index: int, effect: StateEffect, scope: CaseScope
    ) -> SourceEffect:
        amount = None
        if effect.amount is not None:
            amount = self._number((*path, "amount"), effect.amount, scope)
        window = None
        if effect.window is not None:
            window = self._expr((*path, "window"), effect.window, scope, Type.BOOLEAN) or _FALSE
        return SourceEffect(
            index,
            effect.rate or 0.0,
            math.log(effect.factor) if effect.factor is not None else 0.0,
            amount,
            window,
        )

    def _effect(self, key: str, path: FieldPath, effect: Effect) -> None:
        compiled = CompiledEffect()
        for what, changes, out in (
            ("set", effect.set, compiled.set),
            ("add", effect.add, compiled.add),
            ("rate", effect.rate, compiled.rate),
        ):
            for var, text in changes.items():
                if var not in self.var_index:
                    self.problems.append(
                        Problem(
                            (*path, what, var),
                            f"unknown state variable {var!r}",
                            _allowed(self.var_ids),
                        )
                    )
                    continue
                out.append((var, self._number((*path, what, var), text)))
        for var, law in compiled.rate:
            self.rate_laws[key, var] = law
        self.effects[key] = compiled


def _constant(value: float | bool, kind: Type) -> Expression:
    return Expression(repr(value), kind, lambda env: value, frozenset())


_ZERO: Final = _constant(0.0, Type.NUMBER)
_TRUE: Final = _constant(True, Type.BOOLEAN)
_FALSE: Final = _constant(False, Type.BOOLEAN)
