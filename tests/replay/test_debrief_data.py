"""What the debrief and xAPI make of a scripted septic-shock session (issue 11, part 3):
who did what with which dose and route, refusals, what was said before, the rubric
against the session's length, rater agreement; xAPI statements naming each item, with
past-tense verbs, consistent scores, and the same statements from the CLI and HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from netcode.views import Role, View
from replay.annotations import Annotations, Rating
from replay.debrief import page, render
from replay.rating import weighted_kappa
from replay.reader import Session
from replay.summary import Summary, summarize
from replay.xapi import _score, statements, validate
from server.app import Server
from server.replay_cli import main as cli
from tests.conftest import running, settings_for
from tests.replay.case_script import Scripted, record
from tests.server.test_http_api import http

PUBLIC = "https://rounds.example.org/grand"


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Scripted:
    return record(tmp_path_factory.mktemp("septic"))


@pytest.fixture(scope="module")
def summary(scripted: Scripted) -> Summary:
    return summarize(Session(scripted.path))


def test_each_action_has_its_actor_dose_route_and_result(summary: Summary) -> None:
    by_ben = [a.describe() for a in summary.actions if a.actor == "Ben"]
    assert by_ben == [
        "order lactate",
        "order blood_cultures",
        "give ceftriaxone 40 IV",
        "give ceftriaxone 2 g IV",
        "decide disposition: icu (Intensive care / high dependency)",
    ]
    refused = next(a for a in summary.actions if a.refused)
    assert (refused.actor, refused.code) == ("Ben", "bad_dose") and "outside" in refused.message
    given = next(a for a in summary.actions if a.describe() == "give ceftriaxone 2 g IV")
    assert given.ok and given.effect.startswith("Ceftriaxone 2 g")
    assert given.tick == round(given.t * summary.tick_hz)  # the tick it took effect in
    said = summary.said_before(given.t)
    assert said is not None and said.text.startswith("Penicillin allergy")
    assert summary.vital_at("sbp", given.t) is not None


def test_a_spectators_summary_holds_only_what_spectators_saw(scripted: Scripted) -> None:
    spectator = summarize(Session(scripted.path), View.SPECTATOR)
    assert spectator.debrief is None and spectator.answer_key is None
    # the people it saw as avatars, named and in their roles as live; never a spectator
    seen = {(m.name, m.role) for m in spectator.members.values()}
    assert seen == {("Dr Chair", "facilitator"), ("Ana", "participant"), ("Ben", "participant")}
    assert not any(a.refused for a in spectator.actions)  # refusals are the facilitator's
    assert {line.kind for line in spectator.transcript} == {"chat"}  # no question, no note
    assert [a.describe() for a in spectator.actions if a.actor == "Ben"][:1] == ["order lactate"]


def test_the_rubric_is_explained_against_the_sessions_length(summary: Summary) -> None:
    html = page(summary, [])
    assert "not due yet" in html and "missed" not in html  # a 14-second session
    assert "the session ended at 0:14 of case time, before its window closed" in html
    assert "not yet due" in html and "the case had not run its course" in html


def test_raters_are_compared_with_weighted_kappa(scripted: Scripted, tmp_path: Path) -> None:
    notes = Annotations(tmp_path)
    a = {"communication": 3, "morale": 4, "cooperation": 2, "monitoring": 1}
    b = {"communication": 3, "morale": 3, "cooperation": 2, "monitoring": 0}
    notes.rate(0, 10, Rating(scale="TEAM", items=a, global_rating=7), "", "Rater A")
    notes.rate(2, 12, Rating(scale="TEAM", items=b, global_rating=6), "", "Rater B")
    kappa = weighted_kappa([(a[k], b[k]) for k in a], 0, 4)
    assert kappa is not None and 0.6 < kappa < 1
    html = page(summarize(Session(scripted.path)), notes.all())
    assert f"weighted \u03ba = {kappa:.2f}" in html and "4 paired item scores" in html


def test_weighted_kappa_matches_known_values() -> None:
    assert weighted_kappa([(1, 1), (2, 2), (3, 3)], 1, 4) == 1.0
    assert weighted_kappa([(1, 4), (4, 1)], 1, 4) == pytest.approx(-1.0)
    # worked by hand: 20 pairs in 3 categories; weighted disagreement observed 0.75,
    # expected by chance 6.25 (row sums 7, 6, 7; column sums 5, 9, 6): 1 - 0.75/6.25
    pairs = [(0, 0)] * 5 + [(0, 1)] * 2 + [(1, 1)] * 6 + [(2, 1)] * 1 + [(2, 2)] * 6
    assert weighted_kappa(pairs, 0, 2) == pytest.approx(0.88)
    assert weighted_kappa([(2, 2), (2, 2)], 0, 4) is None


def test_xapi_names_each_item_dose_and_route_in_the_past_tense(scripted: Scripted) -> None:
    batch = statements(Session(scripted.path), PUBLIC)
    assert all(validate(st) == [] for st in batch)
    gave = [st for st in batch if st["verb"]["display"]["en-US"] == "gave"]
    ceftriaxone = next(
        st
        for st in gave
        if st["result"]["success"] and st["object"]["id"].endswith("/drugs/ceftriaxone")
    )
    ext = ceftriaxone["result"]["extensions"]
    assert ext[f"{PUBLIC}/xapi/ext/dose"] == 2 and ext[f"{PUBLIC}/xapi/ext/route"] == "iv"
    assert ext[f"{PUBLIC}/xapi/ext/unit"] == "g"
    assert ceftriaxone["object"]["definition"]["name"]["en-US"] == "ceftriaxone"
    refused = next(st for st in gave if not st["result"]["success"])
    assert refused["result"]["extensions"][f"{PUBLIC}/xapi/ext/refusal"] == "bad_dose"
    ordered = [
        st["object"]["id"].rsplit("/", 2)[1:]
        for st in batch
        if st["verb"]["display"]["en-US"] == "ordered"
    ]
    assert ["tests", "lactate"] in ordered
    displays = {st["verb"]["display"]["en-US"] for st in batch}
    assert not displays & {"give", "order", "examine", "decide", "call help"}
    assert all(st["actor"]["account"]["homePage"] == PUBLIC for st in batch)
    assert all(st["object"]["id"].startswith(PUBLIC) for st in batch)


def test_negative_scores_are_consistent_between_raw_and_scaled() -> None:
    s = Summary(
        "x",
        "c",
        "t",
        "2026-01-01T00:00:00Z",
        30,
        debrief={"score": {"earned": -20, "max": 100, "passed": False}},
    )
    score = _score(s)["score"]
    assert score["raw"] == -20 and score["scaled"] == pytest.approx(score["raw"] / score["max"])
    assert score["min"] <= score["raw"] <= score["max"]


@pytest.fixture
async def public_server(tmp_path: Path) -> AsyncIterator[Server]:
    record(tmp_path / "data", "septic")
    async with running(settings_for(tmp_path, public_url=PUBLIC + "/")) as instance:
        yield instance


async def test_the_cli_and_the_server_make_the_same_statements(
    public_server: Server, tmp_path: Path
) -> None:
    status, body = await http(public_server, "GET", "/api/sessions/septic/export/xapi", admin=True)
    assert status == 200
    served = json.loads(body)
    out = tmp_path / "cli.json"
    args = ["export", "septic", "--data-dir", str(tmp_path / "data"), "--format", "xapi"]
    assert cli([*args, "--base-url", PUBLIC, "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == served
    assert served[0]["actor"]["account"]["homePage"] == PUBLIC


def test_the_cli_debrief_keeps_reviewers_comments(scripted: Scripted) -> None:
    notes = Annotations(scripted.path)
    notes.comment(2, 9, "Good catch of the allergy", "Dr Reviewer", Role.FACILITATOR)
    html = render(Session(scripted.path), notes.all())
    assert "Good catch of the allergy" in html and "Dr Reviewer" in html
