"""VR without a headset: Meta's Immersive Web Emulation Runtime (IWER, pinned in
tests/web/package.json, loaded into the test page only) emulates a Quest 3 in headless
Chromium. The participant enters `immersive-vr` from the page; the emulated head and
controllers move; a spectator's mirror shows the poses; the presenter's stereo video is
drawn per eye (the left eye's camera sees only the left half, the right eye's only the
right half)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import ARTIFACTS, ROOT, WebServer
from tests.web.test_views import head_of, keep

pytestmark = pytest.mark.slow

IWER = ROOT / "tests" / "web" / "node_modules" / "iwer" / "build" / "iwer.min.js"
EMULATE = """
window.__xr = new IWER.XRDevice(IWER.metaQuest3);
window.__xr.installRuntime({ forceInstall: true });
window.__xr.stereoEnabled = true;  // the emulator draws both eyes side by side
"""


def part_of(page: Any, member: int, part: str) -> Any:
    return page.evaluate(
        """([member, part]) => {
            const m = window.grandRounds.mirror;
            const avatar = [...m.find('avatar')].find(([, a]) => a.member === member);
            const found = avatar && [...m.find('part')]
                .find(([, p]) => p.avatar === avatar[0] && p.part === part);
            const pose = found && m.poses.get(found[0]);
            return pose ? pose.slice(0, 3).map((v) => v / 1000) : null;
        }""",
        [member, part],
    )


def wait_pose(page: Any, member: int, part: str, near: list[float], within: float) -> Any:
    deadline = time.monotonic() + 20
    seen = None
    while time.monotonic() < deadline:
        seen = part_of(page, member, part)
        if seen and math.dist(seen, near) < within:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{part} of member {member} never came near {near}: {seen}")


def test_an_emulated_headset_enters_vr_sends_poses_and_sees_stereo_per_eye(
    web_server: WebServer, browser: Any
) -> None:
    assert IWER.exists(), "iwer is not installed (tests/run.sh installs it with npm)"
    contexts = []

    def page_for(url: str, headset: bool = False) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        if headset:
            context.add_init_script(path=str(Path(IWER)))
            context.add_init_script(EMULATE)
        page = context.new_page()
        page.goto(url)
        page.wait_for_function(
            "() => window.grandRounds && window.grandRounds.mirror.tick !== null"
        )
        return page

    try:
        spectator = page_for(web_server.page_url("spectator", "Watcher"))
        scope = page_for(web_server.page_url("participant", "Dr Scope"))
        console = page_for(web_server.page_url("facilitator", "Dr Lead"))
        console.click("button[aria-label='Dr Scope presents']")
        scope.click("#media-share")
        headset = page_for(web_server.page_url("participant", "Dr Headset"), headset=True)
        member = headset.evaluate("() => window.grandRounds.conn.welcome.member")
        headset.wait_for_selector("#enter-vr:not([disabled])")
        headset.wait_for_function("() => window.grandRounds.app.scene.screen", timeout=30_000)

        headset.click("#enter-vr")  # a click: the user gesture requestSession needs
        headset.wait_for_function("() => window.grandRounds.app.xr.active", timeout=15_000)
        assert headset.inner_text("#vr-status") == "In VR"
        # Quest 3 offers local-floor: it is used (asked as optional, then checked).
        assert (
            headset.evaluate("() => window.grandRounds.app.xr.referenceSpaceType") == "local-floor"
        )

        # Move the emulated head and the right controller; the spectator's mirror follows.
        headset.evaluate("() => { __xr.position.set(0.4, 1.5, -0.3); }")
        headset.evaluate("() => { __xr.controllers.right.position.set(0.7, 1.1, -0.6); }")
        x, z, yaw = headset.evaluate("() => window.grandRounds.app.xr.place")  # our seat

        def world(px: float, py: float, pz: float) -> list[float]:
            """An emulated (local-floor) position, turned by the seat's yaw, at the seat."""
            return [
                x + px * math.cos(yaw) + pz * math.sin(yaw),
                py,
                z - px * math.sin(yaw) + pz * math.cos(yaw),
            ]

        wait_pose(spectator, member, "head", world(0.4, 1.5, -0.3), 0.05)
        # The grip pose sits a few centimetres off the controller's origin.
        wait_pose(spectator, member, "right", world(0.7, 1.1, -0.6), 0.1)
        headset.evaluate("() => { __xr.position.set(-0.2, 1.6, 0.1); }")
        wait_pose(spectator, member, "head", world(-0.2, 1.6, 0.1), 0.05)
        drawn = head_of(spectator, member)
        assert drawn is not None, "the spectator's scene draws the headset's head"

        # The stereo video is drawn per eye: each eye's camera sees its own half only.
        eyes = headset.evaluate("""() => {
            const app = window.grandRounds.app;
            const cams = app.scene.renderer.xr.getCamera().cameras;
            const [left, right] = app.scene.screen.children;
            return {
                cameras: cams.length,
                leftSeesLeft: cams[0].layers.test(left.layers),
                leftSeesRight: cams[0].layers.test(right.layers),
                rightSeesRight: cams[1].layers.test(right.layers),
                rightSeesLeft: cams[1].layers.test(left.layers),
                leftHalf: [left.material.map.offset.x, left.material.map.repeat.x],
                rightHalf: [right.material.map.offset.x, right.material.map.repeat.x],
            };
        }""")
        assert eyes["cameras"] == 2, eyes
        assert eyes["leftSeesLeft"] and not eyes["leftSeesRight"], eyes
        assert eyes["rightSeesRight"] and not eyes["rightSeesLeft"], eyes
        assert eyes["leftHalf"] == [0, 0.5] and eyes["rightHalf"] == [0.5, 0.5], eyes
        headset.evaluate("() => { __xr.position.set(0, 1.6, 0); __xr.quaternion.set(0, 0, 0, 1); }")
        time.sleep(1.0)
        view = headset.evaluate_handle("() => window.grandRounds.app.scene.renderer.domElement")
        ARTIFACTS.mkdir(exist_ok=True)
        view.as_element().screenshot(path=str(ARTIFACTS / "vr-per-eye.png"))
        keep(ARTIFACTS / "vr-per-eye.png", "vr-per-eye.png")

        headset.evaluate("() => window.grandRounds.app.xr.session.end()")  # the headset's exit
        headset.wait_for_function("() => !window.grandRounds.app.xr.active")
        assert headset.inner_text("#enter-vr") == "Enter VR"
    finally:
        for context in contexts:
            context.close()
