"""Verify a session: every frame checksum, every state checksum, every keyframe, and a
re-simulation of the whole session from its recorded inputs.

One pass over the log rolls a `Reconstruction` forward, recomputing each view's
checksum where the room recorded one and comparing each keyframe with the state the
ops built; re-simulation (see `replay.resim`) then replays the inputs into a fresh room.

Verify never fails on what a log holds: it is a report about the log. A record whose
state cannot be rolled forward is a problem (with its index); a re-simulation that
raises on a recorded input is a divergence at that record, with the exception named.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from netcode.views import ALL_VIEWS
from replay.authenticity import Authenticity, check
from replay.errors import ReplayError
from replay.keyframes import Reconstruction, keyframe_matches
from replay.reader import Session
from replay.resim import Divergence, RoomFactory, resimulate, room_factory
from rooms.records import Record


@dataclass(slots=True)
class Resimulated:
    """How much of the session the re-simulation covered."""

    records: int = 0
    first_tick: int | None = None
    last_tick: int | None = None
    error: str | None = None
    """A recorded input the fresh room raised on: `record N (tick T, t=...s): ...`."""


@dataclass(slots=True)
class VerifyReport:
    session_id: str
    records: int = 0
    checksums: int = 0
    keyframes: int = 0
    tick_hz: int = 1
    problems: list[str] = field(default_factory=list)
    """Integrity problems: damaged frames, missing records, bad checksums or keyframes."""
    divergence: Divergence | None = None
    resimulated: bool = False
    resim: Resimulated = field(default_factory=Resimulated)
    authenticity: Authenticity | None = None
    """The signature check; None when no key was given (signatures not checked)."""
    notes: list[str] = field(default_factory=list)
    last: Record | None = None
    ended: Record | None = None

    @property
    def intact(self) -> bool:
        signed = self.authenticity is None or self.authenticity.ok
        return signed and not self.problems and self.divergence is None and self.resim.error is None

    def lines(self) -> list[str]:
        out = [
            f"session {self.session_id}: {self.records} records, {self.checksums} state "
            f"checksums, {self.keyframes} keyframes checked",
            *(f"problem: {p}" for p in self.problems),
        ]
        if self.authenticity is None:
            out.append("signature: not checked (no key: give the server's secret)")
        else:
            out.extend(self.authenticity.lines())
        out.extend(f"note: {n}" for n in self.notes)
        if self.resim.error is not None:
            out.append(f"divergence: {self.resim.error}")
        elif self.divergence is not None:
            out.append(f"divergence: {self.divergence.describe()}")
        out.append(f"re-simulation: {self._coverage()}")
        out.append("INTACT" if self.intact else "NOT INTACT")
        return out

    def _coverage(self) -> str:
        if not self.resimulated:
            return "not run"
        r = self.resim
        span = ""
        if r.first_tick is not None and r.last_tick is not None:
            hz = self.tick_hz or 1
            span = (
                f", ticks {r.first_tick}-{r.last_tick} "
                f"({_clock(r.first_tick / hz)}-{_clock(r.last_tick / hz)})"
            )
        share = f" ({100 * r.records / self.records:.0f}%)" if self.records else ""
        done = f"{r.records} of {self.records} records{share}{span}"
        if self.divergence is None and r.error is None:
            if r.records == self.records:
                return f"{done}: the room made every recorded record again"
            return f"{done} made again; the rest could not be read"
        return f"{done} made again before the divergence"


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{seconds % 60:04.1f}"


def _checked(session: Session, report: VerifyReport) -> Iterator[Record]:
    """The session's records, checking frames, checksums and keyframes on the way."""
    recon: Reconstruction | None = Reconstruction()
    expected_index = 0
    hz = session.tick_hz or 1
    try:
        for _, frame in session.frames():
            record = frame.record
            if frame.index != expected_index:
                report.problems.append(
                    f"record index {frame.index} where {expected_index} was expected "
                    f"(tick {record.tick})"
                )
            expected_index = frame.index + 1
            report.records += 1
            report.last = record
            if record.kind == "ended":
                report.ended = record
            where = f"record {frame.index} (tick {record.tick}, t={record.tick / hz:.3f}s)"
            if record.kind == "gap":
                report.problems.append(
                    f"gap at {where}: the writer dropped {record.data.get('count')} records"
                )
            if recon is not None:
                try:
                    _roll(recon, record, where, report, hz)
                except Exception as exc:  # a report about the log, whatever the log holds
                    report.problems.append(
                        f"state at {where} cannot be rolled forward ({exc}); state checks stop here"
                    )
                    recon = None
            yield record
    except ReplayError as exc:
        if exc.message not in report.problems:
            report.problems.append(exc.message)


