"""Where our server's CPU goes under GR-S (or the GR-L shape), per client per tick.

    python -m bench.profile_grs                      # GR-S, 200 full spectators
    python -m bench.profile_grs --grl --spectators 20
    python -m bench.profile_grs --grl --light        # GR-L, 1,000 light spectators
    options: --seconds 30 (profiled), --rate 200 (samples/s), --out DIR, --top 25

Runs the server and our load generator (bench/loadgen.py) as bench/grs.py does, and in
the middle of the measured window attaches py-spy to the server process (`py-spy record
--nonblocking`: it reads the process's memory without stopping it, so the server runs
unchanged). Each sampled stack is put in one category:

- recording, metrics: anything under the session writer / `Room._record`, or under
  prometheus_client / server/metrics.py (the outermost such frame decides);
- otherwise the innermost frame that names a category: reading client messages
  (socket, wsproto), parsing them (msgpack + pydantic), handling them (the room's pose
  and intent paths), encoding (publisher, codec), fan-out sends (the tick's loop over
  clients and the socket writes), the room tick (case state, scenario, publish),
  joins and HTTP, scheduling (trio's run loop, checkpoints, cancel scopes, events);
- samples whose innermost line blocks (epoll, a lock, fsync, a sleep) are left out:
  py-spy counts a thread as active while it is runnable and misses some waits, so on
  a busy machine those samples are waiting, for the kernel or for a CPU.

The measured server CPU over the profile is shared out in proportion to the samples,
and divided by clients x ticks for the per-client-per-tick cost.
"""

from __future__ import annotations

import argparse
import json
import linecache
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import psutil

from bench.loadgen import PRESETS, REPO_ROOT, python_env
from bench.servers import start_ours, stop_process
from bench.stats import process_cpu_seconds
from netcode.sync import ack_interval
from netcode.views import Role

_FRAME: Final = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
IDLE: Final = "waiting (excluded)"
_BLOCKING_CALLS: Final = (".poll(", ".acquire(", "fsync(", ".wait(", "sleep(")
"""Source lines on which a sampled thread is blocked, not computing."""


@dataclass(frozen=True)
class Rule:
    category: str
    file: str
    """a substring of the frame's file"""
    functions: tuple[str, ...] = ()
    """function names (as py-spy writes them, e.g. `Class.method`); empty: any"""

    def matches(self, func: str, file: str) -> bool:
        return self.file in file and (not self.functions or func in self.functions)


OWNERS: Final = (
    Rule("recording", "replay/"),
    Rule("recording", "rooms/room.py", ("Room._record",)),
    Rule("metrics", "prometheus_client/"),
    Rule("metrics", "server/metrics.py"),
)
WORK: Final = (
    Rule("scheduling (trio)", "trio/_core/"),
    Rule("scheduling (trio)", "trio/_timeouts.py"),
    Rule("scheduling (trio)", "trio/_sync.py"),
    Rule("scheduling (trio)", "outcome/"),
    Rule("scheduling (trio)", "contextlib.py"),
    Rule("encoding", "netcode/codec.py", ("encode", "encode_single", "_default")),
    Rule("encoding", "netcode/codec.py", ("checksum", "canonical", "_key_order")),
    Rule("encoding", "netcode/codec.py", ("canonical.<locals>.<dictcomp>",)),
    Rule("encoding", "netcode/codec.py", ("canonical.<locals>.<listcomp>",)),
    Rule("parse client messages", "netcode/codec.py"),  # the rest decodes what clients send
    Rule("parse client messages", "pydantic"),
    Rule("parse client messages", "server/client_session.py", ("Session._parse",)),
    Rule("encoding", "netcode/publisher.py"),
    Rule("encoding", "msgpack/"),
    Rule("encoding", "server/client_socket.py", ("binary_frame",)),
    Rule("read client messages", "wsproto/"),
    Rule("read client messages", "server/frame_guard.py"),
    Rule(
        "read client messages",
        "server/client_socket.py",
        ("ClientSocket.receive", "ClientSocket._read_available", "ClientSocket._take"),
    ),
    Rule("read client messages", "server/client_session.py"),
    Rule("fan-out sends", "server/client_socket.py"),
    Rule("fan-out sends", "server/room_host.py", ("RoomHost._fan_out", "RoomHost._send_state")),
    Rule("fan-out sends", "netcode/sync.py", ("Subscriber.due", "Subscriber.delivered")),
    Rule("handle client messages", "server/room_host.py", ("RoomHost.handle",)),
    Rule("handle client messages", "rooms/room.py", ("Room.pose", "Room._apply_pose")),
    Rule("handle client messages", "rooms/room.py", ("Room.submit", "Room._submit")),
    Rule("room tick", "rooms/"),
    Rule("room tick", "netcode/"),
    Rule("room tick", "server/room_host.py"),
    Rule("joins and HTTP", "server/"),
    Rule("joins and HTTP", "h11/"),
    Rule("joins and HTTP", "jwt/"),
)
CATEGORIES: Final = (
    "read client messages",
    "parse client messages",
    "handle client messages",
    "scheduling (trio)",
    "fan-out sends",
    "encoding",
    "room tick",
    "recording",
    "metrics",
    "joins and HTTP",
    "other",
)


