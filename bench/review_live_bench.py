"""Review while live: a live room's frame gaps with and without a reviewer scrubbing.

    python bench/review_live_bench.py [--minutes 60] [--seconds 20] [--data DIR]

A real server process runs the GR-S room `demo` (8 participants moving at 30 Hz in
this process, light clients). A spectator in a process of its own timestamps every
state frame. Three phases of `--seconds` each: quiet, a reviewer scrubbing a
`--minutes`-long recorded GR-S session (seek to a random moment, wait for the reply
and the snapshot, again, as a reviewer dragging the slider), quiet again. Printed: the
spectator's frame gaps (p50/p99/max, ms) and the server process's CPU per phase, the
reviewer's seeks and the CPU of the review process that served them.

The session is recorded once with `replay.synthetic` (the GR-S load) into `--data`
and reused by later runs. DESIGN.md's figure: a live room's frame gaps do not grow
while reviewers seek (p99 unchanged within noise, max under 50 ms).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clients.python import RoomClient, connect, still_pose
from netcode.views import Role
from replay.synthetic import run_session
from replay.writer import SessionWriter
from rooms.records import Record
from server import tokens

SESSION = "review-bench-hour"
HZ = 30


class _Flushing:
    def __init__(self, writer: SessionWriter) -> None:
        self.writer = writer

    def record(self, record: Record) -> None:
        self.writer.write(record)
        if record.kind == "tick" and record.tick % HZ == 0:
            self.writer.flush()


def ensure_session(data: Path, minutes: float) -> float:
    """Record the long session unless it is there; returns its length in seconds."""
    manifest = data / "sessions" / SESSION / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        if m.get("status") == "sealed":
            return float(m["end_tick"]) / HZ
    started = time.monotonic()
    writer = SessionWriter(data, SESSION, fsync=False)
    run_session(_Flushing(writer), minutes * 60, tick_hz=HZ)
    writer.close()
    print(
        f"recorded a {minutes:g}-minute GR-S session in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    return minutes * 60


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- the spectator that measures (its own process) ----------------------------------------
async def measure(ws: str, token: str, seconds: float, out: Path) -> None:
    """Timestamp every state frame. The gauge collects no garbage while it measures (a
    bounded run): a full collection here took 100 ms, a gap the server never made."""
    gc.disable()
    arrivals: list[float] = []
    async with connect(ws, token, on_frame=lambda _f, _t: arrivals.append(time.time())) as spec:
        await spec.wait_for(lambda m: m.tick is not None)
        print("ready", flush=True)
        await trio.sleep(seconds)
    out.write_text(json.dumps(arrivals))


# -- the load: participants and the reviewer -------------------------------------------------
async def participant(ws: str, token: str, index: int, stop: trio.Event) -> None:
    async with connect(ws, token, light=True) as client:
        step = 0
        while not stop.is_set():
            step += 1
            x = (step * 3 % 1000) / 1000 if index < 2 else 0.0001 * (step % 3)
            await client.send_pose(
                head=still_pose(index + x, 1.6, 0.0),
                left=still_pose(x, 1.1, 0.3),
                right=still_pose(index + 0.2, 1.1, 0.3),
            )
            await trio.sleep(1 / HZ)


async def scrub(
    reviewer: RoomClient, length_s: float, until: float, rng: random.Random
) -> list[float]:
    """Seek to random moments until `until` (wall clock); the latency of each seek, ms."""
    latencies = []
    while time.time() < until:
        target = rng.uniform(0, length_s)
        started = time.perf_counter()
        snapshots = reviewer.snapshots_received
        reply = await reviewer.intent("seek", seconds=target)
        assert reply.ok, reply
        with trio.fail_after(10):
            while reviewer.snapshots_received == snapshots:
                await reviewer.next_frame()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def review_process(server: psutil.Process) -> psutil.Process:
    (found,) = [p for p in server.children() if "server.review_process" in " ".join(p.cmdline())]
    return found


def gaps(arrivals: list[float], start: float, end: float) -> list[float]:
    inside = [t for t in arrivals if start <= t <= end]
    return [(b - a) * 1000 for a, b in itertools.pairwise(inside)]


async def run(args: argparse.Namespace, data: Path, length_s: float) -> dict[str, Any]:
    server = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--demo",
            "--demo-case",
            "demo",
            "--port",
            "0",
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own scheduling group, as a server runs (see below)
    )
    try:
        assert server.stdout is not None
        text = ""
        with trio.fail_after(30):
            while "Admin key" not in text:
                text += (await server.stdout.receive_some(4096)).decode()
        base = text.split("serving on ")[1].split()[0]
        ws = base.replace("http://", "ws://") + "/ws"
        secret = json.loads((data / "secrets.json").read_text())["secret"]
        join = [tokens.issue(secret, "demo", Role.PARTICIPANT, f"P{i}", 3600) for i in range(8)]
        spectator = tokens.issue(secret, "demo", Role.SPECTATOR, "Gauge", 3600)
        review = tokens.issue_review(secret, SESSION, Role.FACILITATOR, "Scrubber", 3600)
        arrivals_file = data / "arrivals.json"
        total = 3 * args.seconds + 6
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for i, token in enumerate(join):
                nursery.start_soon(participant, ws, token, i, stop)
            gauge = await trio.lowlevel.open_process(
                [
                    sys.executable,
                    __file__,
                    "--measure",
                    ws,
                    spectator,
                    str(total),
                    str(arrivals_file),
                ],
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
            assert gauge.stdout is not None
            with trio.fail_after(60):
                assert b"ready" in await gauge.stdout.receive_some(64)
            await trio.sleep(2)
            owner = psutil.Process(server.pid)
            t0 = time.time()
            cpu = {"no reviewer": -cpu_seconds(owner)}
            quiet = (t0, t0 + args.seconds)
            await trio.sleep(args.seconds)
            cpu["no reviewer"] += cpu_seconds(owner)
            async with connect(ws, review) as reviewer:
                await reviewer.wait_for(lambda m: m.tick is not None)
                worker = review_process(owner)
                worker_cpu = -cpu_seconds(worker)
                cpu["reviewer scrubbing"] = -cpu_seconds(owner)
                busy_start = time.time()
                latencies = await scrub(
                    reviewer, length_s, busy_start + args.seconds, random.Random(1)
                )
                busy = (busy_start, time.time())
                cpu["reviewer scrubbing"] += cpu_seconds(owner)
                worker_cpu += cpu_seconds(worker)
            after = (time.time(), time.time() + args.seconds)
            cpu["no reviewer, after"] = -cpu_seconds(owner)
            await trio.sleep(args.seconds)
            cpu["no reviewer, after"] += cpu_seconds(owner)
            with trio.fail_after(30):
                await gauge.wait()
            stop.set()
        arrivals = json.loads(arrivals_file.read_text())
        result: dict[str, Any] = {}
        for name, (start, end) in (
            ("no reviewer", quiet),
            ("reviewer scrubbing", busy),
            ("no reviewer, after", after),
        ):
            g = gaps(arrivals, start, end)
            result[name] = {
                "frames": len(g) + 1,
                "p50": round(pct(g, 0.5), 1),
                "p99": round(pct(g, 0.99), 1),
                "max": round(max(g), 1),
                "cpu": round(100 * cpu[name] / (end - start)),
            }
        result["seeks"] = {
            "count": len(latencies),
            "per_s": round(len(latencies) / args.seconds, 1),
            "p50_ms": round(pct(latencies, 0.5), 1),
            "p99_ms": round(pct(latencies, 0.99), 1),
            "worker_cpu": round(100 * worker_cpu / (busy[1] - busy[0])),
        }
        return result
    finally:
        server.terminate()
        with trio.move_on_after(10):
            await server.wait()
        if server.returncode is None:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--data", type=Path, help="data folder (kept: the session is reused)")
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        ws, token, seconds, out = args.measure
        trio.run(measure, ws, token, float(seconds), Path(out))
        return
    data = args.data or Path(tempfile.mkdtemp(prefix="review-bench-"))
    length_s = ensure_session(data, args.minutes)
    result = trio.run(run, args, data, length_s)
    print(
        f"live room frame gaps (ms), spectator of GR-S room 'demo', {length_s / 60:.0f}-minute"
        " session under review:"
    )
    for name in ("no reviewer", "reviewer scrubbing", "no reviewer, after"):
        r = result[name]
        print(
            f"  {name:<20} p50 {r['p50']:5.1f}  p99 {r['p99']:5.1f}  max {r['max']:5.1f}"
            f"  ({r['frames']} frames)  server CPU {r['cpu']}%"
        )
    s = result["seeks"]
    print(
        f"reviewer: {s['count']} seeks ({s['per_s']}/s), seek to snapshot p50 {s['p50_ms']} ms,"
        f" p99 {s['p99_ms']} ms; the review process's CPU {s['worker_cpu']}%"
    )
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