def _roll(recon: Reconstruction, record: Record, where: str, report: VerifyReport, hz: int) -> None:
    if record.kind == "keyframe":
        report.keyframes += 1
        mismatch = keyframe_matches(recon, record)
        if mismatch is not None:
            report.problems.append(f"keyframe at {where}: {mismatch}")
    recon.apply(record)
    if record.kind == "checksum":
        report.checksums += 1
        sums = list(record.data.get("sums", []))
        got = [recon.state(v, record.tick, hz).checksum() for v in ALL_VIEWS]
        if sums != got:
            report.problems.append(f"state checksum at {where}: recorded {sums}, state gives {got}")


class _Counted:
    """The records handed to the re-simulation, counted, the last one kept."""

    def __init__(self, records: Iterable[Record], coverage: Resimulated) -> None:
        self._records = records
        self.coverage = coverage
        self.last: Record | None = None

    def __iter__(self) -> Iterator[Record]:
        for record in self._records:
            self.last = record
            self.coverage.records += 1
            if self.coverage.first_tick is None:
                self.coverage.first_tick = record.tick
            self.coverage.last_tick = record.tick
            yield record


def verify(
    session: Session,
    resim: bool = True,
    make_room: RoomFactory | None = None,
    key: bytes | None = None,
) -> VerifyReport:
    """Check `session`; with `key` (the server's signing key), also that it is the record
    the server signed (`replay.authenticity`)."""
    report = VerifyReport(session.session_id, tick_hz=session.tick_hz or 1)
    report.problems.extend(p.describe(session.tick_hz) for p in session.problems)
    if not session.sealed:
        report.problems.append(
            "the session is not sealed (still recording, or the writer died: run repair)"
        )
    if key is not None:
        report.authenticity = check(session.path, key)
    records = _checked(session, report)
    if resim:
        fed = _Counted(records, report.resim)
        try:
            report.divergence = resimulate(fed, make_room or room_factory())
            report.resimulated = True
        except ReplayError as exc:
            report.problems.append(exc.message)
        except Exception as exc:  # the fresh room raised on a recorded input
            report.resimulated = True
            report.resim.error = _raised(fed, exc, report.tick_hz)
        if report.divergence is not None:
            report.resim.records = report.divergence.index
        elif report.resim.error is not None:
            report.resim.records = max(0, report.resim.records - 1)
    for _ in records:
        pass
    _ends(session, report)
    return report


def _ends(session: Session, report: VerifyReport) -> None:
    """Does the log end as the room ended it (an `ended` record, and nothing after its
    tick), and hold all the records signed?"""
    last, hz = report.last, report.tick_hz
    status = session.manifest.status
    if last is not None and (report.ended is None or report.ended.tick != last.tick):
        where = f"record {report.records - 1} (t={last.tick / hz:.3f}s)"
        if status == "sealed":
            report.problems.append(
                f"missing-end: the sealed log has no end record; it stops at {where}"
            )
        elif status == "repaired":
            report.notes.append(
                f"the room did not end: the log stops at {where}, where repair cut it after a crash"
            )
    auth = report.authenticity
    if (
        auth is not None
        and auth.signed_records is not None
        and auth.signed_records != report.records
    ):
        auth.problems.append(
            f"truncated: the signed manifest counts {auth.signed_records} records; the log "
            f"holds {report.records}"
        )


def _raised(fed: _Counted, exc: Exception, hz: int) -> str:
    last = fed.last
    index = fed.coverage.records - 1
    if last is None:
        return f"re-simulation raised {type(exc).__name__}: {exc} before the first record"
    text = repr(last.data)
    shown = text if len(text) <= 300 else text[:297] + "..."
    return (
        f"record {index} (tick {last.tick}, t={last.tick / (hz or 1):.3f}s): re-simulating "
        f"{last.kind} {shown} raised {type(exc).__name__}: {exc}"
    )
