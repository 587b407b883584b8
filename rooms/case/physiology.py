"""The patient state model: named state variables advanced by rate terms, vitals
derived from them, doses and procedures with their kinetics.

Each physiology step (a fixed 0.25 s of case time, whatever the tick rate):
  1. every active dose and procedure contributes, weighted by its kinetics fraction
     (and by dose / typical dose, capped at 4x, times the route's potency), to
     - its vitals' targets (`effects`),
     - state variables' additive rates (`acts_on.X.rate`, summed; saturated if the
       variable says so) and multiplicative factors on the variable's own rate
       (`acts_on.X.factor`, multiplied, their product clamped to the variable's
       floor and ceiling),
     - and delivers its per-dose `amount`s between onset and peak;
  2. every variable moves by (own rate x factors + additive rates) per minute and is
     clamped to its bounds;
  3. each vital's target is its `derive` expression, or baseline + the linear
     `effects` of the state (an SpO2 fall relieved by the oxygen device), plus the
     doses' effects; the vital follows its target with a time constant.
Same inputs, same trajectory: a replay re-simulates it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from rooms.case.expressions import Env, holds, number
from rooms.case.model import Kinetics
from rooms.case.program import SIGNALS, VITALS, CaseProgram, Source

STEP_S: Final = 0.25
"""Internal integration step in simulated seconds (4 Hz)."""

TIME_CONSTANT_S: Final[Mapping[str, float]] = {
    "hr": 20,
    "sbp": 25,
    "dbp": 25,
    "spo2": 20,
    "rr": 30,
    "temp": 600,
    "etco2": 30,
}

LIMITS: Final[Mapping[str, tuple[float, float]]] = {
    "hr": (0, 250),
    "sbp": (0, 280),
    "dbp": (0, 180),
    "spo2": (40, 100),
    "rr": (0, 70),
    "temp": (30, 43),
    "etco2": (0, 120),
}

NOISE_SD: Final[Mapping[str, float]] = {
    "hr": 1.2,
    "sbp": 1.5,
    "dbp": 1.0,
    "spo2": 0.4,
    "rr": 0.5,
    "temp": 0.02,
    "etco2": 0.6,
}

DEVICE_EFFICACY: Final[Mapping[str, float]] = {
    "none": 0.0,
    "nasal_cannula": 0.3,
    "simple_mask": 0.45,
    "nonrebreather": 0.7,
    "hfnc": 0.8,
    "niv": 0.85,
    "bvm": 0.9,
    "ett": 0.95,
}
"""Share of an SpO2 deficit each oxygen or airway device removes (the name `o2`)."""

MAX_DOSE_FACTOR: Final = 4.0
WANING_LIMITS: Final = (0.25, 2.5)
MAX_ACTIVE_DOSES: Final = 12
"""Doses of one drug still acting at once; more are refused (it bounds the state)."""


def waning_scale(factor: float) -> float:
    """How much longer than typical a dose `factor` x typical lasts.

    With first-order elimination the time a level stays above a threshold grows with
    the log of the dose, so a double dose lasts longer, not twice as long.
    """
    return min(WANING_LIMITS[1], max(WANING_LIMITS[0], 1.0 + math.log(factor)))


def rise(k: Kinetics, age_s: float) -> float:
    """Share of the way from onset to peak (0 before onset, 1 from the peak)."""
    if age_s < k.onset_s:
        return 0.0
    if age_s >= k.peak_s:
        return 1.0
    return (age_s - k.onset_s) / (k.peak_s - k.onset_s)


def fraction(k: Kinetics, age_s: float, held: bool, factor: float = 1.0) -> float:
    """How much of a dose's full effect is present `age_s` seconds after it was given;
    `held`: an infusion or sustained procedure stays at full effect after its peak."""
    if age_s < k.peak_s:
        return rise(k, age_s)
    if held:
        return 1.0
    span = (k.duration_s - k.peak_s) * waning_scale(factor)
    if age_s >= k.peak_s + span:
        return 0.0
    return 1.0 - (age_s - k.peak_s) / span


@dataclass(slots=True)
class Active:
    """A dose or procedure acting on the patient."""

    kind: str
    """"dose" or "procedure"."""
    id: str
    route: str
    factor: float
    """Dose relative to typical (capped); 1 for procedures."""
    started_s: float
    windows: int
    """Bit i set: state effect i of the source was inside its window when given."""
    amounts: list[float]
    """Per state effect: the amount this dose delivers (0 where it has none)."""
    delivered: float = 0.0
    """Share of the amounts delivered so far."""
    stopped_s: float | None = None
    """When a sustained procedure was stopped (it wanes from then)."""
    kinetics: Kinetics | None = None
    source: Source | None = None
    held: bool = False
    """An infusion or sustained procedure: full effect after its peak until stopped."""

    def export(self) -> list[Any]:
        return [
            self.kind,
            self.id,
            self.route,
            self.factor,
            self.started_s,
            self.windows,
            list(self.amounts),
            self.delivered,
            self.stopped_s,
        ]

    @classmethod
    def restore(cls, row: list[Any]) -> Active:
        kind, sid, route, factor, started, windows, amounts, delivered, stopped = row
        return cls(kind, sid, route, factor, started, windows, list(amounts), delivered, stopped)


class Physiology:
    """The patient over simulated time; same inputs, same trajectory.

    `env.values` is shared with the rest of the case: the physiology keeps each state
    variable's entry there current, so triggers and the rubric read the same numbers.
    """

    def __init__(self, program: CaseProgram, env: Env) -> None:
        case = program.case
        self._program = program
        self._env = env
        self._vars = [case.state[v] for v in program.var_ids]
        self._kinetics: dict[tuple[str, str], Kinetics] = {
            (d, r): k for d, drug in case.interventions.items() for r, k in drug.routes.items()
        }
        self._proc_kinetics: dict[str, Kinetics] = {
            pid: Kinetics(
                onset_s=p.onset_s, peak_s=p.peak_s, duration_s=p.duration_s or max(p.peak_s, 1)
            )
            for pid, p in case.procedures.items()
        }
        self._baseline = case.vitals.baseline.model_dump()
        self._alpha = [
            _alpha(case.vitals.time_constants.get(v, TIME_CONSTANT_S[v])) for v in VITALS
        ]
        self._var_plan = [
            (
                vid,
                rate,
                var.combine.floor,
                var.combine.ceiling,
                var.combine.saturation,
                var.min if var.min is not None else -math.inf,
                var.max if var.max is not None else math.inf,
            )
            for vid, var, rate in zip(program.var_ids, self._vars, program.rates, strict=True)
        ]
        """Per variable, what each step needs: id, own rate, factor floor and ceiling,
        saturation, bounds."""
        self._vital_plan = [
            (
                program.derive[v],
                float(self._baseline[v]),
                [
                    (vid, var.effects[v], v == "spo2" and var.effects[v] < 0)
                    for vid, var in case.state.items()
                    if v in var.effects
                ],
                *LIMITS[v],
            )
            for v in VITALS
        ]
        """Per vital: its derive expression, baseline, linear effects of the state (and
        whether oxygen relieves each), limits."""
        self.t = 0.0
        self.active: list[Active] = []
        self.device = "none"
        self.overrides: dict[str, list[Any]] = {}
        """signal -> [value, until_s or None]"""
        self.rate_source: dict[str, str] = {}
        """variable -> the effect whose `rate` replaced its own ("" or absent: declared)."""
        values = env.values
        for vid, var in zip(program.var_ids, self._vars, strict=True):
            values[vid] = var.initial
        values["o2"] = 0.0
        b = self._baseline
        well = {**b, "map": b["dbp"] + (b["sbp"] - b["dbp"]) / 3}
        for signal in SIGNALS:  # until the monitor publishes: the patient when well
            values.setdefault(signal, well[signal])
        self.update_derived()
        self.vitals: list[float] = self._targets([0.0] * len(VITALS))

    # -- inputs ------------------------------------------------------------------
    def give(self, drug_id: str, route: str, factor: float, dose: float, dose_total: float) -> None:
        """A dose; for an infusion, the new rate (factor 0 stops it)."""
        drug = self._program.case.interventions[drug_id]
        if drug.infusion:
            self.stop(drug_id)
            if factor <= 0:
                return
        source = self._program.drugs[drug_id]
        values = self._env.values
        values["dose"], values["dose_total"] = dose, dose_total
        try:
            windows = self._windows(source)
            amounts = [
                number(e.amount, self._env) if e.amount is not None else 0.0 for e in source.state
            ]
        finally:
            del values["dose"], values["dose_total"]
        capped = min(factor, MAX_DOSE_FACTOR)
        self.active.append(
            self._resolve(Active("dose", drug_id, route, capped, self.t, windows, amounts))
        )

    def perform(self, procedure_id: str) -> None:
        source = self._program.procedures[procedure_id]
        windows = self._windows(source)
        item = Active(
            "procedure", procedure_id, "", 1.0, self.t, windows, [0.0] * len(source.state)
        )
        self.active.append(self._resolve(item))

    def stop(self, source_id: str) -> bool:
        """Stop a running infusion (at once) or sustained procedure (it wanes)."""
        found = False
        for item in list(self.active):
            if item.id != source_id or not item.held or item.stopped_s is not None:
                continue
            found = True
            if item.kind == "dose":
                self.active.remove(item)
            else:
                item.stopped_s = self.t
        return found

    def running(self, source_id: str) -> bool:
        """An infusion or procedure of this id is acting (or about to) and not stopped."""
        for item in self.active:
            if item.id != source_id or item.stopped_s is not None:
                continue
            if item.held or self.t - item.started_s < self._kinetic(item).duration_s:
                return True
        return False

    def running_ids(self) -> list[str]:
        """Infusions and procedures acting now, each once, in the order they started."""
        return list(dict.fromkeys(a.id for a in self.active if self.running(a.id)))

    def doses_acting(self, drug_id: str) -> int:
        return sum(1 for a in self.active if a.kind == "dose" and a.id == drug_id)

    def support(self, device: str) -> None:
        self.device = device
        self._env.values["o2"] = DEVICE_EFFICACY[device]

    def override(self, signal: str, value: float | None, until_s: float | None) -> None:
        if value is None:
            self.overrides.pop(signal, None)
        else:
            self.overrides[signal] = [value, until_s]

    def set_rate(self, var: str, source: str) -> None:
        self.rate_source[var] = source

    def update_derived(self) -> None:
        for name, expression in self._program.derived:
            self._env.values[name] = number(expression, self._env)

    def set_value(self, var: str, value: float) -> None:
        spec = self._program.case.state[var]
        low = spec.min if spec.min is not None else -math.inf
        high = spec.max if spec.max is not None else math.inf
        if math.isfinite(value):
            self._env.values[var] = min(high, max(low, value))

    def _windows(self, source: Source) -> int:
        mask = 0
        for i, effect in enumerate(source.state):
            if effect.window is None or holds(effect.window, self._env):
                mask |= 1 << i
        return mask

    # -- dynamics ------------------------------------------------------------------
    def _resolve(self, item: Active) -> Active:
        """Attach what never changes for a dose or procedure (looked up once, not per step)."""
        if item.kind == "dose":
            item.kinetics = self._kinetics[item.id, item.route]
            item.source = self._program.drugs[item.id]
            item.held = self._program.case.interventions[item.id].infusion
        else:
            item.kinetics = self._proc_kinetics[item.id]
            item.source = self._program.procedures[item.id]
            item.held = self._program.case.procedures[item.id].duration_s is None
        return item

    @staticmethod
    def _kinetic(item: Active) -> Kinetics:
        assert item.kinetics is not None
        return item.kinetics

    def _fraction(self, item: Active) -> float:
        k = self._kinetic(item)
        if item.stopped_s is not None:  # a stopped sustained procedure wanes over its rise time
            span = max(k.peak_s - k.onset_s, STEP_S)
            return max(0.0, 1.0 - (self.t - item.stopped_s) / span)
        return fraction(k, self.t - item.started_s, item.held, item.factor)

    def _targets(self, drug_vitals: list[float]) -> list[float]:
        values, env = self._env.values, self._env
        relief = 1 - values.get("o2", 0.0)
        out = []
        for i, (derive, baseline, linear, low, high) in enumerate(self._vital_plan):
            if derive is not None:
                target = derive.evaluate(env)
                if not math.isfinite(target):
                    target = baseline
            else:
                target = baseline
                for var, delta, relieved in linear:
                    target += values[var] * (delta * relief if relieved else delta)
            target += drug_vitals[i]
            out.append(high if target > high else low if target < low else target)
        return out

    def step(self, dt: float = STEP_S) -> None:
        """Advance by one internal step (callers accumulate time and call this at 4 Hz)."""
        env = self._env
        values = env.values
        n = len(self._var_plan)
        log_factor = [0.0] * n
        additive = [0.0] * n
        delivered = [0.0] * n
        drug_vitals = [0.0] * len(VITALS)
        if self.active:
            self._doses(dt, log_factor, additive, delivered, drug_vitals)
        minutes = dt / 60.0
        changes = []
        replaced = self.rate_source
        for i, (vid, rate, floor, ceiling, saturation, _, _) in enumerate(self._var_plan):
            if replaced and vid in replaced and replaced[vid]:
                rate = self._program.rate_laws[replaced[vid], vid]
            own = rate.evaluate(env)
            if not math.isfinite(own):
                own = 0.0
            product = 1.0
            if log_factor[i]:
                product = min(ceiling, max(floor, math.exp(log_factor[i])))
            elif floor > 1.0 or ceiling < 1.0:
                product = min(ceiling, max(floor, 1.0))
            added = additive[i]
            if saturation is not None:
                added = saturation * math.tanh(added / saturation)
            changes.append((own * product + added) * minutes + delivered[i])
        for (vid, _, _, _, _, low, high), change in zip(self._var_plan, changes, strict=True):
            if change:
                value = values[vid] + change
                if math.isfinite(value):
                    values[vid] = high if value > high else low if value < low else value
        if self._program.derived:
            self.update_derived()
        targets = self._targets(drug_vitals)
        vitals, alpha = self.vitals, self._alpha
        for i, target in enumerate(targets):
            vitals[i] += (target - vitals[i]) * alpha[i]
        self.t += dt
        if self.overrides:
            for signal, (_, until) in list(self.overrides.items()):
                if until is not None and self.t >= until:
                    del self.overrides[signal]

    def _doses(
        self,
        dt: float,
        log_factor: list[float],
        additive: list[float],
        delivered: list[float],
        drug_vitals: list[float],
    ) -> None:
        """Add what every acting dose and procedure contributes this step."""
        ended: list[Active] = []
        for item in self.active:
            k = self._kinetic(item)
            source = item.source
            assert source is not None
            f = self._fraction(item)
            age = self.t + dt - item.started_s
            if item.delivered < 1.0 and item.amounts:
                now = rise(k, age)
                share = now - item.delivered
                if share > 0:
                    for i, effect in enumerate(source.state):
                        if item.windows >> i & 1:
                            delivered[effect.var] += item.amounts[i] * share
                    item.delivered = now
            if f <= 0:
                if self._ended(item, age, k):
                    ended.append(item)
                continue
            weight = f * item.factor * k.potency
            for vital, delta in source.vitals:
                drug_vitals[vital] += weight * delta
            for i, effect in enumerate(source.state):
                if item.windows >> i & 1:
                    additive[effect.var] += weight * effect.rate
                    log_factor[effect.var] += weight * effect.log_factor
        for item in ended:
            self.active.remove(item)

    @staticmethod
    def _ended(item: Active, age: float, k: Kinetics) -> bool:
        """Nothing more to come from this dose or procedure."""
        if item.stopped_s is not None:
            return True
        return age >= k.peak_s and not item.held and (item.delivered >= 1.0 or not item.amounts)

    def signals(self, noise: Mapping[str, float]) -> dict[str, float]:
        """Monitor values (model + noise, or the facilitator's override), with MAP."""
        out: dict[str, float] = {}
        for i, vital in enumerate(VITALS):
            low, high = LIMITS[vital]
            out[vital] = min(high, max(low, self.vitals[i] + noise.get(vital, 0.0)))
        for signal, (value, _) in self.overrides.items():
            out[signal] = float(value)
        if "map" not in self.overrides:
            out["map"] = out["dbp"] + (out["sbp"] - out["dbp"]) / 3
        return {s: out[s] for s in SIGNALS}

    def state(self) -> dict[str, float]:
        return {v: self._env.values[v] for v in self._program.var_ids}

    # -- persistence -------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "vitals": list(self.vitals),
            "state": self.state(),
            "active": [a.export() for a in self.active],
            "device": self.device,
            "overrides": {k: list(v) for k, v in self.overrides.items()},
            "rate_source": dict(self.rate_source),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.t = float(data["t"])
        self.vitals = [float(v) for v in data["vitals"]]
        for var, value in data["state"].items():
            self._env.values[var] = float(value)
        self.active = [self._resolve(Active.restore(row)) for row in data["active"]]
        self.support(str(data["device"]))
        self.overrides = {k: list(v) for k, v in data["overrides"].items()}
        self.rate_source = dict(data["rate_source"])


def _alpha(tau: float) -> float:
    return 1.0 if tau <= 0 else 1 - math.exp(-STEP_S / tau)
