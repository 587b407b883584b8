"""A model "good team" for each shipped case, plus one harmful action per case."""

from __future__ import annotations

from tests.case.harness import LEAD, TEAM, Step


def give(at: float, drug: str, dose: float, route: str) -> Step:
    return (at, TEAM, "give", {"drug": drug, "dose": dose, "route": route})


def decide(at: float, decision: str, option: str) -> Step:
    return (at, TEAM, "decide", {"decision": decision, "option": option})


def order(at: float, test: str) -> Step:
    return (at, TEAM, "order", {"test": test})


def examine(at: float, region: str) -> Step:
    return (at, TEAM, "examine", {"region": region})


def oxygen(at: float, device: str) -> Step:
    return (at, TEAM, "oxygen", {"device": device})


def call(at: float, team: str) -> Step:
    return (at, TEAM, "call_help", {"team": team})


def mark(at: float, item: str, points: int) -> Step:
    return (at, LEAD, "score", {"item": item, "points": points})


GOOD: dict[str, list[Step]] = {
    "septic_shock_ed": [
        examine(20, "abdomen"), oxygen(30, "nasal_cannula"),
        order(60, "blood_cultures"), order(65, "lactate"),
        give(120, "crystalloid", 30, "iv"), give(180, "ceftriaxone", 2, "iv"),
        call(300, "icu"), give(420, "norepinephrine", 0.1, "ivinf"),
        decide(600, "disposition", "icu"), give(1200, "norepinephrine", 0.03, "ivinf"),
        mark(1300, "communication", 9),
    ],
    "anaphylaxis": [
        examine(10, "airway"), give(40, "epinephrine", 0.5, "im"),
        oxygen(50, "nonrebreather"), decide(60, "position", "flat_legs_up"),
        call(70, "anaesthetics"), give(120, "crystalloid", 12, "iv"),
        give(300, "chlorphenamine", 10, "iv"), order(400, "tryptase"),
        mark(900, "discharge_plan", 9),
    ],
    "paediatric_asthma": [
        examine(15, "chest"), oxygen(30, "simple_mask"), decide(40, "severity", "acute_severe"),
        give(60, "salbutamol", 5, "neb"), give(90, "ipratropium", 0.25, "neb"),
        give(300, "salbutamol", 5, "neb"), give(400, "prednisolone", 1, "po"),
        give(540, "salbutamol", 5, "neb"), call(560, "senior"),
        give(620, "magnesium_sulfate", 40, "iv"), give(800, "salbutamol", 5, "neb"),
        mark(900, "explains_plan", 10), mark(910, "checks_understanding", 5),
        mark(920, "respects_wishes", 5),
    ],
    "inferior_stemi": [
        order(60, "ecg"), examine(90, "neck"), give(150, "aspirin", 300, "po"),
        order(170, "right_ecg"), decide(240, "reperfusion", "primary_pci"),
        give(260, "ticagrelor", 180, "po"), give(300, "heparin", 70, "iv"),
        give(330, "crystalloid", 6, "iv"), mark(600, "consent", 8),
    ],
    "lap_chole_cvs": [
        give(60, "cefazolin", 2, "iv"), examine(150, "hepatocystic_triangle"),
        examine(160, "cystic_plate"), examine(170, "structures"),
        decide(240, "cvs_first_look", "not_met"), decide(740, "bleeding_response", "pressure"),
        call(745, "senior"), examine(800, "structures"), decide(850, "cvs_final", "timeout"),
        mark(900, "communication", 9),
    ],
}

HARM: dict[str, tuple[Step, str]] = {
    "septic_shock_ed": (give(60, "piperacillin_tazobactam", 4.5, "iv"), "penicillin"),
    "anaphylaxis": (give(60, "epinephrine", 0.5, "iv"), "iv_bolus"),
    "paediatric_asthma": (give(60, "midazolam", 0.1, "iv"), "sedation"),
    "inferior_stemi": (give(60, "nitroglycerin", 0.4, "sl"), "nitrate"),
    "lap_chole_cvs": (decide(240, "cvs_first_look", "met"), "false_cvs"),
}
