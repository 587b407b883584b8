"""The browser app against a real server: what a spectator sees, what a participant can
do, what the facilitator's console controls, and that each view passes axe-core."""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import time
from typing import Any

import pytest

from netcode.codec import decode_server_message
from rooms.case import shipped_cases
from server.scenarios import DEFAULT_CASE
from tests.web.bot import WalkingBot
from tests.web.conftest import ROOT, WebServer, axe_violations, screenshot

pytestmark = pytest.mark.slow

CASE = next(c for c in shipped_cases() if c.id == DEFAULT_CASE)
SECRET = CASE.summary  # the answer key's summary: facilitator only
VITALS_JS = (
    "() => [...document.querySelectorAll('.vital .value')].map(n => n.textContent).join(' ')"
)
DOC_SHOTS = ROOT / "docs" / "screenshots"


def vitals_over(page: Any, seconds: float) -> set[str]:
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(page.evaluate(VITALS_JS))
        time.sleep(0.2)
    return seen


def head_of(page: Any, member: int) -> Any:
    return page.evaluate(
        """(member) => {
            const m = window.grandRounds.mirror;
            const avatar = [...m.find('avatar')].find(([, a]) => a.member === member);
            if (!avatar) return null;
            const head = [...m.find('part')]
                .find(([, p]) => p.avatar === avatar[0] && p.part === 'head');
            return head ? window.grandRounds.app.scene.positionOf(head[0]) : null;
        }""",
        member,
    )


def keep(path: Any, name: str) -> None:
    """Copy a screenshot to docs/screenshots (for the README) when GR_UPDATE_SCREENSHOTS is set."""
    if not os.environ.get("GR_UPDATE_SCREENSHOTS"):
        return
    DOC_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, DOC_SHOTS / name)


def test_spectator_sees_vitals_and_a_moving_avatar_but_no_hidden_fields(
    web_server: WebServer, open_page: Any
) -> None:
    frames: list[bytes] = []
    page = open_page(web_server.page_url("spectator"), received=frames)
    page.wait_for_function("() => document.querySelector('.vital .value').textContent !== '--'")
    assert len(vitals_over(page, 2.5)) > 1, "the monitor's numbers did not change"

    with WalkingBot(web_server.ws, web_server.token("participant", "Dr Bot")) as bot:
        assert bot.member is not None
        page.wait_for_function(
            "(name) => document.querySelector('#participants').textContent.includes(name)",
            arg="Dr Bot",
        )
        positions = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(positions) < 4:
            pos = head_of(page, bot.member)
            if pos is not None:
                positions.add(round(pos[0], 3))
            time.sleep(0.1)
        assert len(positions) >= 4, f"the bot's head did not move on the page: {positions}"
        assert all(-0.55 <= x <= 0.5 for x in positions)
        shot = screenshot(page, "spectator")

    hidden = page.evaluate("""() => {
        const key = window.grandRounds.mirror.first('answer_key');
        return key && Object.values(key.fields).every(v => window.grandRounds.isHidden(v));
    }""")
    assert hidden, "the spectator's state should hold the answer key's fields as HIDDEN"
    page.click("details:has(#inspector) > summary")
    page.wait_for_selector("#inspector details")
    assert SECRET[:40] not in page.evaluate("() => document.body.innerText")
    assert SECRET[:40] not in page.content()
    assert frames, "no WebSocket frames were seen"
    assert not any(SECRET[:40].encode() in frame for frame in frames), "a hidden field was sent"
    assert page.evaluate("() => window.grandRounds.conn.resyncs") == 0, "checksums disagreed"
    keep(shot, "spectator.png")


