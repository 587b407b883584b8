"""The debrief: one self-contained, printable HTML page (no scripts, no external resources).

Laid out along the PEARLS debriefing phases: reactions (prompts), description (who did
what, when: every action by actor with dose, route, result and refusal; decisions;
what was said), analysis (vitals on clinically scaled axes with the interventions
marked; the critical actions against their windows, explained; the score), summary
(reviewers' comments, rater forms and the agreement between raters). Built from the
session's records through `replay.summary`, so it survives changes to the case engine.
Every string from the log is escaped. The browser prints it to PDF.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from itertools import combinations
from typing import Any, Final

from replay.annotations import Annotation
from replay.rating import SCALES as RATING_SCALES
from replay.rating import describe_kappa, weighted_kappa
from replay.reader import Session
from replay.summary import SCALES, Action, Line, Summary, summarize

CSS: Final = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1d1d1d;padding:0 1em}
h1{margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:2px solid #345;padding-bottom:.2em}
h3{margin:1.2em 0 .4em}table{border-collapse:collapse;margin:.4em 0 1em;width:100%}
td,th{border:1px solid #c8c8c8;padding:.25em .45em;text-align:left;vertical-align:top}
th{background:#eef1f4}.meta{color:#555}.ok{color:#05640f}.bad{color:#a00}.due{color:#8a5a00}
.said td{background:#f7f7fb;color:#333}.said td:first-child{font-style:italic}
.outcome{border:1px solid #345;border-left:.5em solid #345;padding:.6em 1em;background:#f4f7fa}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(30em,1fr));gap:.6em}
figure{margin:0}figcaption{font-weight:600;margin:.2em 0}svg{background:#fff;border:1px solid #ccc}
.prompts li{margin:.2em 0}.num{font-variant-numeric:tabular-nums;white-space:nowrap}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}
tr,figure{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""
CHARTS: Final = (
    ("Heart rate", ("hr",)),
    ("Blood pressure", ("sbp", "dbp", "map")),
    ("SpO\u2082", ("spo2",)),
    ("Respiratory rate", ("rr",)),
    ("Temperature", ("temp",)),
    ("End-tidal CO\u2082", ("etco2",)),
)
COLOURS: Final = {
    "hr": "#0a7d24",
    "sbp": "#b3261e",
    "dbp": "#d0633c",
    "map": "#6b2a8c",
    "spo2": "#1565c0",
    "rr": "#8a5a00",
    "temp": "#00695c",
    "etco2": "#455a64",
}
MARKED: Final = frozenset({"give", "stop", "order", "oxygen", "call_help", "decide", "examine"})
"""Actions drawn on the vitals charts (clinical interventions)."""
PEARLS_REACTIONS: Final = (
    "How are you feeling after that case?",
    "What were the main challenges for the team?",
    "Anything you want to make sure we talk about?",
)


def clock(t: float | None) -> str:
    if t is None:
        return "-"
    t = max(0.0, float(t))
    return f"{int(t) // 60}:{int(t) % 60:02d}"


def _cells(row: Sequence[Any], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"


def _table(head: Sequence[str], rows: Iterable[str], empty: str = "None recorded.") -> str:
    body = "".join(rows)
    if not body:
        return f"<p>{escape(empty)}</p>"
    th = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _vitals_text(s: Summary, t: float) -> str:
    v = s.vitals_at(t)
    parts = []
    if "sbp" in v:
        parts.append(f"BP {v['sbp']:g}/{v['dbp']:g}" if "dbp" in v else f"SBP {v['sbp']:g}")
    for key, label, unit in (("hr", "HR", ""), ("spo2", "SpO\u2082", "%"), ("map", "MAP", "")):
        if key in v:
            parts.append(f"{label} {v[key]:g}{unit}")
    return ", ".join(parts) or "-"


def _result(a: Action) -> str:
    if a.ok is None:
        return '<span class="due">no reply recorded</span>'
    if a.ok:
        return '<span class="ok">applied</span>'
    return f'<span class="bad">refused ({escape(a.code)}): {escape(a.message)}</span>'


def _what(a: Action) -> str:
    text = escape(a.describe())
    return text + (f"<br><small>{escape(a.effect)}</small>" if a.effect else "")


# -- description -----------------------------------------------------------------------
def _timeline(s: Summary) -> str:
    rows: list[tuple[float, int, str]] = []
    for a in s.actions:
        rows.append(
            (
                a.t,
                1,
                _cells(
                    [
                        f'<span class="num">{clock(a.t)}</span>',
                        f'<span class="num">{clock(a.case_s)}</span>',
                        escape(f"{a.actor}" + (f" ({a.role})" if a.role else "")),
                        _what(a),
                        _result(a),
                        escape(_vitals_text(s, a.t)),
                    ]
                ),
            )
        )
    for line in s.transcript:
        rows.append(
            (
                line.t,
                0,
                _cells(
                    [
                        f'<span class="num">{clock(line.t)}</span>',
                        "",
                        escape(line.who),
                        f"{escape(line.kind)}: \u201c{escape(line.text)}\u201d",
                        "",
                        "",
                    ],
                    "said",
                ),
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    return _table(
        ["at", "case time", "who", "what", "result", "vitals then"],
        (r[2] for r in rows),
        "No actions or words recorded.",
    )


def _by_person(s: Summary) -> str:
    people: dict[str, list[Action]] = {}
    for a in s.actions:
        people.setdefault(a.actor, []).append(a)
    if not people:
        return "<p>No actions recorded.</p>"
    out = []
    for actor, actions in people.items():
        items = "".join(
            f'<li><span class="num">{clock(a.t)}</span> {escape(a.describe())}{_refusal(a)}</li>'
            for a in actions
        )
        out.append(f'<h4>{escape(actor)}</h4><ol class="person">{items}</ol>')
    return "".join(out)


def _refusal(a: Action) -> str:
    return "" if a.ok is not False else f' <span class="bad">(refused: {escape(a.code)})</span>'


def _decisions(s: Summary) -> str:
    rows = []
    for d in s.decisions:
        advice = ""
        if d.recommended is not None:
            good = d.option in d.recommended
            said = "as recommended" if good else "recommended: " + ", ".join(d.recommended)
            advice = f'<span class="{"ok" if good else "bad"}">{escape(said)}</span>'

        rows.append(
            _cells(
                [
                    f'<span class="num">{clock(d.t)}</span>',
                    escape(d.prompt or d.decision),
                    escape(f"{d.label} ({d.option})"),
                    escape(d.by),
                    advice,
                ]
            )
        )
    return _table(
        ["at", "decision point", "option taken", "by", "against the key"],
        rows,
        "No decisions were taken.",
    )


def _transcript(lines: list[Line]) -> str:
    rows = (
        _cells(
            [
                f'<span class="num">{clock(x.t)}</span>',
                escape(x.kind),
                escape(x.who),
                escape(x.text),
            ]
        )
        for x in lines
    )
    return _table(["at", "kind", "who", "text"], rows, "Nothing was said in writing.")


# -- analysis ----------------------------------------------------------------------------
def chart(
    s: Summary,
    title: str,
    signals: Sequence[str],
    marks: list[tuple[int, Action]],
    width: int = 560,
    height: int = 190,
) -> str:
    """A vitals chart on the first signal's clinical scale, interventions numbered."""
    present = [x for x in signals if len(s.vitals.get(x, [])) > 0]
    if not present:
        return ""
    scale = SCALES[present[0]]
    left, right, top, bottom = 44, 12, 10, 26
    span_t = max(s.end_s, 1.0)
    span_v = scale.high - scale.low

    def x(t: float) -> float:
        return left + (width - left - right) * min(max(t, 0.0), span_t) / span_t

    def y(v: float) -> float:
        v = min(max(v, scale.low), scale.high)
        return top + (height - top - bottom) * (1 - (v - scale.low) / span_v)

    lo, hi = (min(SCALES[p].normal[0] for p in present), max(SCALES[p].normal[1] for p in present))
    parts = [
        f'<rect x="{left}" y="{y(hi):.1f}" width="{width - left - right}" '
        f'height="{y(lo) - y(hi):.1f}" fill="#e8f3ea"/>'
    ]
    step = _nice_step(span_v)
    v = scale.low
    while v <= scale.high + 1e-9:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#e3e3e3"/>'
            f'<text x="{left - 4}" y="{y(v) + 3:.1f}" font-size="10" '
            f'text-anchor="end">{v:g}</text>'
        )
        v += step
    for i in range(5):
        t = span_t * i / 4
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - 8}" font-size="10" '
            f'text-anchor="middle">{clock(t)}</text>'
        )
    for number, a in marks:
        parts.append(
            f'<line x1="{x(a.t):.1f}" x2="{x(a.t):.1f}" y1="{top}" '
            f'y2="{height - bottom}" stroke="#333" stroke-dasharray="3,3"/>'
            f'<text x="{x(a.t) + 2:.1f}" y="{top + 9}" font-size="9">{number}</text>'
        )
    for name in present:
        points = " ".join(f"{x(t):.1f},{y(val):.1f}" for t, val in s.vitals[name])
        parts.append(
            f'<polyline fill="none" stroke="{COLOURS.get(name, "#333")}" '
            f'stroke-width="1.6" points="{points}"/>'
        )
    names = ", ".join(f"{SCALES[p].label}" for p in present)
    last = ", ".join(f"{p} {s.vitals[p][-1][1]:g}" for p in present)
    label = (
        f"{title} ({names}, {scale.unit}) on a fixed {scale.low:g}-{scale.high:g} scale, "
        f"normal band shaded; interventions numbered; last values {last}"
    )
    return (
        f"<figure><figcaption>{escape(title)} ({escape(scale.unit)})</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(parts)}</svg></figure>"
    )


