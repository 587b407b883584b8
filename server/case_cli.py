"""`grandrounds case validate | ls | run | check | guide`: case files from the shell.

`case run FILE --team SCRIPT` plays a case headless at full speed with a scripted team
and prints the trajectory of chosen variables and the score, so an author can
calibrate a case before a session; `case check FILE` runs every calibration the case
declares and says which promises hold; `case guide FILE` writes its facilitator guide.
`register` adds the subcommands to the main
CLI; `python -m server.case_cli ...` runs them on their own.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rooms.case import CaseError, load_case, load_compiled
from rooms.case.driver import (
    CalibrationReport,
    CaseDriver,
    RunReport,
    calibrate,
    default_watch,
    unknown_names,
)
from rooms.case.errors import Problem
from rooms.case.guide import facilitator_guide
from rooms.case.loader import parse_team
from rooms.case.model import Case, TeamStep
from rooms.case.names import clock_text, measure_text
from server.scenarios import CaseLibrary


def _problems(error: CaseError, what: str) -> int:
    print(error, file=sys.stderr)
    count = len(error.problems)
    print(f"{error.file}: {count} problem{'' if count == 1 else 's'}; {what}", file=sys.stderr)
    return 1


def _validate(args: argparse.Namespace) -> int:
    try:
        case = load_case(args.file)
    except CaseError as exc:
        return _problems(exc, "not a valid case")
    print(f"{args.file}: ok ({case.id}: {case.title})")
    return 0


def _ls(args: argparse.Namespace) -> int:
    library = CaseLibrary(args.cases_dir)
    library.refresh()
    for loaded in sorted(library.cases().values(), key=lambda c: c.case.id):
        case = loaded.case
        video = " [stereo video]" if case.media.stereo_video else ""
        where = "" if loaded.source == "shipped" else f"  ({loaded.file})"
        print(
            f"{case.id:22} {case.duration_min:3d} min  {case.specialty}: {case.title}{video}{where}"
        )
    for error in library.errors():
        print(f"not loaded: {error}", file=sys.stderr)
    return 0


# -- run --------------------------------------------------------------------------------


def _team(case: Case, team: str | None) -> tuple[list[TeamStep], str]:
    """The steps of a team script file, or of one of the case's calibrations by name."""
    if team is None:
        return [], "nobody"
    if team in case.calibration and not Path(team).exists():
        return list(case.calibration[team].team), f"calibration {team!r}"
    path = Path(team)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        names = ", ".join(case.calibration) or "none"
        problem = Problem((), f"cannot read file: {exc.strerror} (calibrations: {names})")
        raise CaseError(team, [problem]) from exc
    return parse_team(text, team), str(path)


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.2f}"


