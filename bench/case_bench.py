"""Case engine benchmark: what the physiology costs a room, and how fast `case run` is.

    python3 bench/case_bench.py [--case ID] [--minutes 10] [--repeat 3]

1. The physiology step's cost per room tick (30 Hz) for the most complex shipped case
   (the one with the most compiled expressions), with its good team acting: the whole
   `scenario.step` (4 Hz integration, once-a-second monitor, triggers, measures and
   score), then the 0.25 s integration alone.
2. `case run` speed: simulated minutes per wall-clock second for each calibration of
   every shipped case (the headless driver at full speed).
Timings are the best of `--repeat` runs (this machine is shared); tests never assert them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from netcode.state import CaseState
from rooms.case import Case, CaseProgram, CaseScenario, compile_case
from rooms.case.driver import ACTORS, CaseDriver
from rooms.case.loader import shipped_case_files
from rooms.case.physiology import STEP_S
from rooms.scenario import Clock

TICK_HZ = 30


def load_all() -> dict[str, tuple[Case, CaseProgram]]:
    out = {}
    for path in shipped_case_files():
        case, program = compile_case(path.read_text(encoding="utf-8"), path.name)
        out[case.id] = (case, program)
    return out


def complexity(case: Case, program: CaseProgram) -> int:
    """Expressions the physiology evaluates per step, plus those checked per second."""
    per_step = len(program.rates) + len(program.derived)
    per_step += sum(1 for e in program.derive.values() if e is not None)
    per_second = len(program.triggers) + len(program.measures) + len(program.rubric_when)
    return 4 * per_step + per_second


def best(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def tick_cost(case: Case, program: CaseProgram, minutes: float) -> tuple[float, float]:
    """(µs per room tick for `scenario.step`, share of a 30 Hz tick's budget)."""
    scenario = CaseScenario(case, 1, program)
    world = CaseState()
    scenario.start(world, Clock(0, TICK_HZ))
    world.drain()
    steps = sorted(case.calibration["good"].team, key=lambda s: s.at_s) if case.calibration else []
    ticks = round(minutes * 60 * TICK_HZ)
    spent = 0.0
    for tick in range(1, ticks + 1):
        clock = Clock(tick, TICK_HZ)
        while steps and steps[0].at_s <= scenario.run.t:
            step = steps.pop(0)
            args = scenario.actions()[step.do].args.model_validate(step.args)
            scenario.handle(world, ACTORS[step.by], step.do, args, clock)
        started = time.perf_counter()
        scenario.step(world, clock)
        spent += time.perf_counter() - started
        world.drain()
    per_tick = spent / ticks * 1e6
    return per_tick, per_tick / (1e6 / TICK_HZ)


def integration_cost(case: Case, program: CaseProgram, steps: int = 20_000) -> float:
    """µs per 0.25 s physiology integration step alone."""
    scenario = CaseScenario(case, 1, program)
    scenario.start(CaseState(), Clock(0, TICK_HZ))
    physio = scenario.run.physio
    started = time.perf_counter()
    for _ in range(steps):
        physio.step(STEP_S)
    return (time.perf_counter() - started) / steps * 1e6


def run_speed(case: Case, program: CaseProgram, team: str) -> float:
    """Simulated minutes per wall second for one calibration's team."""
    calibration = case.calibration[team]
    until = calibration.until_s or case.planned_s
    driver = CaseDriver(case, program, seed=calibration.seed)
    started = time.perf_counter()
    driver.play(calibration.team, until)
    return until / 60 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--case", help="the case whose tick cost to measure (default: most complex)"
    )
    parser.add_argument("--minutes", type=float, default=10, help="simulated minutes per tick run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = load_all()
    ranked = sorted(cases, key=lambda c: complexity(*cases[c]), reverse=True)
    chosen = args.case or ranked[0]
    case, program = cases[chosen]
    print(
        f"Most complex shipped case: {ranked[0]} ({complexity(*cases[ranked[0]])} expression "
        f"evaluations per simulated second); benchmarking {chosen}"
    )
    costs = [tick_cost(case, program, args.minutes) for _ in range(args.repeat)]
    per_tick, share = min(costs)
    print(
        f"  scenario.step per room tick ({TICK_HZ} Hz, good team, {args.minutes:g} simulated "
        f"min): {per_tick:.1f} us ({share:.2%} of a tick's {1000 / TICK_HZ:.1f} ms)"
    )
    step = best(args.repeat, lambda: integration_cost(case, program))
    print(
        f"  physiology integration step (0.25 s of case time): {step:.1f} us "
        f"({step * 4 / TICK_HZ:.1f} us per tick at {TICK_HZ} Hz)"
    )
    print(f"case run speed (simulated minutes per wall second, best of {args.repeat}):")
    speeds = []
    for case_id in sorted(cases):
        kase, prog = cases[case_id]
        row = []
        for team in kase.calibration:
            speed = max(run_speed(kase, prog, team) for _ in range(args.repeat))
            speeds.append(speed)
            row.append(f"{team} {speed:.0f}")
        print(f"  {case_id:20} " + ", ".join(row))
    print(f"  median {statistics.median(speeds):.0f}, slowest {min(speeds):.0f}")


if __name__ == "__main__":
    if not (Path.cwd() / "rooms").is_dir():
        raise SystemExit("run from the repository root: python3 bench/case_bench.py")
    main()