def _nice_step(span: float) -> float:
    for step in (1, 2, 5, 10, 20, 25, 50, 100):
        if span / step <= 6:
            return float(step)
    return span / 5


def _vitals(s: Summary) -> str:
    marks = [
        (i + 1, a)
        for i, a in enumerate(a for a in s.actions if a.action in MARKED and a.ok is not False)
    ]
    charts = "".join(chart(s, title, signals, marks) for title, signals in CHARTS)
    if not charts:
        return "<p>No vitals were recorded.</p>"
    legend = _table(
        ["mark", "at", "who", "intervention", "vitals then"],
        (
            _cells(
                [
                    str(n),
                    f'<span class="num">{clock(a.t)}</span>',
                    escape(a.actor),
                    escape(a.describe()),
                    escape(_vitals_text(s, a.t)),
                ]
            )
            for n, a in marks
        ),
        "No interventions to mark.",
    )
    return f'<div class="charts">{charts}</div><h3>Interventions marked</h3>{legend}'


def _case_end(s: Summary) -> float | None:
    debrief_end = (s.debrief or {}).get("duration_s")
    if isinstance(debrief_end, int | float):
        return float(debrief_end)
    return s.case_clock[-1][1] if s.case_clock else None


def _rubric(s: Summary) -> str:
    score = (s.debrief or {}).get("score")
    if not isinstance(score, dict):
        return "<p>This case recorded no scoring rubric.</p>"
    end = _case_end(s)
    rows, not_yet = [], 0
    for item in score.get("critical", []) or []:
        if not isinstance(item, dict):
            continue
        status, why = _explain(item, end)
        not_yet += status == "not due yet"
        window = "no limit" if item.get("within_s") is None else clock(item.get("within_s"))
        rows.append(
            _cells(
                [
                    escape(str(item.get("description", item.get("id")))),
                    f'<span class="num">{window}</span>',
                    f'<span class="num">{clock(item.get("at_s"))}</span>',
                    f'<span class="{_status_class(status)}">{escape(status)}</span>',
                    escape(why),
                    f"{item.get('points', 0)}/{item.get('max', '?')}",
                ]
            )
        )
    penalties = [
        _cells(
            [
                escape(str(p.get("description", p.get("id")))),
                f'<span class="num">{clock(p.get("at_s"))}</span>',
                str(p.get("points")),
            ]
        )
        for p in score.get("penalties", []) or []
        if isinstance(p, dict)
    ]
    manual = [
        _cells(
            [
                escape(str(m.get("description", m.get("id")))),
                f"{'-' if m.get('points') is None else m.get('points')}/{m.get('max')}",
            ]
        )
        for m in score.get("manual", []) or []
        if isinstance(m, dict)
    ]
    pass_mark = ((s.answer_key or {}).get("rubric") or {}).get("pass_percent")
    verdict = "passed" if score.get("passed") else "not passed"
    mark = f" (pass mark {pass_mark}%)" if pass_mark is not None else ""
    caveat = (
        f" {not_yet} critical action{'s were' if not_yet != 1 else ' was'} not yet due when "
        "the session ended; they score nothing here, which says when the session stopped, "
        "not how the team did."
        if not_yet
        else ""
    )
    return (
        f"<p><b>{escape(str(score.get('earned')))} of {escape(str(score.get('max')))} points "
        f"({escape(str(score.get('percent')))}%), {verdict}{mark}.</b>{escape(caveat)}</p>"
        "<h3>Critical actions against their windows</h3>"
        + _table(
            ["critical action", "due within (case time)", "done at", "status", "why", "points"],
            rows,
        )
        + "<h3>Penalties</h3>"
        + _table(["harm", "at", "points"], penalties)
        + "<h3>Facilitator's marks</h3>"
        + _table(["item", "points"], manual)
    )


