"""The case file format: pydantic models an educator's YAML is validated against.

Every model forbids unknown keys so a typo is reported rather than silently ignored.
Expressions (`Expr`) are kept as text here; `references.py` parses, type-checks and
resolves them against the whole case, where the ids they name are known.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Ident = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=80)]
ExprText = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Expr = ExprText | float
"""An expression (docs/cases.md, "Expressions"); a plain number where a number is needed."""

Vital = Literal["hr", "sbp", "dbp", "spo2", "rr", "temp", "etco2"]
Signal = Literal["hr", "sbp", "dbp", "map", "spo2", "rr", "temp", "etco2"]
"""A monitored value: the modelled vitals plus MAP, which follows from SBP and DBP."""

Route = Literal["iv", "ivinf", "io", "im", "sc", "po", "sl", "pr", "in", "neb", "inh", "topical"]
Device = Literal[
    "none", "nasal_cannula", "simple_mask", "nonrebreather", "hfnc", "niv", "bvm", "ett"
]
DEVICES: Final[frozenset[str]] = frozenset(get_args(Device))
BUILT_IN_NAMES: Final[dict[str, str]] = {
    "t": "case time in seconds",
    "o2": "share of an oxygen deficit the current oxygen or airway device removes (0-0.95)",
    "weight": "the patient's weight in kg",
}
DOSE_NAMES: Final[dict[str, str]] = {
    "dose": "the dose as ordered, in the drug's unit (per kg for per-kg drugs)",
    "dose_total": "the dose as ordered times the weight for per-kg drugs",
}


class Strict(BaseModel):
    """Frozen (a loaded case is shared by every room running it) and closed to unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_of(model: BaseModel, names: tuple[str, ...], what: str) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        raise ValueError(f"{what} needs exactly one of {', '.join(names)}")


# -- patient -------------------------------------------------------------------


class Allergy(Strict):
    substance: Text
    reaction: str = ""


class Patient(Strict):
    """A synthetic patient: an age band, never a birth date; no names or numbers."""

    age: Annotated[str, StringConstraints(min_length=1, max_length=24)] | int = Field(
        description='Age or band, e.g. 34, "6 years", "70-79", "90+".'
    )
    sex: Literal["female", "male", "intersex", "unspecified"]
    weight_kg: float = Field(gt=0.3, le=350)
    history: Text
    allergies: list[Allergy] = []
    medications: list[Text] = []
    social: str = ""


class Finding(Strict):
    """An exam region with a plain-language name (else the id, spelled out)."""

    name: Label
    finding: Text


# -- patient state and vitals ------------------------------------------------------


class Combine(Strict):
    """How treatment effects on a state variable combine (docs/cases.md, "Patient state")."""

    floor: float = Field(default=0.0, ge=0, le=1)
    """Lowest product of the factors acting on the variable's own rate."""
    ceiling: float = Field(default=10.0, ge=1, le=100)
    """Highest product of the factors."""
    saturation: float | None = Field(default=None, gt=0)
    """If set, the summed additive rates approach this size smoothly (S x tanh(sum / S))."""


class StateVar(Strict):
    """A named quantity of the patient's state, advanced every physiology step."""

    name: Label
    unit: Annotated[str, StringConstraints(max_length=24)] = ""
    initial: float
    min: float | None = None
    max: float | None = None
    rate: Expr = 0.0
    """Its own change per minute (an expression: it may depend on any state)."""
    combine: Combine = Combine()
    effects: dict[Vital, float] = {}
    """Change of each vital per unit of this variable (target += value x effect)."""

    @model_validator(mode="after")
    def _bounds(self) -> StateVar:
        low = self.min if self.min is not None else self.initial
        high = self.max if self.max is not None else self.initial
        if not low <= self.initial <= high:
            raise ValueError("need min <= initial <= max")
        return self


class Derived(Strict):
    """A quantity computed from the state at every physiology step (not integrated)."""

    name: Label
    unit: Annotated[str, StringConstraints(max_length=24)] = ""
    value: Expr
    """May use the state, and derived quantities declared above it."""


class Vitals(Strict):
    hr: float = Field(ge=20, le=250)
    sbp: float = Field(ge=30, le=280)
    dbp: float = Field(ge=10, le=180)
    spo2: float = Field(ge=40, le=100)
    rr: float = Field(ge=4, le=80)
    temp: float = Field(ge=30, le=43)
    etco2: float = Field(ge=5, le=120)

    @model_validator(mode="after")
    def _pulse_pressure(self) -> Vitals:
        if self.dbp >= self.sbp:
            raise ValueError("dbp must be lower than sbp")
        return self


class Alarm(Strict):
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Alarm:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError("low must be lower than high")
        return self


