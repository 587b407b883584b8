"""Running a case headless at full speed, with a scripted team, the way a room would.

Each scripted action passes the same checks a room makes (the action exists, the
sender's role may send it, its arguments fit the action's model) before the case
handles it, so a script that calibrates here behaves the same in a session. Used by
`grandrounds case run` and `case check`, by the calibration tests and by the bench.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from netcode.state import CaseState
from netcode.views import Role
from rooms.actions import IntentRefused, check_role, parse_args
from rooms.case.expressions import holds
from rooms.case.model import Calibration, Case, Promise, TeamStep
from rooms.case.names import clock_text
from rooms.case.program import CaseProgram
from rooms.case.scenario import CaseScenario
from rooms.scenario import Actor, Clock

DRIVER_HZ: Final = 4
"""Ticks per simulated second: one physiology step per tick."""
ACTORS: Final = {
    "participant": Actor(1, Role.PARTICIPANT, "Team"),
    "facilitator": Actor(2, Role.FACILITATOR, "Facilitator"),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    at_s: float
    step: TeamStep
    code: str
    message: str


@dataclass(slots=True)
class RunReport:
    case: str
    seed: int
    until_s: float
    columns: list[str]
    rows: list[list[float]] = field(default_factory=list)
    """[t, value of each watched name] every `every_s`."""
    refusals: list[Refusal] = field(default_factory=list)
    debrief: dict[str, Any] = field(default_factory=dict)


class CaseDriver:
    """One case, one world, a clock that runs as fast as the machine allows."""

    def __init__(
        self, case: Case, program: CaseProgram | None = None, seed: int = 1, hz: int = DRIVER_HZ
    ) -> None:
        self.scenario = CaseScenario(case, seed, program)
        self.world = CaseState()
        self.hz = hz
        self.tick = 0
        self.scenario.start(self.world, self.clock)
        self.world.drain()

    @property
    def clock(self) -> Clock:
        return Clock(self.tick, self.hz)

    @property
    def t(self) -> float:
        """Case time (seconds), which runs at the facilitator's time scale."""
        return self.scenario.run.t

    def act(self, role: str, action: str, raw: Mapping[str, Any]) -> None:
        """Apply one intent as a room would, or raise `IntentRefused`."""
        spec = self.scenario.actions().get(action)
        if spec is None:
            raise IntentRefused("unknown_action", f"this case has no action {action!r}")
        actor = ACTORS[role]
        check_role(action, spec, actor.role)
        args = parse_args(action, spec, raw)
        self.scenario.handle(self.world, actor, action, args, self.clock)

    def step_tick(self) -> None:
        self.tick += 1
        self.scenario.step(self.world, self.clock)

    def advance_to(self, t_s: float, each_second: Callable[[], None] | None = None) -> None:
        """Run ticks until case time reaches `t_s`; `each_second` after each whole second."""
        run = self.scenario.run
        while run.t < t_s - 1e-9:
            before = run.next_second
            self.step_tick()
            if each_second is not None and run.next_second != before:
                each_second()
            if self.tick % 64 == 0:
                self.world.drain()  # a room publishes its ops each tick; keep memory flat
        self.world.drain()

    def play(
        self,
        team: Sequence[TeamStep],
        until_s: float,
        watch: Sequence[str] = (),
        every_s: float = 60,
        each_second: Callable[[], None] | None = None,
    ) -> RunReport:
        """Play `team` to `until_s`, sampling the `watch`ed names every `every_s`."""
        report = RunReport(self.scenario.case.id, self.scenario.seed, until_s, ["t", *watch])
        values = self.scenario.run.env.values
        next_sample = [0.0]

        def tick_second() -> None:
            if self.t >= next_sample[0] - 1e-9:
                report.rows.append(
                    [round(self.t), *(float(values.get(n, math.nan)) for n in watch)]
                )
                next_sample[0] += every_s
            if each_second is not None:
                each_second()

        tick_second()
        for step in sorted(team, key=lambda s: s.at_s):
            self.advance_to(min(step.at_s, until_s), tick_second)
            if step.at_s > until_s:
                break
            try:
                self.act(step.by, step.do, step.args)
            except IntentRefused as refusal:
                report.refusals.append(Refusal(self.t, step, refusal.code, refusal.message))
            self.world.drain()
        self.advance_to(until_s, tick_second)
        report.debrief = self.scenario.debrief()
        return report


# -- calibration ------------------------------------------------------------------------


@dataclass(slots=True)
class Verdict:
    """One promise of a case's guide, kept or broken by a calibration run."""

    what: str
    kept: bool
    detail: str = ""


@dataclass(slots=True)
class CalibrationReport:
    name: str
    run: RunReport
    verdicts: list[Verdict]

    @property
    def kept(self) -> bool:
        return all(v.kept for v in self.verdicts)


