"""How long an acknowledged intent can still be lost to `kill -9` (the durability window).

    python bench/ack_window_bench.py [--trials 5]

Each trial starts a real server process (the GR-S room), has a participant send a note
every 20 ms and note when each `reply ok` arrives, kills the server with SIGKILL at a
random moment, repairs the session and reads which notes the log holds. An intent is
*lost* when its reply came but its record did not survive. Printed per trial: notes
acknowledged, lost, and the window: how long before the kill the oldest lost reply was
received. The window is bounded by the room host's flush interval plus one flush.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clients.python import connect
from netcode.views import Role
from replay.reader import Session
from replay.repair import repair
from server import tokens
from server.replay_cli import signing_key


async def trial(data: Path, rng: random.Random) -> dict[str, float]:
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
    )
    assert server.stdout is not None
    text = ""
    with trio.fail_after(30):
        while "Admin key" not in text:
            text += (await server.stdout.receive_some(4096)).decode()
    ws = text.split("serving on ")[1].split()[0].replace("http://", "ws://") + "/ws"
    secret = json.loads((data / "secrets.json").read_text())["secret"]
    acked: dict[str, float] = {}
    killed_at = 0.0
    async with connect(ws, tokens.issue(secret, "demo", Role.PARTICIPANT, "Ack", 600)) as client:
        await client.wait_for(lambda m: m.find("avatar"))
        kill_after = time.monotonic() + rng.uniform(2.0, 4.0)

        async def chat(n: int) -> None:
            words = f"ack {n}"
            reply = await client.intent("note", text=words)
            if reply.ok:
                acked[words] = time.monotonic()

        async with trio.open_nursery() as nursery:
            n = 0
            while time.monotonic() < kill_after:
                n += 1
                nursery.start_soon(chat, n)
                await trio.sleep(0.02)
            server.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            nursery.cancel_scope.cancel()
    await server.wait()
    (path,) = [p for p in (data / "sessions").iterdir() if p.is_dir()]
    repair(path, signing_key(data))
    kept = {
        str(r.data["args"].get("text"))
        for r in Session(path).records(kinds=frozenset({"intent"}))
        if r.data.get("do") == "note"
    }
    lost = [t for words, t in acked.items() if words not in kept]
    return {
        "acknowledged": len(acked),
        "lost": len(lost),
        "window_ms": round((killed_at - min(lost)) * 1000, 1) if lost else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    results = []
    for _ in range(args.trials):
        data = Path(tempfile.mkdtemp(prefix="ack-window-"))
        results.append(trio.run(trial, data, rng))
        r = results[-1]
        print(
            f"  acknowledged {r['acknowledged']:4d}, lost after the reply {r['lost']:3d}, "
            f"oldest lost reply {r['window_ms']:6.1f} ms before the kill"
        )
    print(
        f"durability window (worst of {args.trials}): {max(r['window_ms'] for r in results):.1f} ms"
    )


if __name__ == "__main__":
    main()