class VitalsModel(Strict):
    baseline: Vitals
    """The patient when well; state variables' `effects` move the vitals away from it."""
    derive: dict[Vital, Expr] = {}
    """A vital's target as an expression of state (replaces baseline + effects for it)."""
    time_constants: dict[Vital, float] = {}
    """Seconds a vital takes to move ~63% of the way to its target (0: at once)."""
    alarms: dict[Signal, Alarm] = {}
    """Overrides of the default adult alarm limits (a child's case should set its own)."""
    noise: float = Field(default=1.0, ge=0, le=5)
    """Scale of the seeded beat-to-beat noise; 0 for a perfectly smooth monitor."""

    @model_validator(mode="after")
    def _time_constants(self) -> VitalsModel:
        if any(not 0 <= tau <= 3600 for tau in self.time_constants.values()):
            raise ValueError("time constants are 0-3600 seconds")
        return self


class Measure(Strict):
    """Something judged over the whole session, updated every simulated second."""

    name: Label
    unit: Annotated[str, StringConstraints(max_length=24)] = ""
    lowest: Expr | None = None
    highest: Expr | None = None
    seconds_while: ExprText | None = None

    @model_validator(mode="after")
    def _one(self) -> Measure:
        _one_of(self, ("lowest", "highest", "seconds_while"), "a measure")
        return self


# -- interventions --------------------------------------------------------------


class Kinetics(Strict):
    """When a route's effect begins, is full and ends (seconds after the dose)."""

    onset_s: float = Field(ge=0, le=7200)
    peak_s: float = Field(ge=0, le=7200)
    duration_s: float = Field(gt=0, le=86400)
    potency: float = Field(default=1.0, gt=0, le=5)

    @model_validator(mode="after")
    def _ordered(self) -> Kinetics:
        if not self.onset_s <= self.peak_s <= self.duration_s:
            raise ValueError("need onset_s <= peak_s <= duration_s")
        return self


class Dose(Strict):
    """Dose limits; doses outside min..max are refused as absurd, not merely wrong."""

    unit: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    typical: float = Field(gt=0)
    min: float = Field(ge=0)
    max: float = Field(gt=0)
    per_kg: bool = False
    """When true, typical/min/max are per kg of the patient's weight."""

    @model_validator(mode="after")
    def _ordered(self) -> Dose:
        if not self.min <= self.typical <= self.max:
            raise ValueError("need min <= typical <= max")
        return self


class StateEffect(Strict):
    """What a dose or procedure does to one state variable while it acts."""

    rate: float | None = None
    """Added to the variable's change per minute at full effect."""
    factor: float | None = Field(default=None, gt=0, le=100)
    """Multiplies the variable's own rate at full effect (0.5: halves it)."""
    amount: Expr | None = None
    """Added in total per dose, delivered between onset and peak (may use dose, dose_total)."""
    window: ExprText | None = None
    """Checked when the dose is given: outside it this effect does nothing."""

    @model_validator(mode="after")
    def _something(self) -> StateEffect:
        if self.rate is None and self.factor is None and self.amount is None:
            raise ValueError("a state effect needs rate, factor or amount")
        return self


class Intervention(Strict):
    name: Text
    kind: Literal["drug", "fluid", "blood"] = "drug"
    dose: Dose
    routes: dict[Route, Kinetics] = Field(min_length=1)
    effects: dict[Vital, float] = {}
    """Change of each vital at full effect of a typical dose."""
    acts_on: dict[Ident, StateEffect] = {}
    """State variable -> effect. Variables a case does not have are ignored (formulary)."""
    infusion: bool = False
    """A running rate: a new dose replaces the old one, and dose 0 (or `stop`) stops it."""

    @model_validator(mode="after")
    def _infusion_amounts(self) -> Intervention:
        if self.infusion and any(e.amount is not None for e in self.acts_on.values()):
            raise ValueError("an infusion acts through `rate` or `factor`, not `amount`")
        return self


class Procedure(Strict):
    """Something the team performs; sustained ones act until stopped."""

    name: Label
    onset_s: float = Field(default=0, ge=0, le=3600)
    peak_s: float = Field(default=0, ge=0, le=3600)
    duration_s: float | None = Field(default=None, gt=0, le=86400)
    """None: sustained (acts at full effect after its peak until the team stops it)."""
    effects: dict[Vital, float] = {}
    acts_on: dict[Ident, StateEffect] = {}

    @model_validator(mode="after")
    def _ordered(self) -> Procedure:
        end = self.duration_s if self.duration_s is not None else self.peak_s
        if not self.onset_s <= self.peak_s <= end:
            raise ValueError("need onset_s <= peak_s <= duration_s")
        if any(e.amount is not None for e in self.acts_on.values()):
            raise ValueError("a procedure acts through `rate` or `factor`, not `amount`")
        return self


