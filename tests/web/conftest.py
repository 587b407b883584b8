"""Browser tests: a real server in a subprocess, the system's Chromium through Playwright.

Playwright's sync API cannot run inside trio, so these tests are plain sync tests and
the server is a separate process (`python -m server.cli serve --demo`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WebServer:
    base: str
    admin_key: str
    data_dir: Path

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://") + "/ws"

    def token(self, role: str, name: str | None = None) -> str:
        body: dict[str, Any] = {"role": role}
        if name:
            body["name"] = name
        request = urllib.request.Request(
            f"{self.base}/api/rooms/demo/tokens",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.admin_key}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.load(response)["token"])

    def page_url(self, role: str, name: str | None = None) -> str:
        return f"{self.base}/?room=demo&token={self.token(role, name)}"


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """`serve --demo` (the septic shock case, with media) on a free port, per test module."""
    with serve_web(tmp_path_factory.mktemp("web-data")) as server:
        yield server


@contextlib.contextmanager
def serve_web(data: Path, **environment: str) -> Iterator[WebServer]:
    """`serve --demo` in `data` on a free port, with these extra environment variables."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **environment},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise RuntimeError(f"the server did not start:\n{output}") from None
                time.sleep(0.1)
        secrets = json.loads((data / "secrets.json").read_text())
        yield WebServer(base, secrets["admin_key"], data)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api  # the test extra; imported here, where it is needed

    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (tests/run.sh installs it)"
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Open app pages; fails the test on any uncaught page error."""
    contexts: list[Any] = []
    errors: list[str] = []

    def opener(url: str, received: list[bytes] | None = None) -> Any:
        """Open `url`; with `received`, every WebSocket frame the page gets is kept there."""
        context = browser.new_context(viewport={"width": 1360, "height": 1000})
        contexts.append(context)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        if received is not None:
            page.on(
                "websocket",
                lambda ws: ws.on(
                    "framereceived",
                    lambda payload: received.append(
                        payload if isinstance(payload, bytes) else payload.encode()
                    ),
                ),
            )
        page.goto(url)
        page.wait_for_function(
            "() => window.grandRounds && window.grandRounds.mirror.tick !== null"
        )
        return page

    yield opener
    for context in contexts:
        context.close()
    assert not errors, f"errors in the page: {errors}"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    page.add_script_tag(url="/vendor/axe.min.js")  # from the app itself: its CSP allows only self
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [v for v in result if v.get("impact") in ("serious", "critical")]


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
