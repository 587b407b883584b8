"""What a case publishes once, at the start: the catalog the team's pickers are built
from, and the facilitator's answer key. Both are plain data derived from the case."""

from __future__ import annotations

from typing import Any

from rooms.case import names
from rooms.case.model import Case, Derived, Measure, StateVar, finding_name


def catalog(case: Case) -> dict[str, Any]:
    """What the team can choose from, with plain-language names (the pickers)."""
    c = case
    return {
        "examine": [{"id": r, "name": finding_name(r, f)} for r, f in c.exam.items()],
        "tests": [
            {"id": t, "name": inv.name, "kind": inv.kind, "turnaround_s": inv.turnaround_s}
            for t, inv in c.investigations.items()
        ],
        "drugs": [
            {
                "id": d,
                "name": drug.name,
                "kind": drug.kind,
                "unit": drug.dose.unit,
                "per_kg": drug.dose.per_kg,
                "min": drug.dose.min,
                "max": drug.dose.max,
                "typical": drug.dose.typical,
                "infusion": drug.infusion,
                "routes": [{"id": r, "name": names.ROUTES[r][0]} for r in drug.routes],
            }
            for d, drug in sorted(c.interventions.items(), key=lambda kv: kv[1].name)
        ],
        "oxygen": [{"id": d, "name": name} for d, name in names.DEVICES.items()],
        "procedures": [
            {"id": pid, "name": proc.name, "sustained": proc.duration_s is None}
            for pid, proc in c.procedures.items()
        ],
        "help": [{"id": h, "name": team.name} for h, team in c.help.items()],
        "signals": [{"id": s, "name": n, "unit": u} for s, (n, u) in names.SIGNALS.items()],
    }


def answer_key(case: Case) -> dict[str, Any]:
    c = case
    return {
        "summary": c.summary,
        "guidelines": list(c.notes.guidelines),
        "objectives": list(c.notes.objectives),
        "facilitator_notes": c.notes.facilitator,
        "hints": list(c.notes.hints),
        "rubric": c.rubric.model_dump(exclude_defaults=True),
        "decisions": {
            d: [
                o if opt.correct is True else f"{o} (if {opt.correct})"
                for o, opt in dp.options.items()
                if opt.correct
            ]
            for d, dp in c.decisions.items()
        },
        "events": {
            eid: {
                "note": e.note,
                "when": e.model_dump(include={"at_s", "when", "for_s"}, exclude_none=True)
                or "facilitator inject",
                "then": e.then.model_dump(exclude_defaults=True),
            }
            for eid, e in c.events.items()
        },
        "calibration": {
            name: {
                "description": cal.description,
                "promises": [p.model_dump(exclude_none=True) for p in cal.promises],
            }
            for name, cal in c.calibration.items()
        },
        "quantities": {
            q: {"name": spec.name, "unit": spec.unit} for q, spec in quantities(case).items()
        },
        "outcome": {"good": c.outcome.good, "bad": c.outcome.bad, "good_if": c.outcome.good_if},
    }


def quantities(case: Case) -> dict[str, StateVar | Derived | Measure]:
    c = case
    return {**c.state, **c.derived, **c.measures}
