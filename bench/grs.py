"""GR-S against a real server process: prints the figures DESIGN.md holds us to.

One room; 8 participants sending head and hands at 30 Hz (two moving their hands, the
rest still with sub-millimetre jitter, one carrying an object); 20 shared objects;
7 vitals changing each second; an event every 5 s; 200 spectators.

    python bench/grs.py [--spectators 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio

from clients.python.bots import report, run_bots
from netcode.views import ALL_VIEWS, Role, View
from replay.writer import SessionWriter, new_session_id
from rooms.demo import DemoScenario
from rooms.records import NullRecorder
from rooms.room import Room

FULL_SPECTATORS = 20
"""Spectators that decode every frame and measure latency (the rest are light)."""


def _room_ticks(ticks: int, recorder: Any) -> float:
    """CPU seconds per GR-S tick of room work (8 pose inputs, the tick, 3 view frames).

    CPU time, not wall time: the recording's fsyncs wait on the disk in a worker thread.
    """
    room = Room("bench", DemoScenario(1), seed=1, recorder=recorder)
    room.start()
    members = [room.join(Role.PARTICIPANT, f"p{i}") for i in range(8)]
    room.tick()
    flush = getattr(recorder, "flush", None)
    started = time.process_time()
    for tick in range(ticks):
        for index, member in enumerate(members):
            x = (tick * 3 % 1000) / 1000 if index < 2 else 0.0001 * (tick % 3)
            room.pose(
                member.id,
                {
                    "head": [index, 1.6, 0, 0, 0, 0, 1],
                    "left": [x, 1.1, 0.3, 0, 0, 0, 1],
                    "right": [index + 0.2, 1.1, 0.3, 0, 0, 0, 1],
                },
            )
        room.tick()
        for view in ALL_VIEWS:
            room.publisher.frame(view, room.tick_no - 1)
        if flush is not None and tick % 15 == 0:
            flush()  # the server flushes twice a second, from a worker thread
    return (time.process_time() - started) / ticks


def encode_microbench(ticks: int = 3000) -> tuple[list[str], float]:
    """Cost of one GR-S tick in the room and publisher alone, with and without recording."""
    bare = _room_ticks(ticks, NullRecorder())
    with tempfile.TemporaryDirectory() as data_dir:
        writer = SessionWriter(data_dir, new_session_id("bench"))
        recorded = _room_ticks(ticks, writer)
        writer.close()
        size = sum(f.stat().st_size for f in writer.path.rglob("*") if f.is_file())
    room = Room("frame", DemoScenario(1), seed=1)
    room.start()
    room.tick()
    frame = len(room.publisher.frame(View.SPECTATOR, room.tick_no - 1))
    return [
        f"encode micro-benchmark: {bare * 1e6:.0f} us per GR-S tick "
        f"(8 pose inputs, tick, 3 view frames); idle spectator delta {frame} bytes",
        f"recording: {(recorded - bare) * 1e6:.0f} us per tick extra "
        f"({(recorded - bare) * 30:.4f} CPU-s/s at 30 Hz); "
        f"{size / (ticks / 30) * 3600 / 1e6:.1f} MB per hour of this workload",
    ], (recorded - bare) * 30


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spectators", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()

    micro, recording_cpu = encode_microbench()
    for line in micro:
        print(line)
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen(
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
                data_dir,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        crowd: subprocess.Popen[bytes] | None = None
        try:
            url = ""
            assert server.stdout is not None
            for line in server.stdout:
                if "serving on" in line:
                    url = line.split("serving on ")[1].strip()
                    break
            key = json.loads((Path(data_dir) / "secrets.json").read_text())["admin_key"]
            process = psutil.Process(server.pid)

            # Most spectators are light and run in a process of their own, so the load
            # generator's own CPU does not distort the latency the measuring clients see.
            light = max(0, args.spectators - FULL_SPECTATORS)
            crowd = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "bots",
                    "--server",
                    url,
                    "--room",
                    "demo",
                    "--participants",
                    "0",
                    "--spectators",
                    str(light),
                    "--full-every",
                    "0",
                    "--seconds",
                    str(args.seconds + 15),
                    "--admin-key",
                    key,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

            async def crowd_joined() -> None:
                async with httpx.AsyncClient(base_url=url, timeout=5) as http:
                    with trio.fail_after(60):
                        while True:
                            info = (await http.get("/api/rooms/demo")).json()
                            if info["clients"]["spectator"] >= light:
                                return
                            await trio.sleep(0.2)

            async def measured() -> tuple[object, float, float]:
                await crowd_joined()
                async with trio.open_nursery() as nursery:
                    box: list[object] = []

                    async def bots() -> None:
                        box.append(
                            await run_bots(
                                url,
                                key,
                                "demo",
                                8,
                                min(args.spectators, FULL_SPECTATORS),
                                args.seconds,
                                moving=2,
                                full_every=1,
                                resumes=1,
                            )
                        )

                    nursery.start_soon(bots)
                    await trio.sleep(3.0)  # everyone joined: measure the steady state
                    cpu0, wall0 = sum(process.cpu_times()[:2]), time.perf_counter()
                    await trio.sleep(args.seconds - 4.0)
                    cpu1, wall1 = sum(process.cpu_times()[:2]), time.perf_counter()
                return box[0], cpu1 - cpu0, wall1 - wall0

            tally, cpu, wall = trio.run(measured)
            crowd.wait(30)
            print(
                f"GR-S: 8 participants (2 moving, 1 carrying), {args.spectators} spectators "
                f"({min(args.spectators, FULL_SPECTATORS)} decoding everything), "
                f"{args.seconds:.0f} s"
            )
            for line in report(tally, args.seconds):  # type: ignore[arg-type]
                print(line)
            print(f"server CPU:                 {cpu / wall:.3f} CPU-seconds per second")
            print(f"recording share of server CPU: {recording_cpu / (cpu / wall) * 100:.1f}%")
        finally:
            if crowd is not None and crowd.poll() is None:
                crowd.kill()
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
