"""A self-contained HTML debrief: one file, no scripts, no external resources.

Rendered generically from the log: the case engine's `debrief()` data when the room
recorded one (score breakdown, critical actions, time to intervention, vitals
trajectory), otherwise what any room records (actions, events, monitor values).
Members appear by role and pseudonym; every string from the log is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from replay.annotations import Annotation
from replay.reader import Session
from replay.summary import Summary, summarize, vitals_series

CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;
text-align:left}th{background:#f3f3f3}.ok{color:#060}.bad{color:#a00}svg{background:#fafafa;
border:1px solid #ddd;margin:.3em}h2{margin-top:1.5em}"""


def _mmss(t: Any) -> str:
    if not isinstance(t, int | float):
        return "-"
    return f"{int(t) // 60:02d}:{t % 60:04.1f}"


def _table(head: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p>None recorded.</p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def chart(name: str, points: list[tuple[float, float]], width: int = 320,
          height: int = 90) -> str:
    """One series as an inline SVG polyline with its range labelled."""
    ts = [p[0] for p in points]
    vs = [p[1] for p in points]
    t0, t1 = min(ts), max(ts)
    lo, hi = min(vs), max(vs)
    span_t, span_v = (t1 - t0) or 1.0, (hi - lo) or 1.0
    pad = 14
    coords = " ".join(
        f"{pad + (t - t0) / span_t * (width - 2 * pad):.1f},"
        f"{height - pad - (v - lo) / span_v * (height - 2 * pad):.1f}"
        for t, v in points
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(name)}">'
        f'<text x="4" y="11" font-size="10">{escape(name)} {lo:g}-{hi:g}</text>'
        f'<polyline fill="none" stroke="#c33" stroke-width="1.5" points="{coords}"/>'
        f'<text x="{pad}" y="{height - 2}" font-size="9">{_mmss(t0)}</text>'
        f'<text x="{width - 40}" y="{height - 2}" font-size="9">{_mmss(t1)}</text></svg>'
    )


def _who(s: Summary, member: int) -> str:
    info = s.members.get(member, {})
    return f"{info.get('role', '?')} {info.get('pseudonym', member)}"


def _score(debrief: dict[str, Any] | None) -> str:
    score = (debrief or {}).get("score")
    if not isinstance(score, dict):
        return "<p>This scenario recorded no score.</p>"
    total = (f"<p><b>{escape(str(score.get('earned')))} / {escape(str(score.get('max')))}"
             f"</b> ({escape(str(score.get('percent')))}%) - "
             f"{'passed' if score.get('passed') else 'not passed'}</p>")
    critical = [[c.get("description", c.get("id")), c.get("status"), _mmss(c.get("at_s")),
                 _mmss(c.get("within_s")), f"{c.get('points')}/{c.get('max')}"]
                for c in score.get("critical", [])]
    penalties = [[p.get("description", p.get("id")), _mmss(p.get("at_s")), p.get("points")]
                 for p in score.get("penalties", [])]
    manual = [[m.get("description", m.get("id")), f"{m.get('points')}/{m.get('max')}"]
              for m in score.get("manual", [])]
    return (total + "<h3>Critical actions</h3>"
            + _table(["item", "status", "at", "due within", "points"], critical)
            + "<h3>Penalties</h3>" + _table(["harm", "at", "points"], penalties)
            + "<h3>Facilitator marks</h3>" + _table(["item", "points"], manual))


def _timeline(s: Summary) -> list[list[Any]]:
    entries = (s.debrief or {}).get("timeline")
    if isinstance(entries, list) and entries:
        return [[_mmss(e.get("t")), e.get("kind"), e.get("text", e.get("id")), e.get("status")]
                for e in entries]
    rows = [[_mmss(a.t), "action", f"{_who(s, a.member)}: {a.action}",
             "applied" if a.ok else f"refused ({a.code})"] for a in s.actions]
    rows += [[_mmss(e.get("t")), "event", e.get("text", ""), e.get("kind", "")]
             for e in s.events]
    return sorted(rows, key=lambda r: str(r[0]))


def _time_to_intervention(s: Summary) -> list[list[Any]]:
    tti = (s.debrief or {}).get("time_to_intervention")
    if isinstance(tti, dict):
        return [[k, _mmss(v) if v is not None else "not done"] for k, v in tti.items()]
    first: dict[str, float] = {}
    for a in s.actions:
        if a.ok:
            first.setdefault(a.action, a.t)
    return [[k, _mmss(v)] for k, v in first.items()]


def render(session: Session, bookmarks: list[Annotation]) -> str:
    s = summarize(session)
    outcome = (s.debrief or {}).get("outcome")
    outcome_html = (f"<p>Outcome: {escape(str(outcome.get('text', '')))}</p>"
                    if isinstance(outcome, dict) else "")
    people = [[info.get("pseudonym"), info.get("role"), _mmss(info.get("joined_s")),
               _mmss(info.get("left_s"))] for info in s.members.values()]
    charts = "".join(chart(k, v) for k, v in vitals_series(s).items() if len(v) > 1)
    notes = [[_mmss(b.start_s), _mmss(b.end_s) if b.end_s is not None else "", b.kind,
              b.author, b.text] for b in bookmarks]
    title = escape(s.title or s.case or "session")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Debrief: {title}</title>
<style>{CSS}</style></head><body>
<h1>Debrief: {title}</h1>
<p>Session {escape(s.session_id)}, started {escape(s.started_at)}, lasted {_mmss(s.end_s)}
{("(" + escape(s.end_reason) + ")") if s.end_reason else ""}</p>{outcome_html}
<h2>Team</h2>{_table(["member", "role", "joined", "left"], people)}
<h2>Score</h2>{_score(s.debrief)}
<h2>Time to intervention</h2>{_table(["intervention", "first at"], _time_to_intervention(s))}
<h2>Timeline</h2>{_table(["at", "kind", "what", "status"], _timeline(s))}
<h2>Vitals</h2>{charts or "<p>No vitals recorded.</p>"}
<h2>Bookmarks and comments</h2>{_table(["at", "until", "kind", "by", "text"], notes)}
</body></html>
"""