Frame = tuple[str, str, int]
"""function, file (as py-spy shortens it), line"""


def parse_frame(frame: str) -> Frame:
    match = _FRAME.match(frame.strip())
    if match is None:
        return (frame, "", 0)
    return (match["func"], match["file"], int(match["line"] or 0))


@cache
def _source_line(file: str, line: int) -> str:
    """The text of a sampled line, from this checkout or the installed packages."""
    for root in (str(REPO_ROOT), *sys.path):
        path = Path(root or ".") / file
        if path.is_file():
            return linecache.getline(str(path), line)
    return ""


def is_waiting(leaf: Frame) -> bool:
    """py-spy counts a thread as active while it is runnable, and misses some waits: a
    leaf blocked in epoll, a lock, fsync or a sleep is not CPU."""
    _, file, line = leaf
    text = _source_line(file, line)
    return any(call in text for call in _BLOCKING_CALLS)


def categorize(stack: list[Frame]) -> str:
    """Waits apart; owners (recording, metrics) from the root; else the innermost named frame."""
    if stack and is_waiting(stack[-1]):
        return IDLE
    for func, file, _ in stack:
        for rule in OWNERS:
            if rule.matches(func, file):
                return rule.category
    for func, file, _ in reversed(stack):
        for rule in WORK:
            if rule.matches(func, file):
                return rule.category
    return "other"


@dataclass
class Profile:
    by_category: Counter[str]
    self_time: Counter[str]
    inclusive: Counter[str]
    samples: int

    @classmethod
    def read(cls, raw: str) -> Profile:
        """py-spy's raw (collapsed) format: `frame;frame;...;leaf count` per line."""
        by_category: Counter[str] = Counter()
        self_time: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        samples = 0
        for line in raw.splitlines():
            head, _, count = line.rpartition(" ")
            if not head or not count.isdigit():
                continue
            n = int(count)
            stack = [parse_frame(f) for f in head.split(";")]
            category = categorize(stack)
            by_category[category] += n
            samples += n
            if category == IDLE:
                continue
            func, file, _ = stack[-1]
            self_time[f"{func} ({file})"] += n
            for func, file in {(f, fl) for f, fl, _ in stack}:
                entry = file in ("server/cli.py", "server/http.py", "server/app.py")
                if file.startswith(("server/", "netcode/", "rooms/", "replay/")) and not entry:
                    inclusive[f"{func} ({file})"] += n
        return cls(by_category, self_time, inclusive, samples)


