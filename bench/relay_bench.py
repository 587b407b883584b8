"""GR-L through spectator relays: one process, then one owner and its relays.

    python3 bench/relay_bench.py [--relays 2] [--ramp-step 250] [--ramp-max 2000] [--short]

Workload GR-L (WORKLOAD.md: one room, 30 participants, 200 objects of which 10 move,
spectators added in steps until pose-to-spectator p99 passes 150 ms), driven by the
bench's load generator (bench/loadgen.py), in two layouts on this machine:

1. one process: `grandrounds serve` holds the room and serves every spectator;
2. one owner and relays: a redis-server, the owner (`grandrounds serve --redis`) with
   the participants, and `--relays` relays (`grandrounds relay`) serving the
   spectators, each spectator process on one relay.

For each layout and step it prints the pooled pose-to-spectator p99, the owner's CPU
seconds per second (flat in the number of relay spectators: the owner appends one feed
entry a tick whoever watches), the relays' CPU (in all, and per spectator), and the
bytes a spectator receives a second; then the most spectators served with p99 under
the limit. Failover time (kill -9 of an owner to the first state frame from its
successor) is `bench/failover_bench.py`; `--failover-runs N` runs it here too.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio

from bench.failover_bench import main as failover
from bench.servers import Server, run_load, start_ours, start_relay
from tests.cluster.valkey_process import valkey_process

OBJECTS = 200


def load_args(args: argparse.Namespace) -> list[str]:
    command = ["--workload", "GR-L", "--ramp", "--light-spectators"]
    command += ["--ramp-step", str(args.ramp_step), "--ramp-max", str(args.ramp_max)]
    command += ["--spectator-seats", "5000", "--spectator-procs", str(args.spectator_procs)]
    if args.short:
        command.append("--short")
    return command


def one_process(run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = start_ours(run_dir, OBJECTS)
    try:
        return run_load(server, run_dir, load_args(args), args.timeout)
    finally:
        server.stop()


def owner_and_relays(run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    with valkey_process(run_dir / "valkey") as valkey:
        owner = start_ours(run_dir, OBJECTS, redis_url=valkey.url)
        relays: list[Server] = []
        try:
            for i in range(args.relays):
                relays.append(start_relay(run_dir, valkey.url, f"relay-{i + 1}"))
            extra = []
            for relay in relays:
                extra += ["--spectator-server", relay.url, "--measure", f"{relay.name}={relay.pid}"]
            return run_load(owner, run_dir, load_args(args) + extra, args.timeout)
        finally:
            for relay in relays:
                relay.stop()
            owner.stop()


def _ms(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def report(title: str, result: dict[str, Any]) -> list[str]:
    lines = [title]
    if "error" in result:
        return [*lines, f"  failed: {result['error']}"]
    lines.append(
        "  spectators   p99 ms   owner CPU s/s   relay CPU s/s   relay CPU ms/s per spectator"
        "   bytes/s per spectator"
    )
    for step in result["steps"]:
        relays = step.get("measured_cpu_s_per_s") or {}
        relay_cpu = sum(v for v in relays.values() if v is not None) if relays else None
        spectators = step["spectators"]
        per = (
            f"{1000 * relay_cpu / spectators:.2f}" if relay_cpu is not None and spectators else "-"
        )
        lines.append(
            f"  {spectators:>10}   {_ms(step['latency_p99_ms']):>6}   "
            f"{step['server_cpu_s_per_s']:>13}   "
            f"{'-' if relay_cpu is None else f'{relay_cpu:.3f}':>13}   {per:>28}   "
            f"{_ms(step['spectator_bytes_per_s']):>21}"
            + ("" if step["pass"] else "   (over the limit)")
        )
    lines.append(
        f"  spectators served with p99 < {result['p99_limit_ms']:g} ms: "
        f"{result['max_spectators_p99_under_limit']} ({result['stop_reason']})"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--relays", type=int, default=2)
    parser.add_argument("--ramp-step", type=int, default=250)
    parser.add_argument("--ramp-max", type=int, default=2000)
    parser.add_argument("--spectator-procs", type=int, default=2)
    parser.add_argument("--short", action="store_true", help="shorter windows (a quick look)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per layout, seconds")
    parser.add_argument("--failover-runs", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write both layouts' results (JSON) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        root = Path(tmp)
        (root / "one").mkdir()
        (root / "relays").mkdir()
        single = one_process(root / "one", args)
        relayed = owner_and_relays(root / "relays", args)
    if args.out is not None:
        args.out.write_text(json.dumps({"one_process": single, "relays": relayed}, indent=2))
    print(
        f"GR-L: 30 participants, {OBJECTS} objects (10 moving), spectators added "
        f"{args.ramp_step} at a time (light: one frame in 30 decoded), on this machine"
    )
    for line in report("layout 1: one process", single):
        print(line)
    for line in report(f"layout 2: one owner and {args.relays} relays", relayed):
        print(line)
    if args.failover_runs:
        trio.run(failover, args.failover_runs)
    else:
        print("failover: python3 bench/failover_bench.py (kill -9 of the owner to the first frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
