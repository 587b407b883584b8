"""A deterministic vital-signs model: conditions pull vitals away from baseline,
interventions push them back, every vital follows its target with a time constant.

It is deliberately simple (a teaching monitor, not a pharmacology engine): each
condition adds `severity x effect` to the baseline, each dose adds
`fraction(t) x dose factor x effect`, where the fraction rises from onset to peak and
wanes to zero by the end of its duration (or holds, for a running infusion); bigger
doses also wane more slowly.
Integration runs at a fixed internal step so the result does not depend on tick rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from rooms.case.model import Case, Intervention, Kinetics, Signal, Vital

VITALS: Final[tuple[Vital, ...]] = get_args(Vital)
SIGNALS: Final[tuple[Signal, ...]] = get_args(Signal)

STEP_S: Final = 0.25
"""Internal integration step in simulated seconds (4 Hz)."""

TIME_CONSTANT_S: Final[Mapping[Vital, float]] = {
    "hr": 20, "sbp": 25, "dbp": 25, "spo2": 20, "rr": 30, "temp": 600, "etco2": 30,
}
_ALPHA: Final = {v: 1 - math.exp(-STEP_S / tau) for v, tau in TIME_CONSTANT_S.items()}

LIMITS: Final[Mapping[Vital, tuple[float, float]]] = {
    "hr": (0, 250), "sbp": (0, 280), "dbp": (0, 180), "spo2": (40, 100),
    "rr": (0, 70), "temp": (30, 43), "etco2": (0, 120),
}

NOISE_SD: Final[Mapping[Vital, float]] = {
    "hr": 1.2, "sbp": 1.5, "dbp": 1.0, "spo2": 0.4, "rr": 0.5, "temp": 0.02, "etco2": 0.6,
}

DEVICE_EFFICACY: Final[Mapping[str, float]] = {
    "none": 0.0, "nasal_cannula": 0.3, "simple_mask": 0.45, "nonrebreather": 0.7,
    "hfnc": 0.8, "niv": 0.85, "bvm": 0.9, "ett": 0.95,
}
"""Share of a condition's SpO2 deficit each oxygen or airway device removes."""

MAX_DOSE_FACTOR: Final = 4.0
WANING_LIMITS: Final = (0.25, 2.5)


def waning_scale(factor: float) -> float:
    """How much longer than typical a dose `factor` x typical lasts.

    With first-order elimination the time a level stays above a threshold grows with
    the log of the dose, so a double dose lasts longer, not twice as long.
    """
    return min(WANING_LIMITS[1], max(WANING_LIMITS[0], 1.0 + math.log(factor)))


def fraction(k: Kinetics, age_s: float, infusion: bool, factor: float = 1.0) -> float:
    """How much of a dose's full effect is present `age_s` seconds after it was given."""
    if age_s < k.onset_s:
        return 0.0
    if age_s < k.peak_s:
        return (age_s - k.onset_s) / (k.peak_s - k.onset_s)
    if infusion:
        return 1.0
    span = (k.duration_s - k.peak_s) * waning_scale(factor)
    if age_s >= k.peak_s + span:
        return 0.0
    return 1.0 - (age_s - k.peak_s) / span


@dataclass(frozen=True, slots=True)
class Give:
    drug: str
    route: str
    factor: float
    """Dose relative to the typical dose (per kg where dosed per kg)."""


@dataclass(frozen=True, slots=True)
class Support:
    device: str


@dataclass(frozen=True, slots=True)
class ChangeCondition:
    condition: str
    severity: float | None = None
    progression_per_min: float | None = None


@dataclass(frozen=True, slots=True)
class Override:
    signal: str
    value: float | None
    """None ends the override."""
    until_s: float | None = None


PhysioAction = Give | Support | ChangeCondition | Override


