"""The GR-S / GR-L load generator for our server: `load.cjs` ported to our protocol.

    python -m bench.loadgen --server http://127.0.0.1:PORT --server-pid PID --data-dir D \\
        [--workload GR-S|GR-L] [--short] [--spectators M] [--light-spectators] [--ramp] ...

Prints one JSON object (the same keys as `load.cjs`, so the two compare field by field)
and writes it to `--out`; progress goes to stderr. Timeline, windows and analysis are
the anchor's (its README, sections 3 and 4): participants join and start their frame
clocks, spectators join in batches, 5 s warm-up, a 60 s window with snapshots at both
ends and a mid-run join every 5 s from t = 2 s, 2 s of grace for the last markers.

Process layout, as the anchor's: this process (the coordinator) runs the participants
and the mid-run joiners; `--spectator-procs` processes (bench/spectator_pool.py) run the
spectators. Every timestamp is CLOCK_MONOTONIC, one clock for all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import psutil
import trio

from bench.participants import (
    JoinedParticipant,
    Senders,
    head_entity,
    join_participant,
    send_frames,
)
from bench.stats import (
    MachineCpu,
    lag_summary,
    now_ms,
    percentile,
    process_cpu_seconds,
    process_rss_mb,
    summarize,
)
from clients.python.client import RoomClient

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
LAG_RESOLUTION_S: Final = 0.005
POOL_CALL_TIMEOUT_S: Final = 120.0
JOIN_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class Preset:
    participants: int
    spectators: int
    objects: int
    moving: int


PRESETS: Final = {
    "GR-S": Preset(participants=8, spectators=200, objects=20, moving=1),
    "GR-L": Preset(participants=30, spectators=1000, objects=200, moving=10),
}


@dataclass
class Config:
    server: str
    server_pid: int
    admin_key: str
    room: str
    workload: str
    participants: int
    spectators: int
    objects: int
    moving: int
    active: list[int]
    warmup: float
    duration: float
    spectator_procs: int
    light: bool
    marker_every: int
    join_batch: int
    late_join_every: float
    grace: float
    label: str = ""
    ramp: bool = False
    ramp_start: int = 250
    ramp_step: int = 250
    ramp_max: int = 5000
    ramp_window: float = 15.0
    ramp_settle: float = 5.0
    p99_limit: float = 150.0
    time_budget: float = 900.0
    spectator_servers: list[str] = field(default_factory=list)
    """Where spectators connect (base URLs, round-robin by process): spectator relays.
    Empty: the server itself."""
    measured: dict[str, int] = field(default_factory=dict)
    """More processes whose CPU each window reports (name -> PID): relays."""
    spectator_seats: int | None = None
    """People the spectators' join link admits (default: the server's default)."""

    def spectator_ws_url(self, pool: int) -> str:
        if not self.spectator_servers:
            return self.ws_url
        base = self.spectator_servers[pool % len(self.spectator_servers)]
        return base.replace("http", "ws", 1) + "/ws"

    @property
    def ws_url(self) -> str:
        return self.server.replace("http", "ws", 1) + "/ws"


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def _latency(x: float | None) -> float | str | None:
    if x is None:
        return None
    return round(x, 2) if math.isfinite(x) else "Infinity"


class PoolProcess:
    """One spectator process (bench/spectator_pool.py) and its command pipe."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.pid = process.pid
        self._next_id = 0
        self._buffer = b""
        self._lock = trio.Lock()

    @classmethod
    async def start(cls, url: str, token: str, marker_entity: int) -> PoolProcess:
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "bench.spectator_pool",
                "--url",
                url,
                "--token",
                token,
                "--marker-entity",
                str(marker_entity),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env=python_env(),
        )
        return cls(process)

    async def call(self, cmd: str, timeout: float = POOL_CALL_TIMEOUT_S, **args: Any) -> Any:
        async with self._lock:
            self._next_id += 1
            request = self._next_id
            assert self.process.stdin is not None and self.process.stdout is not None
            line = json.dumps({"id": request, "cmd": cmd, **args}).encode() + b"\n"
            with trio.fail_after(timeout):
                await self.process.stdin.send_all(line)
                while True:
                    while b"\n" not in self._buffer:
                        data = await self.process.stdout.receive_some(1 << 20)
                        if not data:
                            raise RuntimeError(f"spectator process {self.pid} exited")
                        self._buffer += data
                    reply, self._buffer = self._buffer.split(b"\n", 1)
                    answer = json.loads(reply)
                    if answer["id"] == request:
                        if "err" in answer:
                            raise RuntimeError(answer["err"])
                        return answer["res"]

    async def stop(self) -> None:
        with contextlib.suppress(RuntimeError, trio.TooSlowError, trio.BrokenResourceError):
            await self.call("quit", timeout=6)
        with trio.move_on_after(2):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def python_env() -> dict[str, str]:
    """The environment for our Python subprocesses: this checkout's code first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@dataclass
class Coordinator:
    cfg: Config
    http: httpx.AsyncClient
    nursery: trio.Nursery
    senders: Senders = field(init=False)
    participants: list[JoinedParticipant] = field(default_factory=list)
    pools: list[PoolProcess] = field(default_factory=list)
    receipts: dict[int, dict[int, tuple[float, float]]] = field(default_factory=dict)
    """marker seq -> spectator -> (decoded, arrived) in ms (bench/spectator_pool.py)"""
    """marker seq -> spectator gid -> receive time (ms)"""
    spectator_token: str = ""
    marker_entity: int = -1
    spectators_joined: int = 0
    join_failures: int = 0
    disconnects: int = 0
    lag_ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.senders = Senders(marker_every=self.cfg.marker_every)

    # -- setup --------------------------------------------------------------------
    async def token(self, role: str, name: str, seats: int | None = None) -> str:
        body: dict[str, Any] = {"role": role, "name": name}
        if seats is not None:
            body["seats"] = seats
        answer = await self.http.post(f"/api/rooms/{self.cfg.room}/tokens", json=body)
        answer.raise_for_status()
        return str(answer.json()["token"])

    async def setup_participants(self) -> None:
        cfg = self.cfg
        for i in range(cfg.participants):
            token = await self.token("participant", f"participant-{i}")
            self.participants.append(
                await join_participant(cfg.ws_url, token, i, i < cfg.moving, self.nursery)
            )
        self.marker_entity = await head_entity(self.participants[0])
        self.spectator_token = await self.token("spectator", "spectator", self.cfg.spectator_seats)
        log(
            f"room {cfg.room}: {len(self.participants)} participants joined "
            f"(participant 0's head is entity {self.marker_entity})"
        )

    def start_senders(self) -> None:
        for p in self.participants:
            active = p.index in self.cfg.active
            self.nursery.start_soon(send_frames, p, self.cfg.participants, active, self.senders)
        self.nursery.start_soon(self._watch_lag)

    async def _watch_lag(self) -> None:
        while not self.senders.stopped:
            due = trio.current_time() + LAG_RESOLUTION_S
            await trio.sleep_until(due)
            self.lag_ms.append(max(0.0, trio.current_time() - due) * 1000)

    async def start_pools(self) -> None:
        for i in range(max(1, self.cfg.spectator_procs)):
            url = self.cfg.spectator_ws_url(i)
            pool = await PoolProcess.start(url, self.spectator_token, self.marker_entity)
            self.pools.append(pool)

    async def add_spectators(self, count: int) -> None:
        started = now_ms()
        n = len(self.pools)
        results: list[Any] = [None] * n

        async def join(w: int, k: int) -> None:
            results[w] = await self.pools[w].call(
                "join",
                timeout=600,
                count=k,
                gid_base=w * 1_000_000,
                light=self.cfg.light,
                batch=max(1, math.ceil(self.cfg.join_batch / n)),
            )

        async with trio.open_nursery() as joins:
            for w in range(n):
                k = count // n + (1 if w < count % n else 0)
                if k:
                    joins.start_soon(join, w, k)
        failed = sum(r["failed"] for r in results if r is not None)
        self.join_failures += failed
        self.spectators_joined += count - failed
        log(
            f"+{count} spectators ({failed} failed) in {(now_ms() - started) / 1000:.1f} s; "
            f"total {self.spectators_joined}"
        )

    # -- measuring ----------------------------------------------------------------
    async def room_tick(self) -> int | None:
        try:
            return int((await self.http.get(f"/api/rooms/{self.cfg.room}")).json()["tick"])
        except (httpx.HTTPError, KeyError, ValueError):
            return None

    async def snapshot(self, reset_lag: bool) -> dict[str, Any]:
        tick = await self.room_tick()  # first, with the time and CPU: pools may answer late
        snap: dict[str, Any] = {
            "server_tick": tick,
            "t": now_ms(),
            "server": process_cpu_seconds(self.cfg.server_pid),
            "measured": {name: process_cpu_seconds(pid) for name, pid in self.cfg.measured.items()},
            "machine": MachineCpu.now(),
            "self": process_cpu_seconds(os.getpid()),
            "participants": [
                [p.index, p.client.bytes_received, p.client.frames, 0, int(p.client.connected)]
                for p in self.participants
            ],
            "frames_sent": self.senders.frames_sent,
            "skipped": self.senders.skipped,
            "lag": lag_summary(self.lag_ms),
        }
        if reset_lag:
            self.lag_ms = []
        snap["pools"] = [await pool.call("snap", reset_lag=reset_lag) for pool in self.pools]
        return snap

    async def late_join(self, results: list[dict[str, float | None]]) -> None:
        """A spectator joining mid-run with the reference client; it leaves 1 s later."""
        token = await self.token("spectator", "late spectator")
        started = now_ms()
        joined = first_state = None
        try:
            async with trio.open_nursery() as nursery:
                client = RoomClient(self.cfg.ws_url, token, nursery)
                with trio.fail_after(JOIN_TIMEOUT_S):
                    await client.open()
                    joined = now_ms()
                    await client.wait_for(lambda m: m.tick is not None, timeout=JOIN_TIMEOUT_S)
                    first_state = now_ms()
                results.append(
                    {
                        "to_join_ack": joined - started,
                        "to_first_state": first_state - started,
                    }
                )
                await trio.sleep(1)
                await client.close()
                nursery.cancel_scope.cancel()
        except Exception as exc:  # a failed join is a figure (`failures`), not a crash
            log(f"late join failed: {exc!r}")
            results.append({"to_join_ack": None, "to_first_state": None})

    async def drain_receipts(self) -> None:
        for pool in self.pools:
            flat = await pool.call("drain")
            for i in range(0, len(flat), 4):
                gid, seq = int(flat[i]), int(flat[i + 1])
                self.receipts.setdefault(seq, {}).setdefault(gid, (flat[i + 2], flat[i + 3]))

    async def measure_window(self, duration: float) -> dict[str, Any]:
        joins: list[dict[str, float | None]] = []
        a = await self.snapshot(True)
        window_end = a["t"] + duration * 1000
        async with trio.open_nursery() as nursery:

            async def join_at(offset_s: float) -> None:
                await trio.sleep(max(0.0, (a["t"] + offset_s * 1000 - now_ms()) / 1000))
                if now_ms() < window_end:
                    await self.late_join(joins)

            k = 0
            while self.cfg.late_join_every > 0 and 2 + k * self.cfg.late_join_every < duration - 1:
                nursery.start_soon(join_at, 2 + k * self.cfg.late_join_every)
                k += 1
            await trio.sleep(max(0.0, (window_end - now_ms()) / 1000))
            b = await self.snapshot(False)
            await trio.sleep(self.cfg.grace)  # let the last markers arrive
        await self.drain_receipts()
        return self.analyze(a, b, joins)

    def analyze(
        self, a: dict[str, Any], b: dict[str, Any], joins: list[dict[str, float | None]]
    ) -> dict[str, Any]:
        """The window's figures, computed as `load.cjs` `analyze` computes them."""
        dt = (b["t"] - a["t"]) / 1000

        def rates(
            before: list[list[Any]], after: list[list[Any]], scale: float
        ) -> tuple[list[float], list[float], list[float]]:
            earlier = {c[0]: c for c in before}
            ws, tcp, msgs = [], [], []
            for c in after:
                o = earlier.get(c[0])
                if o is None or not c[4]:
                    continue  # only clients present and alive through the whole window
                ws.append((c[1] - o[1]) / scale)
                msgs.append((c[2] - o[2]) / scale)
                tcp.append((c[3] - o[3]) / scale)
            return ws, tcp, msgs

        part_ws, _, part_msgs = rates(a["participants"], b["participants"], dt)
        spec_ws: list[float] = []
        spec_tcp: list[float] = []
        spec_msgs: list[float] = []
        pools = []
        for pa, pb in zip(a["pools"], b["pools"], strict=True):
            pdt = (pb["t"] - pa["t"]) / 1000  # each process's own snapshot interval
            ws, tcp, msgs = rates(pa["clients"], pb["clients"], pdt)
            spec_ws += ws
            spec_tcp += tcp
            spec_msgs += msgs
            pools.append(
                {
                    "pid": pb["pid"],
                    "spectators": len(pb["clients"]),
                    "cpu_s_per_s": _round((pb["cpu"] - pa["cpu"]) / pdt),
                    "event_loop_delay_ms": pb["lag"],
                    "disconnects": pb["disconnects"],
                    "resyncs": pb["resyncs"],
                }
            )
        machine_a: MachineCpu = a["machine"]
        machine_b: MachineCpu = b["machine"]
        cores = psutil.cpu_count() or 1

        # latency: markers sent in [a.t, b.t) x spectators alive through the window
        expected = []
        for pa, pb in zip(a["pools"], b["pools"], strict=True):
            alive_before = {c[0] for c in pa["clients"] if c[4]}
            expected += [c[0] for c in pb["clients"] if c[4] and c[0] in alive_before]
        pooled: list[float] = []
        arrival: list[float] = []
        per_client: dict[int, list[float]] = {}
        fastest: list[float] = []
        markers = missed = 0
        for seq, sent in self.senders.marker_sends.items():
            if sent < a["t"] or sent >= b["t"]:
                continue
            markers += 1
            received = self.receipts.get(seq, {})
            best = math.inf
            for gid in expected:
                when = received.get(gid)
                latency = math.inf if when is None else when[0] - sent
                missed += when is None
                pooled.append(latency)
                arrival.append(math.inf if when is None else when[1] - sent)
                best = min(best, latency)
                per_client.setdefault(gid, []).append(latency)
            fastest.append(best)
        per_p50 = [percentile(v, 50) or 0.0 for v in per_client.values()]
        per_p99 = [percentile(v, 99) or 0.0 for v in per_client.values()]

        loadgen_cpu = (b["self"] - a["self"]) / dt + sum(p["cpu_s_per_s"] or 0 for p in pools)
        to_first = [j["to_first_state"] for j in joins if j["to_first_state"] is not None]
        to_ack = [j["to_join_ack"] for j in joins if j["to_join_ack"] is not None]
        server_cpu = (
            (b["server"] - a["server"]) / dt
            if a["server"] is not None and b["server"] is not None
            else None
        )
        ticks = (
            (b["server_tick"] - a["server_tick"]) / dt
            if a["server_tick"] is not None and b["server_tick"] is not None
            else None
        )
        measured = {
            name: _round((b["measured"][name] - before) / dt)
            if before is not None and b["measured"][name] is not None
            else None
            for name, before in a["measured"].items()
        }
        spec_summary = summarize(spec_ws, 0)
        part_summary = summarize(part_ws, 0)
        busy = machine_b.busy_cores_since(machine_a)
        result: dict[str, Any] = {
            "window_s": _round(dt),
            "spectators": len(expected),
            "summary": {
                "spectator_bytes_per_s": spec_summary["median"],
                "participant_bytes_per_s": part_summary["median"],
                "server_cpu_s_per_s": _round(server_cpu),
                "latency_p50_ms": _latency(percentile(pooled, 50)),
                "latency_p99_ms": _latency(percentile(pooled, 99)),
                "join_to_first_state_ms": _latency(percentile(to_first, 50)),
                "loadgen_cpu_s_per_s": _round(loadgen_cpu),
                "machine_busy_cores": _round(busy),
            },
            "bytes_per_s": {
                "spectator": {"ws_payload": spec_summary, "tcp": summarize(spec_tcp, 0)},
                "participant": {"ws_payload": part_summary},
            },
            "messages_per_s": {
                "spectator": summarize(spec_msgs, 2),
                "participant": summarize(part_msgs, 2),
            },
            "server": {
                "pid": self.cfg.server_pid,
                "cpu_s_per_s": _round(server_cpu),
                "rss_mb": _round(process_rss_mb(self.cfg.server_pid), 1),
                "ticks_per_s": _round(ticks, 2),
            },
            "measured_cpu_s_per_s": measured,
            "latency_ms": {
                "pooled": {
                    "n": len(pooled),
                    "p50": _latency(percentile(pooled, 50)),
                    "p90": _latency(percentile(pooled, 90)),
                    "p99": _latency(percentile(pooled, 99)),
                    "max": _latency(max(pooled) if pooled else None),
                },
                "per_spectator": {
                    "n": len(per_p50),
                    "median_of_p50": _latency(percentile(per_p50, 50)),
                    "median_of_p99": _latency(percentile(per_p99, 50)),
                    "max_of_p99": _latency(max(per_p99) if per_p99 else None),
                },
                "pooled_at_arrival": {
                    "n": len(arrival),
                    "p50": _latency(percentile(arrival, 50)),
                    "p99": _latency(percentile(arrival, 99)),
                },
                "fastest_spectator_per_marker": {
                    "n": len(fastest),
                    "p50": _latency(percentile(fastest, 50)),
                    "p99": _latency(percentile(fastest, 99)),
                },
                "markers_in_window": markers,
                "expected_receipts": markers * len(expected),
                "missed": missed,
            },
            "join_ms": {
                "to_first_state": summarize(to_first, 1),
                "to_join_ack": summarize(to_ack, 1),
                "samples_to_first_state": [round(x, 1) for x in to_first],
                "failures": len(joins) - len(to_first),
            },
            "loadgen": {
                "cpu_s_per_s": _round(loadgen_cpu),
                "coordinator": {
                    "pid": os.getpid(),
                    "cpu_s_per_s": _round((b["self"] - a["self"]) / dt),
                    "event_loop_delay_ms": b["lag"],
                    "pose_frames_sent": b["frames_sent"] - a["frames_sent"],
                    "pose_frames_skipped": b["skipped"] - a["skipped"],
                },
                "spectator_procs": pools,
            },
            "machine_cpu": {
                "cores": cores,
                "busy_cores": _round(busy),
                "steal_fraction": _round(machine_b.steal_fraction_since(machine_a), 4),
            },
            "errors": {
                "participant_disconnects": sum(1 for p in b["participants"] if not p[4]),
                "spectator_disconnects": sum(p["disconnects"] for p in b["pools"]),
                "spectator_disconnects_in_window": sum(
                    pb["disconnects"] - pa["disconnects"]
                    for pa, pb in zip(a["pools"], b["pools"], strict=True)
                ),
                "spectator_join_failures": self.join_failures,
                "spectator_resyncs": sum(p["resyncs"] for p in b["pools"]),
                "participant_errors": [
                    f"{code}: {msg}" for p in self.participants for code, msg in p.client.errors
                ][:10],
            },
        }
        result["warnings"] = warnings(result, cores)
        result["valid"] = not result["warnings"]
        return result

    async def stop(self) -> None:
        self.senders.stopped = True
        async with trio.open_nursery() as nursery:
            for pool in self.pools:
                nursery.start_soon(pool.stop)
        with trio.move_on_after(3):
            for p in self.participants:
                await p.client.close()


