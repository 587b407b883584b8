"""Plain-language names for the fixed vocabularies (routes, devices, signals) and plain
times, so that no raw id or bare number of seconds reaches a learner's screen."""

from __future__ import annotations

from typing import Final

ROUTES: Final[dict[str, tuple[str, str]]] = {
    "iv": ("Intravenous (IV)", "IV"),
    "ivinf": ("Intravenous infusion", "IV infusion"),
    "io": ("Intraosseous (IO)", "IO"),
    "im": ("Intramuscular (IM)", "IM"),
    "sc": ("Subcutaneous (SC)", "SC"),
    "po": ("By mouth (PO)", "orally"),
    "sl": ("Under the tongue (SL)", "sublingually"),
    "pr": ("Rectal (PR)", "rectally"),
    "in": ("Intranasal (IN)", "intranasally"),
    "neb": ("Nebulised", "nebulised"),
    "inh": ("Inhaled", "inhaled"),
    "topical": ("Topical", "topically"),
}
"""route id -> (name in a picker, how a log line says it)"""

DEVICES: Final[dict[str, str]] = {
    "none": "No oxygen (room air)",
    "nasal_cannula": "Nasal cannula",
    "simple_mask": "Simple face mask",
    "nonrebreather": "Non-rebreather mask (15 L/min)",
    "hfnc": "High-flow nasal oxygen",
    "niv": "Non-invasive ventilation (NIV)",
    "bvm": "Bag-valve-mask ventilation",
    "ett": "Tracheal tube (intubated and ventilated)",
}

SIGNALS: Final[dict[str, tuple[str, str]]] = {
    "hr": ("Heart rate", "/min"),
    "sbp": ("Systolic blood pressure", "mmHg"),
    "dbp": ("Diastolic blood pressure", "mmHg"),
    "map": ("Mean arterial pressure", "mmHg"),
    "spo2": ("Oxygen saturation", "%"),
    "rr": ("Respiratory rate", "/min"),
    "temp": ("Temperature", "°C"),
    "etco2": ("End-tidal CO2", "mmHg"),
}


def clock_text(seconds: float) -> str:
    """Case time as m:ss."""
    whole = max(0, int(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def measure_text(value: float, unit: str) -> str:
    """A measure with its unit; seconds as m:ss."""
    if unit == "s":
        return clock_text(value)
    return f"{value:g} {unit}".strip()