# -- investigations, phases, events, decisions -----------------------------------


class LabValue(Strict):
    name: Label
    unit: Annotated[str, StringConstraints(max_length=24)] = ""
    value: Expr
    """Computed from the state when the sample is taken (the order), shown with the result."""
    decimals: int = Field(default=1, ge=0, le=4)


class Investigation(Strict):
    name: Text
    kind: Literal["lab", "imaging", "bedside"]
    turnaround_s: float = Field(ge=0, le=86400)
    result: Text
    """The report; `{value_id}` is replaced by that value as measured."""
    values: dict[Ident, LabValue] = {}


class Phase(Strict):
    id: Ident
    title: Text
    narrative: str = ""


class Line(Strict):
    character: Ident
    line: Text


class Effect(Strict):
    narrate: str = ""
    set: dict[Ident, Expr] = {}
    """State variable -> its new value."""
    add: dict[Ident, Expr] = {}
    """State variable -> added to its value."""
    rate: dict[Ident, Expr] = {}
    """State variable -> its own rate from now on (replacing the declared one)."""
    phase: Ident | None = None
    reveal: list[Ident] = []
    exam: dict[Ident, Text] = {}
    say: Line | None = None


class Event(Strict):
    at_s: float | None = Field(default=None, ge=0)
    """Not before this case time: the event fires at the first whole second at or after
    `at_s` at which `when` holds (held for `for_s`)."""
    when: ExprText | None = None
    for_s: float = Field(default=0, ge=0)
    """`when` must have held this long (seconds of case time)."""
    then: Effect
    note: str = ""
    """What the facilitator should know about it (answer key)."""

    @property
    def injected_only(self) -> bool:
        return self.at_s is None and self.when is None


class Option(Strict):
    label: Text
    correct: bool | ExprText = False
    """True, or an expression judged when the decision is made."""
    then: Effect = Effect()


class Decision(Strict):
    prompt: Text
    phase: Ident | None = None
    """Opens when this phase begins (None: from the start)."""
    closes: Literal["phase_end", "answered"] | None = None
    """phase_end: closes unanswered when its phase ends (the default with a phase);
    answered: stays open until answered."""
    options: dict[Ident, Option] = Field(min_length=2)

    @property
    def closing(self) -> Literal["phase_end", "answered"]:
        if self.closes is not None:
            return self.closes
        return "phase_end" if self.phase is not None else "answered"


class Help(Strict):
    name: Text
    arrives_s: float = Field(ge=0, le=7200)
    then: Effect = Effect()


class Character(Strict):
    """A role-play part (patient, parent, interpreter) voiced from a script."""

    name: Text
    voiced_by: Literal["facilitator", "participant"]
    brief: Text
    script: list[Text] = []


# -- scoring -------------------------------------------------------------------


ActionKey = Annotated[str, StringConstraints(pattern=r"^[a-z_]+(:[a-z0-9_]+){0,2}$")]
"""kind:item, e.g. "give:epinephrine", "order:lactate", "decide:cvs:yes"."""


class Match(Strict):
    action: ActionKey | list[ActionKey] | None = None
    """One action key, or a list of acceptable alternatives."""
    when: ExprText | None = None
    """Or: a condition; done at the first whole second it holds."""
    routes: list[Route] = []
    dose_min: float | None = Field(default=None, ge=0)
    dose_max: float | None = Field(default=None, ge=0)
    """Per kg when the drug is dosed per kg."""

    @model_validator(mode="after")
    def _shape(self) -> Match:
        _one_of(self, ("action", "when"), "a rubric item")
        low, high = self.dose_min, self.dose_max
        if low is not None and high is not None and low > high:
            raise ValueError("dose_min must not exceed dose_max")
        if self.when is not None and (self.routes or low is not None or high is not None):
            raise ValueError("routes and doses only apply to an action")
        return self

    @property
    def keys(self) -> list[str]:
        if self.action is None:
            return []
        return [self.action] if isinstance(self.action, str) else list(self.action)


class Critical(Match):
    description: Text
    points: int = Field(gt=0, le=100)
    within_s: float | None = Field(default=None, gt=0)
    after: list[Ident] = []
    """Critical items that must already be done for this one to count."""
    before: list[Ident] = []
    """Critical items that must not yet be done for this one to count."""


class Penalty(Match):
    description: Text
    points: int = Field(gt=0, le=100)
    unless_done: Ident | None = None
    """Only harmful while this critical item is not yet done (e.g. clip before CVS)."""


class Manual(Strict):
    description: Text
    points: int = Field(gt=0, le=100)


class Rubric(Strict):
    critical: dict[Ident, Critical] = Field(min_length=1)
    penalties: dict[Ident, Penalty] = {}
    manual: dict[Ident, Manual] = {}
    pass_percent: float = Field(default=70, ge=0, le=100)


