"""WebRTC in Chromium through the server's media workers: a spectator page receives a
participant's voice and the presenter's side-by-side stereo video (getStats shows audio
samples and video frames decoded), shows the speaker as speaking, sees the facilitator
mute them, shows the video as anaglyph, and in low-bandwidth mode takes voices only."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.web.conftest import WebServer, screenshot
from tests.web.media import decoded, speak_and_present
from tests.web.test_views import keep

pytestmark = pytest.mark.slow


def test_spectator_receives_voice_and_stereo_video(web_server: WebServer, open_page: Any) -> None:
    spectator = open_page(web_server.page_url("spectator", "Student"))
    console = speak_and_present(web_server, open_page)
    stats = decoded(spectator, samples=0, frames=5)
    status = spectator.inner_text("#media-status")
    assert stats.get("audioSamples", 0) > 0, f"no audio decoded: {stats}; {status}"
    assert stats.get("framesDecoded", 0) > 5, f"no video decoded: {stats}; {status}"

    spectator.wait_for_function(
        "() => document.querySelector('#participants .person.speaking')"
        "?.textContent.includes('Dr Voice')",
        timeout=15_000,
    )
    console.wait_for_function(
        "() => [...window.grandRounds.media.tracks.values()].some(t => t.kind === 'audio')"
    )
    console.click("button[aria-label='Mute Dr Voice']")
    console.wait_for_selector("button[aria-label='Unmute Dr Voice']")
    spectator.wait_for_function(
        "() => [...window.grandRounds.media.tracks.values()]"
        ".some(t => t.kind === 'audio' && t.muted)"
    )
    spectator.wait_for_selector("#stereo:not([hidden])")
    spectator.select_option("#stereo-mode", "anaglyph")
    time.sleep(0.5)
    canvas, video = spectator.evaluate(
        "() => [document.querySelector('#stereo canvas').width,"
        " document.querySelector('#stereo video').videoWidth]"
    )
    assert video > 0 and canvas == video // 2, (
        "anaglyph shows one eye's width of the side-by-side frame"
    )
    keep(screenshot(spectator, "spectator-media"), "spectator-media.png")

    spectator.check("#low-bandwidth")
    spectator.wait_for_function(
        "() => document.querySelector('#media-status').textContent === 'Receiving 1 voice.'"
    )
    assert spectator.is_hidden("#stereo"), "low-bandwidth mode receives voices only"