def test_participant_moves_by_keyboard_chats_resumes_and_documents(
    web_server: WebServer, open_page: Any
) -> None:
    page = open_page(web_server.page_url("participant", "Dr Keys"))
    page.wait_for_selector("#act-note")
    before = head_of(page, page.evaluate("() => window.grandRounds.conn.welcome.member"))
    page.focus("#scene canvas")
    page.keyboard.down("KeyW")
    time.sleep(0.8)
    page.keyboard.up("KeyW")
    member = page.evaluate("() => window.grandRounds.conn.welcome.member")
    page.wait_for_function(
        """([member, z]) => {
            const m = window.grandRounds.mirror;
            const avatar = [...m.find('avatar')].find(([, a]) => a.member === member);
            const head = avatar && [...m.find('part')]
                .find(([, p]) => p.avatar === avatar[0] && p.part === 'head');
            const pose = head && m.poses.get(head[0]);
            return pose && (z === null || pose[2] < z * 1000 - 300);
        }""",
        arg=[member, before[2] if before else None],
    )
    page.fill("#chat-text", "Lactate please")
    page.press("#chat-text", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#chat').textContent.includes('Lactate please')"
    )
    page.evaluate("() => window.grandRounds.conn.ws.close()")  # a dropped link resumes
    page.wait_for_function(
        "() => document.querySelector('#conn-status').textContent === 'Connected (resumed)'"
    )
    assert page.evaluate("() => window.grandRounds.conn.welcome.member") == member
    page.wait_for_function(
        "(name) => document.querySelector('#participants').textContent"
        ".includes(name + ' (you)Participantconnected')",
        arg="Dr Keys",
    )
    page.fill("#act-note-text", "Started antibiotics at 0:40")
    page.click("#act-note button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#act-note-status').textContent.includes('done')"
    )
    shot = screenshot(page, "participant")
    keep(shot, "participant.png")


def test_facilitator_pause_freezes_the_spectators_monitor(
    web_server: WebServer, open_page: Any
) -> None:
    spectator = open_page(web_server.page_url("spectator"))
    spectator.fill("#ask-text", "Why not start with a CT?")
    spectator.click("#ask-form button")
    console = open_page(web_server.page_url("facilitator", "Dr Lead"))
    console.wait_for_function(
        "() => document.querySelector('#questions').textContent.includes('CT?')"
    )
    assert SECRET[:40] in console.evaluate(
        "() => document.querySelector('#answer-key').textContent"
    )

    console.click("#ctl-pause")
    spectator.wait_for_function(
        "() => document.querySelector('#room-status').textContent === 'Paused'"
    )
    time.sleep(0.5)
    assert len(vitals_over(spectator, 3.0)) == 1, "the vitals changed while the case was paused"

    console.click("#links-form button")  # with the facilitator's own token: no admin key
    console.wait_for_function("() => document.querySelectorAll('#join-links li').length === 3")
    shot = screenshot(console, "facilitator")
    keep(shot, "facilitator.png")

    console.click("#ctl-resume")
    spectator.wait_for_function(
        "() => document.querySelector('#room-status').textContent === 'Running'"
    )
    assert len(vitals_over(spectator, 3.0)) > 1, "the vitals did not change after resuming"

    console.select_option("#act-override-signal", "hr")
    console.fill("#act-override-value", "163")
    console.fill("#act-override-for_s", "120")
    console.click("#act-override button[type=submit]")
    console.wait_for_function(
        "() => document.querySelector('#act-override-status').textContent.includes('done')"
    )
    spectator.wait_for_function("""() => {
        const tile = document.querySelector('.vital[data-signal=hr]');
        return tile.querySelector('.value').textContent === '163'
            && tile.textContent.includes('HIGH');
    }""")
    # An override is for the facilitator's eyes (and the record), never the learners'.
    console.wait_for_function("""() =>
        document.querySelector('.vital[data-signal=hr]').classList.contains('overridden')
        && document.querySelector('#events').textContent.includes('facilitator override')""")
    for _ in range(10):
        assert not spectator.evaluate(
            "() => document.querySelector('.vital.overridden') !== null"
            " || /override/i.test(document.querySelector('#events').textContent"
            " + document.querySelector('#caption').textContent"
            " + document.querySelector('#monitor').innerText)"
        ), "a learner's page shows the override"
        time.sleep(0.2)

    test_id, investigation = next(iter(CASE.investigations.items()))
    console.fill("#act-reveal-test", test_id)
    console.click("#act-reveal button[type=submit]")
    spectator.wait_for_function(
        "(name) => document.querySelector('#case-panel').textContent.includes(name)",
        arg=investigation.name,
    )
    keep(screenshot(spectator, "spectator-after-override"), "spectator-override.png")


def state_ticks(frames: list[bytes], since: int = 0) -> list[int]:
    """The ticks `k` of the state frames among the WebSocket frames from index `since`."""
    ticks = []
    for data in frames[since:]:
        message = decode_server_message(data)
        if message.get("t") == "s":
            ticks.append(int(message["k"]))
    return ticks


def steps_while(page: Any, frames: list[bytes], seconds: float) -> list[int]:
    """Differences between consecutive state ticks received in the next `seconds`."""
    start = len(frames)
    time.sleep(seconds)
    page.wait_for_timeout(1)  # let Playwright deliver the frames it has seen
    ticks = state_ticks(frames, start)
    return [b - a for a, b in itertools.pairwise(ticks)]


