"""The people in the room (issue 13), in Chromium against a real server with media:
presenting from asking to stopping, through a reload that keeps the member; low-bandwidth
toggling that never loses the media; the case paused for participants; the event feed
that follows new items; separate seats; the vitals read on demand; labels in words."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from tests.web.conftest import ARTIFACTS, WebServer, axe_violations, screenshot
from tests.web.media import decoded, media_stats
from tests.web.test_views import head_of, keep

pytestmark = pytest.mark.slow

MEMBER_JS = "() => window.grandRounds.conn.welcome.member"


def wait_text(page: Any, selector: str, text: str, timeout: float = 15_000) -> None:
    page.wait_for_function(
        "([s, t]) => (document.querySelector(s)?.textContent || '').includes(t)",
        arg=[selector, text],
        timeout=timeout,
    )


def people(page: Any) -> str:
    return str(page.inner_text("#participants"))


def test_presenting_from_asking_to_stopping_survives_a_reload(
    web_server: WebServer, open_page: Any
) -> None:
    spectator = open_page(web_server.page_url("spectator", "Student"))
    scope = open_page(web_server.page_url("participant", "Dr Scope"))
    console = open_page(web_server.page_url("facilitator", "Dr Lead"))
    member = scope.evaluate(MEMBER_JS)

    # Pressing "share" before being presenter asks, and does not dead-end.
    scope.click("#media-share")
    scope.wait_for_selector("#media-cancel:not([hidden])")
    wait_text(scope, "#present-status", "Waiting for the facilitator")
    console.click("button[aria-label='Dr Scope presents']")
    # Granted: the share starts by itself; the sharer sees a preview and a stop control.
    scope.wait_for_selector("#media-stop:not([hidden])", timeout=20_000)
    scope.wait_for_selector("#stereo:not([hidden])")
    wait_text(scope, "#stereo .stereo-caption", "Your stereo video")
    wait_text(scope, "#media-status", "You are sharing stereo video")
    assert "Nobody" not in scope.inner_text("#media-status")
    frames = decoded(spectator, samples=-1, frames=5)["framesDecoded"]
    assert frames > 5, f"the spectator decoded no video: {frames}"

    # A reload keeps the member (and the grant); the share comes back by itself.
    scope.reload()
    scope.wait_for_function("() => window.grandRounds && window.grandRounds.conn.welcome")
    assert scope.evaluate("() => window.grandRounds.conn.welcome.resumed") is True
    assert scope.evaluate(MEMBER_JS) == member, "a reload made a new member"
    scope.wait_for_selector("#media-stop:not([hidden])", timeout=20_000)
    console.wait_for_function(
        "() => (document.querySelector('#participants').textContent.match(/Dr Scope/g)"
        " || []).length === 1"
    )
    assert "disconnected" not in people(console).split("Dr Scope")[1].split("\n")[0]
    before = media_stats(spectator)["framesDecoded"]
    spectator.wait_for_function(
        "(n) => window.grandRounds.media.stats().then(s => s.framesDecoded > n + 5)",
        arg=before,
        timeout=30_000,
    )

    scope.click("#media-stop")
    scope.wait_for_selector("#media-share:not([hidden])")
    spectator.wait_for_selector("#stereo", state="hidden", timeout=15_000)
    assert scope.is_hidden("#stereo")


def test_low_bandwidth_toggling_keeps_the_media(web_server: WebServer, open_page: Any) -> None:
    spectator = open_page(web_server.page_url("spectator", "Toggler"))
    voice = open_page(web_server.page_url("participant", "Dr Voice"))
    voice.click("#media-mic")
    voice.wait_for_function(
        "() => document.querySelector('#media-mic').getAttribute('aria-pressed') === 'true'"
    )
    spectator.wait_for_function(
        "() => document.querySelector('#media-status').textContent.startsWith('Receiving 1 voice')",
        timeout=20_000,
    )
    for _ in range(3):  # quickly, while offers are still in flight
        spectator.click("#low-bandwidth")
        time.sleep(0.3)
        spectator.click("#low-bandwidth")
        time.sleep(0.2)
    spectator.check("#low-bandwidth")
    spectator.wait_for_function(
        "() => document.querySelector('#media-status').textContent.startsWith('Receiving 1 voice')",
        timeout=20_000,
    )
    before = media_stats(spectator)["audioSamples"]
    spectator.wait_for_function(
        "(n) => window.grandRounds.media.stats().then(s => s.audioSamples > n + 48000)",
        arg=before,
        timeout=30_000,
    )
    status = spectator.inner_text("#media-status")
    assert "error" not in status.lower() and "unknown_pc" not in status, status
    assert spectator.is_hidden("#problem"), spectator.inner_text("#problem-text")


def test_participants_wait_while_the_case_is_paused(web_server: WebServer, open_page: Any) -> None:
    participant = open_page(web_server.page_url("participant", "Dr Wait"))
    console = open_page(web_server.page_url("facilitator", "Dr Lead"))
    participant.wait_for_selector("#act-examine")
    console.wait_for_selector("#ctl-pause:not([disabled])")
    assert console.is_disabled("#ctl-resume"), "Resume is offered while the case runs"
    console.click("#ctl-pause")
    console.wait_for_selector("#ctl-resume:not([disabled])")
    assert console.is_disabled("#ctl-pause")
    participant.wait_for_selector(".paused-note:not([hidden])")
    assert participant.is_disabled("#act-examine button[type=submit]")
    assert participant.is_disabled("#act-give-drug")
    assert participant.is_enabled("#act-note-text"), "notes go on while paused"
    assert participant.inner_text("#room-status") == "Paused"
    console.click("#ctl-resume")
    participant.wait_for_selector(".paused-note", state="hidden")
    assert participant.is_enabled("#act-examine button[type=submit]")


def test_the_event_feed_follows_new_items(web_server: WebServer, open_page: Any) -> None:
    reader = open_page(web_server.page_url("participant", "Dr Reader"))  # hints: the team's
    console = open_page(web_server.page_url("facilitator", "Dr Lead"))
    for i in range(25):
        console.fill("#act-hint-text", f"Hint number {i}")
        console.click("#act-hint button[type=submit]")
        wait_text(console, "#act-hint-status", "done")
        console.evaluate("() => { document.querySelector('#act-hint-status').textContent = ''; }")
    wait_text(reader, "#events", "Hint number 24")
    at_bottom = (
        "() => { const l = document.querySelector('#events');"
        " return l.scrollHeight > l.clientHeight"
        " && l.scrollHeight - l.scrollTop - l.clientHeight < 30; }"
    )
    reader.wait_for_function(at_bottom)
    assert reader.get_attribute("#events", "tabindex") == "0"
    flagged = [v for v in axe_violations(reader) if v["id"] == "scrollable-region-focusable"]
    assert not flagged, flagged


def test_avatars_start_at_separate_seats(web_server: WebServer, open_page: Any) -> None:
    spectator = open_page(web_server.page_url("spectator", "Watcher"))
    members = []
    for name in ("Dr North", "Dr South", "Dr East"):
        page = open_page(web_server.page_url("participant", name))
        members.append(page.evaluate(MEMBER_JS))
    heads: list[Any] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        heads = [head_of(spectator, m) for m in members]
        if all(heads):
            break
        time.sleep(0.3)
    assert all(heads), f"not every head is drawn: {heads}"
    for i, a in enumerate(heads):
        for b in heads[i + 1 :]:
            apart = math.dist((a[0], a[2]), (b[0], b[2]))
            assert apart > 0.5, f"two heads {apart:.2f} m apart: {heads}"


def test_the_vitals_are_read_on_demand_and_labels_are_words(
    web_server: WebServer, open_page: Any
) -> None:
    page = open_page(web_server.page_url("participant", "Dr Ears"))
    page.wait_for_function("() => document.querySelector('.vital .value').textContent !== '--'")
    page.click("#monitor-h")  # focus outside any field
    page.keyboard.press("v")
    wait_text(page, "#polite-announcer", "heart rate")
    said = page.inner_text("#polite-announcer")
    assert "blood pressure" in said and "oxygen saturation" in said, said
    page.evaluate("() => { document.querySelector('#polite-announcer').textContent = ''; }")
    page.check("#vitals-periodic")  # a summary at once, then one every 30 s with trends
    wait_text(page, "#polite-announcer", "heart rate")
    page.fill("#act-oxygen-device", "nasal_cannula")
    page.click("#act-oxygen button[type=submit]")
    wait_text(page, "#act-oxygen-status", "done")
    wait_text(page, "#case-panel", "Nasal cannula")
    text = page.inner_text("main")
    for raw in ("nasal_cannula", "Lactate mmol l", "Wcc"):
        assert raw not in text, f"raw label {raw!r} on the page"
    screenshot(page, "participant-words")


def test_action_pickers_offer_the_cases_own_names(web_server: WebServer, open_page: Any) -> None:
    console = open_page(web_server.page_url("facilitator", "Dr Lead"))
    participant = open_page(web_server.page_url("participant", "Dr Picks"))
    # The facilitator's inject picker lists the case's events by name; a name sends the id.
    console.wait_for_function(
        "() => document.querySelectorAll('#act-inject-event-list option').length"
    )
    name = console.evaluate("() => document.querySelector('#act-inject-event-list option').value")
    console.fill("#act-inject-event", "not an event at all")
    console.click("#act-inject button[type=submit]")
    wait_text(console, "#act-inject-status", "not one of the choices")
    console.fill("#act-inject-event", name)
    console.click("#act-inject button[type=submit]")
    wait_text(console, "#act-inject-status", "done")
    # The override picker names the vitals in words.
    assert "Heart rate" in console.inner_text("#act-override-signal")

    catalog = participant.evaluate("() => window.grandRounds.mirror.first('catalog')?.fields")
    if catalog and catalog.get("drugs"):
        drug = catalog["drugs"][0]
        participant.fill("#act-give-drug", drug["name"])
        participant.dispatch_event("#act-give-drug", "input")
        wait_text(participant, "#act-give-dose-hint", str(drug["unit"]))
        routes = participant.eval_on_selector_all(
            "#act-give-route option", "(options) => options.map((o) => o.textContent)"
        )
        assert routes == [r["name"] for r in drug["routes"]], routes
        assert participant.eval_on_selector_all(
            "#act-examine-region-list option", "(o) => o.length"
        ) == len(catalog["examine"])
    shot = participant.locator("#participant-panel").screenshot(
        path=str(ARTIFACTS / "participant-pickers.png")
    )
    assert shot
    keep(ARTIFACTS / "participant-pickers.png", "participant-pickers.png")
