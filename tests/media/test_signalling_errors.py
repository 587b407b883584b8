"""Each kind of bad signalling gets a coded error and changes nothing else."""

from __future__ import annotations

import asyncio

import pytest

from tests.media.harness import WorkerProcess, offer_sdp, publish, subscribe, wait_for

pytestmark = pytest.mark.slow


def test_bad_signalling_gets_coded_errors_and_the_room_carries_on() -> None:
    async def scenario() -> None:
        async with WorkerProcess() as worker:
            publisher = await publish(worker, "r1", "alice", "presenter", audio=True)
            sub = await subscribe(worker, "r1", "bob", role="participant")
            audio_id = publisher.tracks["audio"]

            async def error_of(member: str, role: str, msg: dict[str, object]) -> str:
                (reply,) = await worker.signal("r1", member, role, msg)
                assert reply["op"] == "error", reply
                assert reply["message"]
                return str(reply["code"])

            sdp, tracks = await offer_sdp(audio=True, video=True)
            # malformed SDP
            assert (
                await error_of(
                    "carol",
                    "participant",
                    {
                        "op": "publish",
                        "pc": "p",
                        "sdp": "v=0\r\nthis is not sdp",
                        "tracks": tracks[:1],
                    },
                )
                == "bad_sdp"
            )
            # publishing without the role: spectator audio, participant video
            assert (
                await error_of(
                    "sam",
                    "spectator",
                    {
                        "op": "publish",
                        "pc": "p",
                        "sdp": sdp,
                        "tracks": tracks,
                    },
                )
                == "forbidden_role"
            )
            assert (
                await error_of(
                    "carol",
                    "participant",
                    {
                        "op": "publish",
                        "pc": "p",
                        "sdp": sdp,
                        "tracks": tracks,
                    },
                )
                == "forbidden_role"
            )
            # unknown track: subscribing, muting, announcing a mid not offered
            assert (
                await error_of(
                    "carol",
                    "participant",
                    {
                        "op": "subscribe",
                        "pc": "s",
                        "tracks": ["nobody:x:9"],
                    },
                )
                == "unknown_track"
            )
            assert (
                await error_of(
                    "alice",
                    "presenter",
                    {
                        "op": "mute",
                        "track": "nobody:x:9",
                        "muted": True,
                    },
                )
                == "unknown_track"
            )
            assert (
                await error_of(
                    "alice",
                    "presenter",
                    {
                        "op": "publish",
                        "pc": "p2",
                        "sdp": sdp,
                        "tracks": [{"mid": "7", "kind": "audio"}, *tracks],
                    },
                )
                == "unknown_track"
            )
            # oversize message
            assert (
                await error_of(
                    "carol",
                    "participant",
                    {
                        "op": "publish",
                        "pc": "p",
                        "sdp": "x" * 100_000,
                        "tracks": tracks,
                    },
                )
                == "too_large"
            )
            # muting someone else without being facilitator
            assert (
                await error_of(
                    "bob",
                    "participant",
                    {
                        "op": "mute",
                        "track": audio_id,
                        "muted": True,
                    },
                )
                == "forbidden_role"
            )
            # unknown op, unknown pc, missing fields
            assert await error_of("bob", "participant", {"op": "dance"}) == "bad_message"
            assert (
                await error_of(
                    "bob",
                    "participant",
                    {
                        "op": "answer",
                        "pc": "nope",
                        "sdp": sdp,
                    },
                )
                == "unknown_pc"
            )
            assert await error_of("bob", "participant", {"op": "publish"}) == "bad_message"

            # Nothing else broke: the existing subscriber still receives audio,
            # the facilitator can mute, and nothing half-created lingers.
            count = len(sub.received[audio_id].packets)
            await wait_for(lambda: len(sub.received[audio_id].packets) > count + 20)
            (ack,) = await worker.signal(
                "r1",
                "fay",
                "facilitator",
                {
                    "op": "mute",
                    "track": audio_id,
                    "muted": True,
                },
            )
            assert ack["op"] == "ack"
            muted = await worker.room_events("muted")
            assert muted["msg"] == {"op": "muted", "track": audio_id, "muted": True, "by": "fay"}
            await asyncio.sleep(0.3)
            count = len(sub.received[audio_id].packets)
            await asyncio.sleep(0.5)
            assert len(sub.received[audio_id].packets) == count  # muted: nothing forwarded
            await worker.signal(
                "r1",
                "fay",
                "facilitator",
                {
                    "op": "mute",
                    "track": audio_id,
                    "muted": False,
                },
            )
            await wait_for(lambda: len(sub.received[audio_id].packets) > count + 10)
            stats = await worker.request("stats")
            assert stats["tracks"] == 2 and stats["outputs"] == 2, stats
            # Leaving closes the member's pcs and tells the room.
            await worker.request("leave", room="r1", member="alice")
            gone = await worker.room_events("tracks")
            assert set(gone["msg"]["removed"]) == set(publisher.tracks.values())
            assert (await worker.request("stats"))["tracks"] == 0
            await sub.pc.close()
            await publisher.pc.close()

    asyncio.run(scenario())
