"""The `grandrounds` command: serve, relay, bots, case and replay tools."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from server.app import Server
from server.cluster import ClusterStartupError
from server.config import Settings
from server.relay import Relay, RelaySettings
from server.scenarios import DEFAULT_CASE


def _serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    for name in (
        "host",
        "port",
        "data_dir",
        "cases_dir",
        "tick_hz",
        "redis_url",
        "node_id",
        "public_url",
    ):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    settings = Settings(**overrides)
    ready = False

    def announce(server: Server) -> None:
        nonlocal ready
        ready = True
        _settle_heap()
        print(f"Grand Rounds is serving on {server.settings.base_url()}", flush=True)
        if args.demo:
            print("Demo room 'demo' is running. Join links:", flush=True)
            for role, entry in server.join_bundle("demo").items():
                print(f"  {role:<12} {entry['link']}", flush=True)
            idle = server.settings.idle_timeout_seconds
            print(
                f"The demo room ends after {idle / 60:g} minutes with nobody in it "
                "(GRANDROUNDS_IDLE_TIMEOUT_SECONDS); restart the server for new links.",
                flush=True,
            )
        print(f"Admin key: {server.settings.admin_key_origin()}", flush=True)

    server = Server(settings)
    return _run_until_done(
        lambda: server.run(demo=args.demo, demo_case=args.demo_case, on_ready=announce),
        settings,
        lambda: ready,
    )


def _settle_heap() -> None:
    """Move what start-up made (modules, cases, settings) out of the collector's sight.

    It lives as long as the process, yet every full collection walked it again: a pause
    of 50-80 ms in the middle of a room's tick, the longest frame gap a live room had.
    """
    gc.collect()
    gc.freeze()


def _run_until_done(
    run: Callable[[], Awaitable[None]], settings: Settings, ready: Callable[[], bool]
) -> int:
    """Run a node or a relay; a port it cannot take or a cluster it cannot join is one
    line and exit 1 (an error after it started serving is a crash, with its traceback)."""
    failed: OSError | None = None
    refused: ClusterStartupError | None = None
    try:
        trio.run(run)
    except* OSError as group:
        if ready():
            raise
        failed = _first(group)
    except* ClusterStartupError as group:
        refused = group.exceptions[0]  # type: ignore[assignment]
    if refused is not None:
        print(f"grandrounds: cannot join the cluster: {refused}", file=sys.stderr)
        return 1
    if failed is not None:
        reason = failed.strerror or str(failed)
        print(
            f"grandrounds: cannot serve on {settings.host}:{settings.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    return 0


def _relay(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    for name in (
        "host",
        "port",
        "data_dir",
        "redis_url",
        "node_id",
        "public_url",
        "broadcast_delay_seconds",
    ):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    settings = RelaySettings(**overrides)
    if not settings.redis_url:
        print("grandrounds: a relay needs --redis URL (or GRANDROUNDS_REDIS_URL)", file=sys.stderr)
        return 2
    ready = False

    def announce(relay: Relay) -> None:
        nonlocal ready
        ready = True
        _settle_heap()
        delay = relay.settings.broadcast_delay_seconds
        print(
            f"Grand Rounds relay {relay.node_id} is serving spectators on "
            f"{relay.settings.base_url()}" + (f" ({delay:g} s behind)" if delay else ""),
            flush=True,
        )

    relay = Relay(settings)
    return _run_until_done(lambda: relay.run(on_ready=announce), settings, lambda: ready)


def _first(group: BaseExceptionGroup[OSError]) -> OSError:
    """The first error inside a (possibly nested) exception group."""
    inner: BaseException = group
    while isinstance(inner, BaseExceptionGroup):
        inner = inner.exceptions[0]
    assert isinstance(inner, OSError)
    return inner


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grandrounds", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port for HTTP and WebSocket (default 8765)")
    serve.add_argument("--data-dir", type=Path, help="where secrets and sessions are kept")
    serve.add_argument(
        "--cases-dir",
        type=Path,
        help="a folder of your own case files, beside the shipped ones (default DATA_DIR/cases)",
    )
    serve.add_argument("--tick-hz", type=int, help="room tick rate (default 30)")
    serve.add_argument(
        "--redis",
        dest="redis_url",
        help="Valkey/Redis URL: run as a node of a cluster (docs/operations.md)",
    )
    serve.add_argument("--node-id", help="this node's name in the cluster (default host:port)")
    serve.add_argument(
        "--public-url", help="base URL other nodes and clients reach this one at (join links)"
    )
    serve.add_argument("--demo", action="store_true", help="create a demo room and print links")
    serve.add_argument(
        "--demo-case",
        default=DEFAULT_CASE,
        help=f"case the demo room runs (default {DEFAULT_CASE}; 'demo' is the minimal GR-S "
        "room, 'demo:200' the same with 200 shared objects)",
    )
    serve.set_defaults(func=_serve)

    relay = commands.add_parser(
        "relay", help="serve rooms' spectators from a cluster's feeds (docs/operations.md)"
    )
    relay.add_argument(
        "--redis", dest="redis_url", help="the cluster's Valkey/Redis URL (required)"
    )
    relay.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    relay.add_argument("--port", type=int, help="port for HTTP and WebSocket (default 8770)")
    relay.add_argument("--data-dir", type=Path, help="where the relay keeps its stream positions")
    relay.add_argument(
        "--broadcast-delay",
        dest="broadcast_delay_seconds",
        type=float,
        help="serve the room this many seconds late (default 0)",
    )
    relay.add_argument("--node-id", help="this relay's name in the cluster (default host:port)")
    relay.add_argument("--public-url", help="base URL spectators reach this relay at")
    relay.set_defaults(func=_relay)

    for module in ("clients.python.bots", "server.case_cli", "server.replay_cli"):
        try:
            importlib.import_module(module).register(commands)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
