"""Simulated participants and spectators: `grandrounds bots`, and the GR-S load generator.

Participants send head and hands at 30 Hz (the first `moving` of them move their hands,
the rest hold still with sub-millimetre jitter); one carries a shared object where the
room has one. In a room running a case, participants also act on it now and then with
valid actions taken from the case's catalog (examine, order, oxygen, call for help).
Most spectators are "light": they read every frame but decode one in thirty; every
tenth decodes and checks everything. Moving hands step 3 mm per send, so each position
is unique and a full spectator can tell exactly when the pose it sees was sent.

Every refusal, every `bye` and every connection the server dropped is counted as an
error: a run against a server that died reports it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from clients.python.client import RoomClient, connect

POSE_HZ = 30
ACT_EVERY_S = 2.0
"""How often a participant acts on the case (where the case has a catalog)."""


@dataclass
class Tally:
    """What the bots saw, per kind of bot."""

    started: float = field(default_factory=time.perf_counter)
    participant_bytes: list[int] = field(default_factory=list)
    spectator_bytes: list[int] = field(default_factory=list)
    frames: int = 0
    errors: list[str] = field(default_factory=list)
    actions: int = 0
    """Case actions the room accepted."""
    resyncs: int = 0
    join_ms: list[float] = field(default_factory=list)
    resume_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    sent_at: dict[int, dict[int, float]] = field(default_factory=dict)
    """moving hand entity id -> x in mm -> when that pose was sent"""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _first_state(client: RoomClient, started: float) -> float:
    await client.wait_for(lambda m: m.tick is not None, timeout=10)
    return (time.perf_counter() - started) * 1000


async def _next_delta(client: RoomClient) -> None:
    seen = client.mirror.deltas
    await client.wait_for(lambda m: m.deltas > seen, timeout=10)


async def participant(
    url: str,
    token: str,
    index: int,
    moving: bool,
    carry: bool,
    seconds: float,
    tally: Tally,
    resume_at: float | None,
) -> None:
    started = time.perf_counter()
    async with connect(url, token, name=f"bot-{index}") as client:
        tally.join_ms.append(await _first_state(client, started))
        avatar = await client.wait_for(
            lambda m: next(
                (e for e, f in m.find("avatar").items() if f["member"] == client.member), None
            )
        )
        left = next(
            e
            for e, f in client.mirror.find("part").items()
            if f["avatar"] == avatar and f["part"] == "left"
        )
        carried = None
        objects = client.mirror.find("object")
        if carry and objects:  # a case room may have no shared object to carry
            carried = min(objects)
            if not (await client.intent("grab", obj=carried)).ok:
                carried = None
        acts = case_actions(client.mirror.find("catalog"), index)
        next_act = trio.current_time() + ACT_EVERY_S * (1 + index % 3)
        rng = random.Random(index)
        seat = (math.cos(index) * 1.5, 0.0, math.sin(index) * 1.5)
        sent_at = tally.sent_at.setdefault(left, {}) if moving else {}
        end = trio.current_time() + seconds
        step = 0
        resumed = resume_at is None
        while trio.current_time() < end:
            step += 1
            jitter = [rng.uniform(-0.0003, 0.0003) for _ in range(3)]
            head = (seat[0] + jitter[0], 1.6 + jitter[1], seat[2] + jitter[2], 0, 0, 0, 1)
            if moving:
                x = seat[0] + ((step * 3) % 1000 - 500) / 1000  # 3 mm a step, unique in a lap
                hand_left = (x, 1.1, seat[2] + 0.3, 0, 0, 0, 1)
                sent_at[round(x * 1000)] = time.perf_counter()
                if len(sent_at) > 400:
                    del sent_at[next(iter(sent_at))]
            else:
                hand_left = (seat[0] - 0.2 + jitter[0], 1.1, seat[2] + 0.3, 0, 0, 0, 1)
            hand_right = (seat[0] + 0.2 + jitter[1], 1.1 + jitter[2], seat[2] + 0.3, 0, 0, 0, 1)
            carried_pose = None
            if carried is not None:
                angle = step / POSE_HZ
                carried_pose = {
                    carried: (
                        math.cos(angle) * 0.5,
                        1.0,
                        math.sin(angle) * 0.5,
                        0,
                        math.sin(angle / 2),
                        0,
                        math.cos(angle / 2),
                    )
                }
            if not client.connected:
                break  # the server dropped us: counted below
            try:
                await client.send_pose(
                    head=head, left=hand_left, right=hand_right, objects=carried_pose
                )
                if acts and trio.current_time() >= next_act:
                    next_act += ACT_EVERY_S
                    action, args = acts[step % len(acts)]
                    reply = await client.intent(action, **args)
                    if reply.ok:
                        tally.actions += 1
                    elif reply.code not in ("bad_state", "paused"):  # the case's state, not ours
                        tally.errors.append(f"{action} refused ({reply.code}): {reply.message}")
            except ConnectionError:
                break  # the server dropped us mid-send: counted below
            if (
                not resumed
                and resume_at is not None
                and trio.current_time() > end - seconds + resume_at
            ):
                resumed = True
                await client.drop()
                before = time.perf_counter()
                await client.reconnect()
                await _next_delta(client)
                tally.resume_ms.append((time.perf_counter() - before) * 1000)
            await trio.sleep(1 / POSE_HZ)
        tally.participant_bytes.append(client.bytes_received)
        tally.frames += client.frames
        tally.resyncs += client.resyncs
        tally.errors += _errors_of(client)


def case_actions(catalog: Mapping[int, Mapping[str, Any]], index: int) -> list[tuple[str, Any]]:
    """Valid case actions from the case's catalog (none without one), varied per bot."""
    if not catalog:
        return []
    fields = next(iter(catalog.values()))
    picks = (
        ("examine", "region", "examine"),
        ("order", "test", "tests"),
        ("oxygen", "device", "oxygen"),
        ("call_help", "team", "help"),
    )
    acts: list[tuple[str, Any]] = []
    for action, arg, key in picks:
        items = fields.get(key)
        if isinstance(items, list) and items:
            acts.append((action, {arg: items[index % len(items)]["id"]}))
    return acts