def _explain(item: dict[str, Any], end: float | None) -> tuple[str, str]:
    """(status, a sentence) for one critical action, against the case time it ended at."""
    at, within = item.get("at_s"), item.get("within_s")
    status = str(item.get("status", ""))
    if isinstance(at, int | float):
        if within is None:
            return "done", f"done at {clock(at)}; it has no time limit"
        if status == "late" or at > within:
            return "late", f"done at {clock(at)}, after its window closed at {clock(within)}"
        return "done", f"done at {clock(at)}, within its {clock(within)} window"
    early = item.get("out_of_order_at_s")
    order = f" (tried at {clock(early)}, out of the required order)" if early is not None else ""
    if within is None:
        return "not done", f"not done{order}; it has no time limit"
    if end is not None and end < within:
        return "not due yet", (
            f"not done{order}; the session ended at {clock(end)} of case "
            f"time, before its window closed at {clock(within)}"
        )
    return "missed", f"not done{order}; its window closed at {clock(within)}"


def _status_class(status: str) -> str:
    return {"done": "ok", "late": "due", "not due yet": "due"}.get(status, "bad")


def _outcome(s: Summary) -> str:
    outcome = (s.debrief or {}).get("outcome")
    end = _case_end(s)
    when = (
        f"The session ended after {clock(s.end_s)}"
        + (f" ({clock(end)} of case time)" if end is not None else "")
        + (f": {s.end_reason}." if s.end_reason else ".")
    )
    if not isinstance(outcome, dict):
        return f'<div class="outcome"><p>{escape(when)} The case recorded no outcome.</p></div>'
    critical = [
        i
        for i in ((s.debrief or {}).get("score") or {}).get("critical", [])
        if isinstance(i, dict) and isinstance(i.get("within_s"), int | float)
    ]
    still_open = [
        i
        for i in critical
        if i.get("at_s") is None and end is not None and end < float(i["within_s"])
    ]
    meaning = (
        f" The patient's state is shown as it was when the session stopped, with "
        f"{len(still_open)} of {len(critical)} time-critical actions not done and not yet due:"
        " the case had not run its course."
        if still_open
        else " No time-critical action was still waiting for its window, so this is how the case "
        "turned out."
    )
    good = bool(outcome.get("good"))
    return (
        f'<div class="outcome"><p><b>Outcome: <span class="{"ok" if good else "bad"}">'
        f"{escape(str(outcome.get('text', '')))}</span></b></p>"
        f"<p>{escape(when + meaning)}</p></div>"
    )