class Outcome(Strict):
    good: Text
    bad: Text
    good_if: ExprText
    """Judged when the session ends, over the session (measures, state, totals)."""
    judged_after_s: float | None = Field(default=None, ge=0)
    """A session ending earlier is reported as too early to judge (default: half the
    planned duration)."""


# -- calibration -----------------------------------------------------------------


class TeamStep(BaseModel):
    """One timed action of a scripted team: `{at: 90, do: give, drug: ..., dose: ...}`."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    at: float | Annotated[str, StringConstraints(pattern=r"^\d{1,4}:[0-5]\d$")]
    """Seconds of case time, or "m:ss"."""
    do: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    by: Literal["participant", "facilitator"] = "participant"

    @property
    def at_s(self) -> float:
        if isinstance(self.at, str):
            minutes, seconds = self.at.split(":")
            return int(minutes) * 60 + int(seconds)
        return float(self.at)

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _time(self) -> TeamStep:
        if not 0 <= self.at_s <= 86400:
            raise ValueError("at must be within 0-86400 seconds")
        return self


class Promise(Strict):
    """What a calibration run must show: `holds` at, by, or throughout a time."""

    holds: ExprText
    at_s: float | None = Field(default=None, ge=0)
    by_s: float | None = Field(default=None, ge=0)
    """At some whole second up to and including this one."""
    from_s: float | None = Field(default=None, ge=0)
    """At every whole second from here to `to_s` (default: the end of the run)."""
    to_s: float | None = Field(default=None, ge=0)
    note: str = ""

    @model_validator(mode="after")
    def _when(self) -> Promise:
        _one_of(self, ("at_s", "by_s", "from_s"), "a promise")
        if self.to_s is not None and (self.from_s is None or self.to_s < self.from_s):
            raise ValueError("to_s needs a from_s before it")
        return self


class ScoreBand(Strict):
    min_percent: float | None = None
    max_percent: float | None = None
    passed: bool | None = None


class Calibration(Strict):
    """A scripted team and what the case's guide promises for it."""

    description: str = ""
    team: list[TeamStep] = []
    seed: int = Field(default=1, ge=0, lt=2**32)
    until_s: float | None = Field(default=None, gt=0, le=86400)
    """Default: the planned duration."""
    promises: list[Promise] = []
    outcome: Literal["good", "bad"] | None = None
    score: ScoreBand = ScoreBand()
    penalties: list[Ident] | None = None
    """Exactly these penalties, in any order (None: not checked)."""


# -- notes, media, the case -------------------------------------------------------


class Notes(Strict):
    guidelines: list[Text] = Field(min_length=1)
    objectives: list[Text] = Field(min_length=1)
    facilitator: str = ""
    hints: list[Text] = []


class StereoVideo(Strict):
    presenter: Literal["facilitator", "participant"]
    layout: Literal["side-by-side", "top-bottom"] = "side-by-side"
    source: Text


class Media(Strict):
    stereo_video: StereoVideo | None = None


class Case(Strict):
    schema_version: Literal[2] = 2
    id: Ident
    title: Text
    specialty: Text
    setting: Text
    duration_min: int = Field(gt=0, le=240)
    summary: Text
    notes: Notes
    patient: Patient
    complaint: Text
    exam: dict[Ident, Text | Finding] = Field(min_length=1)
    state: dict[Ident, StateVar] = {}
    derived: dict[Ident, Derived] = {}
    vitals: VitalsModel
    measures: dict[Ident, Measure] = {}
    interventions: dict[Ident, Intervention] = {}
    """Case-specific drugs, merged over (and overriding) the shared formulary."""
    procedures: dict[Ident, Procedure] = {}
    investigations: dict[Ident, Investigation] = {}
    phases: list[Phase] = Field(min_length=1)
    events: dict[Ident, Event] = {}
    decisions: dict[Ident, Decision] = {}
    help: dict[Ident, Help] = {}
    roleplay: dict[Ident, Character] = {}
    rubric: Rubric
    outcome: Outcome
    calibration: dict[Ident, Calibration] = {}
    media: Media = Media()

    @property
    def planned_s(self) -> float:
        return self.duration_min * 60.0


class Formulary(Strict):
    interventions: dict[Ident, Intervention]


def spelled(ident: str) -> str:
    """An id as plain words: "hepatocystic_triangle" -> "Hepatocystic triangle"."""
    words = ident.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def finding_name(region: str, finding: str | Finding) -> str:
    return finding.name if isinstance(finding, Finding) else spelled(region)


def finding_text(finding: str | Finding) -> str:
    return finding.finding if isinstance(finding, Finding) else finding
