"""Behavioural rating scales for debriefing, and agreement between two raters.

A rater scores a time range of the session on a scale: each item on the scale's item
range and one global rating. Two scales ship, as simulation centres use them:

- TEAM (Team Emergency Assessment Measure; Cooper et al., Resuscitation 2010):
  11 items rated 0 (never) to 4 (always), and a global rating of 1 to 10.
- ANTS (Anaesthetists' Non-Technical Skills; Fletcher et al., BJA 2003): four
  categories rated 1 (poor) to 4 (good), and an overall rating on the same range.

Agreement is Cohen's kappa with quadratic weights over the items both raters scored
on overlapping time ranges: ordinal scores, where a one-point disagreement matters
less than a three-point one. Written out here (twenty lines) rather than taken from
scikit-learn, which would be the project's only reason to install it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Scale:
    id: str
    title: str
    items: tuple[tuple[str, str], ...]
    """(item id, what is rated) in the scale's order."""
    low: int
    high: int
    global_low: int
    global_high: int
    anchors: str
    """What the ends of the item range mean."""


SCALES: Final[dict[str, Scale]] = {
    "TEAM": Scale(
        "TEAM",
        "Team Emergency Assessment Measure",
        (
            ("leader_direction", "The team leader let the team know what was expected of them"),
            ("leader_overview", "The team leader maintained a global perspective"),
            ("communication", "The team communicated effectively"),
            ("cooperation", "The team worked together to complete tasks in a timely manner"),
            ("composure", "The team acted with composure and control"),
            ("morale", "The team morale was positive"),
            ("adaptability", "The team adapted to changing situations"),
            ("monitoring", "The team monitored and reassessed the situation"),
            ("anticipation", "The team anticipated potential actions"),
            ("prioritising", "The team prioritised tasks"),
            ("standards", "The team followed approved standards and guidelines"),
        ),
        0,
        4,
        1,
        10,
        "0 never or hardly ever, 4 always or nearly always; global 1 to 10",
    ),
    "ANTS": Scale(
        "ANTS",
        "Anaesthetists' Non-Technical Skills",
        (
            ("task_management", "Task management"),
            ("team_working", "Team working"),
            ("situation_awareness", "Situation awareness"),
            ("decision_making", "Decision making"),
        ),
        1,
        4,
        1,
        4,
        "1 poor, 2 marginal, 3 acceptable, 4 good",
    ),
}


def weighted_kappa(pairs: Sequence[tuple[int, int]], low: int, high: int) -> float | None:
    """Cohen's kappa with quadratic weights for paired ordinal scores in low..high.

    None when it is undefined: no pairs, or both raters gave one and the same score
    throughout (no variation to agree about).
    """
    k = high - low + 1
    n = len(pairs)
    if n == 0 or k < 2:
        return None
    observed = [[0.0] * k for _ in range(k)]
    for a, b in pairs:
        observed[a - low][b - low] += 1
    rows = [sum(r) for r in observed]
    cols = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    disagreement = expected = 0.0
    for i in range(k):
        for j in range(k):
            weight = (i - j) ** 2 / (k - 1) ** 2
            disagreement += weight * observed[i][j]
            expected += weight * rows[i] * cols[j] / n
    if expected == 0:
        return None
    return 1.0 - disagreement / expected


def describe_kappa(kappa: float) -> str:
    """Landis and Koch's words for a kappa (how debriefing literature reports it)."""
    for bound, word in (
        (0.0, "poor"),
        (0.2, "slight"),
        (0.4, "fair"),
        (0.6, "moderate"),
        (0.8, "substantial"),
    ):
        if kappa <= bound:
            return word
    return "almost perfect"
