"""The debrief and the replay viewer tell who did what (issue 11, part 3), for a session
scripted through a real server: a team of two chats, gives fluids, orders tests, has a
dose refused, gives the right antibiotic after a chat line about the allergy, calls for
help and decides. Both show each actor's actions with doses in order, the chat line
said just before the antibiotic, and the systolic pressure at that moment; the viewer
has a marker for every action, each reachable by pointer and by keyboard, and lands on
the tick the action took effect in. Screenshots go to docs/screenshots with
GR_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import trio

from clients.python.client import connect
from tests.web.conftest import WebServer, axe_violations, screenshot
from tests.web.test_replay import admin_post
from tests.web.test_views import keep

pytestmark = pytest.mark.slow

ALLERGY_LINE = "Penicillin allergy on the band: ceftriaxone 2 g"
STEPS: list[tuple[str, str, dict[str, Any]]] = [
    ("Ana", "chat", {"text": "She is hypotensive: fluids first, please"}),
    ("Ana", "give", {"drug": "crystalloid", "dose": 20, "route": "iv"}),
    ("Ben", "order", {"test": "lactate"}),
    ("Ben", "give", {"drug": "ceftriaxone", "dose": 40, "route": "iv"}),  # refused: bad dose
    ("Ana", "chat", {"text": ALLERGY_LINE}),
    ("Ben", "give", {"drug": "ceftriaxone", "dose": 2, "route": "iv"}),
    ("Ben", "order", {"test": "blood_cultures"}),
    ("Ana", "call_help", {"team": "icu"}),
    ("Ana", "decide", {"decision": "disposition", "option": "icu"}),
]
BEN_IN_ORDER = [
    "order lactate",
    "give ceftriaxone 40 IV (refused: bad_dose)",
    "give ceftriaxone 2 g IV",
    "order blood_cultures",
]


def script_a_session(server: WebServer) -> None:
    async def play() -> None:
        async with (
            connect(server.ws, server.token("facilitator", "Dr Chair")) as chair,
            connect(server.ws, server.token("participant", "Ana")) as ana,
            connect(server.ws, server.token("participant", "Ben")) as ben,
        ):
            people = {"Ana": ana, "Ben": ben}
            await ben.wait_for(lambda m: m.find("monitor"))
            for who, action, args in STEPS:
                await trio.sleep(0.4)
                reply = await people[who].intent(action, **args)
                assert reply.ok == (args.get("dose") != 40), (action, args, reply)
            await trio.sleep(0.5)
            assert (await chair.intent("end", reason="debrief")).ok
            await chair.wait_closed()

    trio.run(play)


def get(server: WebServer, path: str) -> bytes:
    with urllib.request.urlopen(server.base + path, timeout=20) as response:
        return response.read()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def scripted(web_server: WebServer) -> dict[str, Any]:
    script_a_session(web_server)
    request = urllib.request.Request(
        web_server.base + "/api/sessions",
        headers={"Authorization": f"Bearer {web_server.admin_key}"},
    )
    for _ in range(100):
        with urllib.request.urlopen(request, timeout=5) as response:
            sessions = json.load(response)["sessions"]
        done = [s for s in sessions if s.get("status") == "sealed"]
        if done:
            break
        trio.run(trio.sleep, 0.2)
    session = done[-1]["id"]
    token = admin_post(
        web_server, f"/api/sessions/{session}/tokens", {"view": "facilitator", "name": "Prof Rater"}
    )
    timeline = json.loads(
        get(web_server, f"/api/sessions/{session}/timeline?token={token['token']}")
    )
    return {"id": session, "token": token["token"], "timeline": timeline}


def the_antibiotic(timeline: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in timeline["actions"] if a["text"] == "give ceftriaxone 2 g IV")


def vitals_at(timeline: dict[str, Any], signal: str, t: float) -> float:
    series = [v for at, v in timeline["vitals"][signal] if at <= t]
    return series[-1]


def test_the_debrief_tells_who_did_what(
    web_server: WebServer, browser: Any, scripted: dict[str, Any]
) -> None:
    timeline = scripted["timeline"]
    antibiotic = the_antibiotic(timeline)
    sbp = vitals_at(timeline, "sbp", antibiotic["t"])
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()  # bypass_csp: axe-core is injected; the page has no scripts
    page.goto(
        f"{web_server.base}/api/sessions/{scripted['id']}/export/debrief?token={scripted['token']}"
    )
    # each actor's actions with doses, in order
    ben = page.locator("h4", has_text="Ben").locator("xpath=following-sibling::ol[1]/li")
    assert [text.split(" ", 1)[1] for text in ben.all_inner_texts()] == BEN_IN_ORDER
    # the chat line said just before the drug was given, and the pressure then
    rows = page.locator("h3:has-text('Timeline') + table tbody tr").all_inner_texts()
    given = next(i for i, r in enumerate(rows) if "give ceftriaxone 2 g IV" in r)
    said_before = [r for r in rows[:given] if "chat:" in r][-1]
    assert ALLERGY_LINE in said_before
    assert f"BP {sbp:g}/" in rows[given], rows[given]
    assert "refused (bad_dose)" in "\n".join(rows)
    # decisions, the rubric explained against the session's length, vitals charts
    assert "Intensive care" in page.inner_text("h3:has-text('Decisions') + table")
    rubric = page.inner_text("h3:has-text('Critical actions') + table")
    assert "not due yet" in rubric and "missed" not in rubric  # a session of seconds
    assert page.locator("figure svg[role=img]").count() >= 4
    keep(screenshot(page, "debrief"), "debrief.png")
    violations = axe_violations(page)
    assert not violations, [(v["id"], v["impact"]) for v in violations]
    context.close()


def test_the_viewer_has_a_marker_for_every_action(
    web_server: WebServer, browser: Any, scripted: dict[str, Any]
) -> None:
    timeline = scripted["timeline"]
    hz = timeline["tick_hz"]
    context = browser.new_context(viewport={"width": 1360, "height": 1000}, bypass_csp=True)
    context.set_default_timeout(10_000)  # bypass_csp: axe-core is injected at the end
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{web_server.base}/replay.html?session={scripted['id']}&token={scripted['token']}")
    page.wait_for_function("() => window.grandRounds && window.grandRounds.mirror.tick !== null")
    page.wait_for_selector("#lanes .lane[data-lane=team] .marker")
    page.wait_for_selector("#transcript li.line")

    # every action is a marker, or an item of a cluster, reachable by keyboard
    labels = keyboard_labels(page)
    for action in timeline["actions"]:
        wanted = f"{action['actor']}: {action['text']}"
        assert any(wanted in label for label in labels), (wanted, labels)

    # each actor's actions with doses, in order (the team lane, left to right)
    ben = [label.split("Ben: ", 1)[1] for label in labels if "Ben: " in label]
    assert ben == BEN_IN_ORDER, labels

    # by pointer: each marker lands on the tick the action took effect in
    for action in timeline["actions"]:
        click_action(page, f"{action['actor']}: {action['text']}")
        page.wait_for_function(
            "(tick) => window.grandRounds.mirror.tick === tick", arg=action["tick"]
        )

    # at the antibiotic: the line said just before it, and the pressure shown then
    antibiotic = the_antibiotic(timeline)
    click_action(page, f"Ben: {antibiotic['text']}")
    page.wait_for_function(
        "(tick) => window.grandRounds.mirror.tick === tick", arg=antibiotic["tick"]
    )
    page.wait_for_function(
        "(line) => document.querySelector('#transcript li.current')?.textContent.includes(line)",
        arg=ALLERGY_LINE,
    )
    sbp = vitals_at(timeline, "sbp", antibiotic["t"])
    page.wait_for_function(
        "(sbp) => document.querySelector('.vital[data-signal=bp] .value')?.textContent"
        ".startsWith(String(sbp) + '/')",
        arg=sbp,
    )
    box = page.locator(".vitals-track").bounding_box()
    assert box is not None
    frac = (antibiotic["t"] - 0) / timeline["end_s"]
    page.mouse.move(box["x"] + frac * box["width"] + 1, box["y"] + box["height"] / 2)
    tip = page.inner_text(".vitals-tip")
    assert f"BP {sbp:g}/" in tip, tip
    assert antibiotic["tick"] == round(antibiotic["t"] * hz)

    # a rater's form is saved beside the comments, and the debrief keeps them
    page.select_option("#rating-scale", "TEAM")
    page.fill("#rating-start", "0")
    page.fill("#rating-end", "5")
    page.select_option("#rating-item-communication", "3")
    page.fill("#rating-comment", "Closed loops on the antibiotic")
    page.click("#rating-form button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('#bookmarks li.rating').length === 1")
    page.fill("#bookmark-text", "Allergy caught before the antibiotic")
    page.click("#bookmark-form button")
    page.wait_for_function("() => document.querySelectorAll('#bookmarks li').length === 2")
    debrief = page.evaluate(
        "async () => (await (await fetch(document.querySelector('#debrief').href)).text())"
    )
    assert "Allergy caught before the antibiotic" in debrief
    assert "Team Emergency Assessment Measure" in debrief
    assert "Closed loops on the antibiotic" in debrief

    page.locator(".transcript-card").scroll_into_view_if_needed()
    assert page.evaluate("() => window.grandRounds.conn.resyncs") == 0
    keep(screenshot(page, "replay-transcript"), "replay-transcript.png")
    violations = axe_violations(page)
    assert not violations, [(v["id"], v["impact"]) for v in violations]
    assert not errors, errors
    context.close()


def keyboard_labels(page: Any) -> list[str]:
    """Tab through the lanes, opening every cluster: the label of each marker reached."""
    page.focus("#seek")
    labels: list[str] = []
    seen_clusters: set[str] = set()
    for _ in range(400):
        page.keyboard.press("Tab")
        info = page.evaluate(
            """() => { const e = document.activeElement;
                return { inLanes: !!e.closest('#lanes'), cluster: e.classList.contains('cluster'),
                         label: e.getAttribute('aria-label') || e.textContent,
                         id: e.getAttribute('aria-controls') || '' }; }"""
        )
        if not info["inLanes"]:
            if labels:
                break
            continue
        if info["cluster"] and info["id"] not in seen_clusters:
            seen_clusters.add(info["id"])
            page.keyboard.press("Enter")  # opens it; focus moves to its first item
            labels.append(page.evaluate("() => document.activeElement.textContent"))
            continue
        labels.append(info["label"])
    return labels


def click_action(page: Any, wanted: str) -> None:
    """Click the marker of an action, opening its cluster first if it is in one."""
    marker = page.locator(f"#lanes .marker[aria-label*='{wanted}']")
    if marker.count():
        marker.first.click()
        return
    item = page.locator("#lanes .cluster-list button", has_text=wanted)
    if not item.count():
        clusters = page.locator("#lanes .marker.cluster")
        for i in range(clusters.count()):
            if wanted in (clusters.nth(i).get_attribute("title") or ""):
                clusters.nth(i).click()
                break
    page.locator("#lanes .cluster-list button", has_text=wanted).first.click()
