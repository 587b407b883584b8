"""The load generator's participants: reference clients sending the motion model at 30 Hz.

Each participant is a `RoomClient` (it decodes every frame and acks every 10 ticks, as
any client does, and verifies one state checksum in `CHECKSUM_SHARE`, in turn, as the
load generator's spectators do) with its own frame clock, as in `load.cjs`: an
independent random phase, drift-free deadlines, and a late frame dropped rather than
sent in a burst. Participant j below the number of moving objects holds object j's lease
and carries it 5 cm above its right hand, in the same `pose` message (our protocol
carries objects with the pose; Colyseus sends a second message), taking its lease just
before its first frame.
Participant 0 sends the latency markers: once a second its head x becomes
`marker_x(seq)` for 3 frames, with its frame clock re-phased by a random fraction of a
frame before each marker so that marker send times are uniform relative to the
server's tick.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final

import trio

from bench.markers import MAX_SEQ, marker_x
from bench.motion import FPS, Participant, carried_object_pose
from bench.spectator_pool import CHECKSUM_SHARE
from bench.stats import now_ms
from clients.python.client import RoomClient

MARKER_HOLD_FRAMES: Final = 3
PERIOD_MS: Final = 1000 / FPS


@dataclass
class Senders:
    """What every participant's frame clock shares: counters and the markers sent."""

    marker_every: int
    frames_sent: int = 0
    skipped: int = 0
    marker_seq: int = 0
    marker_sends: dict[int, float] = field(default_factory=dict)
    """seq -> send time (ms, CLOCK_MONOTONIC), taken just before the send"""
    stopped: bool = False


@dataclass
class JoinedParticipant:
    index: int
    client: RoomClient
    carried: int | None
    """the entity id of the object it carries"""


async def join_participant(
    url: str, token: str, index: int, carries: bool, nursery: trio.Nursery
) -> JoinedParticipant:
    """Connect and wait for the first state; find the object it will carry (object `index`)."""
    client = RoomClient(url, token, nursery, name=f"participant-{index}")
    # Verify one checksum in CHECKSUM_SHARE, in turn, as the spectators do: 30 participants
    # of one process verifying each (6 ms apiece in a 200-object room) on the same tick
    # stalled the process for some 200 ms a second, and their frame clocks with it.
    client.follower.checksum_share = CHECKSUM_SHARE
    client.follower.checksum_turn = index
    await client.open()
    await own_avatar(client)  # poses before it exists are refused
    carried = None
    if carries:
        objects = sorted(client.mirror.find("object"))
        if index >= len(objects):
            raise RuntimeError(f"the room has {len(objects)} objects; participant {index} carries")
        carried = objects[index]
    return JoinedParticipant(index, client, carried)


async def grab(participant: JoinedParticipant) -> None:
    """Take the lease of the object it carries: just before its frames start, because a
    lease not renewed by a move for 5 s expires (joining 30 participants can take that)."""
    if participant.carried is not None:
        reply = await participant.client.intent("grab", obj=participant.carried)
        if not reply.ok:
            raise RuntimeError(
                f"participant {participant.index} could not grab object {participant.carried}: "
                f"{reply.code}: {reply.message}"
            )


async def own_avatar(client: RoomClient) -> int:
    """The entity of this client's avatar, once its state has it (a tick after joining)."""
    avatar: int = await client.wait_for(
        lambda m: next(
            (e for e, f in m.find("avatar").items() if f["member"] == client.member), None
        )
    )
    return avatar


async def head_entity(participant: JoinedParticipant) -> int:
    """The entity whose pose is this participant's head (where its markers show up)."""
    avatar = await own_avatar(participant.client)
    parts = participant.client.mirror.find("part")
    return next(e for e, f in parts.items() if f["avatar"] == avatar and f["part"] == "head")


async def _sleep_until_ms(when: float) -> None:
    await trio.sleep(max(0.0, (when - now_ms()) / 1000))


async def send_frames(
    participant: JoinedParticipant, count: int, active: bool, senders: Senders
) -> None:
    """Send this participant's frames until `senders.stopped` (load.cjs `startSenders`)."""
    await grab(participant)
    motion = Participant(participant.index, count, active)
    marks = participant.index == 0
    t0 = now_ms() + random.random() * PERIOD_MS
    frame = 0
    hold_until = -1
    marker_value = 0.0
    next_marker = senders.marker_every
    await _sleep_until_ms(t0)
    while not senders.stopped and participant.client.connected:
        due = math.floor((now_ms() - t0) / PERIOD_MS)
        if due > frame:  # a late client drops frames, it does not burst
            senders.skipped += due - frame
            frame = due
        pose = motion.pose(frame)
        if marks:
            if frame >= next_marker and senders.marker_seq < MAX_SEQ:
                senders.marker_seq += 1
                marker_value = marker_x(senders.marker_seq)
                hold_until = frame + MARKER_HOLD_FRAMES
                next_marker = frame + senders.marker_every
                senders.marker_sends[senders.marker_seq] = now_ms()
            if frame < hold_until:
                pose[0] = marker_value
        objects = None
        if participant.carried is not None:
            objects = {participant.carried: carried_object_pose(pose)}
        await participant.client.send_pose(
            head=pose[0:7], left=pose[7:14], right=pose[14:21], objects=objects
        )
        senders.frames_sent += 1
        frame += 1
        if marks and frame == next_marker:
            t0 += (random.random() - 0.5) * PERIOD_MS
        await _sleep_until_ms(t0 + frame * PERIOD_MS)