def settle(page: Any, frames: list[bytes], step: int, seconds: float = 15) -> None:
    """Wait until the page is receiving a frame every `step` ticks (a rate change has taken
    effect), instead of guessing how long that takes on a busy machine."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page.wait_for_timeout(100)
        ticks = state_ticks(frames, max(0, len(frames) - 3))
        if len(ticks) == 3 and all(b - a == step for a, b in itertools.pairwise(ticks)):
            return
    raise AssertionError(f"never settled on a frame every {step} ticks")


def every_tick(steps: list[int]) -> bool:
    """A frame for (nearly) every tick: a loaded server may skip a send now and then."""
    return len(steps) >= 10 and statistics.median(steps) == 1


def every_nth_tick(steps: list[int], n: int) -> bool:
    """Frames only on ticks that are multiples of `n` apart, mostly exactly `n`."""
    return len(steps) >= 4 and all(s % n == 0 for s in steps) and statistics.median(steps) == n


def test_low_bandwidth_mode_asks_for_state_five_times_a_second(
    web_server: WebServer, open_page: Any
) -> None:
    frames: list[bytes] = []
    page = open_page(web_server.page_url("spectator", "Slow Link"), received=frames)
    page.wait_for_function("() => document.querySelector('.vital .value').textContent !== '--'")
    hz = page.evaluate("() => window.grandRounds.conn.welcome.tick_hz")
    every = round(hz / 5)
    steps = steps_while(page, frames, 1.0)
    assert every_tick(steps), f"full rate: a frame every tick: {steps}"

    page.check("#low-bandwidth")
    settle(page, frames, every)  # the prefs message has taken effect
    steps = steps_while(page, frames, 2.0)
    assert every_nth_tick(steps, every), f"low bandwidth: steps of {every}: {steps}"
    assert len(vitals_over(page, 3.0)) > 1, "the vitals stopped changing in low-bandwidth mode"

    page.evaluate("() => window.grandRounds.conn.ws.close()")  # a dropped link resumes
    page.wait_for_function(
        "() => document.querySelector('#conn-status').textContent === 'Connected (resumed)'"
    )
    settle(page, frames, every)
    steps = steps_while(page, frames, 1.5)
    assert every_nth_tick(steps, every), f"after resuming, still every {every} ticks: {steps}"

    page.uncheck("#low-bandwidth")
    settle(page, frames, 1)
    steps = steps_while(page, frames, 1.0)
    assert every_tick(steps), f"back to a frame every tick: {steps}"
    assert page.evaluate("() => window.grandRounds.conn.resyncs") == 0, "checksums disagreed"


@pytest.mark.parametrize("role", ["spectator", "participant", "facilitator"])
def test_each_view_passes_axe(web_server: WebServer, open_page: Any, role: str) -> None:
    page = open_page(web_server.page_url(role))
    page.wait_for_function("() => document.querySelector('.vital .value').textContent !== '--'")
    page.click("details:has(#inspector) > summary")
    violations = axe_violations(page)
    summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"][:3]]) for v in violations]
    assert not violations, f"serious or critical accessibility violations: {summary}"


def test_the_facilitator_removes_a_participant(web_server: WebServer, open_page: Any) -> None:
    gone = open_page(web_server.page_url("participant", "Dr Gone"))
    console = open_page(web_server.page_url("facilitator", "Dr Lead"))
    console.on("dialog", lambda dialog: dialog.accept())
    console.click("button[aria-label='Remove Dr Gone']")
    gone.wait_for_selector("#problem:not([hidden])")
    assert "(removed)" in gone.inner_text("#problem-text")
    gone.wait_for_function(
        "() => document.querySelector('#conn-status').textContent === 'Disconnected'"
    )
    console.wait_for_function(
        "() => !document.querySelector('#participants').textContent.includes('Dr Gone')"
    )


def test_the_join_page_passes_axe(web_server: WebServer, browser: Any) -> None:
    page = browser.new_page()
    page.goto(web_server.base + "/")
    page.wait_for_selector("#join:not([hidden])")
    violations = axe_violations(page)
    assert not violations, [(v["id"], v["impact"]) for v in violations]
    page.close()


def test_a_bad_token_shows_the_servers_reason(web_server: WebServer, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{web_server.base}/?room=demo&token=not-a-token")
    page.wait_for_selector("#problem:not([hidden])")
    text = page.inner_text("#problem-text")
    assert "bad_token" in text
    page.click("#problem-dismiss")
    assert page.is_hidden("#problem")
    page.close()