class _PromiseWatch:
    """Evaluates a calibration's promises at every whole second of a run."""

    def __init__(self, driver: CaseDriver, program: CaseProgram, name: str, cal: Calibration):
        self.driver = driver
        self.items = [(p, program.promises[name, i]) for i, p in enumerate(cal.promises)]
        self.seen: list[list[tuple[int, bool]]] = [[] for _ in self.items]

    def __call__(self) -> None:
        second = round(self.driver.t)
        env = self.driver.scenario.run.env
        for i, (promise, expression) in enumerate(self.items):
            if self._relevant(promise, second):
                self.seen[i].append((second, holds(expression, env)))

    @staticmethod
    def _relevant(p: Promise, second: int) -> bool:
        if p.at_s is not None:
            return second == round(p.at_s)
        if p.by_s is not None:
            return second <= p.by_s
        start = p.from_s or 0.0
        return second >= start and (p.to_s is None or second <= p.to_s)

    def verdicts(self) -> list[Verdict]:
        out = []
        for (promise, _), seen in zip(self.items, self.seen, strict=True):
            out.append(_verdict(promise, seen))
        return out


def _verdict(promise: Promise, seen: list[tuple[int, bool]]) -> Verdict:
    label = promise.note or promise.holds
    if promise.at_s is not None:
        what = f"{label} (at {clock_text(promise.at_s)}: {promise.holds})"
        kept = bool(seen) and seen[-1][1]
        return Verdict(what, kept, "" if kept else "does not hold then" if seen else "not reached")
    if promise.by_s is not None:
        what = f"{label} (by {clock_text(promise.by_s)}: {promise.holds})"
        first = next((s for s, ok in seen if ok), None)
        return Verdict(what, first is not None, f"first at {clock_text(first)}" if first else "")
    end = "the end" if promise.to_s is None else clock_text(promise.to_s)
    what = f"{label} (from {clock_text(promise.from_s or 0)} to {end}: {promise.holds})"
    broken = next((s for s, ok in seen if not ok), None)
    if not seen:
        return Verdict(what, False, "not reached")
    return Verdict(what, broken is None, f"not at {clock_text(broken)}" if broken else "")


def calibrate(
    case: Case, program: CaseProgram, name: str, watch: Sequence[str] = (), every_s: float = 60
) -> CalibrationReport:
    """Run one of the case's calibrations and judge each promise its guide makes."""
    cal = case.calibration[name]
    driver = CaseDriver(case, program, seed=cal.seed)
    watcher = _PromiseWatch(driver, program, name, cal)
    until = cal.until_s or case.planned_s
    report = driver.play(cal.team, until, watch, every_s, watcher)
    verdicts = watcher.verdicts()
    debrief = report.debrief
    for refusal in report.refusals:
        step = f"{refusal.step.do} at {clock_text(refusal.at_s)}"
        verdicts.append(Verdict(f"the script's {step} is accepted", False, refusal.code))
    if cal.outcome is not None:
        good = debrief["outcome"]["good"]
        verdicts.append(
            Verdict(f"outcome {cal.outcome}", good is (cal.outcome == "good"), str(good))
        )
    score = debrief["score"]
    percent = score["percent"]
    if cal.score.min_percent is not None:
        verdicts.append(
            Verdict(
                f"score at least {cal.score.min_percent:g}%",
                percent >= cal.score.min_percent,
                f"{percent}%",
            )
        )
    if cal.score.max_percent is not None:
        verdicts.append(
            Verdict(
                f"score at most {cal.score.max_percent:g}%",
                percent <= cal.score.max_percent,
                f"{percent}%",
            )
        )
    if cal.score.passed is not None:
        verdicts.append(
            Verdict(
                "passes" if cal.score.passed else "does not pass",
                score["passed"] is cal.score.passed,
                str(score["passed"]),
            )
        )
    if cal.penalties is not None:
        got = sorted(p["id"] for p in score["penalties"])
        wanted = sorted(cal.penalties)
        verdicts.append(
            Verdict(f"penalties {', '.join(wanted) or 'none'}", got == wanted, ", ".join(got))
        )
    return CalibrationReport(name, report, verdicts)


def default_watch(case: Case) -> list[str]:
    """What `case run` shows unless told: MAP, HR, SpO2, then the state and measures."""
    return ["map", "hr", "spo2", *case.state, *case.derived, *case.measures]


def unknown_names(case: Case, wanted: Iterable[str]) -> list[str]:
    known = {"t", "o2", "weight", "hr", "sbp", "dbp", "map", "spo2", "rr", "temp", "etco2"}
    known |= set(case.state) | set(case.derived) | set(case.measures)
    return [n for n in wanted if n not in known]
