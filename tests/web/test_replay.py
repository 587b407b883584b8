"""The replay viewer against a session the real server recorded, served by the
stand-in replay endpoints (tests/web/replay_stub.py): the session list, lanes,
seeking to a bookmark shows that moment's state, adding a bookmark, axe-core."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from clients.python.client import connect
from replay import layout
from replay.annotations import Annotations
from tests.web.conftest import WebServer, axe_violations, screenshot
from tests.web.replay_stub import ReplayStub
from tests.web.test_views import CASE, keep

pytestmark = pytest.mark.slow

HR_OVERRIDE = 171


def record_a_session(server: WebServer) -> float:
    """Override the heart rate, then reveal a result; returns the override's session time."""

    async def facilitate() -> float:
        async with connect(server.ws, server.token("facilitator", "Dr Lead")) as client:
            await client.wait_for(lambda m: m.find("monitor"))
            await trio.sleep(1.0)
            reply = await client.intent("override", signal="hr", value=HR_OVERRIDE, for_s=600)
            assert reply.ok, reply
            at = client.mirror.tick / client.welcome["tick_hz"]
            await client.wait_for(lambda m: any(f.get("hr") == HR_OVERRIDE for f in m.find("monitor").values()))
            await trio.sleep(2.0)
            reply = await client.intent("reveal", test=next(iter(CASE.investigations)))
            assert reply.ok, reply
            await trio.sleep(1.5)
            return float(at)

    return trio.run(facilitate)


def test_replay_viewer_seeks_to_a_bookmark(web_server: WebServer, open_page: Any, browser: Any) -> None:
    override_at = record_a_session(web_server)
    (sid,) = layout.list_sessions(web_server.data_dir)
    Annotations(layout.session_dir(web_server.data_dir, sid)).bookmark(
        override_at + 1.0, "Heart rate overridden", "Dr Lead")
    result_name = next(iter(CASE.investigations.values())).name

    with ReplayStub(web_server.data_dir) as stub:
        listing = browser.new_page(viewport={"width": 1360, "height": 700})
        listing.goto(stub.base + "/replay.html")
        listing.wait_for_selector("#sessions a")
        assert not axe_violations(listing)
        listing.click("#sessions a")

        listing.wait_for_function("() => window.grandRounds && window.grandRounds.mirror.tick !== null")
        page = listing
        page.wait_for_selector("#lanes .marker.facilitator")
        page.click("#bookmarks button.go")
        page.wait_for_function(
            """([at, hr]) => {
                const g = window.grandRounds;
                const t = g.mirror.tick / g.conn.welcome.tick_hz;
                const v = document.querySelector('.vital[data-signal=hr] .value').textContent;
                return Math.abs(t - at) < 0.2 && v === String(hr);
            }""",
            arg=[override_at + 1.0, HR_OVERRIDE],
        )
        assert result_name not in page.inner_text("#case-panel"), "the result was revealed later"
        shot = screenshot(page, "replay")

        page.fill("#seek", page.get_attribute("#seek", "max") or "0")
        page.dispatch_event("#seek", "change")
        page.wait_for_function("(name) => document.querySelector('#case-panel').textContent.includes(name)", arg=result_name)

        page.click("#play")
        page.wait_for_function("() => document.querySelector('#play').getAttribute('aria-pressed') === 'true'")
        page.fill("#bookmark-text", "Result seen")
        page.click("#bookmark-form button")
        page.wait_for_function("() => document.querySelectorAll('#bookmarks li').length === 2")
        violations = axe_violations(page)
        assert not violations, [(v["id"], v["impact"]) for v in violations]
        keep(shot, "replay.png")
        listing.close()
