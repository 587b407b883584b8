"""Issue 9's review crashes, against a real server process with a live room beside them.

5: a reviewer seeking while playback advances (two threads on one reader) ended the
   process; now one process (`server/review_process.py`) owns each review stream's
   recording and takes its commands one at a time.
6: seeking or playing into a damaged recording raised out of the stream; now the
   reviewer gets `damaged_recording` and the timeline up to the damage.
8: a seek to inf or NaN overflowed `tick_of`; now every steering argument is a strict,
   finite pydantic field and a bad one is `bad_args` naming it.
Each test runs in the shared fault harness (`tests/faults/harness.py`): afterwards
`/healthz` answers, the live room's honest participant and spectator kept receiving
frames whose checksums matched, and the live room's recording verifies.
"""

from __future__ import annotations

import random
from pathlib import Path

import psutil
import pytest
import trio

from clients.python import RoomClient, connect
from netcode.codec import Intent, ProtocolError
from replay.index import IndexFile
from replay.layout import segment_files
from replay.synthetic import run_session
from replay.writer import SessionWriter
from server.review import steering_args
from tests.faults.harness import HonestRoom, honest_room

pytestmark = pytest.mark.slow


def recorded_session(data_dir: Path, session_id: str, seconds: float) -> Path:
    """A GR-S session recorded by the project's writer into the server's data folder."""
    writer = SessionWriter(data_dir, session_id, fsync=False, segment_bytes=64 * 1024)
    run_session(writer, seconds, participants=4, keyframe_seconds=2.0)
    writer.close()
    return writer.path


async def review_token(h: HonestRoom, session_id: str) -> str:
    answer = await h.server.http("POST", f"/api/sessions/{session_id}/tokens", {}, admin=True)
    assert answer.status == 201, answer
    return str(answer.json()["token"])


async def _steady(reviewer: RoomClient) -> None:
    """The reviewer's mirror holds a state and never disagreed with a checksum."""
    await reviewer.wait_for(lambda m: m.tick is not None)
    assert reviewer.resyncs == 0


async def test_seeking_while_playing_is_serialised(tmp_path: Path) -> None:
    """Crash 5: a reviewer scrubs while the session plays at 16x."""
    data = tmp_path / "data"
    recorded_session(data, "long", 90)
    rng = random.Random(5)
    async with honest_room(tmp_path) as h:
        token = await review_token(h, "long")
        async with connect(h.server.ws_url, token) as reviewer:
            assert (await reviewer.intent("speed", x=16)).ok
            assert (await reviewer.intent("play")).ok
            for _ in range(150):
                reply = await reviewer.intent("seek", seconds=rng.uniform(0, 90))
                assert reply.ok, reply
                if rng.random() < 0.2:
                    assert (await reviewer.intent("play")).ok
                await trio.sleep(rng.uniform(0, 0.02))
            reply = await reviewer.intent("seek", seconds=30.0)
            assert reply.ok
            await reviewer.wait_for(lambda m: m.tick is not None and m.tick >= 900)
            await _steady(reviewer)
            assert reviewer.bye is None and not reviewer.errors

        await h.check()


