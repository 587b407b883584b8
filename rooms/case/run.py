"""`CaseRun`: a loaded case in play, and every change it can undergo.

The room calls `advance` every tick; simulated time (scaled by the facilitator)
integrates the physiology at a fixed 4 Hz and does everything else (monitor, results,
events, measures, score) once per simulated second, so a tick that crosses no boundary
costs almost nothing and the op stream stays small. The operations below are what the
actions (`rooms/case/actions.py`) call; they raise `IntentRefused` only for refusals
that depend on the case's state (an unknown drug, a test already pending...).

Everything kept here is bounded by the case's size (its drugs, tests, events, rubric),
never by the number of actions: the full history is in the session's recording.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from typing import Any, Final

from netcode.state import CaseState
from netcode.views import View
from rooms.actions import IntentRefused
from rooms.case import names
from rooms.case.entities import answer_key, catalog
from rooms.case.expressions import holds, number
from rooms.case.happenings import Happenings
from rooms.case.model import (
    Case,
    Effect,
    finding_name,
    finding_text,
)
from rooms.case.physiology import MAX_ACTIVE_DOSES, NOISE_SD, STEP_S, Physiology
from rooms.case.program import SIGNALS, VITALS, CaseProgram
from rooms.case.scoring import Act, Scorer
from rooms.scenario import Actor

DEFAULT_ALARMS: Final[Mapping[str, tuple[float | None, float | None]]] = {
    "hr": (50, 120),
    "sbp": (90, 180),
    "dbp": (None, 110),
    "map": (65, None),
    "spo2": (92, None),
    "rr": (8, 28),
    "temp": (35.0, 38.3),
    "etco2": (25, 50),
}
"""Adult monitor limits; a case sets its own per signal (children need them)."""

SAMPLE_EVERY_S: Final = 15
"""Spacing of the vitals trajectory kept for the debrief (doubles when it gets long)."""
MAX_SAMPLES: Final = 480
UPCOMING_SHOWN: Final = 5
NOISE_MEMORY: Final = 0.6
EPSILON_S: Final = 1e-6
"""Tolerance for summed tick lengths (ten 0.1 s ticks must make a whole second)."""
_PLACEHOLDER: Final = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def _rounded(signals: Mapping[str, float]) -> dict[str, int | float]:
    return {s: (round(signals[s], 1) if s == "temp" else round(signals[s])) for s in SIGNALS}


def lab_text(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        return "not measurable"
    return f"{value:.{decimals}f}"


class CaseRun:
    """The live state of one case and the operations on it."""

    def __init__(self, case: Case, seed: int, program: CaseProgram | None = None) -> None:
        self.case = case
        self.program = program or CaseProgram(case)
        if self.program.problems:
            raise ValueError(f"case {case.id} does not compile: {self.program.problems[0]}")
        self.rng = random.Random(seed)
        self.env = Happenings()
        self.env.values["t"] = 0.0
        self.env.values["weight"] = case.patient.weight_kg
        self.physio = Physiology(self.program, self.env)
        self.scorer = Scorer(self.program)
        self.phase_ids = [p.id for p in case.phases]
        self.quantity_ids = [*case.state, *case.derived]
        self.alarm_limits = {
            s: (
                (case.vitals.alarms[s].low, case.vitals.alarms[s].high)
                if s in case.vitals.alarms
                else DEFAULT_ALARMS[s]
            )
            for s in SIGNALS
        }
        self.eid: dict[str, int] = {}
        self.t = 0.0
        self.acc = 0.0
        self.next_second = 1
        self.scale = 1.0
        self.phase = 0
        self.pending: dict[str, dict[str, Any]] = {}
        """test -> {due_s, ordered_s, by, values}"""
        self.arrivals: dict[str, float] = {}
        self.called: list[str] = []
        self.holding: dict[str, float] = {}
        self.findings = {r: finding_text(f) for r, f in case.exam.items()}
        self.examined: list[str] = []
        self.noise: dict[str, float] = dict.fromkeys(VITALS, 0.0)
        self.signals: dict[str, int | float] = {}
        self.measures: dict[str, float] = {}
        self.samples: list[list[Any]] = []
        self.sample_every = SAMPLE_EVERY_S
        self.team_shown: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        """What the team entity last showed (a cache: it never changes what is published)."""
        self.score_due = True
        self.events_due = True
        self.next_deadline = 0.0
        """The next rubric deadline: the score's statuses change then (pending -> missed)."""

    # -- setup -------------------------------------------------------------------------
    def start(self, world: CaseState) -> None:
        c = self.case
        p = c.patient
        media = c.media.stereo_video.model_dump() if c.media.stereo_video else None
        self.env.phase = self.phase_ids[0]
        self.eid["case"] = world.create(
            "case",
            {
                "id": c.id,
                "title": c.title,
                "specialty": c.specialty,
                "setting": c.setting,
                "phase": self.phase_ids[0],
                "phase_title": c.phases[0].title,
                "narrative": c.phases[0].narrative,
                "time_s": 0,
                "time_scale": 1.0,
                "stereo_video": media,
            },
        )
        self.eid["patient"] = world.create(
            "patient",
            {
                "age": str(p.age),
                "sex": p.sex,
                "weight_kg": p.weight_kg,
                "complaint": c.complaint,
                "history": p.history,
                "allergies": [a.model_dump() for a in p.allergies],
                "medications": list(p.medications),
                "social": p.social,
                "findings": [],
                "oxygen": names.DEVICES["none"],
                "status": "stable",
            },
        )
        self.signals = _rounded(self.physio.signals(self.noise))
        self.eid["monitor"] = world.create(
            "monitor",
            {**self.signals, "alarms": [], "overridden": []},
            {
                "overridden": View.FACILITATOR,
                **dict.fromkeys(self.signals, View.SPECTATOR),
                "alarms": View.SPECTATOR,
            },
        )
        self.publish_monitor(world)
        self.eid["team"] = world.create(
            "team", {"pending": [], "help_called": [], "running": []}, View.PARTICIPANT
        )
        for did, d in c.decisions.items():
            self.eid["decision:" + did] = world.create(
                "decision",
                {
                    "id": did,
                    "prompt": d.prompt,
                    "phase": d.phase,
                    "chosen": None,
                    "status": self.decision_status(did),
                    "options": {o: opt.label for o, opt in d.options.items()},
                },
            )
        for cid, ch in c.roleplay.items():
            self.eid["character:" + cid] = world.create(
                "character",
                {
                    "id": cid,
                    "name": ch.name,
                    "voiced_by": ch.voiced_by,
                    "brief": ch.brief,
                    "script": list(ch.script),
                },
                View[ch.voiced_by.upper()],
            )
        self.eid["catalog"] = world.create("catalog", catalog(c), View.PARTICIPANT)
        self.eid["key"] = world.create("answer_key", answer_key(c), View.FACILITATOR)
        self.update_measures(first=True)
        self.eid["director"] = world.create("director", self.director(), View.FACILITATOR)
        world.log(
            "case",
            {
                "t": 0,
                "kind": "phase",
                "phase": self.phase_ids[0],
                "text": c.phases[0].narrative or c.phases[0].title,
            },
        )
        self.check_events(world)
        self.sample()

    # -- time ----------------------------------------------------------------------------
    def now(self) -> float:
        return round(self.t, 2)

    def advance(self, world: CaseState, dt: float) -> None:
        h = dt * self.scale
        self.t += h
        self.acc += h
        self.env.values["t"] = self.t
        while self.acc >= STEP_S - EPSILON_S:
            self.physio.step(STEP_S)
            self.acc -= STEP_S
        while self.t >= self.next_second - EPSILON_S:
            self.second(world)
            self.next_second += 1

    def second(self, world: CaseState) -> None:
        sd = self.case.vitals.noise
        for v in VITALS:
            self.noise[v] = NOISE_MEMORY * self.noise[v] + self.rng.gauss(0, NOISE_SD[v] * sd)
        self.publish_monitor(world)
        world.set(self.eid["case"], "time_s", self.next_second)
        for test in [t for t, o in self.pending.items() if o["due_s"] <= self.t]:
            order = self.pending.pop(test)
            self.publish_result(world, test, order["values"], order["by"])
        self.publish_team(world)
        for team_id in [h for h, due in self.arrivals.items() if due <= self.t]:
            del self.arrivals[team_id]
            team = self.case.help[team_id]
            world.log(
                "case",
                {
                    "t": self.now(),
                    "kind": "help_arrived",
                    "team": team_id,
                    "text": team.name + " arrives.",
                },
            )
            self.apply(world, team.then, "help:" + team_id)
        self.update_measures()
        self.check_events(world)
        if self.scorer.on_second(self.env, self.now()):
            self.score_due = True
        if self.next_second % self.sample_every == 0:
            self.sample()
        self.publish_director(world)

    def check_events(self, world: CaseState) -> None:
        """Fire each event whose trigger holds (and has held for its `for_s`): checked at
        the start and then once per whole second of case time."""
        for eid, event in self.case.events.items():
            if eid in self.env.fired_count or event.injected_only:
                continue
            if self.triggered(eid):
                since = self.holding.setdefault(eid, self.t)
                if self.t - since >= event.for_s - EPSILON_S:
                    self.fire(world, eid, "trigger")
            else:
                self.holding.pop(eid, None)

    def triggered(self, eid: str) -> bool:
        event = self.case.events[eid]
        if event.at_s is not None and self.t < event.at_s - EPSILON_S:
            return False
        trigger = self.program.triggers.get(eid)
        return trigger is None or holds(trigger, self.env)

    def update_measures(self, first: bool = False) -> None:
        values = self.env.values
        for mid, measure in self.case.measures.items():
            if measure.seconds_while is not None:
                expression = self.program.measures[mid]
                held = holds(expression, self.env) and not first
                self.measures[mid] = self.measures.get(mid, 0.0) + (1.0 if held else 0.0)
            else:
                value = number(self.program.measures[mid], self.env)
                old = self.measures.get(mid)
                if old is None or first:
                    self.measures[mid] = value
                elif measure.lowest is not None:
                    self.measures[mid] = min(old, value)
                else:
                    self.measures[mid] = max(old, value)
            values[mid] = self.measures[mid]

    def sample(self) -> None:
        self.samples.append([self.next_second - 1, *(self.signals[s] for s in SIGNALS)])
        if len(self.samples) > MAX_SAMPLES:
            self.sample_every *= 2
            self.samples = [r for r in self.samples if r[0] % self.sample_every == 0]

    # -- publishing ------------------------------------------------------------------------
    def publish_monitor(self, world: CaseState) -> None:
        raw = self.physio.signals(self.noise)
        self.signals = _rounded(raw)
        self.env.values.update(self.signals)
        alarms = self.alarms()
        monitor = self.eid["monitor"]
        world.update(monitor, self.signals)
        world.set(monitor, "alarms", alarms)
        world.set(monitor, "overridden", sorted(self.physio.overrides))
        s = self.signals
        critical = s["map"] < 50 or s["spo2"] < 80 or not 40 <= s["hr"] <= 170
        status = "critical" if critical else ("unstable" if alarms else "stable")
        world.set(self.eid["patient"], "status", status)  # for viewers who can't read monitors

    def alarms(self) -> list[str]:
        out = []
        for signal, (low, high) in self.alarm_limits.items():
            value = self.signals[signal]
            if low is not None and value < low:
                out.append(signal + "_low")
            elif high is not None and value > high:
                out.append(signal + "_high")
        return out

    def publish_team(self, world: CaseState) -> None:
        """The team's pending orders and running infusions and procedures (skipped when
        neither changed: publishing the same values makes no op anyway)."""
        c = self.case
        shown = (tuple(self.pending), tuple(self.physio.running_ids()))
        if shown == self.team_shown:
            return
        self.team_shown = shown
        pending = [
            {"test": t, "name": c.investigations[t].name, "ordered_s": o["ordered_s"]}
            for t, o in self.pending.items()
        ]
        running = [
            {
                "id": i,
                "name": c.interventions[i].name if i in c.interventions else c.procedures[i].name,
            }
            for i in shown[1]
        ]
        world.update(self.eid["team"], {"pending": pending, "running": running})

    def publish_findings(self, world: CaseState) -> None:
        findings = [
            {"id": r, "name": finding_name(r, self.case.exam[r]), "text": self.findings[r]}
            for r in self.examined
        ]
        world.set(self.eid["patient"], "findings", findings)

    def measure_values(self, test: str) -> list[dict[str, Any]]:
        """The test's values from the patient's state now (when the sample is taken)."""
        out = []
        for vid, spec in self.case.investigations[test].values.items():
            value = float(self.program.lab_values[test, vid].evaluate(self.env))
            shown = round(value, spec.decimals) if math.isfinite(value) else None
            if spec.decimals == 0 and shown is not None:
                shown = int(shown)
            out.append(
                {
                    "id": vid,
                    "name": spec.name,
                    "value": shown,
                    "unit": spec.unit,
                    "text": lab_text(value, spec.decimals),
                }
            )
        return out

    def publish_result(
        self, world: CaseState, test: str, values: list[dict[str, Any]], by: str
    ) -> None:
        inv = self.case.investigations[test]
        texts = {v["id"]: v["text"] for v in values}
        text = _PLACEHOLDER.sub(lambda m: texts.get(m.group(1), m.group(0)), inv.result)
        fields = {
            "test": test,
            "name": inv.name,
            "kind": inv.kind,
            "text": text,
            "values": values,
            "at_s": self.now(),
        }
        key = "result:" + test
        if key in self.eid:
            world.update(self.eid[key], fields)
        else:
            self.eid[key] = world.create("result", fields)
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "result",
                "test": test,
                "by": by,
                "text": f"{inv.name}: {text}",
            },
        )

    def director(self) -> dict[str, Any]:
        """The facilitator's live view: score, upcoming events, state and measures."""
        return {
            "score": self.scorer.summary(self.t),
            **self.director_events(),
            **self.director_state(),
        }

    def director_events(self) -> dict[str, Any]:
        upcoming = sorted(
            (e.at_s, eid, e.note)
            for eid, e in self.case.events.items()
            if e.at_s is not None and eid not in self.env.fired_count
        )[:UPCOMING_SHOWN]
        return {
            "upcoming": [{"event": eid, "at_s": at, "note": note} for at, eid, note in upcoming],
            "fired": sorted(self.env.fired_count),
        }

    def director_state(self) -> dict[str, Any]:
        """State, derived quantities and measures by id (names and units: the answer key)."""
        values = self.env.values
        return {
            "state": {v: round(values[v], 2) for v in self.quantity_ids},
            "measures": {m: round(self.measures.get(m, 0.0), 2) for m in self.case.measures},
        }

    def publish_director(self, world: CaseState) -> None:
        """Once a second: the state always; the score and events only when they changed
        (a rubric item moved, a deadline passed, an event fired)."""
        director = self.eid["director"]
        if self.score_due or self.t >= self.next_deadline:
            self.score_due = False
            self.next_deadline = min(
                (
                    w
                    for i in self.case.rubric.critical.values()
                    if (w := i.within_s) is not None and w > self.t
                ),
                default=math.inf,
            )
            world.set(director, "score", self.scorer.summary(self.t))
        if self.events_due:
            self.events_due = False
            world.update(director, self.director_events())
        world.update(director, self.director_state())

    # -- effects, events and phases ---------------------------------------------------------
    def fire(self, world: CaseState, eid: str, how: str) -> None:
        event = self.case.events[eid]
        self.env.fire(eid)
        self.events_due = True
        self.holding.pop(eid, None)
        world.log(
            "director",
            {"t": self.now(), "kind": "event", "event": eid, "how": how, "note": event.note},
            View.FACILITATOR,
        )
        self.apply(world, event.then, "event:" + eid)

    def apply(self, world: CaseState, effect: Effect, source: str) -> None:
        now = self.now()
        if effect.narrate:
            world.log(
                "case", {"t": now, "kind": "narrate", "source": source, "text": effect.narrate}
            )
        compiled = self.program.effects.get(source)
        if compiled is not None:
            updates = [(v, number(e, self.env)) for v, e in compiled.set]
            updates += [(v, self.env.values[v] + number(e, self.env)) for v, e in compiled.add]
            for var, value in updates:
                self.physio.set_value(var, value)
            for var, _ in compiled.rate:
                self.physio.set_rate(var, source)
        for region, finding in effect.exam.items():
            self.findings[region] = finding
            if region in self.examined:
                self.publish_findings(world)
        for test in effect.reveal:
            self.pending.pop(test, None)
            self.publish_result(world, test, self.measure_values(test), source)
        if effect.say is not None:
            ch = self.case.roleplay[effect.say.character]
            world.log(
                "script",
                {
                    "t": now,
                    "character": effect.say.character,
                    "name": ch.name,
                    "line": effect.say.line,
                },
                View[ch.voiced_by.upper()],
            )
        if effect.phase is not None:
            self.set_phase(world, self.phase_ids.index(effect.phase))

    def set_phase(self, world: CaseState, index: int) -> None:
        self.phase = index
        self.env.phase = self.phase_ids[index]
        phase = self.case.phases[index]
        world.update(
            self.eid["case"],
            {"phase": phase.id, "phase_title": phase.title, "narrative": phase.narrative},
        )
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "phase",
                "phase": phase.id,
                "text": phase.narrative or phase.title,
            },
        )
        for did in self.case.decisions:
            world.set(self.eid["decision:" + did], "status", self.decision_status(did))

    def decision_status(self, did: str) -> str:
        """waiting (its phase has not begun), open, answered or closed (its phase ended)."""
        if did in self.env.decided:
            return "answered"
        decision = self.case.decisions[did]
        if decision.phase is None:
            return "open"
        opens = self.phase_ids.index(decision.phase)
        if self.phase < opens:
            return "waiting"
        if self.phase == opens or decision.closing == "answered":
            return "open"
        return "closed"

    # -- what the team does -------------------------------------------------------------------
    def record(self, act: Act, amount: float = 0.0) -> None:
        self.env.action(act.key, amount)
        if self.scorer.on_action(act):
            self.score_due = True

    def examine(self, world: CaseState, actor: Actor, region: str) -> None:
        if region not in self.findings:
            raise _unknown("unknown_region", "exam region", region, self.findings)
        self.record(Act("examine:" + region, self.now()))
        self.show_finding(world, actor, region)

    def show_finding(self, world: CaseState, actor: Actor, region: str) -> None:
        if region not in self.examined:
            self.examined.append(region)
        self.publish_findings(world)
        name = finding_name(region, self.case.exam[region])
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "examine",
                "by": actor.name,
                "region": region,
                "text": f"{name}: {self.findings[region]}",
            },
        )

    def order(self, world: CaseState, actor: Actor, test: str) -> None:
        investigations = self.case.investigations
        if test not in investigations:
            raise _unknown("unknown_test", "test", test, investigations)
        if test in self.pending:
            raise IntentRefused(
                "already_ordered", f"{investigations[test].name} is already pending"
            )
        self.record(Act("order:" + test, self.now()))
        self.pending[test] = {
            "due_s": self.t + investigations[test].turnaround_s,
            "ordered_s": self.now(),
            "by": actor.name,
            "values": self.measure_values(test),
        }
        self.publish_team(world)
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "order",
                "by": actor.name,
                "test": test,
                "text": f"Ordered {investigations[test].name}.",
            },
        )

    def give(self, world: CaseState, actor: Actor, drug_id: str, dose: float, route: str) -> None:
        drugs = self.case.interventions
        if drug_id not in drugs:
            raise _unknown("unknown_drug", "drug or fluid", drug_id, drugs)
        drug = drugs[drug_id]
        if route not in drug.routes:
            routes = ", ".join(names.ROUTES[r][1] for r in drug.routes)
            raise IntentRefused(
                "bad_route", f"{drug.name} cannot be given {route} here (routes: {routes})"
            )
        if drug.infusion and dose == 0:
            self.stop(world, actor, drug_id)
            return
        d = drug.dose
        if not d.min <= dose <= d.max or dose == 0:
            raise IntentRefused(
                "bad_dose",
                f"{dose:g} {d.unit} of {drug.name} is outside {d.min:g}-{d.max:g} {d.unit}"
                " (doses are given in the unit shown, per kg where it says /kg)",
            )
        if not drug.infusion and self.physio.doses_acting(drug_id) >= MAX_ACTIVE_DOSES:
            raise IntentRefused(
                "too_many_doses",
                f"{MAX_ACTIVE_DOSES} doses of {drug.name} are still acting; wait a while",
            )
        weight = self.case.patient.weight_kg
        dose_total = dose * weight if d.per_kg else dose
        self.physio.give(drug_id, route, dose / d.typical, dose, dose_total)
        self.record(Act("give:" + drug_id, self.now(), route, dose), dose_total)
        total = f" ({dose_total:.4g} total)" if d.per_kg else ""
        text = f"{drug.name} {dose:g} {d.unit}{total} {names.ROUTES[route][1]}"
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "give",
                "by": actor.name,
                "drug": drug_id,
                "dose": dose,
                "unit": d.unit,
                "route": route,
                "text": text,
            },
        )
        if drug.infusion:
            self.publish_team(world)

    def stop(self, world: CaseState, actor: Actor, item: str) -> None:
        c = self.case
        stoppable = [d for d, drug in c.interventions.items() if drug.infusion] + list(c.procedures)
        if item not in stoppable:
            raise _unknown("unknown_item", "infusion or procedure", item, stoppable)
        name = c.interventions[item].name if item in c.interventions else c.procedures[item].name
        if not self.physio.stop(item):
            raise IntentRefused("not_running", f"{name} is not running")
        self.record(Act("stop:" + item, self.now()))
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "stop",
                "by": actor.name,
                "item": item,
                "text": f"{name} stopped",
            },
        )
        self.publish_team(world)

    def perform(self, world: CaseState, actor: Actor, procedure: str) -> None:
        procedures = self.case.procedures
        if procedure not in procedures:
            raise _unknown("unknown_procedure", "procedure", procedure, procedures)
        name = procedures[procedure].name
        if self.physio.running(procedure):
            raise IntentRefused("already_running", f"{name} is already being done")
        self.physio.perform(procedure)
        self.record(Act("perform:" + procedure, self.now()))
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "perform",
                "by": actor.name,
                "procedure": procedure,
                "text": name,
            },
        )
        self.publish_team(world)

    def oxygen(self, world: CaseState, actor: Actor, device: str) -> None:
        self.physio.support(device)
        self.record(Act("oxygen:" + device, self.now()))
        name = names.DEVICES[device]
        world.set(self.eid["patient"], "oxygen", name)
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "oxygen",
                "by": actor.name,
                "device": device,
                "text": f"Oxygen/airway: {name}",
            },
        )

    def call_help(self, world: CaseState, actor: Actor, team_id: str) -> None:
        teams = self.case.help
        if team_id not in teams:
            raise _unknown("unknown_team", "help team", team_id, teams)
        if team_id in self.called:
            raise IntentRefused("already_called", f"{teams[team_id].name} has already been called")
        self.called.append(team_id)
        self.record(Act("call_help:" + team_id, self.now()))
        self.arrivals[team_id] = self.t + teams[team_id].arrives_s
        world.set(self.eid["team"], "help_called", list(self.called))
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "call_help",
                "by": actor.name,
                "team": team_id,
                "text": f"Called {teams[team_id].name}.",
            },
        )

    def decide(self, world: CaseState, actor: Actor, did: str, option: str) -> None:
        decisions = self.case.decisions
        if did not in decisions:
            raise _unknown("unknown_decision", "decision", did, decisions)
        decision = decisions[did]
        if option not in decision.options:
            raise _unknown("unknown_option", f"option of {did}", option, decision.options)
        status = self.decision_status(did)
        if status == "answered":
            raise IntentRefused("already_decided", f"{did} was already decided")
        if status == "waiting":
            raise IntentRefused("not_yet", f"{did} opens in phase {decision.phase}")
        if status == "closed":
            raise IntentRefused("closed", f"{did} closed when phase {decision.phase} ended")
        chosen = decision.options[option]
        expression = self.program.correct.get((did, option))
        correct = holds(expression, self.env) if expression is not None else chosen.correct is True
        self.env.decide(did, option, correct)
        self.record(Act(f"decide:{did}:{option}", self.now()))
        world.update(self.eid["decision:" + did], {"chosen": option, "status": "answered"})
        world.log(
            "case",
            {
                "t": self.now(),
                "kind": "decide",
                "by": actor.name,
                "decision": did,
                "option": option,
                "text": chosen.label,
            },
        )
        world.log(
            "director",
            {
                "t": self.now(),
                "kind": "decision",
                "decision": did,
                "option": option,
                "correct": correct,
            },
            View.FACILITATOR,
        )
        self.apply(world, chosen.then, f"decide:{did}:{option}")

    def note(self, world: CaseState, actor: Actor, text: str) -> None:
        self.record(Act("note:any", self.now()))
        world.log("notes", {"t": self.now(), "by": actor.name, "text": text}, View.PARTICIPANT)

    # -- what the facilitator does ------------------------------------------------------------
    def set_scale(self, world: CaseState, scale: float) -> None:
        self.scale = scale
        world.set(self.eid["case"], "time_scale", scale)

    def inject(self, world: CaseState, event: str) -> None:
        if event not in self.case.events:
            raise _unknown("unknown_event", "event", event, self.case.events)
        self.fire(world, event, "inject")

    def override(
        self, world: CaseState, actor: Actor, signal: str, value: float | None, for_s: float | None
    ) -> None:
        until = None if for_s is None else self.physio.t + for_s
        self.physio.override(signal, value, until)
        self.publish_monitor(world)
        text = f"{signal} set to {value:g}" if value is not None else f"{signal} override ended"
        world.log(
            "director",
            {
                "t": self.now(),
                "kind": "override",
                "by": actor.name,
                "signal": signal,
                "value": value,
                "for_s": for_s,
                "text": text,
            },
            View.FACILITATOR,
        )

    def reveal_region(self, world: CaseState, actor: Actor, region: str) -> None:
        if region not in self.findings:
            raise _unknown("unknown_region", "exam region", region, self.findings)
        self.show_finding(world, actor, region)

    def reveal_test(self, world: CaseState, actor: Actor, test: str) -> None:
        if test not in self.case.investigations:
            raise _unknown("unknown_test", "test", test, self.case.investigations)
        order = self.pending.pop(test, None)
        values = order["values"] if order else self.measure_values(test)
        self.publish_team(world)
        self.publish_result(world, test, values, actor.name)

    def advance_phase(self, world: CaseState, phase: str | None) -> None:
        if phase is not None:
            if phase not in self.phase_ids:
                raise _unknown("unknown_phase", "phase", phase, self.phase_ids)
            index = self.phase_ids.index(phase)
        elif self.phase + 1 < len(self.phase_ids):
            index = self.phase + 1
        else:
            raise IntentRefused("last_phase", "the case is already in its last phase")
        self.set_phase(world, index)

    def hint(self, world: CaseState, actor: Actor, text: str | None, index: int | None) -> None:
        hints = self.case.notes.hints
        if index is not None:
            if not 0 <= index < len(hints):
                raise IntentRefused(
                    "unknown_hint",
                    f"this case has {len(hints)} prepared hints (0-{len(hints) - 1})"
                    if hints
                    else "this case has no prepared hints",
                )
            text = hints[index]
        world.log("hints", {"t": self.now(), "by": actor.name, "text": text}, View.PARTICIPANT)

    def score(self, world: CaseState, item: str, points: int, comment: str) -> None:
        manual = self.case.rubric.manual
        if item not in manual:
            raise _unknown("unknown_item", "manual rubric item", item, manual)
        if points > manual[item].points:
            raise IntentRefused(
                "too_many_points", f"{item} is worth at most {manual[item].points} points"
            )
        self.scorer.mark(item, points)
        world.log(
            "director",
            {"t": self.now(), "kind": "score", "item": item, "points": points, "comment": comment},
            View.FACILITATOR,
        )
        self.score_due = True
        self.publish_director(world)

    # -- the end -------------------------------------------------------------------------------
    # -- persistence ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "env": self.env.export(),
            "physio": self.physio.snapshot(),
            "scorer": self.scorer.export(),
            "eid": dict(self.eid),
            "t": self.t,
            "acc": self.acc,
            "next_second": self.next_second,
            "scale": self.scale,
            "phase": self.phase,
            "pending": {k: dict(v) for k, v in self.pending.items()},
            "arrivals": dict(self.arrivals),
            "called": list(self.called),
            "holding": dict(self.holding),
            "findings": dict(self.findings),
            "examined": list(self.examined),
            "noise": dict(self.noise),
            "signals": dict(self.signals),
            "measures": dict(self.measures),
            "samples": [list(s) for s in self.samples],
            "sample_every": self.sample_every,
            "score_due": self.score_due,
            "events_due": self.events_due,
            "next_deadline": self.next_deadline if math.isfinite(self.next_deadline) else None,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.team_shown = None
        version, internal, gauss = data["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.env.restore(data["env"])
        self.physio.restore(data["physio"])
        self.scorer.restore(data["scorer"])
        self.eid = dict(data["eid"])
        self.t = data["t"]
        self.acc = data["acc"]
        self.next_second = data["next_second"]
        self.scale = data["scale"]
        self.phase = data["phase"]
        self.pending = {k: dict(v) for k, v in data["pending"].items()}
        self.arrivals = dict(data["arrivals"])
        self.called = list(data["called"])
        self.holding = dict(data["holding"])
        self.findings = dict(data["findings"])
        self.examined = list(data["examined"])
        self.noise = dict(data["noise"])
        self.signals = dict(data["signals"])
        self.measures = dict(data["measures"])
        self.samples = [list(s) for s in data["samples"]]
        self.sample_every = data["sample_every"]
        self.score_due = data["score_due"]
        self.events_due = data["events_due"]
        deadline = data["next_deadline"]
        self.next_deadline = math.inf if deadline is None else deadline


def _unknown(
    code: str, what: str, value: str, known: Mapping[str, Any] | list[str]
) -> IntentRefused:
    options = ", ".join(sorted(known)) or "none in this case"
    return IntentRefused(code, f"{value!r} is not a known {what} here (known: {options})")
