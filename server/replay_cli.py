"""`grandrounds replay ls | info | verify | export | repair | annotate`.

Exit status: 0 on success (for `verify`: the session is intact); 1 when the session
is damaged, not intact, or the operation failed; 2 for bad usage or an unknown
session. Errors print `error: <code>: <sentence>` on stderr.
Also runnable as `python -m server.replay_cli <command> ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from replay import layout
from replay.annotations import Annotations
from replay.authenticity import check
from replay.debrief import render
from replay.errors import ReplayError
from replay.export_jsonl import write_jsonl
from replay.reader import Session
from replay.repair import repair
from replay.resim import demo_scenarios, room_factory
from replay.signing import derive_key
from replay.verify import verify
from replay.xapi import post, statements, validate
from rooms.scenario import Scenario
from server.config import Settings

USAGE_CODES = frozenset(
    {"unknown-session", "bad-session-id", "bad-range", "bad-annotation", "unknown-annotation"}
)


def _scenario(name: str, seed: int) -> Scenario:
    """The server's cases by id, else the scenarios replay knows (the demo room)."""
    from server.scenarios import make_scenario

    try:
        return make_scenario(name, seed)
    except LookupError:
        return demo_scenarios(name, seed)


def _open(args: argparse.Namespace) -> Session:
    return Session.open(args.data_dir, args.session)


def signing_key(data_dir: Path) -> bytes | None:
    """The server's recording key: from GRANDROUNDS_SECRET, else the data folder's
    secrets.json (where the server keeps the secret it made); None if neither is there."""
    secret = os.environ.get("GRANDROUNDS_SECRET", "")
    if not secret:
        try:
            secret = str(json.loads((data_dir / "secrets.json").read_text()).get("secret", ""))
        except (OSError, ValueError, AttributeError):
            secret = ""
    return derive_key(secret) if secret else None


def _ls(args: argparse.Namespace) -> int:
    rows = []
    for sid in layout.list_sessions(args.data_dir):
        m = layout.read_json(layout.sessions_root(args.data_dir) / sid / "manifest.json")
        hz = m.get("tick_hz") or 1
        end = m.get("end_tick") or (m.get("repair") or {}).get("last_tick")
        rows.append(
            [
                sid,
                m.get("status", "?"),
                (m.get("case") or {}).get("name", ""),
                m.get("started_at", ""),
                "-" if end is None else f"{end / hz:.0f}s",
                str(m.get("records", 0)),
            ]
        )
    if args.json:
        keys = ["session", "status", "case", "started_at", "duration", "records"]
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=1))
    else:
        for r in rows:
            print("  ".join(r))
    return 0


def _info(args: argparse.Namespace) -> int:
    """The manifest and layout, after checking what it lists: every frame and sealed
    segment, and the signature when the server's key is at hand. Exit 1 on a problem."""
    session = _open(args)
    first, last = session.time_range()
    problems = [p.describe(session.tick_hz) for p in session.problems]
    try:
        for _ in session.frames(kinds=frozenset()):
            pass  # every frame's checksum and every sealed segment's zstd checksum
    except ReplayError as exc:
        if exc.message not in problems:
            problems.append(exc.message)
    key = signing_key(args.data_dir)
    signature: dict[str, Any] = {"checked": key is not None}
    if key is not None:
        found = check(session.path, key)
        signature.update(problems=found.problems, notes=found.notes)
        problems.extend(found.problems)
    info: dict[str, Any] = {
        **session.manifest.to_json(),
        "time_range_s": [first, last],
        "segments": len(layout.segment_files(session.path)),
        "keyframes": len(session.keyframe_ticks()),
        "annotations": len(Annotations(session.path).all()),
        "signature": signature,
        "problems": problems,
    }
    print(json.dumps(info, indent=1, default=str))
    return 1 if problems else 0


def _verify(args: argparse.Namespace) -> int:
    report = verify(
        _open(args),
        resim=not args.no_resim,
        make_room=room_factory(_scenario),
        key=signing_key(args.data_dir),
    )
    print("\n".join(report.lines()))
    return 0 if report.intact else 1


def _repair(args: argparse.Namespace) -> int:
    result = repair(layout.session_dir(args.data_dir, args.session), signing_key(args.data_dir))
    print(result.describe())
    return 0


