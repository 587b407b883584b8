"""A room recording in real time until killed: `python -m tests.replay.crash_writer DIR`.

Prints each tick number once the tick's records are handed to the writer, so the test
knows what the room had recorded when it sent SIGKILL.
"""

from __future__ import annotations

import sys
import time

from replay.synthetic import Bots, make_room
from replay.writer import SessionWriter
from rooms.room import Room


def main(data_dir: str) -> None:
    writer = SessionWriter(data_dir, "crash")
    writer.start_flusher(0.25)
    room = make_room(writer, tick_hz=30, keyframe_seconds=1.0)
    started = time.monotonic()

    def on_tick(room: Room) -> None:
        print(room.tick_no, flush=True)
        delay = started + room.tick_no / 30 - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    Bots(room, participants=4).run(600, on_tick)


if __name__ == "__main__":
    main(sys.argv[1])
