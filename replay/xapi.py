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
from urllib.parse import quote

import httpx

from replay.errors import ReplayError
from replay.manifest import pseudonym
from replay.reader import Session
from replay.summary import Action, Summary, summarize

ADL: Final = "http://adlnet.gov/expapi/verbs/"
KNOWN_VERBS: Final = {
    "join": "attended",
    "leave": "exited",
    "chat": "commented",
    "ask": "asked",
    "pause": "suspended",
    "resume": "resumed",
    "end": "terminated",
    "completed": "completed",
}
"""Actions with an ADL verb of their own (its id ends in the past tense it displays)."""
PAST_TENSE: Final = {
    "give": "gave",
    "stop": "stopped",
    "order": "ordered",
    "examine": "examined",
    "oxygen": "applied oxygen or airway support",
    "call_help": "called for help",
    "decide": "decided",
    "note": "noted",
    "grab": "picked up",
    "release": "put down",
    "present": "let present",
    "remove": "removed",
    "request_present": "asked to present",
    "time_scale": "changed the time scale",
    "inject": "injected an event",
    "override": "overrode a vital sign",
    "reveal": "revealed",
    "advance": "advanced the phase",
    "hint": "gave a hint",
    "score": "scored",
}
ITEM_OF: Final = {
    "give": ("drug", "drugs"),
    "stop": ("drug", "drugs"),
    "order": ("test", "tests"),
    "examine": ("region", "regions"),
    "oxygen": ("device", "devices"),
    "call_help": ("team", "teams"),
    "decide": ("decision", "decisions"),
    "reveal": ("test", "tests"),
    "inject": ("event", "events"),
}
"""Actions on a named item of the case: the statement's object is that item."""
RESULT_DETAILS: Final = ("dose", "unit", "route", "option", "label", "device", "points")
ACTIVITY_SIM: Final = "http://adlnet.gov/expapi/activities/simulation"
ACTIVITY_INTERACTION: Final = "http://adlnet.gov/expapi/activities/interaction"
VERSION: Final = "1.0.3"


def _verb(base: str, name: str) -> dict[str, Any]:
    known = KNOWN_VERBS.get(name)
    iri = ADL + known if known else f"{base}/xapi/verbs/{name}"
    shown = known or PAST_TENSE.get(name) or f"did {name.replace('_', ' ')}"
    return {"id": iri, "display": {"en-US": shown}}