def warnings(result: dict[str, Any], cores: int) -> list[str]:
    """Is this window a measurement of the server, or of an overloaded load generator?"""
    out = []
    loadgen = result["loadgen"]
    lag = max(
        [loadgen["coordinator"]["event_loop_delay_ms"]["p99"]]
        + [p["event_loop_delay_ms"]["p99"] for p in loadgen["spectator_procs"]]
    )
    if lag > 50:
        out.append(
            f"load-generator event-loop delay p99 {lag} ms > 50 ms: "
            "latency figures include load-generator queueing"
        )
    busy = result["machine_cpu"]["busy_cores"]
    if busy > 0.95 * cores:
        out.append(f"machine CPU saturated ({busy} of {cores} cores busy)")
    errors = result["errors"]
    if errors["spectator_disconnects"]:
        out.append(
            f"{errors['spectator_disconnects']} spectators disconnected "
            "(excluded from the per-client figures)"
        )
    if errors["participant_disconnects"]:
        out.append(f"{errors['participant_disconnects']} participants disconnected")
    if errors["spectator_resyncs"]:
        out.append(f"{errors['spectator_resyncs']} spectator resyncs (desynced mirrors)")
    if errors["participant_errors"]:
        out.append(f"participants got errors: {errors['participant_errors'][0]}")
    sent = loadgen["coordinator"]["pose_frames_sent"]
    skipped = loadgen["coordinator"]["pose_frames_skipped"]
    if skipped > 0.01 * (sent + skipped):
        out.append(f"{skipped} pose frames skipped by late participant timers")
    if result["latency_ms"]["missed"]:
        out.append(
            f"{result['latency_ms']['missed']} marker receipts missing (counted as infinitely late)"
        )
    return out


