"""`grandrounds case validate FILE` and `grandrounds case ls`: case files from the shell.

`register` adds the subcommands to the main CLI; `python -m server.case_cli ...` runs
them on their own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rooms.case import CaseError, load_case, shipped_cases


def _validate(args: argparse.Namespace) -> int:
    try:
        case = load_case(args.file)
    except CaseError as exc:
        print(exc, file=sys.stderr)
        count = len(exc.problems)
        plural = "" if count == 1 else "s"
        print(f"{args.file}: {count} problem{plural}; not a valid case", file=sys.stderr)
        return 1
    print(f"{args.file}: ok ({case.id}: {case.title})")
    return 0


def _ls(args: argparse.Namespace) -> int:
    for case in shipped_cases():
        video = " [stereo video]" if case.media.stereo_video else ""
        print(f"{case.id:22} {case.duration_min:3d} min  {case.specialty}: {case.title}{video}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `case validate FILE` and `case ls` to a parser's subcommands."""
    case = subparsers.add_parser("case", help="validate and list case files")
    commands = case.add_subparsers(dest="case_command", required=True)
    validate = commands.add_parser("validate", help="check a case file; exit 1 if invalid")
    validate.add_argument("file", help="path to a case YAML/JSON file (or a shipped case id)")
    validate.set_defaults(func=_validate)
    ls = commands.add_parser("ls", help="list the shipped cases")
    ls.set_defaults(func=_ls)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grandrounds")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["case", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
