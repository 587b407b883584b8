"""The room alone, without sockets: CPU of one GR-S tick, and what recording adds to it.

    python -m bench.room_microbench [--ticks 3000]

8 participants send the workload's motion (bench/motion.py) every tick, the room ticks
and the publisher builds the three views' frames, with the recording off and on.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.motion import Participant, carried_object_pose
from netcode.views import ALL_VIEWS, Role, View
from replay.writer import SessionWriter, new_session_id
from rooms.demo import DemoScenario
from rooms.records import NullRecorder, Recorder
from rooms.room import Room

PARTICIPANTS = 8


def _room_ticks(ticks: int, recorder: Recorder) -> float:
    """CPU seconds per GR-S tick of room work (8 pose inputs, the tick, 3 view frames).

    CPU time, not wall time: the recording's fsyncs wait on the disk in a worker thread.
    """
    room = Room("bench", DemoScenario(1), seed=1, recorder=recorder)
    room.start()
    members = [room.join(Role.PARTICIPANT, f"p{i}") for i in range(PARTICIPANTS)]
    room.tick()
    carried = min(room.world.find("object"))
    room.submit(members[0].id, 1, "grab", {"obj": carried})
    room.tick()
    motion = [Participant(i, PARTICIPANTS, i < 2) for i in range(PARTICIPANTS)]
    flush = getattr(recorder, "flush", None)
    started = time.process_time()
    for tick in range(ticks):
        for index, member in enumerate(members):
            pose = motion[index].pose(tick)
            room.pose(
                member.id,
                {"head": pose[0:7], "left": pose[7:14], "right": pose[14:21]},
                {carried: carried_object_pose(pose)} if index == 0 else None,
            )
        room.tick()
        for view in ALL_VIEWS:
            room.publisher.frame(view, room.tick_no - 1)
        if flush is not None and tick % 15 == 0:
            flush()  # the server flushes twice a second, from a worker thread
    return (time.process_time() - started) / ticks


def measure(ticks: int = 3000) -> tuple[list[str], float]:
    """Report lines, and recording's CPU seconds per second at 30 Hz."""
    bare = _room_ticks(ticks, NullRecorder())
    with tempfile.TemporaryDirectory() as data_dir:
        writer = SessionWriter(data_dir, new_session_id("bench"))
        recorded = _room_ticks(ticks, writer)
        writer.close()
        size = sum(f.stat().st_size for f in Path(writer.path).rglob("*") if f.is_file())
    room = Room("frame", DemoScenario(1), seed=1)
    room.start()
    room.tick()
    frame = len(room.publisher.frame(View.SPECTATOR, room.tick_no - 1))
    extra = recorded - bare
    return [
        f"room alone: {bare * 1e6:.0f} us per GR-S tick "
        f"({PARTICIPANTS} pose inputs, tick, 3 view frames); idle spectator delta {frame} bytes",
        f"recording: {extra * 1e6:.0f} us per tick extra ({extra * 30:.4f} CPU-s/s at 30 Hz); "
        f"{size / (ticks / 30) * 3600 / 1e6:.1f} MB per hour of this workload",
    ], extra * 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=3000)
    lines, _ = measure(parser.parse_args().ticks)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
