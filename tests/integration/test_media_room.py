"""Media through the real room server: WebSocket signalling, real worker, aiortc peers.

The server (trio, in this process, on 127.0.0.1) runs one media worker process. Each
member connects with the Python room client; their aiortc peers live on an asyncio
loop in a thread of their own and signal with `{"t": "rtc", ...}` over the member's
WebSocket, so everything a browser relies on goes through the room server's bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import pytest
import trio

from media.limits import PeerLimits
from netcode.views import Role
from replay.reader import Session
from server.app import Server
from tests.conftest import running, settings_for, ws_url
from tests.integration.media_peers import (
    AsyncioThread,
    RtcClient,
    SwitchableToneTrack,
    WsSignaller,
    aiortc_thread,
    connect_rtc,
)
from tests.media.harness import (
    Publisher,
    Subscriber,
    frame_hashes,
    offer_sdp,
    process_alive,
    publish,
    subscribe,
)

pytestmark = pytest.mark.slow

ROOM = "demo"
WAIT = 45.0
"""Generous: a loaded 2-core machine runs a worker, a server and several peers."""


@contextlib.asynccontextmanager
async def server_with_media(tmp_path: Path, **overrides: Any) -> AsyncIterator[Server]:
    """A running server with one media worker on loopback and a demo room 'demo'."""
    settings = settings_for(
        tmp_path,
        slow_drop_seconds=5.0,
        media_workers=1,
        ice_host_addresses=["127.0.0.1"],
        **overrides,
    )
    async with running(settings) as instance:
        assert instance.media is not None, "media did not start"
        pids = [p for p in instance.media.supervisor.worker_pids() if p]
        assert len(pids) == 1
        yield instance
        # Rooms end before the server stops, as on SIGTERM (a cancelled server stops its
        # media supervisor along with its rooms, so it cannot finish their recordings).
        for host in list(instance.rooms.values()):
            host.request_end("test over")
        with trio.move_on_after(120):
            for host in list(instance.rooms.values()):
                await host.wait_stopped()
    # No worker outlives the server.
    with trio.fail_after(15):
        while any(process_alive(pid) for pid in pids):
            await trio.sleep(0.05)


@pytest.fixture
async def media_server(tmp_path: Path) -> AsyncIterator[Server]:
    async with server_with_media(tmp_path) as instance:
        yield instance


async def until(predicate: Callable[[], Any], timeout: float = WAIT, what: str = "") -> Any:
    """Poll (from trio) state the aiortc thread updates."""
    with trio.fail_after(timeout):
        while not (value := predicate()):
            await trio.sleep(0.05)
    return value


def token(server: Server, role: Role, name: str) -> str:
    return server.issue_token(ROOM, role, name)


async def make_presenter(fac: RtcClient, member: RtcClient, on: bool = True) -> None:
    reply = await fac.intent("present", member=member.member, on=on)
    assert reply.ok, reply
    await member.wait_for(
        lambda m: any(
            a.get("member") == member.member and a.get("presenter") is on
            for a in m.find("avatar").values()
        ),
        timeout=WAIT,
    )


def signaller(client: RtcClient) -> WsSignaller:
    return WsSignaller(client, trio.lowlevel.current_trio_token())


async def publish_on(
    peers: AsyncioThread, client: RtcClient, role: str, *, audio: bool, video: bool, pc: str
) -> Publisher:
    publisher = await peers.run(
        publish(signaller(client), ROOM, str(client.member), role, audio, video, pc_id=pc)
    )
    peers.track(publisher.pc)
    return publisher


async def subscribe_on(peers: AsyncioThread, client: RtcClient, pc: str = "sub") -> Subscriber:
    subscriber = await peers.run(subscribe(signaller(client), ROOM, str(client.member), pc_id=pc))
    peers.track(subscriber.pc)
    return subscriber


async def frames_keep_flowing(*clients: RtcClient, frames: int = 10) -> None:
    """The room still runs: each client gets fresh state frames."""
    before = [c.frames for c in clients]
    for client, start in zip(clients, before, strict=True):
        await until(lambda c=client, s=start: c.frames >= s + frames)
        assert client.connected and client.bye is None


async def test_presenter_video_and_participant_audio_reach_a_spectator(
    media_server: Server,
) -> None:
    url = ws_url(media_server)
    async with (
        connect_rtc(url, token(media_server, Role.FACILITATOR, "Fac")) as fac,
        connect_rtc(url, token(media_server, Role.PARTICIPANT, "Ana")) as ana,
        connect_rtc(url, token(media_server, Role.PARTICIPANT, "Pia")) as pia,
        connect_rtc(url, token(media_server, Role.SPECTATOR, "Sol")) as sol,
        aiortc_thread() as peers,
    ):
        await make_presenter(fac, pia)
        voice = await publish_on(peers, ana, "participant", audio=True, video=False, pc="mic")
        stereo = await publish_on(peers, pia, "presenter", audio=False, video=True, pc="cam")
        audio_id, video_id = voice.tracks["audio"], stereo.tracks["video"]
        assert audio_id.startswith(f"{ana.member}:") and video_id.startswith(f"{pia.member}:")

        # The room heard of the tracks; the spectator's event names the stereo layout.
        added = await sol.wait_rtc_event("tracks", timeout=WAIT)
        assert added["added"]
        await until(
            lambda: (
                {
                    t["track"]: t for e in sol.rtc_events if e["op"] == "tracks" for t in e["added"]
                }.get(video_id, {}).get("layout")
                == "side-by-side"
            )
        )

        watcher = await subscribe_on(peers, sol)
        assert set(watcher.received) == {audio_id, video_id}
        await until(lambda: len(watcher.received[audio_id].packets) > 50)
        await until(lambda: len(watcher.received[video_id].packets) > 60)
        await trio.sleep(0.5)  # let in-flight packets land before comparing

        # What arrived is what was sent, byte for byte (whole frames, forwarded as-is).
        for publisher, kind, track_id in ((voice, "audio", audio_id), (stereo, "video", video_id)):
            sent = set(frame_hashes(list(publisher.sent[kind]), kind))
            got = frame_hashes(list(watcher.received[track_id].packets), kind)
            assert len(got) > 10, (kind, len(got))
            assert set(got) <= sent, kind

        # The spectator's aiortc decodes the video: real side-by-side VP8 at full width.
        frame = await peers.run(asyncio.wait_for(watcher.tracks[video_id].recv(), 20))
        assert (frame.width, frame.height) == (320, 120)

        # A participant who is not presenter may not publish video...
        sdp, tracks = await peers.run(offer_sdp(audio=False, video=True))
        refused = await ana.rtc({"op": "publish", "pc": "cam", "sdp": sdp, "tracks": tracks})
        assert refused["op"] == "error" and refused["code"] == "forbidden_role", refused
        # Nor may a spectator publish anything.
        sdp, tracks = await peers.run(offer_sdp(audio=True, video=False))
        muted = await sol.rtc({"op": "publish", "pc": "mic", "sdp": sdp, "tracks": tracks})
        assert muted["op"] == "error" and muted["code"] == "forbidden_role", muted
        # ...and nothing else broke: state frames reach everyone, media keeps flowing.
        await frames_keep_flowing(fac, ana, pia, sol)
        flowing = len(watcher.received[audio_id].packets)
        await until(lambda: len(watcher.received[audio_id].packets) > flowing + 25)
        assert not [e for e in sol.rtc_events if e["op"] == "tracks" and e.get("removed")]

        # Revoking presenter takes effect on the next message.
        await make_presenter(fac, pia, on=False)
        sdp, tracks = await peers.run(offer_sdp(audio=False, video=True))
        again = await pia.rtc({"op": "publish", "pc": "cam2", "sdp": sdp, "tracks": tracks})
        assert again["op"] == "error" and again["code"] == "forbidden_role", again


async def test_speaking_reaches_the_avatar_in_a_spectators_mirror(media_server: Server) -> None:
    url = ws_url(media_server)
    async with (
        connect_rtc(url, token(media_server, Role.PARTICIPANT, "Ana")) as ana,
        connect_rtc(url, token(media_server, Role.SPECTATOR, "Sol")) as sol,
        aiortc_thread() as peers,
    ):

        def speaking(m: Any) -> bool | None:
            for avatar in m.find("avatar").values():
                if avatar.get("member") == ana.member:
                    return bool(avatar.get("speaking"))
            return None

        await sol.wait_for(lambda m: speaking(m) is False, timeout=WAIT)
        voice = await publish_on(peers, ana, "participant", audio=True, video=False, pc="mic")
        tone = SwitchableToneTrack()
        tone.silent = True

        async def swap_in_switchable_tone() -> None:
            voice.pc.getSenders()[0].replaceTrack(tone)

        await peers.run(swap_in_switchable_tone())
        # Silence is not speaking.
        await trio.sleep(2.0)
        assert speaking(sol.mirror) is False

        tone.silent = False
        await sol.wait_for(lambda m: speaking(m) is True, timeout=WAIT)
        event = await sol.wait_rtc_event("speaking", timeout=WAIT)
        assert event["member"] == str(ana.member) and event["speaking"] is True

        tone.silent = True
        await sol.wait_for(lambda m: speaking(m) is False, timeout=WAIT)
        assert any(e["op"] == "speaking" and e["speaking"] is False for e in sol.rtc_events)


async def test_ending_the_room_lists_its_recorded_tracks_in_the_manifest(
    media_server: Server,
) -> None:
    host = media_server.rooms[ROOM]
    assert host.writer is not None
    session_id = host.writer.session_id
    session_dir = host.writer.path
    url = ws_url(media_server)
    async with (
        connect_rtc(url, token(media_server, Role.FACILITATOR, "Fac")) as fac,
        connect_rtc(url, token(media_server, Role.PARTICIPANT, "Pia")) as pia,
        connect_rtc(url, token(media_server, Role.SPECTATOR, "Sol")) as sol,
        aiortc_thread() as peers,
    ):
        await make_presenter(fac, pia)
        stereo = await publish_on(peers, pia, "presenter", audio=True, video=True, pc="av")
        watcher = await subscribe_on(peers, sol)
        # Media has demonstrably passed through the worker (and so into its recorder).
        await until(lambda: len(watcher.received[stereo.tracks["video"]].packets) > 60)
        await until(lambda: len(watcher.received[stereo.tracks["audio"]].packets) > 50)
        assert (await fac.intent("end")).ok
        await fac.wait_closed(timeout=WAIT)
        with trio.fail_after(120):
            await host.wait_stopped()

    manifest = Session.open(media_server.settings.data_dir, session_id).manifest
    tracks = {t["id"]: t for t in manifest.media_tracks}
    assert set(tracks) == set(stereo.tracks.values()), manifest.media_tracks
    video, audio = tracks[stereo.tracks["video"]], tracks[stereo.tracks["audio"]]
    assert video["kind"] == "video" and video["layout"] == "side-by-side"
    assert audio["kind"] == "audio"
    for entry in (video, audio):
        assert str(entry["member"]) == str(pia.member)
        assert entry["uri"].startswith("media/")
        assert entry["frames"] > 0 and entry["clock_offset_ms"] >= 0
        path = session_dir / entry["uri"]
        assert path.is_file() and path.stat().st_size > 0
        with av.open(str(path)) as container:
            stream = container.streams[0]
            assert stream.type == entry["kind"]
            decoded = sum(1 for packet in container.demux(stream) for _ in packet.decode())
        assert decoded > 0, entry
    with av.open(str(session_dir / video["uri"])) as container:
        assert container.streams.video[0].codec_context.name == "vp8"
        assert (container.streams.video[0].width, container.streams.video[0].height) == (320, 120)


async def test_bad_signalling_is_answered_and_breaks_nothing(media_server: Server) -> None:
    url = ws_url(media_server)
    async with (
        connect_rtc(url, token(media_server, Role.PARTICIPANT, "Ana")) as ana,
        connect_rtc(url, token(media_server, Role.SPECTATOR, "Sol")) as sol,
        aiortc_thread() as peers,
    ):
        sdp, tracks = await peers.run(offer_sdp(audio=True, video=False))
        garbled = await ana.rtc(
            {"op": "publish", "pc": "mic", "sdp": "v=0\r\nthis is not sdp\r\n", "tracks": tracks}
        )
        assert garbled["op"] == "error" and garbled["code"] == "bad_sdp", garbled
        truncated = await ana.rtc(
            {"op": "publish", "pc": "mic", "sdp": sdp[: len(sdp) // 3], "tracks": tracks}
        )
        assert truncated["op"] == "error" and truncated["code"] in ("bad_sdp", "unknown_track")
        unknown = await ana.rtc({"op": "teleport", "pc": "mic"})
        assert unknown["op"] == "error" and unknown["code"] == "bad_message", unknown
        no_pc = await ana.rtc({"op": "answer", "pc": "nope", "sdp": sdp})
        assert no_pc["op"] == "error" and no_pc["code"] == "unknown_pc", no_pc
        assert ana.errors == [] and sol.errors == []
        await frames_keep_flowing(ana, sol)

        # The same member can still publish properly (the refused pc id was never
        # taken), and a spectator still receives it.
        voice = await publish_on(peers, ana, "participant", audio=True, video=False, pc="mic")
        watcher = await subscribe_on(peers, sol)
        await until(lambda: len(watcher.received[voice.tracks["audio"]].packets) > 25)
        assert ana.connected and sol.connected


async def test_peer_connection_limits_and_expired_offers_reach_the_client(tmp_path: Path) -> None:
    """The server's `media_peer_limits` reach the worker: a spectator's subscriptions past
    its cap are refused with a code and a sentence over its WebSocket, its unanswered
    offers expire (`closed offer_expired`), and then it subscribes and hears the room."""
    limits = PeerLimits(subscribe_per_member=2, offer_timeout_s=3.0)
    async with server_with_media(tmp_path, media_peer_limits=limits) as server:
        url = ws_url(server)
        async with (
            connect_rtc(url, token(server, Role.PARTICIPANT, "Ana")) as ana,
            connect_rtc(url, token(server, Role.SPECTATOR, "Sol")) as sol,
            aiortc_thread() as peers,
        ):
            voice = await publish_on(peers, ana, "participant", audio=True, video=False, pc="mic")
            for pc in ("s1", "s2"):
                offer = await sol.rtc({"op": "subscribe", "pc": pc})
                assert offer["op"] == "offer", offer
            third = await sol.rtc({"op": "subscribe", "pc": "s3"})
            assert (third["op"], third["code"], third["pc"]) == ("error", "member_limit", "s3")
            assert "unsubscribe" in third["message"], third

            def expired() -> set[str]:
                return {
                    e["pc"]
                    for e in sol.rtc_events
                    if e.get("op") == "closed" and e.get("reason") == "offer_expired"
                }

            await until(lambda: expired() == {"s1", "s2"})
            watcher = await subscribe_on(peers, sol)
            await until(lambda: len(watcher.received[voice.tracks["audio"]].packets) > 25)
            assert sol.errors == [] and ana.errors == []


async def test_a_track_that_recorded_nothing_does_not_cost_the_session(
    media_server: Server,
) -> None:
    host = media_server.rooms[ROOM]
    assert host.writer is not None
    session_id = host.writer.session_id
    url = ws_url(media_server)
    async with (
        connect_rtc(url, token(media_server, Role.FACILITATOR, "Fac")) as fac,
        connect_rtc(url, token(media_server, Role.PARTICIPANT, "Pia")) as pia,
        aiortc_thread() as peers,
    ):
        await make_presenter(fac, pia)
        # A camera that never sends a frame (denied, or the room ends first).
        sdp, tracks = await peers.run(offer_sdp(audio=False, video=True))
        answer = await pia.rtc({"op": "publish", "pc": "cam", "sdp": sdp, "tracks": tracks})
        assert answer["op"] == "answer", answer
        assert (await fac.intent("end")).ok
        await fac.wait_closed(timeout=WAIT)
        with trio.fail_after(WAIT):
            await host.wait_stopped()

    session = Session.open(media_server.settings.data_dir, session_id)
    assert session.sealed
    for entry in session.manifest.media_tracks:
        assert (host.writer.path / entry["uri"]).is_file(), entry
    # The server carries on: a new room runs.
    await media_server.create_room("after", "demo", room_id="after")
    async with connect_rtc(url, media_server.issue_token("after", Role.PARTICIPANT, "Ana")) as ana:
        await ana.wait_for(lambda m: m.find("avatar"), timeout=WAIT)


async def test_a_cancelled_server_still_stops_its_rooms_media_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path, media_workers=1, ice_host_addresses=["127.0.0.1"])
    async with running(settings) as server:
        host = server.rooms[ROOM]
        assert host.writer is not None
        session_id = host.writer.session_id
        url = ws_url(server)
        async with (
            connect_rtc(url, token(server, Role.PARTICIPANT, "Ana")) as ana,
            connect_rtc(url, token(server, Role.SPECTATOR, "Sol")) as sol,
            aiortc_thread() as peers,
        ):
            voice = await publish_on(peers, ana, "participant", audio=True, video=False, pc="mic")
            watcher = await subscribe_on(peers, sol)
            await until(lambda: len(watcher.received[voice.tracks["audio"]].packets) > 25)
        # Leaving the block cancels the server with its room still live.

    session = Session.open(settings.data_dir, session_id)
    assert session.sealed
    assert [t["id"] for t in session.manifest.media_tracks] == [voice.tracks["audio"]]
    unanswered = [r.getMessage() for r in caplog.records if "did not answer" in r.getMessage()]
    assert unanswered == []


@pytest.mark.slow
async def test_killing_the_media_worker_keeps_the_room_running_and_asks_to_renegotiate(
    media_server: Server,
) -> None:
    server = media_server
    assert server.media is not None
    url = ws_url(server)
    async with (
        connect_rtc(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
        connect_rtc(url, server.issue_token("demo", Role.SPECTATOR, "Sol")) as sol,
    ):
        await sol.wait_for(lambda m: m.find("avatar"), timeout=WAIT)
        [pid] = [p for p in server.media.supervisor.worker_pids() if p]
        os.kill(pid, 9)
        for client in (ana, sol):
            event = await client.wait_rtc_event("renegotiate", timeout=WAIT)
            assert event["reason"] == "worker_restarted"
        # The room never noticed: state kept flowing to everyone, with no repair needed.
        tick = sol.mirror.tick or 0
        await sol.wait_for(lambda m: (m.tick or 0) > tick + 10, timeout=WAIT)
        assert (await ana.intent("chat", text="still here")).ok
        assert sol.resyncs == 0 and ana.resyncs == 0
        [new_pid] = [p for p in server.media.supervisor.worker_pids() if p]
        assert new_pid != pid and process_alive(new_pid)
        # And media signalling works again on the new worker.
        reply = await sol.rtc({"op": "subscribe", "pc": "after-restart"}, timeout=WAIT)
        assert reply["op"] != "error" or reply["code"] != "worker_unavailable", reply