# -- summary: reviewers ------------------------------------------------------------------
def _comments(notes: list[Annotation]) -> str:
    rows = (
        _cells(
            [
                f'<span class="num">{clock(n.start_s)}</span>',
                f'<span class="num">{clock(n.end_s)}</span>' if n.end_s is not None else "",
                escape(n.kind),
                escape(n.author),
                escape(n.text),
            ]
        )
        for n in notes
        if n.kind != "rating"
    )
    return _table(["at", "until", "kind", "by", "comment"], rows, "No reviewer comments yet.")


def _ratings(notes: list[Annotation]) -> str:
    forms = [n for n in notes if n.rating is not None]
    if not forms:
        return "<p>No rater forms yet.</p>"
    out = []
    for scale_id in sorted({n.rating.scale for n in forms if n.rating is not None}):
        scale = RATING_SCALES[scale_id]
        mine = [n for n in forms if n.rating is not None and n.rating.scale == scale_id]
        head = ["rater", "time range", *(label for _, label in scale.items), "global", "comment"]
        rows = (
            _cells(
                [
                    escape(n.author or "?"),
                    f'<span class="num">{clock(n.start_s)}-{clock(n.end_s)}</span>',
                    *(str(n.rating.items.get(item, "-")) for item, _ in scale.items),
                    str(n.rating.global_rating),
                    escape(n.text),
                ]
            )
            for n in mine
            if n.rating is not None
        )
        out.append(
            f"<h4>{escape(scale.title)} ({escape(scale.anchors)})</h4>"
            + _table(head, rows)
            + _agreement(mine, scale_id)
        )
    return "".join(out)


