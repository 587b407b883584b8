"""The room model and the case engine: deterministic, no I/O.

A `Room` hosts a `Scenario` (the case engine, or the minimal demo scenario) on a
`CaseState`, applies intents in its tick, and tells a `Recorder` everything it did.
"""
