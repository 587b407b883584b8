"""The end of a case: its outcome, judged over the session (and honestly not judged when
the session ended too early), and the debrief the facilitator and the exports read."""

from __future__ import annotations

import math
from typing import Any

from rooms.case.expressions import holds
from rooms.case.names import clock_text, measure_text
from rooms.case.program import SIGNALS
from rooms.case.run import EPSILON_S, CaseRun


def outcome(run: CaseRun) -> dict[str, Any]:
    """The outcome judged over the session, or why it cannot be judged yet."""
    c = run.case
    judged_after = c.outcome.judged_after_s
    if judged_after is None:
        judged_after = c.planned_s / 2
    measures = {
        m: {"name": spec.name, "value": round(run.measures.get(m, 0.0), 2), "unit": spec.unit}
        for m, spec in c.measures.items()
    }
    summary = "; ".join(
        f"{spec.name} {measure_text(run.measures.get(mid, 0.0), spec.unit)}"
        for mid, spec in c.measures.items()
    )
    good = holds(run.program.good_if, run.env)
    ended_early = run.t < c.planned_s - EPSILON_S
    base = {
        "judged_after_s": judged_after,
        "at_s": run.now(),
        "planned_s": c.planned_s,
        "ended_early": ended_early,
        "measures": measures,
        "state": {v: round(x, 2) for v, x in run.physio.state().items()},
    }
    if run.t < judged_after - EPSILON_S:
        text = (
            f"The session ended at {clock_text(run.t)} of a planned "
            f"{clock_text(c.planned_s)}, too early to judge the outcome (judged from "
            f"{clock_text(judged_after)})." + (f" So far: {summary}." if summary else "")
        )
        return {**base, "judged": False, "good": None, "text": text}
    text = c.outcome.good if good else c.outcome.bad
    if ended_early:
        text += f" (judged at {clock_text(run.t)} of a planned {clock_text(c.planned_s)})"
    return {**base, "judged": True, "good": good, "text": text}


def debrief(run: CaseRun) -> dict[str, Any]:
    """What happened, against the rubric: for the facilitator and the replay export."""
    score = run.scorer.summary(math.inf)
    timeline = sorted(
        [
            {
                "t": c["at_s"],
                "kind": "critical",
                "id": c["id"],
                "text": c["description"],
                "status": c["status"],
            }
            for c in score["critical"]
            if c["at_s"] is not None
        ]
        + [
            {
                "t": h["at_s"],
                "kind": "harmful",
                "id": h["id"],
                "text": h["description"],
                "status": "penalised",
            }
            for h in score["penalties"]
        ]
        + [
            {
                "t": t,
                "kind": "event",
                "id": e,
                "text": run.case.events[e].note or e,
                "status": "fired",
            }
            for e, times in run.env.fired_at.items()
            for t in times
        ],
        key=lambda e: (e["t"], e["kind"], e["id"]),
    )
    return {
        "case": run.case.id,
        "title": run.case.title,
        "duration_s": run.now(),
        "outcome": outcome(run),
        "score": score,
        "timeline": timeline,
        "time_to_intervention": {c["id"]: c["at_s"] for c in score["critical"]},
        "missed": [c["id"] for c in score["critical"] if c["status"] in ("missed", "pending")],
        "late": [c["id"] for c in score["critical"] if c["status"] == "late"],
        "harmful": score["penalties"],
        "decisions": {
            d: {"option": o, "at_s": at, "correct": ok}
            for d, (o, at, ok) in run.env.decided.items()
        },
        "action_counts": {k: int(v[0]) for k, v in run.env.tally.items() if ":" in k},
        "vitals": {
            "columns": ["t", *SIGNALS],
            "every_s": run.sample_every,
            "rows": [list(r) for r in run.samples],
        },
    }
