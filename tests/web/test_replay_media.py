"""The replay viewer plays a session's recorded voice and stereo video in step with its
play head: a participant page publishes its (fake) microphone and a presenter page its
side-by-side stereo video through the server's media workers, the room ends, the manifest
lists both tracks, and the replay page's <audio> and <video> load, play, and follow a seek
(media time = session time - the track's clock offset). axe-core finds nothing serious."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from tests.web.conftest import WebServer, axe_violations, screenshot
from tests.web.media import decoded, speak_and_present
from tests.web.test_replay import admin_post

pytestmark = pytest.mark.slow

TOLERANCE_S = 0.5


def admin_get(server: WebServer, path: str) -> Any:
    request = urllib.request.Request(
        server.base + path, headers={"Authorization": f"Bearer {server.admin_key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def end_room(server: WebServer) -> None:
    request = urllib.request.Request(
        server.base + "/api/rooms/demo",
        method="DELETE",
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202


def record_voice_and_stereo_video(server: WebServer, open_page: Any) -> None:
    """A speaker and a presenter publish through the media workers until a watcher decodes
    both (so the workers' recorders have them too), for a few seconds."""
    console = speak_and_present(server, open_page)
    stats = decoded(console, samples=48_000 * 3, frames=90)
    assert stats.get("audioSamples", 0) > 0 and stats.get("framesDecoded", 0) > 0, stats


def recorded_session(server: WebServer) -> dict[str, Any]:
    """End the room; the sealed session's manifest once it lists the media tracks."""
    end_room(server)
    deadline = time.monotonic() + 60
    while True:
        sessions = admin_get(server, "/api/sessions")["sessions"]
        done = [s for s in sessions if s.get("media_tracks") and s.get("ended_at")]
        if done:
            return done[-1]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"no session listed its media: {sessions}"
        time.sleep(0.5)


MEDIA_JS = "() => window.grandRounds.media.state()"


def media_state(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(MEDIA_JS)  # type: ignore[no-any-return]


def in_step(page: Any) -> list[str]:
    """Elements within their range that are not at the play head (or not loaded); the head
    is the last `playback` message's position, run on at its speed while playing."""
    return page.evaluate(  # type: ignore[no-any-return]
        """(tolerance) => {
            const g = window.grandRounds;
            const head = g.media.headAt(performance.now()); // between playback messages
            return g.media.state()
                .filter((t) => head >= t.offset && head < t.offset + t.duration)
                .filter((t) => t.readyState < 2
                    || Math.abs(t.currentTime - (head - t.offset)) > tolerance)
                .map((t) => `${t.kind} ${t.id}: readyState ${t.readyState},`
                    + ` at ${t.currentTime.toFixed(2)} for head ${head.toFixed(2)}`);
        }""",
        TOLERANCE_S,
    )


def wait_in_step(page: Any, seconds: float = 30) -> None:
    """Wait until every element in range is loaded and at the play head. Moving an element
    to the head (a seek, also the small one a pause makes) takes it back to readyState 1
    until the frame there is decoded from the keyframe before it, so "in step" is awaited
    (bounded), not sampled at one instant."""
    deadline = time.monotonic() + seconds
    while (behind := in_step(page)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not behind, behind


def seek(page: Any, target: float) -> float:
    """Move the position slider to `target` as a user would (dragging it, then letting go);
    the value it took (its steps) when let go, read in the same turn as the release."""
    page.fill("#seek", str(target))
    return float(
        page.evaluate(
            """() => {
                const slider = document.querySelector('#seek');
                const took = slider.value;
                slider.dispatchEvent(new Event('change', { bubbles: true }));
                return took;
            }"""
        )
    )


def test_replay_plays_recorded_voice_and_video_in_step(
    web_server: WebServer, open_page: Any
) -> None:
    record_voice_and_stereo_video(web_server, open_page)
    session = recorded_session(web_server)
    tracks = {t["kind"]: t for t in session["media_tracks"]}
    assert set(tracks) == {"audio", "video"}, session["media_tracks"]
    assert tracks["video"]["layout"] == "side-by-side"
    assert all(t["uri"].startswith("media/") and t["frames"] > 0 for t in tracks.values())

    grant = admin_post(web_server, f"/api/sessions/{session['id']}/tokens", {"view": "spectator"})
    page = open_page(
        f"{web_server.base}/replay.html?session={session['id']}&token={grant['token']}"
    )
    manifest = page.evaluate("() => window.grandRounds.player.manifest")
    page.wait_for_function("() => window.grandRounds.media.tracks.length === 2")
    assert {t["id"] for t in manifest["media_tracks"]} == {t["id"] for t in tracks.values()}
    page.wait_for_function(
        "() => [...document.querySelectorAll('#replay-audio audio')]"
        ".map(a => a.getAttribute('aria-label')).join() === 'Recorded voice of Dr Voice'"
    )

    # Seek (paused) to a moment inside both tracks: each element is at target - offset.
    offsets = {kind: t["clock_offset_ms"] / 1000 for kind, t in tracks.items()}
    ends = [offsets[k] + t["duration_ms"] / 1000 for k, t in tracks.items()]
    target = round(max(offsets.values()) + 1.0, 1)
    assert target + 1.5 < min(ends), f"the tracks overlap too little: {offsets} {ends}"
    target = seek(page, target)
    page.wait_for_function(
        "(t) => Math.abs(window.grandRounds.player.seconds - t) < 0.1", arg=target
    )
    page.wait_for_function(
        """([target, tolerance]) => {
            const all = window.grandRounds.media.state();
            return all.length === 2 && all.every((t) => t.readyState >= 2 && t.paused
                && Math.abs(t.currentTime - (target - t.offset)) < tolerance);
        }""",
        arg=[target, TOLERANCE_S],
        timeout=30_000,  # decoding from the keyframe before the target: slow on a busy machine
    )
    page.wait_for_selector("#stereo:not([hidden])")

    # Play: the elements run, decode, and stay with the play head.
    before = {t["kind"]: t for t in media_state(page)}
    page.click("#play")
    page.wait_for_function(
        "() => document.querySelector('#play').getAttribute('aria-pressed') === 'true'"
    )
    time.sleep(1.2)
    during = {t["kind"]: t for t in media_state(page)}
    for kind in ("audio", "video"):
        assert not during[kind]["paused"], during
        assert during[kind]["currentTime"] > before[kind]["currentTime"] + 0.5, (before, during)
    assert during["video"]["decodedFrames"] > (before["video"]["decodedFrames"] or 0), during
    wait_in_step(page)

    # The viewer's choice of stereo display, as in the live view: anaglyph is one eye wide.
    page.select_option("#stereo-mode", "anaglyph")
    page.wait_for_function(
        "() => { const c = document.querySelector('#stereo canvas');"
        " const v = document.querySelector('#stereo video');"
        " return v.videoWidth > 0 && c.width === v.videoWidth / 2; }"
    )

    # Seek while playing, then at double speed: still in step.
    target = round(max(offsets.values()) + 0.3, 1)
    target = seek(page, target)
    page.wait_for_function(
        "(t) => Math.abs(window.grandRounds.player.seconds - t) < 0.6", arg=target
    )
    page.select_option("#speed", "2")
    page.wait_for_function(
        "() => window.grandRounds.media.state().every((t) => t.playbackRate === 2)"
    )
    time.sleep(0.6)
    wait_in_step(page)

    # Pause: everything stops where the play head stopped. (On a slow machine the replay
    # may have reached its end by itself first, which stops it too: the button is only
    # pressed while it still plays, checked in the same turn as the press.)
    page.evaluate(
        "() => { if (window.grandRounds.player.playing) document.querySelector('#play').click(); }"
    )
    page.wait_for_function(
        "() => window.grandRounds.media.state().every((t) => t.paused)"
        " && !window.grandRounds.player.playing"
    )
    wait_in_step(page)
    screenshot(page, "replay-media")
    violations = axe_violations(page)
    assert not violations, [(v["id"], v["impact"]) for v in violations]
