"""`CaseScenario`: a loaded case running inside a room.

The room calls `step` every tick; the scenario advances simulated time (scaled by
the facilitator), integrates physiology at a fixed 4 Hz and does everything else
(monitor, results, events, score) once per simulated second, so a tick that crosses
no boundary costs almost nothing and the op stream stays small.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, Final

from netcode.state import CaseState
from netcode.views import View
from rooms.actions import ActionArgs, ActionSpec, IntentRefused
from rooms.case import actions as act
from rooms.case.model import DEVICES, Case, Effect, Trigger
from rooms.case.physiology import (
    NOISE_SD,
    SIGNALS,
    STEP_S,
    VITALS,
    ChangeCondition,
    Give,
    Override,
    Physiology,
    Support,
)
from rooms.case.scoring import ActionRecord, evaluate, key_matches
from rooms.scenario import Actor, Clock

DEFAULT_ALARMS: Final[Mapping[str, tuple[float | None, float | None]]] = {
    "hr": (50, 120), "sbp": (90, 180), "dbp": (None, 110), "map": (65, None),
    "spo2": (92, None), "rr": (8, 28), "temp": (35.0, 38.3), "etco2": (25, 50),
}
"""Adult monitor limits; a case sets its own per signal (children need them)."""

SAMPLE_EVERY_S: Final = 15
"""Spacing of the vitals trajectory kept for the debrief."""
UPCOMING_SHOWN: Final = 5
NOISE_MEMORY: Final = 0.6
TIME_SCALES: Final = (0.25, 10.0)
EPSILON_S: Final = 1e-6
"""Tolerance for summed tick lengths (ten 0.1 s ticks must make a whole second)."""


def _rounded(signals: Mapping[str, float]) -> dict[str, int | float]:
    return {s: (round(signals[s], 1) if s == "temp" else round(signals[s])) for s in SIGNALS}


class CaseScenario:
    """A case in play: the `Scenario` a room hosts, plus `debrief()` at the end."""

    def __init__(self, case: Case, seed: int) -> None:
        self.case = case
        self.name = case.id
        self.seed = seed
        self._rng = random.Random(seed)
        self._physio = Physiology(case)
        self._phase_ids = [p.id for p in case.phases]
        self._alarm_limits = {
            s: (
                (case.vitals.alarms[s].low, case.vitals.alarms[s].high)
                if s in case.vitals.alarms
                else DEFAULT_ALARMS[s]
            )
            for s in SIGNALS
        }
        self._handlers: dict[str, Callable[[CaseState, Actor, Mapping[str, Any]], None]] = {
            "examine": self._examine, "order": self._order, "give": self._give,
            "oxygen": self._oxygen, "call_help": self._call_help, "decide": self._decide,
            "note": self._note, "time_scale": self._time_scale, "inject": self._inject,
            "override": self._override, "reveal": self._reveal, "advance": self._advance,
            "hint": self._hint, "score": self._score,
        }
        self._eid: dict[str, int] = {}
        self._t = 0.0
        self._acc = 0.0
        self._next_second = 1
        self._scale = 1.0
        self._phase = 0
        self._actions: list[ActionRecord] = []
        self._pending: list[dict[str, Any]] = []
        self._arrivals: list[dict[str, Any]] = []
        self._fired: list[str] = []
        self._holding: dict[str, float] = {}
        self._findings = dict(case.exam)
        self._examined: list[str] = []
        self._chosen: dict[str, str] = {}
        self._manual: dict[str, int] = {}
        self._noise: dict[str, float] = dict.fromkeys(VITALS, 0.0)
        self._signals: dict[str, int | float] = {}
        self._samples: list[list[Any]] = []
        self._events_log: list[dict[str, Any]] = []

    # -- Scenario protocol ---------------------------------------------------------
    def actions(self) -> Mapping[str, ActionSpec]:
        return act.SPECS

    def start(self, world: CaseState, clock: Clock) -> None:
        c = self.case
        p = c.patient
        media = c.media.stereo_video.model_dump() if c.media.stereo_video else None
        self._eid["case"] = world.create(
            "case",
            {"id": c.id, "title": c.title, "specialty": c.specialty, "setting": c.setting,
             "phase": self._phase_ids[0], "phase_title": c.phases[0].title,
             "narrative": c.phases[0].narrative, "time_s": 0, "time_scale": 1.0,
             "stereo_video": media},
        )
        self._eid["patient"] = world.create(
            "patient",
            {"age": str(p.age), "sex": p.sex, "weight_kg": p.weight_kg,
             "complaint": c.complaint, "history": p.history,
             "allergies": [a.model_dump() for a in p.allergies],
             "medications": list(p.medications), "social": p.social,
             "findings": {}, "oxygen": "none", "status": "stable"},
        )
        self._signals = _rounded(self._physio.signals(self._noise))
        self._eid["monitor"] = world.create(
            "monitor", {**self._signals, "alarms": self._alarms(), "overridden": []}
        )
        self._publish_monitor(world)  # sets the patient's status from the first reading
        self._eid["team"] = world.create(
            "team", {"pending": [], "help_called": []}, View.PARTICIPANT
        )
        for did, d in c.decisions.items():
            self._eid["decision:" + did] = world.create(
                "decision",
                {"id": did, "prompt": d.prompt, "phase": d.phase, "chosen": None,
                 "options": {o: opt.label for o, opt in d.options.items()}},
            )
        for cid, ch in c.roleplay.items():
            self._eid["character:" + cid] = world.create(
                "character",
                {"id": cid, "name": ch.name, "voiced_by": ch.voiced_by, "brief": ch.brief,
                 "script": list(ch.script)},
                View[ch.voiced_by.upper()],
            )
        self._eid["key"] = world.create("answer_key", self._answer_key(), View.FACILITATOR)
        self._eid["director"] = world.create(
            "director", self._director(), View.FACILITATOR
        )
        world.log("case", {"t": 0, "kind": "phase", "phase": self._phase_ids[0],
                           "text": c.phases[0].narrative or c.phases[0].title})
        self._sample()

    def step(self, world: CaseState, clock: Clock) -> None:
        h = clock.dt * self._scale
        self._t += h
        self._acc += h
        while self._acc >= STEP_S - EPSILON_S:
            self._physio.step(STEP_S)
            self._acc -= STEP_S
        while self._t >= self._next_second - EPSILON_S:
            self._second(world)
            self._next_second += 1

    def handle(
        self, world: CaseState, actor: Actor, action: str, args: ActionArgs, clock: Clock
    ) -> None:
        self._handlers[action](world, actor, args.model_extra or {})

    # -- the once-a-second work ------------------------------------------------------
    def _now(self) -> float:
        return round(self._t, 2)

    def _second(self, world: CaseState) -> None:
        sd = self.case.vitals.noise
        for v in VITALS:
            self._noise[v] = NOISE_MEMORY * self._noise[v] + self._rng.gauss(0, NOISE_SD[v] * sd)
        self._publish_monitor(world)
        world.set(self._eid["case"], "time_s", self._next_second)
        for order in [o for o in self._pending if o["due_s"] <= self._t]:
            self._pending.remove(order)
            self._reveal_result(world, order["test"], order["by"])
        self._publish_pending(world)
        for arrival in [a for a in self._arrivals if a["due_s"] <= self._t]:
            self._arrivals.remove(arrival)
            team = self.case.help[arrival["team"]]
            world.log("case", {"t": self._now(), "kind": "help_arrived",
                               "team": arrival["team"], "text": team.name + " arrives."})
            self._apply(world, team.then, "help:" + arrival["team"])
        for eid, event in self.case.events.items():
            if eid in self._fired or event.when is None:
                continue
            if self._holds(event.when):
                since = self._holding.setdefault(eid, self._t)
                if self._t - since >= event.when.for_s - EPSILON_S:
                    self._fire(world, eid, "trigger")
            else:
                self._holding.pop(eid, None)
        if self._next_second % SAMPLE_EVERY_S == 0:
            self._sample()
        world.update(self._eid["director"], self._director())

    def _publish_monitor(self, world: CaseState) -> None:
        self._signals = _rounded(self._physio.signals(self._noise))
        alarms = self._alarms()
        monitor = self._eid["monitor"]
        world.update(monitor, self._signals)
        world.set(monitor, "alarms", alarms)
        world.set(monitor, "overridden", sorted(self._physio.overrides))
        s = self._signals
        critical = s["map"] < 50 or s["spo2"] < 80 or not 40 <= s["hr"] <= 170
        status = "critical" if critical else ("unstable" if alarms else "stable")
        world.set(self._eid["patient"], "status", status)  # for viewers who can't read monitors

    def _alarms(self) -> list[str]:
        out = []
        for signal, (low, high) in self._alarm_limits.items():
            value = self._signals[signal]
            if low is not None and value < low:
                out.append(signal + "_low")
            elif high is not None and value > high:
                out.append(signal + "_high")
        return out

    def _sample(self) -> None:
        self._samples.append([self._next_second - 1, *(self._signals[s] for s in SIGNALS)])

    def _holds(self, when: Trigger) -> bool:
        if when.at_s is not None and self._t < when.at_s:
            return False
        if when.phase is not None and self._phase_ids[self._phase] != when.phase:
            return False
        keys = [a["key"] for a in self._actions]
        if when.done is not None and not any(key_matches(when.done, k) for k in keys):
            return False
        if when.not_done is not None and any(key_matches(when.not_done, k) for k in keys):
            return False
        if when.signal is not None:
            value = self._signals[when.signal]
            if when.below is not None and not value < when.below:
                return False
            if when.above is not None and not value > when.above:
                return False
        return True

    def _fire(self, world: CaseState, eid: str, how: str) -> None:
        event = self.case.events[eid]
        self._fired.append(eid)
        self._holding.pop(eid, None)
        self._events_log.append({"t": self._now(), "event": eid, "how": how})
        world.log("director", {"t": self._now(), "kind": "event", "event": eid, "how": how,
                               "note": event.note}, View.FACILITATOR)
        self._apply(world, event.then, "event:" + eid)

    def _apply(self, world: CaseState, effect: Effect, source: str) -> None:
        now = self._now()
        if effect.narrate:
            world.log("case", {"t": now, "kind": "narrate", "source": source,
                               "text": effect.narrate})
        if effect.condition is not None:
            self._physio.apply(
                ChangeCondition(effect.condition, effect.severity, effect.progression_per_min)
            )
        for region, finding in effect.exam.items():
            self._findings[region] = finding
            if region in self._examined:
                self._publish_findings(world)
        for test in effect.reveal:
            self._pending = [o for o in self._pending if o["test"] != test]
            self._reveal_result(world, test, source)
        if effect.say is not None:
            ch = self.case.roleplay[effect.say.character]
            world.log("script", {"t": now, "character": effect.say.character, "name": ch.name,
                                 "line": effect.say.line}, View[ch.voiced_by.upper()])
        if effect.phase is not None:
            self._set_phase(world, self._phase_ids.index(effect.phase))

    def _set_phase(self, world: CaseState, index: int) -> None:
        self._phase = index
        phase = self.case.phases[index]
        world.update(self._eid["case"], {"phase": phase.id, "phase_title": phase.title,
                                         "narrative": phase.narrative})
        world.log("case", {"t": self._now(), "kind": "phase", "phase": phase.id,
                           "text": phase.narrative or phase.title})

    def _reveal_result(self, world: CaseState, test: str, by: str) -> None:
        inv = self.case.investigations[test]
        world.create(
            "result",
            {"test": test, "name": inv.name, "kind": inv.kind, "text": inv.result,
             "values": dict(inv.values), "at_s": self._now()},
        )
        world.log("case", {"t": self._now(), "kind": "result", "test": test, "by": by,
                           "text": f"{inv.name}: {inv.result}"})

    def _publish_pending(self, world: CaseState) -> None:
        world.set(self._eid["team"], "pending",
                  [{"test": o["test"], "name": self.case.investigations[o["test"]].name,
                    "ordered_s": o["ordered_s"]} for o in self._pending])

    def _publish_findings(self, world: CaseState) -> None:
        findings = {r: self._findings[r] for r in self._examined}
        world.set(self._eid["patient"], "findings", findings)

    def _director(self) -> dict[str, Any]:
        upcoming = sorted(
            (e.when.at_s, eid, e.note)
            for eid, e in self.case.events.items()
            if e.when is not None and e.when.at_s is not None and eid not in self._fired
        )[:UPCOMING_SHOWN]
        return {
            "score": evaluate(self.case.rubric, self._actions, self._manual, self._t),
            "upcoming": [{"event": eid, "at_s": at, "note": note} for at, eid, note in upcoming],
            "severity": {c: round(s, 2) for c, s in self._physio.severity.items()},
            "fired": list(self._fired),
        }

    def _answer_key(self) -> dict[str, Any]:
        c = self.case
        return {
            "summary": c.summary,
            "guidelines": list(c.notes.guidelines),
            "objectives": list(c.notes.objectives),
            "facilitator_notes": c.notes.facilitator,
            "hints": list(c.notes.hints),
            "rubric": c.rubric.model_dump(exclude_defaults=True),
            "decisions": {d: [o for o, opt in dp.options.items() if opt.correct]
                          for d, dp in c.decisions.items()},
            "events": {eid: {"note": e.note, "when": e.when.model_dump(exclude_defaults=True)
                             if e.when else "facilitator inject",
                             "then": e.then.model_dump(exclude_defaults=True)}
                       for eid, e in c.events.items()},
            "course": [cp.model_dump(exclude_defaults=True) for cp in c.course],
            "outcome": {"good": c.outcome.good, "bad": c.outcome.bad},
        }

    # -- participant actions ---------------------------------------------------------
    def _record(
        self, actor: Actor, kind: str, item: str, **extra: Any
    ) -> ActionRecord:
        record: ActionRecord = {"t": self._now(), "kind": kind, "item": item,
                                "key": f"{kind}:{item}", "by": actor.name, **extra}
        self._actions.append(record)
        return record

    def _examine(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        region = act.choice(args, "region", self._findings, "unknown_region")
        self._record(actor, "examine", region)
        if region not in self._examined:
            self._examined.append(region)
        self._publish_findings(world)
        world.log("case", {"t": self._now(), "kind": "examine", "by": actor.name,
                           "region": region, "text": self._findings[region]})

    def _order(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        test = act.choice(args, "test", self.case.investigations, "unknown_test")
        if any(o["test"] == test for o in self._pending):
            raise IntentRefused("already_ordered", f"{test} is already pending")
        self._record(actor, "order", test)
        due = self._t + self.case.investigations[test].turnaround_s
        self._pending.append({"test": test, "due_s": due, "ordered_s": self._now(),
                              "by": actor.name})
        self._publish_pending(world)
        world.log("case", {"t": self._now(), "kind": "order", "by": actor.name, "test": test,
                           "text": f"Ordered {self.case.investigations[test].name}."})

    def _give(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        drugs = self.case.interventions
        drug_id = act.choice(args, "drug", drugs, "unknown_drug")
        drug = drugs[drug_id]
        route = act.text(args, "route")
        if route not in drug.routes:
            raise IntentRefused(
                "bad_route",
                f"{drug.name} cannot be given {route} here (routes: {', '.join(drug.routes)})",
            )
        d = drug.dose
        dose = act.number(args, "dose", 0, 1e6)
        if not d.min <= dose <= d.max or (dose == 0 and not drug.infusion):
            raise IntentRefused(
                "bad_dose",
                f"{dose:g} {d.unit} of {drug.name} is outside {d.min:g}-{d.max:g} {d.unit}"
                " (doses are given in the unit shown, per kg where it says /kg)",
            )
        kind = "stop" if dose == 0 else "give"  # stopping an infusion is not giving it
        self._record(actor, kind, drug_id, dose=dose, route=route)
        self._physio.apply(Give(drug_id, route, dose / d.typical))
        total = f" ({dose * self.case.patient.weight_kg:.4g} total)" if d.per_kg else ""
        text = f"{drug.name} {dose:g} {d.unit}{total} {route}" if dose else f"{drug.name} stopped"
        world.log("case", {"t": self._now(), "kind": kind, "by": actor.name, "drug": drug_id,
                           "dose": dose, "unit": d.unit, "route": route, "text": text})

    def _oxygen(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        device = act.choice(args, "device", DEVICES, "bad_device")
        self._record(actor, "oxygen", device)
        self._physio.apply(Support(device))
        world.set(self._eid["patient"], "oxygen", device)
        world.log("case", {"t": self._now(), "kind": "oxygen", "by": actor.name,
                           "device": device, "text": f"Oxygen/airway: {device}"})

    def _call_help(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        team_id = act.choice(args, "team", self.case.help, "unknown_team")
        if team_id in self._called():
            raise IntentRefused("already_called", f"{team_id} has already been called")
        self._record(actor, "call_help", team_id)
        team = self.case.help[team_id]
        self._arrivals.append({"team": team_id, "due_s": self._t + team.arrives_s})
        world.set(self._eid["team"], "help_called", self._called())
        world.log("case", {"t": self._now(), "kind": "call_help", "by": actor.name,
                           "team": team_id, "text": f"Called {team.name}."})

    def _called(self) -> list[str]:
        return [a["item"] for a in self._actions if a["kind"] == "call_help"]

    def _decide(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        did = act.choice(args, "decision", self.case.decisions, "unknown_decision")
        decision = self.case.decisions[did]
        option = act.choice(args, "option", decision.options, "unknown_option")
        if did in self._chosen:
            raise IntentRefused("already_decided", f"{did} was already decided")
        if decision.phase is not None and self._phase < self._phase_ids.index(decision.phase):
            raise IntentRefused("not_yet", f"{did} opens in phase {decision.phase}")
        self._chosen[did] = option
        self._record(actor, "decide", f"{did}:{option}")
        world.set(self._eid["decision:" + did], "chosen", option)
        world.log("case", {"t": self._now(), "kind": "decide", "by": actor.name,
                           "decision": did, "option": option,
                           "text": decision.options[option].label})
        self._apply(world, decision.options[option].then, f"decide:{did}:{option}")

    def _note(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        note = act.text(args, "text", act.NOTE_MAX_CHARS)
        self._record(actor, "note", "any")
        world.log("notes", {"t": self._now(), "by": actor.name, "text": note}, View.PARTICIPANT)

    # -- facilitator actions ---------------------------------------------------------
    def _time_scale(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        self._scale = act.number(args, "scale", *TIME_SCALES)
        world.set(self._eid["case"], "time_scale", self._scale)

    def _inject(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        self._fire(world, act.choice(args, "event", self.case.events, "unknown_event"), "inject")

    def _override(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        signal = act.choice(args, "signal", SIGNALS, "bad_args")
        value = None if args.get("value") is None else act.number(args, "value", 0, 300)
        until = None
        if args.get("for_s") is not None:
            until = self._physio.t + act.number(args, "for_s", 1, 7200)
        self._physio.apply(Override(signal, value, until))
        self._publish_monitor(world)
        text = f"{signal} set to {value:g}" if value is not None else f"{signal} override ended"
        world.log("case", {"t": self._now(), "kind": "override", "override": True,
                           "by": actor.name, "signal": signal, "value": value,
                           "text": text + " (facilitator override)"})

    def _reveal(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        if "region" in args:
            region = act.choice(args, "region", self._findings, "unknown_region")
            if region not in self._examined:
                self._examined.append(region)
            self._publish_findings(world)
            world.log("case", {"t": self._now(), "kind": "examine", "by": actor.name,
                               "region": region, "text": self._findings[region]})
            return
        test = act.choice(args, "test", self.case.investigations, "unknown_test")
        self._pending = [o for o in self._pending if o["test"] != test]
        self._publish_pending(world)
        self._reveal_result(world, test, actor.name)

    def _advance(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        if "phase" in args:
            index = self._phase_ids.index(act.choice(args, "phase", self._phase_ids, "bad_args"))
        elif self._phase + 1 < len(self._phase_ids):
            index = self._phase + 1
        else:
            raise IntentRefused("bad_args", "the case is already in its last phase")
        self._set_phase(world, index)

    def _hint(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        hints = self.case.notes.hints
        if "index" in args:
            if not hints:
                raise IntentRefused("bad_args", "this case has no prepared hints")
            hint = hints[int(act.number(args, "index", 0, len(hints) - 1))]
        else:
            hint = act.text(args, "text", 500)
        world.log("hints", {"t": self._now(), "by": actor.name, "text": hint}, View.PARTICIPANT)

    def _score(self, world: CaseState, actor: Actor, args: Mapping[str, Any]) -> None:
        rubric = self.case.rubric.manual
        item = act.choice(args, "item", rubric, "unknown_item")
        points = act.number(args, "points", 0, rubric[item].points)
        if points != int(points):
            raise IntentRefused("bad_args", "'points' must be a whole number")
        self._manual[item] = int(points)
        world.log("director", {"t": self._now(), "kind": "score", "item": item,
                               "points": int(points), "comment": str(args.get("comment", ""))},
                  View.FACILITATOR)
        world.update(self._eid["director"], self._director())

    # -- end of case -----------------------------------------------------------------
    def outcome_good(self) -> bool:
        limit = self.case.outcome.good_max_severity
        return all(s <= limit for s in self._physio.severity.values())

    def debrief(self) -> dict[str, Any]:
        """What happened, against the rubric: for the facilitator and the replay export."""
        score = evaluate(self.case.rubric, self._actions, self._manual, float("inf"))
        good = self.outcome_good()
        timeline = sorted(
            [{"t": c["at_s"], "kind": "critical", "id": c["id"], "text": c["description"],
              "status": c["status"]} for c in score["critical"] if c["at_s"] is not None]
            + [{"t": h["at_s"], "kind": "harmful", "id": h["id"], "text": h["description"],
                "status": "penalised"} for h in score["penalties"]]
            + [{"t": e["t"], "kind": "event", "id": e["event"], "text": e["how"],
                "status": "fired"} for e in self._events_log],
            key=lambda e: (e["t"], e["kind"], e["id"]),
        )
        return {
            "case": self.case.id,
            "title": self.case.title,
            "duration_s": self._now(),
            "outcome": {"good": good,
                        "text": self.case.outcome.good if good else self.case.outcome.bad,
                        "severity": {c: round(s, 2) for c, s in self._physio.severity.items()}},
            "score": score,
            "timeline": timeline,
            "time_to_intervention": {c["id"]: c["at_s"] for c in score["critical"]},
            "missed": [c["id"] for c in score["critical"] if c["status"] in ("missed", "pending")],
            "late": [c["id"] for c in score["critical"] if c["status"] == "late"],
            "harmful": score["penalties"],
            "decisions": dict(self._chosen),
            "actions": [dict(a) for a in self._actions],
            "vitals": {"columns": ["t", *SIGNALS], "every_s": SAMPLE_EVERY_S,
                       "rows": [list(r) for r in self._samples]},
        }

    # -- persistence -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "physio": self._physio.snapshot(),
            "eid": dict(self._eid), "t": self._t, "acc": self._acc,
            "next_second": self._next_second, "scale": self._scale, "phase": self._phase,
            "actions": [dict(a) for a in self._actions],
            "pending": [dict(o) for o in self._pending],
            "arrivals": [dict(a) for a in self._arrivals],
            "fired": list(self._fired), "holding": dict(self._holding),
            "findings": dict(self._findings), "examined": list(self._examined),
            "chosen": dict(self._chosen),
            "manual": dict(self._manual), "noise": dict(self._noise),
            "signals": dict(self._signals),
            "samples": [list(s) for s in self._samples],
            "events_log": [dict(e) for e in self._events_log],
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        version, internal, gauss = data["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._physio.restore(data["physio"])
        self._eid = dict(data["eid"])
        self._t = data["t"]
        self._acc = data["acc"]
        self._next_second = data["next_second"]
        self._scale = data["scale"]
        self._phase = data["phase"]
        self._actions = [dict(a) for a in data["actions"]]
        self._pending = [dict(o) for o in data["pending"]]
        self._arrivals = [dict(a) for a in data["arrivals"]]
        self._fired = list(data["fired"])
        self._holding = dict(data["holding"])
        self._findings = dict(data["findings"])
        self._examined = list(data["examined"])
        self._chosen = dict(data["chosen"])
        self._manual = dict(data["manual"])
        self._noise = dict(data["noise"])
        self._signals = dict(data["signals"])
        self._samples = [list(s) for s in data["samples"]]
        self._events_log = [dict(e) for e in data["events_log"]]
