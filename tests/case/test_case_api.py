"""Educators run their own cases: authored in a folder of their own, checked from the
shell, uploaded over the HTTP API, run in a room with bots, edited without a restart,
and never touching the checkout."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from clients.python import connect
from clients.python.bots import run_bots
from netcode.state import HIDDEN
from netcode.views import Role
from server.app import Server
from tests.case.test_docs import example
from tests.conftest import running, settings_for

CHECKOUT_CASES = Path(__file__).parents[2] / "rooms" / "cases"


def checkout_cases() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in CHECKOUT_CASES.iterdir()}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running(settings_for(tmp_path), "demo") as instance:
        yield instance


def api(server: Server, admin: bool = True) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {server.settings.admin_key}"} if admin else {}
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", headers=headers, timeout=10
    )


async def test_a_case_authored_in_a_folder_is_uploaded_and_run_with_bots(
    server: Server, tmp_path: Path
) -> None:
    before = checkout_cases()
    authoring = tmp_path / "authoring"
    authoring.mkdir()
    case_file = authoring / "pph_demo.yaml"
    case_file.write_text(example())
    checked = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "server.case_cli", "check", str(case_file)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "pph_demo: 2 of 2 calibrations hold" in checked.stdout

    async with api(server) as http:
        uploaded = await http.post(
            "/api/cases",
            content=case_file.read_bytes(),
            headers={"Content-Type": "application/yaml"},
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["case"]["source"] == "folder"
        listed = (await http.get("/api/cases")).json()
        assert {"pph_demo", "septic_shock_ed", "demo"} <= {c["id"] for c in listed["cases"]}
        created = await http.post("/api/rooms", json={"title": "PPH drill", "case": "pph_demo"})
        assert created.status_code == 201, created.text
        room = created.json()["id"]
        assert created.json()["scenario"] == "pph_demo"
    assert (server.settings.data_dir / "cases" / "pph_demo.yaml").read_text() == example()

    url = f"ws://127.0.0.1:{server.port}/ws"
    base = f"http://127.0.0.1:{server.port}"
    async with (
        connect(url, server.issue_token(room, Role.FACILITATOR, "Dr F")) as lead,
        connect(url, server.issue_token(room, Role.PARTICIPANT, "Ana")) as team,
        connect(url, server.issue_token(room, Role.SPECTATOR, "Student")) as student,
    ):
        await team.wait_for(lambda m: m.find("catalog"))
        [catalog] = team.mirror.find("catalog").values()
        assert {
            "id": "uterine_massage",
            "name": "Bimanual uterine massage",
            "sustained": True,
        } in catalog["procedures"]
        assert (await lead.intent("time_scale", scale=10)).ok
        bots: dict[str, Any] = {}

        async def with_bots() -> None:
            bots["tally"] = await run_bots(
                base,
                server.settings.admin_key,
                room,
                participants=2,
                spectators=3,
                seconds=6,
                carry=False,
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(with_bots)
            for action, args in [
                ("perform", {"procedure": "uterine_massage"}),
                ("give", {"drug": "oxytocin", "dose": 5, "route": "iv"}),
                ("call_help", {"team": "blood_bank"}),
                ("give", {"drug": "tranexamic_acid", "dose": 1, "route": "iv"}),
                ("order", {"test": "hb"}),
            ]:
                reply = await team.intent(action, **args)
                assert reply.ok, (action, reply)
            refused = await team.intent("give", drug="oxytocin", dose=50, route="iv")
            assert refused.code == "bad_dose"
        # Two bots and a team sharing one patient may order the same test or call the same
        # team: the case refuses the second (already_ordered, already_called) by design.
        errors = [e for e in bots["tally"].errors if " refused (already_" not in e]
        assert errors == [] and bots["tally"].frames > 0, bots["tally"].errors
        await student.wait_for(
            lambda m: any(r.get("test") == "hb" for r in m.find("result").values()), timeout=15
        )
        await lead.wait_for(
            lambda m: next(iter(m.find("director").values()))["score"]["earned"] == 100
        )
        [director] = lead.mirror.find("director").values()
        assert director["state"]["blood_loss"] < 1500
        [student_director] = student.mirror.find("director").values()
        assert all(v is HIDDEN for v in student_director.values())
    assert checkout_cases() == before


async def test_a_bad_upload_is_refused_with_line_and_field_as_json(server: Server) -> None:
    text = example().replace('action: "give:oxytocin"', 'action: "give:oxytocine"')
    text = text.replace("weight_kg: 70", "weight_kg: heavy")
    async with api(server) as http:
        answer = await http.post("/api/cases", content=text.encode())
        assert answer.status_code == 422
        body = answer.json()
        assert body["error"] == "invalid_case"
        [problem] = body["problems"]  # the model is checked before the references
        line = text.splitlines().index("  weight_kg: heavy") + 1
        assert problem["field"] == "patient.weight_kg" and problem["line"] == line
        assert "number" in problem["message"]
        text = text.replace("weight_kg: heavy", "weight_kg: 70")
        answer = await http.post("/api/cases", content=text.encode())
        [problem] = answer.json()["problems"]
        assert problem == {
            "line": 93,
            "field": "rubric.critical.oxytocin.action",
            "message": "unknown drug or fluid 'oxytocine'",
            "allowed": problem["allowed"],
        }
        assert "oxytocin" in problem["allowed"]
        expression = example().replace("120 * (1 - tone)", "120 * (1 - tone")
        answer = await http.post("/api/cases", content=expression.encode())
        [problem] = answer.json()["problems"]
        line = next(i for i, t in enumerate(expression.splitlines(), 1) if "(1 - tone " in t)
        assert problem["field"] == "state.blood_loss.rate" and problem["line"] == line
        assert problem["message"].startswith("column 16: expected ')'")
        shipped = (CHECKOUT_CASES / "anaphylaxis.yaml").read_text()
        answer = await http.post("/api/cases", content=shipped.encode())
        assert (answer.status_code, answer.json()["error"]) == (409, "case_exists")
        assert (await http.post("/api/cases", content=b"\xff\xfe")).status_code == 400
    async with api(server, admin=False) as anonymous:
        answer = await anonymous.post("/api/cases", content=example().encode())
        assert answer.status_code == 401
        assert "errors" not in (await anonymous.get("/api/cases")).json()


async def test_a_changed_file_is_used_by_rooms_created_afterwards(server: Server) -> None:
    folder = server.settings.data_dir / "cases"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "drill.yaml").write_text(example().replace("id: pph_demo", "id: drill"))
    (folder / "broken.yaml").write_text("id: [")
    async with api(server) as http:
        first = await http.post("/api/rooms", json={"case": "drill"})
        assert first.status_code == 201, first.text
        (folder / "drill.yaml").write_text(
            example()
            .replace("id: pph_demo", "id: drill")
            .replace("title: Bleeding after birth", "title: Bleeding after birth, take two")
        )
        second = await http.post("/api/rooms", json={"case": "drill"})
        assert second.status_code == 201
        listed = (await http.get("/api/cases")).json()
        [broken] = listed["errors"]
        assert broken["file"] == "broken.yaml" and broken["problems"][0]["line"] == 1
        (folder / "drill.yaml").unlink()
        gone = await http.post("/api/rooms", json={"case": "drill"})
        assert (gone.status_code, gone.json()["error"]) == (404, "unknown_case")
        demo = await http.post("/api/rooms", json={"case": "demo:200"})
        assert demo.status_code == 201 and demo.json()["scenario"] == "demo:200"
    titles = {
        rid: next(iter(host.room.world.find("case")), None)
        and host.room.world.fields(host.room.world.find("case")[0])["title"]
        for rid, host in server.rooms.items()
    }
    assert titles[first.json()["id"]] == "Bleeding after birth"
    assert titles[second.json()["id"]] == "Bleeding after birth, take two"
    assert len(server.rooms[demo.json()["id"]].room.world.find("object")) == 200