def _export(args: argparse.Namespace) -> int:
    session = _open(args)
    out_path: Path | None = args.output
    if args.format == "jsonl":
        if out_path is None:
            n = write_jsonl(session, sys.stdout)
        else:
            with open(out_path, "w", encoding="utf-8") as f:
                n = write_jsonl(session, f)
        print(f"{n} records", file=sys.stderr)
        return 0
    if args.format == "html":
        html = render(session, Annotations(session.path).all())
        _emit(html, out_path)
        return 0
    base = args.base_url or Settings().base_url()
    batch = statements(session, base)
    invalid = [(i, e) for i, st in enumerate(batch) for e in validate(st)]
    if invalid:
        raise ReplayError("invalid-statement", f"statement {invalid[0][0]}: {invalid[0][1]}")
    if args.lrs:
        auth = tuple(args.lrs_auth.split(":", 1)) if args.lrs_auth else None
        if auth is not None and len(auth) != 2:
            raise ReplayError("bad-usage", "--lrs-auth takes USER:PASSWORD")
        stored = post(args.lrs, batch, auth)
        print(f"posted {len(batch)} statements ({len(stored)} ids returned)", file=sys.stderr)
    if out_path is not None or not args.lrs:
        _emit(json.dumps(batch, indent=1), out_path)
    return 0


def _emit(text: str, path: Path | None) -> None:
    if path is None:
        sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))
    else:
        path.write_text(text, encoding="utf-8")


def _annotate(args: argparse.Namespace) -> int:
    notes = Annotations(layout.session_dir(args.data_dir, args.session))
    if args.action == "bookmark":
        note = notes.bookmark(args.at, args.text, args.author)
        print(note.id)
    elif args.action == "comment":
        note = notes.comment(args.start, args.end, args.text, args.author)
        print(note.id)
    elif args.action == "delete":
        notes.delete(args.id)
    else:
        for n in notes.all():
            until = "" if n.end_s is None else f"-{n.end_s:g}s"
            print(f"{n.id}  {n.kind}  {n.start_s:g}s{until}  {n.author}  {n.text}")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        result: int = args.replay_func(args)
    except ReplayError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2 if exc.code in USAGE_CODES else 1
    return result


def _add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def command(name: str, func: Any, help_text: str, session: bool = True) -> Any:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--data-dir",
            type=Path,
            default=Path("data"),
            help="the server's data directory (default ./data)",
        )
        if session:
            p.add_argument("session", help="session id, as `replay ls` prints it")
        p.set_defaults(func=_run, replay_func=func)
        return p

    ls = command("ls", _ls, "list recorded sessions", session=False)
    ls.add_argument("--json", action="store_true", help="print JSON")
    command("info", _info, "print a session's manifest and layout")
    v = command("verify", _verify, "check checksums and re-simulate; exit 0 only if intact")
    v.add_argument("--no-resim", action="store_true", help="check checksums only")
    command("repair", _repair, "cut a torn tail after a crash and seal the session")
    e = command("export", _export, "export as JSON lines, xAPI statements or an HTML debrief")
    e.add_argument("--format", choices=("jsonl", "xapi", "html"), default="jsonl")
    e.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    e.add_argument(
        "--base-url",
        help="public URL of the server, for xAPI IRIs and homePage (default: the server's "
        "own, from GRANDROUNDS_PUBLIC_URL or host and port, as its HTTP export uses)",
    )
    e.add_argument("--lrs", help="xAPI endpoint of a learning record store to POST to")
    e.add_argument("--lrs-auth", help="USER:PASSWORD for the LRS (basic auth)")
    a = command("annotate", _annotate, "bookmarks and comments beside the record")
    actions = a.add_subparsers(dest="action")
    actions.add_parser("list", help="list annotations (the default)")
    b = actions.add_parser("bookmark", help="mark a moment")
    b.add_argument("at", type=float, help="seconds since the start")
    b.add_argument("text")
    b.add_argument("--author", default="")
    c = actions.add_parser("comment", help="comment on a time range")
    c.add_argument("start", type=float)
    c.add_argument("end", type=float)
    c.add_argument("text")
    c.add_argument("--author", default="")
    d = actions.add_parser("delete", help="remove an annotation (the overlay keeps history)")
    d.add_argument("id")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `replay <command>` to the `grandrounds` command line."""
    replay = subparsers.add_parser("replay", help="inspect, verify, export and repair sessions")
    _add_commands(replay.add_subparsers(dest="replay_command", required=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grandrounds replay", description=__doc__)
    _add_commands(parser.add_subparsers(dest="replay_command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
