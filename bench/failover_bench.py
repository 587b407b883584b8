"""Failover time: kill -9 of a room's owner to the first state frame from its successor.

Each run starts a real redis-server and two real nodes (`grandrounds serve --redis`)
sharing a data directory, puts a participant and a spectator (the Python client,
resuming by itself as the web app does) in the demo room on node A, waits until the
room runs steadily, kills A with SIGKILL, and times, on the spectator, how long until
a state frame arrives from node B. Prints each run and the p50 / max over the runs.

    python3 bench/failover_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clients.python import RoomClient
from tests.cluster.nodes import cluster_node
from tests.cluster.valkey_process import valkey_process


async def one_run(directory: Path) -> float:
    with valkey_process(directory / "valkey") as valkey:
        async with (
            cluster_node(directory, "a", valkey.url, args=["--demo", "--demo-case", "demo"]) as a,
            cluster_node(directory, "b", valkey.url) as b,
            trio.open_nursery() as nursery,
        ):
            answer = await a.api("POST", "/api/rooms/demo/tokens", {"role": "spectator"})
            first_from_b: list[float] = []

            def on_frame(_frame: Any, _at: float) -> None:
                if watcher.url == b.ws and not first_from_b:
                    first_from_b.append(time.monotonic())

            watcher = RoomClient(
                a.ws, answer.json()["token"], nursery, auto_resume=True, on_frame=on_frame
            )
            await watcher.open()
            await trio.sleep(3.0)  # steady: several keyframes' worth of backlog in Valkey
            killed = time.monotonic()
            a.kill()
            with trio.fail_after(60):
                while not first_from_b:
                    await trio.sleep(0.01)
            await watcher.close()
            return first_from_b[0] - killed


async def main(runs: int) -> None:
    times = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="gr-failover-") as tmp:
            seconds = await one_run(Path(tmp))
        times.append(seconds)
        print(
            f"run {run + 1}: kill -9 to first frame from the successor {seconds:.2f} s", flush=True
        )
    print(
        f"failover over {runs} runs: p50 {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s (room lease 3 s, sweep every 1 s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    trio.run(main, parser.parse_args().runs)