def report(
    profile: Profile,
    cpu_s_per_s: float,
    clients: int,
    ticks_per_s: float,
    messages_per_s: float,
    top: int,
) -> list[str]:
    busy = profile.samples - profile.by_category[IDLE]
    per_sample = cpu_s_per_s / busy if busy else 0.0
    ticks = clients * ticks_per_s
    lines = [
        f"server CPU {cpu_s_per_s:.3f} s/s over the profile; {clients} clients; "
        f"{ticks_per_s:.1f} ticks/s; ~{messages_per_s:.0f} client messages/s; "
        f"{profile.samples} samples ({profile.by_category[IDLE]} waiting, left out)",
        f"{'category':<26} {'share':>6} {'CPU s/s':>8} {'us/client/tick':>15} {'us/message':>11}",
    ]
    for category in CATEGORIES:
        n = profile.by_category[category]
        cpu = n * per_sample
        per_message = ""
        if category in ("read client messages", "parse client messages", "handle client messages"):
            per_message = f"{cpu / messages_per_s * 1e6:.1f}" if messages_per_s else ""
        lines.append(
            f"{category:<26} {n / busy if busy else 0:>6.1%} {cpu:>8.4f} "
            f"{cpu / ticks * 1e6 if ticks else 0:>15.2f} {per_message:>11}"
        )
    lines.append(
        f"{'total':<26} {1:>6.1%} {cpu_s_per_s:>8.4f} "
        f"{cpu_s_per_s / ticks * 1e6 if ticks else 0:>15.2f}"
    )
    lines.append(f"\ntop {top} functions by own time (share of the CPU samples):")
    for name, n in profile.self_time.most_common(top):
        lines.append(f"  {n / busy:6.1%}  {name}")
    lines.append(f"\ntop {top} of our functions, inclusive:")
    for name, n in profile.inclusive.most_common(top):
        lines.append(f"  {n / busy:6.1%}  {name}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_grs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--grl", action="store_true", help="the GR-L room shape")
    parser.add_argument("--spectators", type=int)
    parser.add_argument("--light", action="store_true", help="light spectators")
    parser.add_argument("--seconds", type=float, default=30.0, help="profiled seconds")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / ".results" / "profile")
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")

    preset = PRESETS["GR-L" if args.grl else "GR-S"]
    spectators = args.spectators if args.spectators is not None else preset.spectators
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop our processes on the way
    server = start_ours(args.out, preset.objects)
    load: subprocess.Popen[str] | None = None
    try:
        assert server.data_dir is not None
        command = [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--server",
            server.url,
            "--server-pid",
            str(server.pid),
            "--data-dir",
            str(server.data_dir),
            "--workload",
            "GR-L" if args.grl else "GR-S",
            "--spectators",
            str(spectators),
            "--duration",
            str(args.seconds + 10),
            "--out",
            str(args.out / "result.json"),
        ]
        if args.light:
            command.append("--light-spectators")
        load = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=python_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert load.stderr is not None
        for line in load.stderr:
            print(line, end="", file=sys.stderr)
            if "measuring" in line:
                break
        else:
            raise SystemExit("the load generator ended before its measured window")
        time.sleep(2)
        raw = args.out / "profile.txt"
        times0 = psutil.Process(server.pid).cpu_times()
        cpu0, wall0 = process_cpu_seconds(server.pid), time.monotonic()
        subprocess.run(
            [
                "py-spy",
                "record",
                "--pid",
                str(server.pid),
                "--rate",
                str(args.rate),
                "--duration",
                str(int(args.seconds)),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(raw),
            ],
            check=True,
            capture_output=True,
        )
        cpu1, wall1 = process_cpu_seconds(server.pid), time.monotonic()
        times1 = psutil.Process(server.pid).cpu_times()
        for line in load.stderr:
            print(line, end="", file=sys.stderr)
        load.wait(120)
    finally:
        if load is not None:
            stop_process(load)
        server.stop()
    assert cpu0 is not None and cpu1 is not None
    result = json.loads((args.out / "result.json").read_text())
    ticks_per_s = result["server"]["ticks_per_s"] or 30.0
    participants = preset.participants
    clients = participants + spectators
    sent = result["loadgen"]["coordinator"]["pose_frames_sent"] / result["window_s"]
    acks_per_tick = participants / ack_interval(Role.PARTICIPANT, round(ticks_per_s)) + (
        spectators / ack_interval(Role.SPECTATOR, round(ticks_per_s))
    )
    messages = sent + acks_per_tick * ticks_per_s  # poses + acks at the reference rates
    print(
        f"\nprofile of our server: {'GR-L' if args.grl else 'GR-S'}, {participants} "
        f"participants, {spectators} {'light' if args.light else 'full'} spectators; "
        f"py-spy {args.rate} Hz for {args.seconds:.0f} s (raw stacks: {raw})"
    )
    lines = report(
        Profile.read(raw.read_text()),
        (cpu1 - cpu0) / (wall1 - wall0),
        clients,
        ticks_per_s,
        messages,
        args.top,
    )
    print("\n".join(lines))
    system = times1.system - times0.system
    print(
        f"\nserver CPU in the kernel over the profile: {system / (cpu1 - cpu0):.0%} "
        "(system time: the syscalls, above all the fan-out's sends)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
