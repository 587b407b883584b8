"""Browser pages that speak and present through the real media workers, for the media tests."""

from __future__ import annotations

import time
from typing import Any

from tests.web.conftest import WebServer


def media_stats(page: Any) -> dict[str, int]:
    return page.evaluate("async () => await window.grandRounds.media.stats()")  # type: ignore[no-any-return]


def speak_and_present(server: WebServer, open_page: Any) -> Any:
    """Dr Voice turns the (fake) microphone on; the facilitator makes Dr Scope presenter,
    who shares stereo video. Returns the facilitator's console page."""
    speaker = open_page(server.page_url("participant", "Dr Voice"))
    presenter = open_page(server.page_url("participant", "Dr Scope"))
    console = open_page(server.page_url("facilitator", "Dr Lead"))
    console.click("button[aria-label='Dr Scope presents']")
    console.wait_for_selector("button[aria-label='Dr Scope presents'][aria-pressed=true]")
    speaker.click("#media-mic")
    speaker.wait_for_function(
        "() => document.querySelector('#media-mic').getAttribute('aria-pressed') === 'true'"
    )
    presenter.click("#media-share")
    return console


def decoded(page: Any, samples: int, frames: int, seconds: float = 30) -> dict[str, int]:
    """The page's media stats once it has decoded more than `samples` audio samples and
    `frames` video frames, or when `seconds` are up (the caller asserts on them)."""
    deadline = time.monotonic() + seconds
    stats: dict[str, int] = {}
    while time.monotonic() < deadline:
        stats = media_stats(page)
        if stats["audioSamples"] > samples and stats["framesDecoded"] > frames:
            break
        time.sleep(0.5)
    return stats
