"""A case's facilitator guide, written from the case itself (Markdown).

Everything a facilitator prepares from lives in the case file: the objectives and
guidelines, the notes, what happens when, the decisions, the rubric, and what each
scripted team of the calibration gets. Generating the guide from it keeps the two
from drifting apart; the calibration tests hold the case to the promises printed here.
"""

from __future__ import annotations

from rooms.case.model import Case, Event, Match, Promise, finding_name, finding_text
from rooms.case.names import clock_text


def _when(event: Event) -> str:
    parts = []
    if event.at_s is not None:
        parts.append(f"from {clock_text(event.at_s)}")
    if event.when is not None:
        parts.append(f"when `{' '.join(event.when.split())}`")
    if event.for_s:
        parts.append(f"for {event.for_s:g} s")
    return ", ".join(parts) if parts else "when the facilitator injects it"


def _match(item: Match) -> str:
    if item.when is not None:
        return f"`{' '.join(item.when.split())}`"
    shown = " or ".join(f"`{k}`" for k in item.keys)
    extra = []
    if item.routes:
        extra.append("route " + "/".join(item.routes))
    low, high = item.dose_min, item.dose_max
    if low is not None and high is not None:
        extra.append(f"dose {low:g}-{high:g}")
    elif low is not None:
        extra.append(f"dose at least {low:g}")
    elif high is not None:
        extra.append(f"dose at most {high:g}")
    return shown + (f" ({', '.join(extra)})" if extra else "")


def _promise(p: Promise) -> str:
    if p.at_s is not None:
        when = f"at {clock_text(p.at_s)}"
    elif p.by_s is not None:
        when = f"by {clock_text(p.by_s)}"
    else:
        end = "the end" if p.to_s is None else clock_text(p.to_s)
        when = f"from {clock_text(p.from_s or 0)} to {end}"
    label = f"{p.note}: " if p.note else ""
    return f"{label}`{p.holds}` {when}"


def facilitator_guide(case: Case) -> str:
    c = case
    out = [f"# Facilitator guide: {c.title}", ""]
    out += [f"{c.specialty} · {c.setting} · {c.duration_min} minutes · case `{c.id}`", ""]
    out += [
        "Generated from the case file by `grandrounds case guide`; the promises under",
        '"What to expect" are checked by `grandrounds case check` and the test suite.',
        "",
        "## Summary",
        "",
        c.summary,
        "",
        "## Learning objectives",
        "",
        *(f"- {o}" for o in c.notes.objectives),
        "",
        "## Guidelines the case follows",
        "",
        *(f"- {g}" for g in c.notes.guidelines),
        "",
    ]
    if c.notes.facilitator:
        out += ["## Before you start", "", c.notes.facilitator, ""]
    p = c.patient
    out += ["## The patient", ""]
    out += [f"- {p.age}, {p.sex}, {p.weight_kg:g} kg. {c.complaint}."]
    out += [f"- History: {p.history}"]
    if p.allergies:
        allergies = "; ".join(f"{a.substance} ({a.reaction})" for a in p.allergies)
        out += [f"- Allergies: {allergies}"]
    if p.medications:
        out += [f"- Medications: {', '.join(p.medications)}"]
    out += ["", "Examination findings (revealed when examined):", ""]
    out += [f"- {finding_name(r, f)}: {finding_text(f)}" for r, f in c.exam.items()]
    out += ["", "## Phases", ""]
    out += [
        f"{i}. **{ph.title}**" + (f": {ph.narrative}" if ph.narrative else "")
        for i, ph in enumerate(c.phases, 1)
    ]
    out += ["", "## What happens when", ""]
    for eid, event in c.events.items():
        note = f" {event.note}" if event.note else ""
        out.append(f"- `{eid}` ({_when(event)}).{note}")
    if c.decisions:
        out += ["", "## Decisions", ""]
        for decision in c.decisions.values():
            opens = (
                f" (from phase {decision.phase}, closes {decision.closing})"
                if decision.phase
                else ""
            )
            out.append(f"- **{decision.prompt}**{opens}")
            for oid, option in decision.options.items():
                mark = ""
                if option.correct is True:
                    mark = " **(correct)**"
                elif isinstance(option.correct, str):
                    mark = f" **(correct if `{option.correct}`)**"
                out.append(f"  - `{oid}`: {option.label}{mark}")
    if c.help:
        out += ["", "## Help the team can call", ""]
        out += [
            f"- {team.name}: arrives after {clock_text(team.arrives_s)}" for team in c.help.values()
        ]
    if c.roleplay:
        out += ["", "## Role-play", ""]
        for ch in c.roleplay.values():
            out.append(f"- **{ch.name}** (voiced by the {ch.voiced_by}): {ch.brief}")
    r = c.rubric
    out += [
        "",
        f"## Scoring (pass mark {r.pass_percent:g}%)",
        "",
        "| item | how | points | within |",
        "|---|---|---|---|",
    ]
    for item in r.critical.values():
        within = clock_text(item.within_s) if item.within_s is not None else ""
        out.append(f"| {item.description} | {_match(item)} | {item.points} | {within} |")
    for penalty in r.penalties.values():
        out.append(f"| Penalty: {penalty.description} | {_match(penalty)} | -{penalty.points} | |")
    for manual in r.manual.values():
        out.append(f"| You mark: {manual.description} | `score` action | {manual.points} | |")
    out += ["", "## Outcome", ""]
    out += [f"- Good (if `{' '.join(c.outcome.good_if.split())}`): {c.outcome.good}"]
    out += [f"- Bad: {c.outcome.bad}"]
    if c.calibration:
        out += ["", "## What to expect", ""]
        for name, cal in c.calibration.items():
            team = f"{len(cal.team)} scripted actions" if cal.team else "no actions"
            out.append(f"**{name}** ({team}){': ' + cal.description if cal.description else ''}")
            out.append("")
            out += [f"- {_promise(pr)}" for pr in cal.promises]
            if cal.outcome:
                out.append(f"- outcome {cal.outcome}")
            band = cal.score
            if band.min_percent is not None:
                out.append(f"- score at least {band.min_percent:g}%")
            if band.max_percent is not None:
                out.append(f"- score at most {band.max_percent:g}%")
            if cal.penalties:
                out.append(f"- penalised for: {', '.join(cal.penalties)}")
            out.append("")
    if c.notes.hints:
        out += ["## Prepared hints (send by number)", ""]
        out += [f"{i}. {h}" for i, h in enumerate(c.notes.hints)]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
