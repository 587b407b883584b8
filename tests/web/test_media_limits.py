"""A room with no room left for another subscription (the media worker's limits on peer
connections, issue 9): the page that is refused says so in its media status, keeps
asking, and hears the room once a place is free. Chromium pages through a real server
whose `media_peer_limits` allow one subscription per room."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.conftest import WebServer, serve_web
from tests.web.media import decoded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def one_subscription_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    limits = json.dumps({"subscribe_per_room": 1})
    with serve_web(
        tmp_path_factory.mktemp("web-limits"), GRANDROUNDS_MEDIA_PEER_LIMITS=limits
    ) as server:
        yield server


def test_a_refused_subscription_says_so_and_is_asked_for_again(
    one_subscription_server: WebServer, open_page: Any
) -> None:
    server = one_subscription_server
    speaker = open_page(server.page_url("participant", "Dr Voice"))
    first = open_page(server.page_url("spectator", "First"))
    speaker.click("#media-mic")
    stats = decoded(first, samples=48_000, frames=-1)
    assert stats["audioSamples"] > 48_000, stats

    second = open_page(server.page_url("spectator", "Second"))
    second.wait_for_function(
        "() => document.querySelector('#media-status').textContent.includes('Trying again')"
    )
    status = second.inner_text("#media-status")
    assert "this room holds the most subscribing pcs it may (1)" in status, status

    first.context.close()  # its subscription ends; the place is free
    stats = decoded(second, samples=48_000, frames=-1, seconds=60)
    assert stats["audioSamples"] > 48_000, (stats, second.inner_text("#media-status"))
    assert "Trying again" not in second.inner_text("#media-status")
