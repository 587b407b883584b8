"""The case file format: pydantic models an educator's YAML is validated against.

Every model forbids unknown keys so a typo is reported rather than silently ignored.
Cross-references (an event naming a condition, a rubric item naming a drug) are
checked after parsing by `references.py`, where the path to the offending field is known.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Ident = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]

Vital = Literal["hr", "sbp", "dbp", "spo2", "rr", "temp", "etco2"]
Signal = Literal["hr", "sbp", "dbp", "map", "spo2", "rr", "temp", "etco2"]
"""A monitored value: the modelled vitals plus MAP, which follows from SBP and DBP."""

Route = Literal["iv", "ivinf", "io", "im", "sc", "po", "sl", "pr", "in", "neb", "inh", "topical"]
Device = Literal[
    "none", "nasal_cannula", "simple_mask", "nonrebreather", "hfnc", "niv", "bvm", "ett"
]
DEVICES: Final[frozenset[str]] = frozenset(get_args(Device))


class Strict(BaseModel):
    """Frozen (a loaded case is shared by every room running it) and closed to unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


# -- vitals --------------------------------------------------------------------


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
    alarms: dict[Signal, Alarm] = {}
    """Overrides of the default adult alarm limits (a child's case should set its own)."""
    noise: float = Field(default=1.0, ge=0, le=5)
    """Scale of the seeded beat-to-beat noise; 0 for a perfectly smooth monitor."""


class Condition(Strict):
    """A disease process: its severity (0..1) drives vital changes and grows untreated."""

    name: Text
    severity: float = Field(default=0.5, ge=0, le=1)
    progression_per_min: float = Field(ge=0, le=1)
    effects: dict[Vital, float]
    """Change of each vital from baseline when severity is 1 (linear in severity)."""
    active: bool = True
    """An inactive condition starts at severity 0 and only progresses once an event wakes it."""


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


class Intervention(Strict):
    name: Text
    kind: Literal["drug", "fluid", "blood", "procedure"] = "drug"
    dose: Dose
    routes: dict[Route, Kinetics] = Field(min_length=1)
    effects: dict[Vital, float] = {}
    """Change of each vital at full effect of a typical dose."""
    treats: dict[Ident, float] = {}
    """Condition id -> severity removed per minute at full effect."""
    worsens: dict[Ident, float] = {}
    """Condition id -> severity added per minute at full effect (harm)."""
    infusion: bool = False
    """A running rate: a new dose replaces the old one, and dose 0 stops it."""


# -- investigations, phases, events, decisions -----------------------------------


class Investigation(Strict):
    name: Text
    kind: Literal["lab", "imaging", "bedside"]
    turnaround_s: float = Field(ge=0, le=86400)
    result: Text
    values: dict[str, str | float] = {}


class Phase(Strict):
    id: Ident
    title: Text
    narrative: str = ""


class Trigger(Strict):
    """When an event fires: every clause given must hold (they are ANDed)."""

    at_s: float | None = Field(default=None, ge=0)
    signal: Signal | None = None
    below: float | None = None
    above: float | None = None
    for_s: float = Field(default=0, ge=0)
    done: str | None = None
    """An action key that must have happened, e.g. "give:epinephrine"."""
    not_done: str | None = None
    phase: Ident | None = None

    @model_validator(mode="after")
    def _complete(self) -> Trigger:
        if self.signal is not None and self.below is None and self.above is None:
            raise ValueError("a signal clause needs below or above")
        if self.signal is None and (self.below is not None or self.above is not None):
            raise ValueError("below/above need a signal")
        return self


class Line(Strict):
    character: Ident
    line: Text


class Effect(Strict):
    narrate: str = ""
    condition: Ident | None = None
    severity: float | None = Field(default=None, ge=0, le=1)
    progression_per_min: float | None = Field(default=None, ge=0, le=1)
    phase: Ident | None = None
    reveal: list[Ident] = []
    exam: dict[Ident, Text] = {}
    say: Line | None = None

    @model_validator(mode="after")
    def _condition_needed(self) -> Effect:
        changes = self.severity is not None or self.progression_per_min is not None
        if changes and self.condition is None:
            raise ValueError("severity/progression_per_min need a condition")
        return self


class Event(Strict):
    when: Trigger | None = None
    """None: the event happens only when the facilitator injects it."""
    then: Effect
    note: str = ""
    """What the facilitator should know about it (answer key)."""


class Option(Strict):
    label: Text
    correct: bool = False
    then: Effect = Effect()


class Decision(Strict):
    prompt: Text
    phase: Ident | None = None
    options: dict[Ident, Option] = Field(min_length=2)


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


ActionKey = Annotated[str, StringConstraints(pattern=r"^[a-z_]+:[a-z0-9_:]+$")]
"""kind:item, e.g. "give:epinephrine", "order:lactate", "decide:cvs:yes"."""


class Match(Strict):
    action: ActionKey | list[ActionKey]
    """One action key, or a list of acceptable alternatives."""
    routes: list[Route] = []
    dose_min: float | None = Field(default=None, ge=0)
    dose_max: float | None = Field(default=None, ge=0)
    """Per kg when the drug is dosed per kg."""

    @model_validator(mode="after")
    def _dose_range(self) -> Match:
        low, high = self.dose_min, self.dose_max
        if low is not None and high is not None and low > high:
            raise ValueError("dose_min must not exceed dose_max")
        return self


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


class Checkpoint(Strict):
    """Where the untreated patient should be by `at_s` (answer key; checked by tests)."""

    at_s: float = Field(gt=0)
    signal: Signal
    below: float | None = None
    above: float | None = None
    note: str = ""

    @model_validator(mode="after")
    def _bound(self) -> Checkpoint:
        if self.below is None and self.above is None:
            raise ValueError("a checkpoint needs below or above")
        return self


class Outcome(Strict):
    good: Text
    bad: Text
    good_max_severity: float = Field(default=0.3, ge=0, le=1)
    """Good outcome: every condition at or below this severity when the case ends."""


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
    schema_version: Literal[1] = 1
    id: Ident
    title: Text
    specialty: Text
    setting: Text
    duration_min: int = Field(gt=0, le=240)
    summary: Text
    notes: Notes
    patient: Patient
    complaint: Text
    exam: dict[Ident, Text] = Field(min_length=1)
    vitals: VitalsModel
    conditions: dict[Ident, Condition] = {}
    interventions: dict[Ident, Intervention] = {}
    """Case-specific drugs, merged over (and overriding) the shared formulary."""
    investigations: dict[Ident, Investigation] = {}
    phases: list[Phase] = Field(min_length=1)
    events: dict[Ident, Event] = {}
    decisions: dict[Ident, Decision] = {}
    help: dict[Ident, Help] = {}
    roleplay: dict[Ident, Character] = {}
    rubric: Rubric
    outcome: Outcome
    course: list[Checkpoint] = []
    media: Media = Media()


class Formulary(Strict):
    interventions: dict[Ident, Intervention]