class Physiology:
    """The patient's vitals over simulated time; same inputs, same trajectory."""

    def __init__(self, case: Case) -> None:
        self._case = case
        self._drugs: Mapping[str, Intervention] = case.interventions
        self._kinetics: dict[tuple[str, str], Kinetics] = {
            (d, r): k for d, drug in case.interventions.items() for r, k in drug.routes.items()
        }
        self.t = 0.0
        self.severity = {c: (s.severity if s.active else 0.0) for c, s in case.conditions.items()}
        self.progression = {
            c: (s.progression_per_min if s.active else 0.0) for c, s in case.conditions.items()
        }
        self.doses: list[list[Any]] = []
        """[drug, route, factor, given_at_s]; an infusion's row is replaced when re-dosed."""
        self.device = "none"
        self.overrides: dict[str, list[Any]] = {}
        """signal -> [value, until_s or None]"""
        self.values: dict[str, float] = self._target()

    # -- inputs ----------------------------------------------------------------
    def apply(self, action: PhysioAction) -> None:
        match action:
            case Give(drug, route, factor):
                if self._drugs[drug].infusion:
                    self.doses = [d for d in self.doses if d[0] != drug]
                    if factor <= 0:
                        return
                self.doses.append([drug, route, min(factor, MAX_DOSE_FACTOR), self.t])
            case Support(device):
                self.device = device
            case ChangeCondition(cond, severity, progression):
                if severity is not None:
                    self.severity[cond] = severity
                if progression is not None:
                    self.progression[cond] = progression
            case Override(signal, None, _):
                self.overrides.pop(signal, None)
            case Override(signal, value, until):
                self.overrides[signal] = [value, until]

    # -- dynamics ----------------------------------------------------------------
    def _active_doses(self) -> list[tuple[Intervention, float]]:
        out = []
        for drug_id, route, factor, given in self.doses:
            drug = self._drugs[drug_id]
            kinetics = self._kinetics[drug_id, route]
            f = fraction(kinetics, self.t - given, drug.infusion, factor)
            if f > 0:
                out.append((drug, f * factor * kinetics.potency))
        return out

    def _target(self) -> dict[str, float]:
        base = self._case.vitals.baseline
        target: dict[str, float] = {v: float(getattr(base, v)) for v in VITALS}
        relief = DEVICE_EFFICACY[self.device]
        for cid, cond in self._case.conditions.items():
            s = self.severity[cid]
            for vital, delta in cond.effects.items():
                if vital == "spo2" and delta < 0:
                    delta *= 1 - relief
                target[vital] += s * delta
        for drug, weight in self._active_doses():
            for vital, delta in drug.effects.items():
                target[vital] += weight * delta
        for vital, (lo, hi) in LIMITS.items():
            target[vital] = min(hi, max(lo, target[vital]))
        return target

    def step(self, dt: float = STEP_S) -> None:
        """Advance by one internal step (callers accumulate time and call this at 4 Hz)."""
        minutes = dt / 60.0
        doses = self._active_doses()
        for cid in self.severity:
            change = self.progression[cid]
            for drug, weight in doses:
                change += weight * (drug.worsens.get(cid, 0.0) - drug.treats.get(cid, 0.0))
            self.severity[cid] = min(1.0, max(0.0, self.severity[cid] + change * minutes))
        target = self._target()
        for vital in VITALS:
            self.values[vital] += (target[vital] - self.values[vital]) * _ALPHA[vital]
        self.t += dt
        for signal, (_, until) in list(self.overrides.items()):
            if until is not None and self.t >= until:
                del self.overrides[signal]

    def signals(self, noise: Mapping[str, float]) -> dict[str, float]:
        """Monitor values (model + noise, or the facilitator's override), with MAP."""
        out: dict[str, float] = {v: self.values[v] + noise.get(v, 0.0) for v in VITALS}
        for vital, (lo, hi) in LIMITS.items():
            out[vital] = min(hi, max(lo, out[vital]))
        for signal, (value, _) in self.overrides.items():
            out[signal] = float(value)
        if "map" not in self.overrides:
            out["map"] = out["dbp"] + (out["sbp"] - out["dbp"]) / 3
        return out

    # -- persistence -------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "values": dict(self.values),
            "severity": dict(self.severity),
            "progression": dict(self.progression),
            "doses": [list(d) for d in self.doses],
            "device": self.device,
            "overrides": {k: list(v) for k, v in self.overrides.items()},
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.t = float(data["t"])
        self.values = dict(data["values"])
        self.severity = dict(data["severity"])
        self.progression = dict(data["progression"])
        self.doses = [list(d) for d in data["doses"]]
        self.device = str(data["device"])
        self.overrides = {k: list(v) for k, v in data["overrides"].items()}