def log(message: str) -> None:
    print(f"[loadgen {now_ms() / 1000:10.3f}] {message}", file=sys.stderr, flush=True)


async def run(cfg: Config) -> dict[str, Any]:
    header: dict[str, Any] = {
        "framework": "grandrounds",
        "versions": {
            "python": platform.python_version(),
            "trio": trio.__version__,
        },
        "workload": cfg.workload,
        "label": cfg.label,
        "mode": "ramp" if cfg.ramp else "fixed",
        "config": {
            "participants": cfg.participants,
            "spectators": None if cfg.ramp else cfg.spectators,
            "objects": cfg.objects,
            "moving_objects": cfg.moving,
            "active_participants": cfg.active,
            "warmup_s": cfg.warmup,
            "duration_s": cfg.duration,
            "spectator_procs": cfg.spectator_procs,
            "light_spectators": cfg.light,
            "marker_every_frames": cfg.marker_every,
            "join_batch": cfg.join_batch,
            "late_join_every_s": cfg.late_join_every,
            "grace_s": cfg.grace,
        },
        "machine": {
            "nproc": psutil.cpu_count(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
    }
    headers = {"Authorization": f"Bearer {cfg.admin_key}"}
    async with (
        httpx.AsyncClient(base_url=cfg.server, headers=headers, timeout=10) as http,
        trio.open_nursery() as nursery,
    ):
        co = Coordinator(cfg, http, nursery)
        try:
            await co.setup_participants()
            co.start_senders()
            await co.start_pools()
            await co.add_spectators(cfg.ramp_start if cfg.ramp else cfg.spectators)
            if not cfg.ramp:
                log(f"warm-up {cfg.warmup} s")
                await trio.sleep(cfg.warmup)
                log(f"measuring {cfg.duration} s")
                result = {**header, **await co.measure_window(cfg.duration)}
            else:
                result = {**header, **await ramp(co)}
        finally:
            with trio.CancelScope(shield=True):
                await co.stop()
            nursery.cancel_scope.cancel()
    return result


async def ramp(co: Coordinator) -> dict[str, Any]:
    """Add spectators in steps until a step's pooled p99 reaches the limit (anchor 4.7)."""
    cfg = co.cfg
    steps: list[dict[str, Any]] = []
    stop_reason = "ramp_max reached"
    n = cfg.ramp_start
    started = now_ms()
    while True:
        log(f"ramp step: {n} spectators; settle {cfg.ramp_settle} s, measure {cfg.ramp_window} s")
        await trio.sleep(cfg.ramp_settle)
        w = await co.measure_window(cfg.ramp_window)
        p99 = w["latency_ms"]["pooled"]["p99"]
        ok = (
            isinstance(p99, float)
            and p99 < cfg.p99_limit
            and w["errors"]["spectator_disconnects_in_window"] == 0
        )
        lag = max(p["event_loop_delay_ms"]["p99"] for p in w["loadgen"]["spectator_procs"])
        saturated = lag > 50 or w["machine_cpu"]["busy_cores"] > 0.95 * w["machine_cpu"]["cores"]
        steps.append(
            {
                "spectators": w["spectators"],
                "pass": ok,
                "loadgen_saturated": saturated,
                "warnings": w["warnings"],
                **w["summary"],
                "ticks_per_s": w["server"]["ticks_per_s"],
                "measured_cpu_s_per_s": w["measured_cpu_s_per_s"],
                "latency_ms": w["latency_ms"],
                "messages_per_s": w["messages_per_s"],
                "join_ms": w["join_ms"]["to_first_state"],
            }
        )
        log(f"  -> p99 {p99} ms, server {w['summary']['server_cpu_s_per_s']} s/s -> {ok}")
        if not ok:
            under = isinstance(p99, float) and p99 < cfg.p99_limit
            stop_reason = "spectators disconnected" if under else f"p99 >= {cfg.p99_limit} ms"
            break
        if n + cfg.ramp_step > cfg.ramp_max:
            break
        elapsed = (now_ms() - started) / 1000
        if elapsed + elapsed / len(steps) * 1.5 > cfg.time_budget:
            stop_reason = "time budget"
            break
        await co.add_spectators(cfg.ramp_step)
        n += cfg.ramp_step
    passing = [s["spectators"] for s in steps if s["pass"]]
    full_rate = []
    for s in steps:
        rate = s["messages_per_s"]["spectator"]["median"] or 0
        if not (s["pass"] and rate >= 27 and not s["loadgen_saturated"]):
            break
        full_rate.append(s["spectators"])
    failing = next((s for s in steps if not s["pass"]), None)
    return {
        "p99_limit_ms": cfg.p99_limit,
        "max_spectators_p99_under_limit": max(passing, default=0),
        "max_spectators_p99_under_limit_full_rate": max(full_rate, default=0),
        "first_failing_spectators": failing["spectators"] if failing else None,
        "stop_reason": stop_reason,
        "steps": steps,
    }


def config_from(args: argparse.Namespace) -> Config:
    preset = PRESETS[args.workload]

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    key = (
        args.admin_key
        or json.loads((Path(args.data_dir) / "secrets.json").read_text())["admin_key"]
    )
    cfg = Config(
        server=args.server.rstrip("/"),
        server_pid=args.server_pid,
        admin_key=key,
        room=args.room,
        workload=args.workload,
        participants=pick(args.participants, preset.participants),
        spectators=pick(args.spectators, preset.spectators),
        objects=pick(args.objects, preset.objects),
        moving=pick(args.moving, preset.moving),
        active=[int(x) for x in args.active.split(",") if x],
        warmup=pick(args.warmup, 3.0 if args.short else 5.0),
        duration=pick(args.duration, 10.0 if args.short else 60.0),
        spectator_procs=args.spectator_procs,
        light=args.light_spectators,
        marker_every=args.marker_every,
        join_batch=args.join_batch,
        late_join_every=args.late_join_every,
        grace=args.grace,
        label=args.label,
        ramp=args.ramp,
        ramp_start=pick(args.ramp_start, args.ramp_step),
        ramp_step=args.ramp_step,
        ramp_max=args.ramp_max,
        ramp_window=pick(args.ramp_window, 8.0 if args.short else 15.0),
        ramp_settle=args.ramp_settle,
        p99_limit=args.p99_limit,
        time_budget=args.time_budget,
        spectator_servers=[url.rstrip("/") for url in args.spectator_server],
        measured=dict(_name_and_pid(text) for text in args.measure),
        spectator_seats=args.spectator_seats,
    )
    if cfg.moving > min(cfg.participants, cfg.objects):
        raise SystemExit("--moving must be <= participants and <= objects")
    return cfg


def _name_and_pid(text: str) -> tuple[str, int]:
    name, _, pid = text.partition("=")
    if not name or not pid.isdigit():
        raise SystemExit(f"--measure takes NAME=PID, not {text!r}")
    return name, int(pid)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8765")
    parser.add_argument("--server-pid", type=int, required=True, help="for its CPU and RSS")
    parser.add_argument("--data-dir", default="data", help="the server's (for the admin key)")
    parser.add_argument("--admin-key", help="instead of reading it from --data-dir")
    parser.add_argument("--room", default="demo", help="a room running the demo scenario")
    parser.add_argument("--workload", choices=sorted(PRESETS), default="GR-S")
    parser.add_argument("--short", action="store_true", help="3 s warm-up, 10 s measured")
    parser.add_argument("--participants", type=int)
    parser.add_argument("--spectators", type=int)
    parser.add_argument("--objects", type=int, help="objects the room has (for --moving)")
    parser.add_argument("--moving", type=int, help="carried objects (participants 0..K-1)")
    parser.add_argument("--active", default="0,1", help="participants moving their hands")
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--spectator-procs", type=int, default=2)
    parser.add_argument("--light-spectators", action="store_true")
    parser.add_argument("--marker-every", type=int, default=30, help="frames between markers")
    parser.add_argument("--join-batch", type=int, default=25)
    parser.add_argument("--late-join-every", type=float, default=5.0)
    parser.add_argument("--grace", type=float, default=2.0)
    parser.add_argument("--label", default="")
    parser.add_argument("--ramp", action="store_true", help="GR-L ramp: spectators in steps")
    parser.add_argument("--ramp-start", type=int)
    parser.add_argument("--ramp-step", type=int, default=250)
    parser.add_argument("--ramp-max", type=int, default=5000)
    parser.add_argument("--ramp-window", type=float)
    parser.add_argument("--ramp-settle", type=float, default=5.0)
    parser.add_argument("--p99-limit", type=float, default=150.0)
    parser.add_argument("--time-budget", type=float, default=900.0)
    parser.add_argument(
        "--spectator-server",
        action="append",
        default=[],
        help="spectators connect here (a relay's base URL; repeat for several)",
    )
    parser.add_argument(
        "--measure", action="append", default=[], help="NAME=PID: report this process's CPU too"
    )
    parser.add_argument("--spectator-seats", type=int, help="seats of the spectators' link")
    parser.add_argument("--out", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from(args)
    try:
        result = trio.run(run, cfg)
    except Exception as exc:  # reported in the JSON, as load.cjs does
        log(f"ERROR {exc!r}")
        result = {"framework": "grandrounds", "workload": cfg.workload, "error": repr(exc)}
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