def _agreement(forms: list[Annotation], scale_id: str) -> str:
    """Weighted kappa for each pair of raters, over items scored on overlapping ranges."""
    scale = RATING_SCALES[scale_id]
    raters = sorted({n.author for n in forms})
    lines = []
    for a, b in combinations(raters, 2):
        pairs = []
        for x in (n for n in forms if n.author == a):
            overlapping = [y for y in forms if y.author == b and _overlap(x, y) > 0]
            if not overlapping or x.rating is None:
                continue
            y = max(overlapping, key=lambda other: _overlap(x, other))
            assert y.rating is not None
            pairs += [
                (x.rating.items[i], y.rating.items[i])
                for i in x.rating.items
                if i in y.rating.items
            ]
        kappa = weighted_kappa(pairs, scale.low, scale.high)
        if kappa is None:
            lines.append(
                f"<li>{escape(a)} and {escape(b)}: not enough paired scores to "
                f"compare ({len(pairs)} items).</li>"
            )
        else:
            lines.append(
                f"<li>{escape(a)} and {escape(b)}: weighted \u03ba = {kappa:.2f} "
                f"({describe_kappa(kappa)} agreement), {len(pairs)} paired item "
                "scores on overlapping time ranges.</li>"
            )
    if not lines:
        return "<p>Agreement needs forms from two raters on the same scale.</p>"
    return (
        "<p>Agreement between raters (Cohen's kappa, quadratic weights):</p>"
        f"<ul>{''.join(lines)}</ul>"
    )


def _overlap(x: Annotation, y: Annotation) -> float:
    return min(x.end_s or x.start_s, y.end_s or y.start_s) - max(x.start_s, y.start_s)


def _damage(s: Summary) -> str:
    if s.damage is None:
        return ""
    return (
        f'<p class="bad"><b>The recording could not be read to its end</b> '
        f"({escape(s.damage)}); this debrief covers what could be read.</p>"
    )


# -- the page ---------------------------------------------------------------------------
def render(session: Session, notes: list[Annotation]) -> str:
    s = summarize(session)
    return page(s, notes)


def page(s: Summary, notes: list[Annotation]) -> str:
    title = escape(s.title or s.case or "session")
    people = _table(
        ["name", "role", "joined", "left", "actions"],
        (
            _cells(
                [
                    escape(m.name),
                    escape(m.role),
                    clock(m.joined_s),
                    clock(m.left_s),
                    str(sum(1 for a in s.actions if a.member == m.id)),
                ]
            )
            for m in s.members.values()
        ),
        "No members recorded.",
    )
    reactions = "".join(f"<li>{escape(q)}</li>" for q in PEARLS_REACTIONS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Debrief: {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body><main>
<h1>Debrief: {title}</h1>
<p class="meta">Session {escape(s.session_id)}, started {escape(s.started_at)}, lasted
{clock(s.end_s)}. Times are session time (m:ss); case time is the case's own clock.</p>
{_damage(s)}{_outcome(s)}
<h2 id="reactions">1. Reactions</h2>
<ul class="prompts">{reactions}</ul>
<h2 id="description">2. Description: what happened</h2>
<h3>Team</h3>{people}
<h3>Timeline: every action, and what was said</h3>{_timeline(s)}
<h3>Each person's actions, in order</h3>{_by_person(s)}
<h3>Decisions</h3>{_decisions(s)}
<h3>Conversation, questions and notes</h3>{_transcript(s.transcript)}
<h2 id="analysis">3. Analysis</h2>
<h3>Vitals</h3>{_vitals(s)}
<h3>Score</h3>{_rubric(s)}
<h2 id="summary">4. Summary</h2>
<h3>Reviewers' comments and bookmarks</h3>{_comments(notes)}
<h3>Ratings</h3>{_ratings(notes)}
</main></body></html>
"""