def _timestamp(summary: Summary, seconds: float) -> str:
    start = datetime.fromisoformat(summary.started_at.replace("Z", "+00:00"))
    return (
        (start + timedelta(seconds=seconds))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _duration(seconds: float) -> str:
    return f"PT{max(0.0, seconds):.2f}S"


def _object(base: str, case_iri: str, a: Action) -> dict[str, Any]:
    """The activity an action was on: the drug, test, region... itself when it names one."""
    details = {**a.args, **a.details}
    item = ITEM_OF.get(a.action)
    if item is not None and isinstance(details.get(item[0]), str):
        name = str(details[item[0]])
        definition: dict[str, Any] = {
            "name": {"en-US": name.replace("_", " ")},
            "type": ACTIVITY_INTERACTION,
        }
        if a.effect:
            definition["description"] = {"en-US": a.effect}
        return {
            "objectType": "Activity",
            "id": f"{case_iri}/{item[1]}/{quote(name)}",
            "definition": definition,
        }
    return {
        "objectType": "Activity",
        "id": f"{case_iri}/actions/{quote(a.action)}",
        "definition": {"name": {"en-US": a.action.replace("_", " ")}, "type": ACTIVITY_INTERACTION},
    }


def _result(base: str, a: Action) -> dict[str, Any]:
    details = {**a.args, **a.details}
    extensions = {
        f"{base}/xapi/ext/{k}": details[k]
        for k in RESULT_DETAILS
        if isinstance(details.get(k), str | int | float)
    }
    if a.case_s is not None:
        extensions[f"{base}/xapi/ext/case-time"] = a.case_s
    if a.ok is False:
        extensions[f"{base}/xapi/ext/refusal"] = a.code
        extensions[f"{base}/xapi/ext/refusal-message"] = a.message
    result: dict[str, Any] = {"success": bool(a.ok)}
    if a.action == "decide" and isinstance(details.get("option"), str):
        result["response"] = details["option"]
    if extensions:
        result["extensions"] = extensions
    return result


def statements(session: Session, base: str = "https://grandrounds.invalid") -> list[dict[str, Any]]:
    """Statements for `session`; `base` is the server's public URL (IRIs and homePage).

    The server's HTTP export passes its `public_url` (`Settings.base_url()`); the command
    line takes `--base-url`, so both make the same statements for one session."""
    s = summarize(session)
    base = base.rstrip("/")
    registration = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{base}/sessions/{s.session_id}"))
    case_iri = f"{base}/cases/{quote(s.case or 'unknown')}"
    case = {
        "objectType": "Activity",
        "id": case_iri,
        "definition": {"name": {"en-US": s.title or s.case or "case"}, "type": ACTIVITY_SIM},
    }
    out: list[dict[str, Any]] = []
    names = {m.name: m.id for m in s.members.values()}

    def add(
        member: int | None,
        verb: str,
        t: float,
        obj: dict[str, Any],
        result: dict[str, Any] | None = None,
    ) -> None:
        info = s.members.get(member) if member is not None else None
        stmt: dict[str, Any] = {
            "id": str(uuid.uuid5(uuid.UUID(registration), f"{len(out)}:{verb}:{member}")),
            "actor": {
                "objectType": "Agent",
                "account": {
                    "homePage": base,
                    "name": info.pseudonym if info else pseudonym(s.session_id, member),
                },
            },
            "verb": _verb(base, verb),
            "object": obj,
            "timestamp": _timestamp(s, t),
            "context": {
                "registration": registration,
                "contextActivities": {"parent": [case]},
                "extensions": {
                    f"{base}/xapi/ext/session": s.session_id,
                    f"{base}/xapi/ext/role": info.role if info else "",
                },
            },
        }
        if result is not None:
            stmt["result"] = result
        out.append(stmt)

    events: list[tuple[float, int | None, str, dict[str, Any] | None, dict[str, Any]]] = []
    for joined, info in s.members.items():
        events.append((info.joined_s, joined, "join", None, case))
        if info.left_s is not None:
            events.append((info.left_s, joined, "leave", None, case))
    for a in s.actions:
        events.append((a.t, a.member, a.action, _result(base, a), _object(base, case_iri, a)))
    for line in s.transcript:
        verb = {"chat": "chat", "question": "ask", "note": "note"}.get(line.kind)
        if verb is not None:
            events.append((line.t, names.get(line.who), verb, {"response": line.text}, case))
    events.sort(key=lambda e: e[0])
    for t, member, verb, outcome, obj in events:
        add(member, verb, t, obj, outcome)
    final = _score(s)
    for someone, info in s.members.items():
        if info.role in ("participant", "facilitator"):
            add(
                someone,
                "completed",
                s.end_s,
                case,
                {"completion": True, "duration": _duration(s.end_s - info.joined_s), **final},
            )
    return out


def _score(s: Summary) -> dict[str, Any]:
    """The score as xAPI has it: `raw` may be negative (penalties), `min` is then the
    lowest possible, and `scaled` is always raw / max, so the two never disagree."""
    score = (s.debrief or {}).get("score")
    if not isinstance(score, dict) or not score.get("max"):
        return {}
    top = float(score["max"])
    raw = min(max(float(score.get("earned", 0)), -top), top)
    result: dict[str, Any] = {
        "score": {
            "raw": raw,
            "min": -top if raw < 0 else 0.0,
            "max": top,
            "scaled": round(raw / top, 4),
        }
    }
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
    if "account" in actor and not (
        _IRI.match(str(account.get("homePage", ""))) and account.get("name")
    ):
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
    url: str,
    batch: list[dict[str, Any]],
    auth: tuple[str, str] | None = None,
    timeout_s: float = 30.0,
) -> list[str]:
    """POST statements to an LRS (`url` is its xAPI endpoint); returns the stored ids."""
    endpoint = url.rstrip("/") + "/statements"
    try:
        response = httpx.post(
            endpoint,
            json=batch,
            auth=auth,
            timeout=timeout_s,
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
