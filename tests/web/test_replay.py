"""The replay viewer against a session the real server recorded: the admin's session
list issues a review link, the lanes show the facilitator's actions, a bookmark seeks to
the state of its moment, a new bookmark is saved, and axe-core finds nothing serious."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import trio

from clients.python.client import connect
from tests.web.conftest import WebServer, axe_violations, screenshot
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
            await client.wait_for(
                lambda m: any(f.get("hr") == HR_OVERRIDE for f in m.find("monitor").values())
            )
            await trio.sleep(2.0)
            reply = await client.intent("reveal", test=next(iter(CASE.investigations)))
            assert reply.ok, reply
            await trio.sleep(1.5)
            return float(at)

    return trio.run(facilitate)


def admin_post(server: WebServer, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        server.base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_replay_viewer_seeks_to_a_bookmark(web_server: WebServer, browser: Any) -> None:
    override_at = record_a_session(web_server)
    result_name = next(iter(CASE.investigations.values())).name
    page = browser.new_page(viewport={"width": 1360, "height": 800})
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(web_server.base + "/replay.html")
    page.fill("#sessions-key", web_server.admin_key)
    page.click("#sessions-form button")
    page.wait_for_selector("#sessions button")
    assert not axe_violations(page)
    page.click("#sessions button")
    page.wait_for_function("() => window.grandRounds && window.grandRounds.mirror.tick !== null")
    sid = page.evaluate("() => window.grandRounds.player.sessionId")
    admin_post(
        web_server,
        f"/api/sessions/{sid}/annotations",
        {"start_s": override_at + 1.0, "text": "Heart rate overridden"},
    )
    page.reload()
    page.wait_for_function("() => window.grandRounds && window.grandRounds.mirror.tick !== null")

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
    page.wait_for_function(
        "(name) => document.querySelector('#case-panel').textContent.includes(name)",
        arg=result_name,
    )

    page.click("#play")
    page.wait_for_function(
        "() => document.querySelector('#play').getAttribute('aria-pressed') === 'true'"
        " || document.querySelector('#play').textContent === 'Play'"
    )
    page.fill("#bookmark-text", "Result seen")
    page.click("#bookmark-form button")
    page.wait_for_function("() => document.querySelectorAll('#bookmarks li').length === 2")
    assert page.evaluate("() => window.grandRounds.conn.resyncs") == 0, "checksums disagreed"
    debrief = page.evaluate(
        "async () => { const r = await fetch(document.querySelector('#debrief').href);"
        " return [r.status, r.headers.get('content-type'), (await r.text()).length]; }"
    )
    assert debrief[0] == 200 and debrief[1].startswith("text/html") and debrief[2] > 500, debrief
    violations = axe_violations(page)
    assert not violations, [(v["id"], v["impact"]) for v in violations]
    assert not errors, errors
    keep(shot, "replay.png")
    page.close()
