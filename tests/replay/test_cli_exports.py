"""The replay command line (exit codes) and the exports: JSON lines, xAPI (valid, posted
to a real local HTTP server), the HTML debrief, and the annotation overlay."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from replay.layout import segment_files
from replay.reader import Session
from replay.xapi import statements, validate
from server.replay_cli import main as cli
from tests.replay.conftest import Recorded

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(recorded: Recorded, tmp_path: Path) -> Path:
    shutil.copytree(recorded.data_dir / "sessions", tmp_path / "sessions")
    return tmp_path


def test_exit_codes(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(data)]
    assert cli(["ls", *d]) == 0
    assert capsys.readouterr().out.split()[0] == "s1"
    assert cli(["info", "s1", *d]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "sealed"
    assert cli(["verify", "s1", *d]) == 0
    assert cli(["repair", "s1", *d]) == 0
    assert "already sealed" in capsys.readouterr().out
    assert cli(["verify", "nosuch", *d]) == 2
    assert "unknown-session" in capsys.readouterr().err
    assert cli(["info", "../etc", *d]) == 2
    assert cli(["annotate", "s1", *d, "delete", "nope"]) == 2
    _, sealed, _ = segment_files(data / "sessions" / "s1")[2]
    damaged = bytearray(sealed.read_bytes())
    damaged[len(damaged) // 3] ^= 0x10
    sealed.write_bytes(bytes(damaged))
    assert cli(["verify", "s1", *d]) == 1
    assert "NOT INTACT" in capsys.readouterr().out
    assert cli(["repair", "s1", *d]) == 0  # sealed: repair never rewrites a sealed record


def test_runs_as_a_module(data: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server.replay_cli", "verify", "s1", "--data-dir", str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "INTACT" in done.stdout


def test_jsonl_has_one_line_per_record(
    data: Path, recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["export", "s1", "--data-dir", str(data), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["tick"]) for r in rows] == [(r.kind, r.tick) for r in recorded.records]
    pose = next(r for r in rows if r["kind"] == "pose")
    assert base64.b64decode(next(iter(pose["data"]["parts"].values()))["b64"])


def test_xapi_statements_are_valid_and_pseudonymous(recorded: Recorded) -> None:
    batch = statements(Session.open(recorded.data_dir, "s1"), "https://gr.example")
    assert batch and all(validate(s) == [] for s in batch)
    verbs = {s["verb"]["id"].rsplit("/", 1)[-1] for s in batch}
    assert {"attended", "completed"} <= verbs
    text = json.dumps(batch)
    assert "Dr A" not in text and "Observer" not in text  # display names never leave
    actors = {s["actor"]["account"]["name"] for s in batch}
    assert all(a.startswith("p-") for a in actors)
    assert len({s["id"] for s in batch}) == len(batch)
    assert validate({**batch[0], "timestamp": "yesterday"}) != []


class _LRS(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], Any]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((dict(self.headers), body))
        answer = json.dumps([s["id"] for s in body]).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def lrs() -> Iterator[tuple[str, type[_LRS]]]:
    handler = type("LRS", (_LRS,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/xapi", handler
    server.shutdown()
    server.server_close()


def test_xapi_posts_to_a_learning_record_store(data: Path, lrs: tuple[str, type[_LRS]]) -> None:
    url, handler = lrs
    args = [
        "export",
        "s1",
        "--data-dir",
        str(data),
        "--format",
        "xapi",
        "--lrs",
        url,
        "--lrs-auth",
        "rev:secret",
        "-o",
        str(data / "x.json"),
    ]
    assert cli(args) == 0
    ((headers, body),) = handler.received
    assert headers["X-Experience-API-Version"] == "1.0.3"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"rev:secret").decode()
    assert body == json.loads((data / "x.json").read_text())
    handler.status = 400
    assert cli(args) == 1
    assert cli([*args[:7], "http://127.0.0.1:9/xapi"]) == 1


def test_html_debrief_is_self_contained(data: Path) -> None:
    d = ["--data-dir", str(data)]
    assert cli(["annotate", "s1", *d, "bookmark", "7.5", "<b>check fluids</b>"]) == 0
    out = data / "debrief.html"
    assert cli(["export", "s1", *d, "--format", "html", "-o", str(out)]) == 0
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "<polyline" in html
    assert "&lt;b&gt;check fluids&lt;/b&gt;" in html and "<b>check fluids" not in html
    assert "src=" not in html and "href=" not in html and "<script" not in html
    for section in ("Timeline", "Each person", "Decisions", "Vitals", "Score", "comments"):
        assert section in html


def test_annotations_never_touch_the_record(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = data / "sessions" / "s1"

    def digest() -> dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in session.iterdir()
            if p.name != "annotations.jsonl"
        }

    before = digest()
    d = ["--data-dir", str(data)]
    assert cli(["annotate", "s1", *d, "comment", "2", "5", "slow start", "--author", "r1"]) == 0
    keep = capsys.readouterr().out.strip()
    assert cli(["annotate", "s1", *d, "bookmark", "9", "intubation"]) == 0
    gone = capsys.readouterr().out.strip()
    assert cli(["annotate", "s1", *d, "delete", gone]) == 0
    assert cli(["annotate", "s1", *d, "comment", "5", "2", "backwards"]) == 2
    assert cli(["annotate", "s1", *d, "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and listed[0].startswith(keep) and "slow start" in listed[0]
    assert digest() == before
