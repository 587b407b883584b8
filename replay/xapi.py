"""xAPI 1.0.3 statements for a session, and posting them to a learning record store.

Actors are pseudonymous accounts (`homePage` + the session pseudonym), never names
or e-mail. One statement per member joining and leaving, per intent (the verb names
the action, the result says whether the room applied it), and at the end one
`completed` per team member with the debrief's score when the case engine gave one.
Statement ids are UUIDv5 of the session and record position, so re-exporting the
same session posts the same statements (an LRS ignores duplicates by id).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any, Final

import httpx

from replay.errors import ReplayError
from replay.reader import Session
from replay.summary import Summary, summarize

ADL: Final = "http://adlnet.gov/expapi/verbs/"
KNOWN_VERBS: Final = {
    "join": "attended", "leave": "exited", "chat": "commented", "ask": "asked",
    "pause": "suspended", "resume": "resumed", "end": "terminated", "completed": "completed",
}
ACTIVITY_SIM: Final = "http://adlnet.gov/expapi/activities/simulation"
ACTIVITY_INTERACTION: Final = "http://adlnet.gov/expapi/activities/interaction"
VERSION: Final = "1.0.3"


def _verb(base: str, name: str) -> dict[str, Any]:
    known = KNOWN_VERBS.get(name)
    iri = ADL + known if known else f"{base}/xapi/verbs/{name}"
    return {"id": iri, "display": {"en-US": known or name.replace("_", " ")}}


def _timestamp(summary: Summary, seconds: float) -> str:
    start = datetime.fromisoformat(summary.started_at.replace("Z", "+00:00"))
    return (start + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def _duration(seconds: float) -> str:
    return f"PT{max(0.0, seconds):.2f}S"


def statements(session: Session, base: str = "https://grandrounds.invalid") -> list[dict[str, Any]]:
    """Statements for `session`; `base` is the server's public URL (IRIs and homePage)."""
    s = summarize(session)
    base = base.rstrip("/")
    registration = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{base}/sessions/{s.session_id}"))
    case_iri = f"{base}/cases/{s.case or 'unknown'}"
    case = {"objectType": "Activity", "id": case_iri, "definition": {
        "name": {"en-US": s.title or s.case or "case"}, "type": ACTIVITY_SIM}}
    out: list[dict[str, Any]] = []

    def add(member: int, verb: str, t: float, obj: dict[str, Any],
            result: dict[str, Any] | None = None) -> None:
        info = s.members.get(member, {})
        stmt: dict[str, Any] = {
            "id": str(uuid.uuid5(uuid.UUID(registration), f"{len(out)}:{verb}:{member}")),
            "actor": {"objectType": "Agent", "account": {
                "homePage": base, "name": info.get("pseudonym", f"member-{member}")}},
            "verb": _verb(base, verb),
            "object": obj,
            "timestamp": _timestamp(s, t),
            "context": {
                "registration": registration,
                "contextActivities": {"parent": [case]},
                "extensions": {f"{base}/xapi/ext/session": s.session_id,
                               f"{base}/xapi/ext/role": str(info.get("role", ""))},
            },
        }
        if result is not None:
            stmt["result"] = result
        out.append(stmt)

    events: list[tuple[float, int, str, dict[str, Any] | None, dict[str, Any]]] = []
    for member, info in s.members.items():
        events.append((info["joined_s"], member, "join", None, case))
        if "left_s" in info:
            events.append((info["left_s"], member, "leave", None, case))
    for a in s.actions:
        obj = {"objectType": "Activity", "id": f"{case_iri}/actions/{a.action}", "definition": {
            "name": {"en-US": a.action.replace("_", " ")}, "type": ACTIVITY_INTERACTION}}
        result: dict[str, Any] = {"success": bool(a.ok)}
        if a.ok is False:
            result["extensions"] = {f"{base}/xapi/ext/refusal": a.code}
        events.append((a.t, a.member, a.action, result, obj))
    events.sort(key=lambda e: e[0])
    for t, member, verb, outcome, obj in events:
        add(member, verb, t, obj, outcome)
    final = _score(s)
    for member, info in s.members.items():
        if info.get("role") in ("participant", "facilitator"):
            add(member, "completed", s.end_s, case, {
                "completion": True, "duration": _duration(s.end_s - info["joined_s"]), **final})
    return out


def _score(s: Summary) -> dict[str, Any]:
    score = (s.debrief or {}).get("score")
    if not isinstance(score, dict) or not score.get("max"):
        return {}
    raw, top = float(score.get("earned", 0)), float(score["max"])
    result: dict[str, Any] = {"score": {
        "raw": min(max(raw, 0.0), top), "min": 0, "max": top,
        "scaled": round(min(max(raw / top, -1.0), 1.0), 4)}}
    if isinstance(score.get("passed"), bool):
        result["success"] = score["passed"]
    return result


_IRI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+$")
_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def validate(stmt: dict[str, Any]) -> list[str]:
    """Structural errors per the xAPI 1.0.3 statement requirements ([] when valid)."""
    errors: list[str] = []
    try:
        uuid.UUID(stmt["id"])
    except (KeyError, ValueError):
        errors.append("id must be a UUID")
    actor = stmt.get("actor", {})
    ifis = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if k in actor]
    if len(ifis) != 1:
        errors.append("actor must have exactly one inverse functional identifier")
    account = actor.get("account", {})
    if "account" in actor and not (_IRI.match(str(account.get("homePage", "")))
                                   and account.get("name")):
        errors.append("actor.account needs an IRL homePage and a name")
    verb = stmt.get("verb", {})
    if not _IRI.match(str(verb.get("id", ""))) or not isinstance(verb.get("display", {}), dict):
        errors.append("verb needs an IRI id and a language map display")
    obj = stmt.get("object", {})
    if obj.get("objectType", "Activity") != "Activity" or not _IRI.match(str(obj.get("id", ""))):
        errors.append("object must be an Activity with an IRI id")
    if not _TS.match(str(stmt.get("timestamp", ""))):
        errors.append("timestamp must be ISO 8601 with a zone")
    score = stmt.get("result", {}).get("score")
    if score is not None:
        scaled = score.get("scaled")
        if scaled is not None and not -1 <= scaled <= 1:
            errors.append("result.score.scaled must be within [-1, 1]")
        if "raw" in score and not score.get("min", score["raw"]) <= score["raw"] <= score.get(
            "max", score["raw"]
        ):
            errors.append("result.score.raw must be within min..max")
    registration = stmt.get("context", {}).get("registration")
    if registration is not None:
        try:
            uuid.UUID(registration)
        except ValueError:
            errors.append("context.registration must be a UUID")
    return errors


def post(
    url: str, batch: list[dict[str, Any]], auth: tuple[str, str] | None = None,
    timeout_s: float = 30.0,
) -> list[str]:
    """POST statements to an LRS (`url` is its xAPI endpoint); returns the stored ids."""
    endpoint = url.rstrip("/") + "/statements"
    try:
        response = httpx.post(
            endpoint, json=batch, auth=auth, timeout=timeout_s,
            headers={"X-Experience-API-Version": VERSION},
        )
    except httpx.HTTPError as exc:
        raise ReplayError("lrs-unreachable", f"cannot POST to {endpoint}: {exc}") from exc
    if response.status_code not in (200, 204):
        raise ReplayError(
            "lrs-refused", f"{endpoint} answered {response.status_code}: {response.text[:200]}"
        )
    ids = response.json() if response.status_code == 200 else []
    return [str(i) for i in ids]