def _table(report: RunReport) -> list[str]:
    headers = ["time", *report.columns[1:]]
    rows = [[clock_text(r[0]), *(_number(v) for v in r[1:])] for r in report.rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return out


def _score_lines(debrief: dict[str, Any]) -> list[str]:
    score = debrief["score"]
    verdict = "passed" if score["passed"] else "not passed"
    out = [f"Score: {score['earned']}/{score['max']} ({score['percent']}%), {verdict}"]
    for item in score["critical"]:
        at = "" if item["at_s"] is None else clock_text(item["at_s"])
        out.append(
            f"  {item['status']:8} {at:>6}  {item['description']} ({item['points']}/{item['max']})"
        )
    for penalty in score["penalties"]:
        out.append(
            f"  {'penalty':8} {clock_text(penalty['at_s']):>6}  {penalty['description']}"
            f" ({penalty['points']})"
        )
    for mark in score["manual"]:
        given = "-" if mark["points"] is None else mark["points"]
        out.append(f"  {'manual':8} {'':>6}  {mark['description']} ({given}/{mark['max']})")
    return out


def _print_run(
    case: Case, report: RunReport, who: str, wall: float, calibration: CalibrationReport | None
) -> None:
    simulated_min = report.until_s / 60
    speed = simulated_min / wall if wall > 0 else math.inf
    print(
        f"{case.id} (seed {report.seed}), team: {who}: {clock_text(report.until_s)} of case time"
        f" in {wall:.2f} s ({speed:.0f} simulated minutes per second)"
    )
    print()
    print("\n".join(_table(report)))
    if report.refusals:
        print("\nRefused:")
        for r in report.refusals:
            print(f"  {clock_text(r.at_s)} {r.step.do} {r.step.args}: {r.code}: {r.message}")
    events = [e for e in report.debrief["timeline"] if e["kind"] == "event"]
    if events:
        print("\nEvents: " + ", ".join(f"{clock_text(e['t'])} {e['id']}" for e in events))
    print()
    print("\n".join(_score_lines(report.debrief)))
    outcome = report.debrief["outcome"]
    judged = {True: "good", False: "bad", None: "not judged"}[outcome["good"]]
    print(f"\nOutcome: {judged} - {outcome['text']}")
    for measure in outcome["measures"].values():
        shown = measure_text(measure["value"], measure["unit"])
        print(f"  {measure['name']}: {shown}".rstrip())
    if calibration is not None:
        _print_calibration(calibration)


def _print_calibration(report: CalibrationReport) -> None:
    kept = sum(v.kept for v in report.verdicts)
    print(f'\nCalibration "{report.name}": {kept} of {len(report.verdicts)} promises kept')
    for v in report.verdicts:
        print(
            f"  {'kept  ' if v.kept else 'BROKEN'}  {v.what}"
            + (f" [{v.detail}]" if v.detail else "")
        )


def _run(args: argparse.Namespace) -> int:
    try:
        case, program = load_compiled(args.file)
        steps, who = _team(case, args.team)
    except CaseError as exc:
        return _problems(exc, "cannot run")
    watch = args.show.split(",") if args.show else default_watch(case)
    unknown = unknown_names(case, watch)
    if unknown:
        print(f"--show: {', '.join(unknown)} not in this case", file=sys.stderr)
        return 2
    until = args.until * 60 if args.until is not None else case.planned_s
    started = time.perf_counter()
    calibration = None
    if args.team in case.calibration and args.seed is None and args.until is None:
        calibration = calibrate(case, program, args.team, watch, args.every)
        report = calibration.run
    else:
        driver = CaseDriver(case, program, seed=1 if args.seed is None else args.seed)
        report = driver.play(steps, until, watch, args.every)
    wall = time.perf_counter() - started
    if args.json:
        body = {
            "columns": report.columns,
            "rows": report.rows,
            "debrief": report.debrief,
            "refusals": [
                {"at_s": r.at_s, "do": r.step.do, "code": r.code, "message": r.message}
                for r in report.refusals
            ],
            "wall_s": wall,
        }
        if calibration is not None:
            body["calibration"] = [v.__dict__ for v in calibration.verdicts]
        print(json.dumps(body, indent=1))
    else:
        _print_run(case, report, who, wall, calibration)
    return 0 if calibration is None or calibration.kept else 1


def _check(args: argparse.Namespace) -> int:
    try:
        case, program = load_compiled(args.file)
    except CaseError as exc:
        return _problems(exc, "not a valid case")
    if not case.calibration:
        print(f"{case.id}: declares no calibration (see docs/cases.md, 'Calibration')")
        return 1
    failed = 0
    for name in case.calibration:
        report = calibrate(case, program, name)
        _print_calibration(report)
        failed += not report.kept
    total = len(case.calibration)
    print(f"\n{case.id}: {total - failed} of {total} calibrations hold")
    return 1 if failed else 0


def _guide(args: argparse.Namespace) -> int:
    try:
        case = load_case(args.file)
    except CaseError as exc:
        return _problems(exc, "not a valid case")
    text = facilitator_guide(case)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `case validate | ls | run | check | guide` to a parser's subcommands."""
    case = subparsers.add_parser("case", help="validate, list, run and calibrate case files")
    commands = case.add_subparsers(dest="case_command", required=True)
    validate = commands.add_parser("validate", help="check a case file; exit 1 if invalid")
    validate.add_argument("file", help="path to a case YAML/JSON file (or a shipped case id)")
    validate.set_defaults(func=_validate)
    ls = commands.add_parser("ls", help="list the shipped cases (and a folder's)")
    ls.add_argument("--cases-dir", type=Path, help="also list the cases in this folder")
    ls.set_defaults(func=_ls)
    run = commands.add_parser(
        "run", help="play a case headless with a scripted team; print trajectories and score"
    )
    run.add_argument("file", help="path to a case file (or a shipped case id)")
    run.add_argument(
        "--team",
        help="a team script (YAML list of timed actions), or the name of one of the case's "
        "calibrations (good, none, harmful...); default: a team that does nothing",
    )
    run.add_argument("--seed", type=int, help="noise seed (default: the calibration's, or 1)")
    run.add_argument("--until", type=float, help="minutes of case time (default: the plan)")
    run.add_argument(
        "--show", help="comma-separated names to trace (vitals, state, measures; e.g. map,hr)"
    )
    run.add_argument("--every", type=float, default=60, help="seconds between rows (60)")
    run.add_argument("--json", action="store_true", help="print the run as JSON")
    run.set_defaults(func=_run)
    check = commands.add_parser(
        "check", help="run every calibration of a case; exit 1 if a promise is broken"
    )
    check.add_argument("file", help="path to a case file (or a shipped case id)")
    check.set_defaults(func=_check)
    guide = commands.add_parser("guide", help="write a case's facilitator guide (Markdown)")
    guide.add_argument("file", help="path to a case file (or a shipped case id)")
    guide.add_argument("--out", type=Path, help="write it to this file (default: print)")
    guide.set_defaults(func=_guide)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grandrounds")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["case", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