async def test_a_damaged_recording_answers_the_reviewer_only(tmp_path: Path) -> None:
    """Crash 6: seek and play into a corrupt sealed segment."""
    data = tmp_path / "data"
    path = recorded_session(data, "damaged", 60)
    segments = segment_files(path)
    number, victim, sealed = segments[len(segments) // 2]
    span = IndexFile.load(path).segments[number]
    assert sealed and span.last_tick - span.first_tick > 10
    buf = bytearray(victim.read_bytes())
    buf[len(buf) // 2] ^= 0xFF
    victim.write_bytes(bytes(buf))
    async with honest_room(tmp_path) as h:
        token = await review_token(h, "damaged")
        async with connect(h.server.ws_url, token) as reviewer:
            end = reviewer.welcome["review"]["last_tick"] / reviewer.welcome["tick_hz"]
            # play through the damage at 16x: the play head stops before it, with a reason
            assert (await reviewer.intent("speed", x=16)).ok
            assert (await reviewer.intent("play")).ok
            await reviewer.wait_for(lambda m: bool(reviewer.playback.get("damaged")), timeout=20)
            damaged = reviewer.playback["damaged"]
            assert damaged["code"] == "corrupt_segment" and 0 < damaged["seconds"] < end
            assert [code for code, _ in reviewer.errors] == ["damaged_recording"]
            assert reviewer.playback["playing"] is False
            # seeking into the damaged span: refused with a sentence, the state up to it shown
            hz = reviewer.welcome["tick_hz"]
            reply = await reviewer.intent("seek", seconds=(damaged["tick"] + 1) / hz)
            assert not reply.ok and reply.code == "damaged_recording"
            assert "cannot be read past" in reply.message
            await reviewer.wait_for(lambda m: m.tick == damaged["tick"])
            # the intact parts still play
            assert (await reviewer.intent("seek", seconds=1.0)).ok
            await reviewer.wait_for(lambda m: m.tick == hz)
            assert (await reviewer.intent("seek", seconds=end - 0.5)).ok
            await _steady(reviewer)
            assert reviewer.connected and reviewer.bye is None

        await h.check()


NON_FINITE = [
    ("seek", {"seconds": float("inf")}),
    ("seek", {"seconds": float("-inf")}),
    ("seek", {"seconds": float("nan")}),
    ("speed", {"x": float("nan")}),
    ("speed", {"x": float("inf")}),
]
BAD_STEERING = [
    ("seek", {"seconds": 1e308}, "seconds"),
    ("seek", {"seconds": True}, "seconds"),
    ("seek", {"seconds": "12"}, "seconds"),
    ("seek", {}, "seconds"),
    ("speed", {"x": 1000}, "x"),
    ("play", {"at": 3}, "at"),
]


async def test_non_finite_and_bad_steering_is_refused(tmp_path: Path) -> None:
    """Crash 8: a seek to inf or NaN, and every other bad steering argument."""
    data = tmp_path / "data"
    recorded_session(data, "short", 10)
    async with honest_room(tmp_path) as h:
        token = await review_token(h, "short")
        async with connect(h.server.ws_url, token) as reviewer:
            for number, (action, args) in enumerate(NON_FINITE):
                # no number on the wire may be non-finite: the codec refuses the message
                await reviewer.send(
                    {"t": "intent", "id": 1000 + number, "do": action, "args": args}
                )
                await reviewer.wait_for(lambda _m, n=number: len(reviewer.errors) > n)
                code, message = reviewer.errors[number]
                assert code == "bad_message" and "finite" in message, (code, message)
            for action, args, field in BAD_STEERING:  # the steering models name the field
                reply = await reviewer.intent(action, **args)
                assert not reply.ok and reply.code == "bad_args", (action, args, reply)
                assert reply.message.startswith(f"{action}: {field}: "), reply.message
            assert (await reviewer.intent("seek", seconds=2.0)).ok  # the stream carries on
            await reviewer.wait_for(lambda m: m.tick == 2 * reviewer.welcome["tick_hz"])
            await _steady(reviewer)
            assert reviewer.bye is None

        await h.check()


def test_the_steering_models_refuse_non_finite_numbers_themselves() -> None:
    """Behind the codec, the review models hold the same rule (defence in depth)."""
    for action, args in NON_FINITE:
        with pytest.raises(ProtocolError) as refused:
            steering_args(Intent(t="intent", id=1, do=action, args=args))
        assert refused.value.code == "bad_args"
        assert "finite" in refused.value.message


async def test_a_review_process_that_dies_fails_its_reviewer_only(tmp_path: Path) -> None:
    """The process that owns a review stream's recording is killed: that reviewer is told
    (`internal_error` with an error id), the fault is reported once through the server's
    fault boundary under that id, and the live room and the server carry on."""
    data = tmp_path / "data"
    recorded_session(data, "short", 10)
    async with honest_room(tmp_path) as h:
        token = await review_token(h, "short")
        async with connect(h.server.ws_url, token) as reviewer:
            assert (await reviewer.intent("seek", seconds=2.0)).ok
            (worker,) = [
                p
                for p in psutil.Process(h.server.process.pid).children()
                if "server.review_process" in " ".join(p.cmdline())
            ]
            worker.kill()
            reply = await reviewer.intent("seek", seconds=3.0)
            assert not reply.ok and reply.code == "internal_error", reply
            assert reviewer.connected
            error_id = reply.message.rsplit("error ", 1)[-1].rstrip(")")
            (report,) = h.log.boundary_reports()
            assert error_id in report.header and "review worker" in report.header, report
        async with connect(h.server.ws_url, token) as again:  # a new stream, a new process
            assert (await again.intent("seek", seconds=3.0)).ok
        await h.check()