def _errors_of(client: RoomClient) -> list[str]:
    """What went wrong for one bot: refusals, and a connection the server ended."""
    errors = [f"{code}: {msg}" for code, msg in client.errors]
    if client.bye is not None:
        errors.append(f"bye {client.bye[0]}: {client.bye[1]}")
    elif not client.connected:
        errors.append("the server closed the connection")
    return errors


async def spectator(url: str, token: str, light: bool, seconds: float, tally: Tally) -> None:
    def on_frame(frame: Mapping[str, Any], now: float) -> None:
        for eid, pose in frame.get("p", {}).items():
            sent = tally.sent_at.get(int(eid))
            if sent is not None:
                when = sent.get(pose[0])
                if when is not None:
                    tally.latency_ms.append((now - when) * 1000)

    started = time.perf_counter()
    async with connect(url, token, light=light, on_frame=None if light else on_frame) as client:
        if not light:
            tally.join_ms.append(await _first_state(client, started))
        with trio.move_on_after(seconds):
            while client.connected:
                await trio.sleep(0.25)
        tally.spectator_bytes.append(client.bytes_received)
        tally.frames += client.frames
        tally.resyncs += client.resyncs
        tally.errors += _errors_of(client)


def admin_key(data_dir: Path | None) -> str:
    key = os.environ.get("GRANDROUNDS_ADMIN_KEY", "")
    if not key and data_dir is not None and (data_dir / "secrets.json").exists():
        key = json.loads((data_dir / "secrets.json").read_text())["admin_key"]
    if not key:
        raise SystemExit("no admin key: set GRANDROUNDS_ADMIN_KEY or pass --data-dir")
    return key


