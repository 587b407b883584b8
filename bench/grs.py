"""GR-S and GR-L (WORKLOAD.md) against our server and the Colyseus anchor, in one run.

    python -m bench.grs                          # GR-S: 200 spectators, 2 rounds each
    python -m bench.grs --grl --spectators 20    # the GR-L room shape, 20 spectators
    python -m bench.grs --grl --light            # GR-L: 1,000 light spectators
    python -m bench.grs --grl --light --ramp     # GR-L ramp: spectators in steps of 250
    python -m bench.grs --short                  # smoke run: 3 s warm-up, 10 s measured
    options: --rounds N, --only grandrounds|colyseus, --out DIR, --anchor-src DIR

Each round starts a fresh server and drives it with its own load generator, ours and
the anchor's alternating (ours, theirs, ours, theirs, ...) so that both see the same
machine; then every figure is printed side by side with the ratio of the medians. The
JSON of every round is kept under --out (default bench/.results/).

The two load generators run the same workload the same way: the anchor's motion model
(bench/motion.py is its port), its timeline, windows, markers, CLOCK_MONOTONIC stamps
and analysis (bench/loadgen.py is `load.cjs` ported), the same process layout (a
coordinator with the participants and mid-run joiners, two spectator processes). Where
they differ, each does what a real client of its server does:
- Clients: theirs are `@colyseus/sdk` clients; ours are the reference Python client
  (participants, mid-run joiners) and, for the spectators, our own decoder (`Mirror`,
  checksums included) behind a lean socket loop (bench/spectator_pool.py), because a
  trio task per spectator would cost the load generator more than the server. Each
  spectator, and each participant, verifies one checksum in ten, in turn: all of a
  process's clients verifying each one on the same tick stalled it (75-100 ms a second
  for 100 spectators at GR-S, some 200 ms for 30 participants in a 200-object room,
  their frame clocks skipping 6 % of the poses), a stall no real client, verifying its
  own on its own CPU, causes its neighbours.
- Acks: our clients ack as the reference client and the web app do, every 10 ticks
  (participants) or every 5 s (spectators, which only watch); Colyseus clients send no
  acks (its protocol has none).
- Markers: head x = 1000 + seq m in theirs; 100 m + seq mm in ours (we refuse positions
  beyond 1 km and publish millimetres). Light spectators scan the raw frames of their
  own format for it. Both stamp a receipt after the client decoded the frame (the
  anchor's rule, the headline p50/p99), which includes each spectator process's queue
  of frames decoded one after another, longer with our Python decoder than with its
  JavaScript one; ours also stamp the frame's arrival (read from the socket, every ready
  socket read before any is decoded), printed as "p99 at arrival": the server's side of
  the latency without that queue. Our spectator processes freeze their joined
  spectators out of the cyclic collector's sight (a full collection stopped them for
  100-800 ms; V8 collects incrementally).
- Poses: one `pose` message carries a participant's carried object in ours; Colyseus
  sends it as a second message. Ours publish millimetres and skip sub-millimetre jitter;
  Colyseus sends float32 fields that changed.
- Join: ours holds its join token already (a join link carries it) and connects;
  Colyseus' `joinById` first makes an HTTP matchmaking request.
- The room: ours is the `demo` case (7 vitals, an event every 5 s, the objects); its
  events are 40-60 characters of text, the anchor's exactly 120 bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.compare import ramp_lines, round_line, table
from bench.loadgen import PRESETS, REPO_ROOT
from bench.room_microbench import measure
from bench.servers import ANCHOR_SOURCE, ensure_anchor, run_load, start_colyseus, start_ours

SERVERS = ("grandrounds", "colyseus")


def load_arguments(args: argparse.Namespace) -> list[str]:
    """The options both load generators take, spelled the same."""
    out = ["--workload", "GR-L" if args.grl else "GR-S"]
    if args.short:
        out.append("--short")
    if args.spectators is not None:
        out += ["--spectators", str(args.spectators)]
    if args.light:
        out.append("--light-spectators")
    if args.ramp:
        start = args.ramp_step
        out += ["--ramp", "--ramp-start", str(start), "--ramp-step", str(args.ramp_step)]
        out += ["--time-budget", str(args.time_budget)]
    return out


def time_limit(args: argparse.Namespace) -> float:
    if args.ramp:
        return float(args.time_budget) + 400
    return 600 if args.grl else 400


def run_round(name: str, index: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    run_dir = out / f"{name}-{index}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    objects = PRESETS["GR-L" if args.grl else "GR-S"].objects
    server = (
        start_ours(run_dir, objects)
        if name == "grandrounds"
        else start_colyseus(run_dir, ensure_anchor(args.anchor_src))
    )
    try:
        time.sleep(1)  # as run.sh: let the server settle before the load starts
        load = [*load_arguments(args), "--label", f"round {index}"]
        return run_load(server, run_dir, load, time_limit(args))
    finally:
        server.stop()


def describe(args: argparse.Namespace) -> str:
    preset = PRESETS["GR-L" if args.grl else "GR-S"]
    spectators = "in steps" if args.ramp else str(args.spectators or preset.spectators)
    windows = "3 s warm-up + 10 s" if args.short else "5 s warm-up + 60 s"
    return (
        f"{'GR-L' if args.grl else 'GR-S'}: {preset.participants} participants (hands moving: "
        f"0, 1; carrying objects: {preset.moving}), {preset.objects} objects, {spectators} "
        f"{'light' if args.light else 'full'} spectators, {windows} measured, "
        f"{args.rounds} round(s) per server, alternating; load average at start "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.grs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--grl", action="store_true", help="the GR-L room shape")
    parser.add_argument("--spectators", type=int, help="default: the workload's (200 / 1000)")
    parser.add_argument("--light", action="store_true", help="light spectators (anchor 4.6)")
    parser.add_argument("--ramp", action="store_true", help="GR-L ramp (with --grl)")
    parser.add_argument("--ramp-step", type=int, default=250)
    parser.add_argument("--time-budget", type=float, default=900.0, help="per ramp, seconds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--short", action="store_true", help="3 s warm-up, 10 s measured")
    parser.add_argument("--only", choices=SERVERS, help="run one server only")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / ".results")
    parser.add_argument("--anchor-src", type=Path, default=ANCHOR_SOURCE)
    parser.add_argument("--no-micro", action="store_true", help="skip the room micro-benchmark")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop our processes on the way
    if args.ramp and not args.grl:
        parser.error("--ramp is the GR-L ramp: add --grl")

    print(describe(args), flush=True)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
    servers = [args.only] if args.only else list(SERVERS)
    for index in range(1, args.rounds + 1):
        for name in servers:
            result = run_round(name, index, args, args.out)
            results[name].append(result)
            if args.ramp:
                print("\n".join(ramp_lines(f"round {index} {name}", result)), flush=True)
            else:
                print(round_line(name, index, result), flush=True)
    (args.out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")

    if not args.ramp:
        ok = {name: [r for r in rs if "error" not in r] for name, rs in results.items()}
        print()
        print("\n".join(table(ok["grandrounds"], ok["colyseus"])))
    if not args.no_micro:
        lines, recording = measure()
        print()
        print("\n".join(lines))
        ours = [
            r["summary"]["server_cpu_s_per_s"]
            for r in results["grandrounds"]
            if "summary" in r and r["summary"]["server_cpu_s_per_s"]
        ]
        if ours:
            share = recording / (sum(ours) / len(ours)) * 100
            print(f"recording share of our server CPU: {share:.1f}%")
    print(f"\nresults: {args.out}")
    return 0 if all("error" not in r for rs in results.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