async def run_bots(
    server: str,
    key: str,
    room: str | None,
    participants: int,
    spectators: int,
    seconds: float,
    moving: int = 2,
    carry: bool = True,
    full_every: int = 10,
    resumes: int = 0,
) -> Tally:
    """Run the bots against `server` (http://host:port) and return what they saw."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=10) as http:
        if room is None:
            listed = (await http.get("/api/rooms")).json()["rooms"]
            live = [r["id"] for r in listed if r["id"] == "demo" and r["status"] != "ended"]
            if live:
                room = live[0]
            else:
                created = await http.post("/api/rooms", json={"title": "bots"})
                created.raise_for_status()
                room = created.json()["id"]

        async def token(role: str, name: str) -> str:
            answer = await http.post(f"/api/rooms/{room}/tokens", json={"role": role, "name": name})
            answer.raise_for_status()
            return str(answer.json()["token"])

        participant_tokens = [await token("participant", f"bot-{i}") for i in range(participants)]
        spectator_token = await token("spectator", "spectator-bot")
    url = server.replace("http", "ws", 1) + "/ws"
    tally = Tally()
    async with trio.open_nursery() as nursery:
        for i, tok in enumerate(participant_tokens):
            resume_at = seconds / 2 if i >= participants - resumes else None
            nursery.start_soon(
                participant, url, tok, i, i < moving, carry and i == 0, seconds, tally, resume_at
            )
        await trio.sleep(0.5)
        for i in range(spectators):
            light = full_every == 0 or i % full_every != 0
            nursery.start_soon(spectator, url, spectator_token, light, seconds - 0.5, tally)
            if i % 20 == 19:
                await trio.sleep(0.05)
    return tally


def report(tally: Tally, seconds: float) -> list[str]:
    def per_second(values: list[int], duration: float) -> str:
        if not values:
            return "n/a"
        return f"{statistics.mean(values) / duration / 1000:.2f} KB/s"

    return [
        f"participant state received: {per_second(tally.participant_bytes, seconds)} each",
        f"spectator state received:   {per_second(tally.spectator_bytes, seconds - 0.5)} each",
        f"pose-to-spectator latency:  p50 {percentile(tally.latency_ms, 50):.1f} ms, "
        f"p99 {percentile(tally.latency_ms, 99):.1f} ms ({len(tally.latency_ms)} samples)",
        f"join to first state:        p50 {percentile(tally.join_ms, 50):.1f} ms, "
        f"p99 {percentile(tally.join_ms, 99):.1f} ms",
        "reconnect to resumed:       "
        + (
            f"p50 {percentile(tally.resume_ms, 50):.1f} ms, max {max(tally.resume_ms):.1f} ms"
            if tally.resume_ms
            else "n/a"
        ),
        f"case actions accepted: {tally.actions}",
        f"frames: {tally.frames}, resyncs: {tally.resyncs}, errors: {len(tally.errors)}"
        + (f" (first: {tally.errors[0]})" if tally.errors else ""),
    ]


def _command(args: argparse.Namespace) -> int:
    key = args.admin_key or admin_key(args.data_dir)
    try:
        tally = trio.run(
            lambda: run_bots(
                args.server,
                key,
                args.room,
                args.participants,
                args.spectators,
                args.seconds,
                args.moving,
                full_every=args.full_every,
                resumes=args.resumes,
            )
        )
    except httpx.HTTPError as exc:
        print(f"bots: the server at {args.server} did not answer: {exc}", file=sys.stderr)
        return 1
    for line in report(tally, args.seconds):
        print(line)
    return 1 if tally.errors or tally.resyncs else 0


def register(commands: Any) -> None:
    bots = commands.add_parser("bots", help="run simulated participants and spectators")
    bots.add_argument("--server", required=True, help="server base URL, e.g. http://127.0.0.1:8765")
    bots.add_argument("--room", help="room id (default: the demo room, or a new room)")
    bots.add_argument("--participants", type=int, default=2)
    bots.add_argument("--spectators", type=int, default=0)
    bots.add_argument("--seconds", type=float, default=10.0)
    bots.add_argument("--moving", type=int, default=2, help="participants moving their hands")
    bots.add_argument(
        "--resumes", type=int, default=0, help="participants that drop and resume half-way"
    )
    bots.add_argument(
        "--full-every",
        type=int,
        default=10,
        help="every Nth spectator decodes and checks everything; the rest are light (0: all)",
    )
    bots.add_argument("--data-dir", type=Path, help="server data directory (for the admin key)")
    bots.add_argument("--admin-key", help="admin key (default: $GRANDROUNDS_ADMIN_KEY)")
    bots.set_defaults(func=_command)
