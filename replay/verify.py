"""Verify a session: every frame checksum, every state checksum, every keyframe, and a
re-simulation of the whole session from its recorded inputs.

One pass over the log rolls a `Reconstruction` forward, recomputing each view's
checksum where the room recorded one and comparing each keyframe with the state the
ops built; re-simulation (see `replay.resim`) then replays the inputs into a fresh room.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from netcode.views import ALL_VIEWS
from replay.errors import ReplayError
from replay.keyframes import Reconstruction, keyframe_matches
from replay.reader import Session
from replay.resim import Divergence, RoomFactory, resimulate, room_factory
from rooms.records import Record


@dataclass(slots=True)
class VerifyReport:
    session_id: str
    records: int = 0
    checksums: int = 0
    keyframes: int = 0
    problems: list[str] = field(default_factory=list)
    """Integrity problems: damaged frames, missing records, bad checksums or keyframes."""
    divergence: Divergence | None = None
    resimulated: bool = False

    @property
    def intact(self) -> bool:
        return not self.problems and self.divergence is None

    def lines(self) -> list[str]:
        out = [
            f"session {self.session_id}: {self.records} records, {self.checksums} state "
            f"checksums, {self.keyframes} keyframes checked",
            *(f"problem: {p}" for p in self.problems),
        ]
        if self.divergence is not None:
            out.append(f"divergence: {self.divergence.describe()}")
        elif self.resimulated:
            out.append("re-simulation: the room made every recorded record again")
        else:
            out.append("re-simulation: not run")
        out.append("INTACT" if self.intact else "NOT INTACT")
        return out


def _checked(session: Session, report: VerifyReport) -> Iterator[Record]:
    """The session's records, checking frames, checksums and keyframes on the way."""
    recon = Reconstruction()
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
            where = f"record {frame.index} (tick {record.tick}, t={record.tick / hz:.3f}s)"
            if record.kind == "keyframe":
                report.keyframes += 1
                mismatch = keyframe_matches(recon, record)
                if mismatch is not None:
                    report.problems.append(f"keyframe at {where}: {mismatch}")
            elif record.kind == "gap":
                report.problems.append(
                    f"gap at {where}: the writer dropped {record.data.get('count')} records"
                )
            recon.apply(record)
            if record.kind == "checksum":
                report.checksums += 1
                sums = list(record.data.get("sums", []))
                got = [recon.state(v, record.tick, hz).checksum() for v in ALL_VIEWS]
                if sums != got:
                    report.problems.append(
                        f"state checksum at {where}: recorded {sums}, state gives {got}"
                    )
            yield record
    except ReplayError as exc:
        if exc.message not in report.problems:
            report.problems.append(exc.message)


def verify(
    session: Session,
    resim: bool = True,
    make_room: RoomFactory | None = None,
) -> VerifyReport:
    report = VerifyReport(session.session_id)
    report.problems.extend(
        p.describe(session.tick_hz) for p in session.problems
    )
    if not session.sealed:
        report.problems.append(
            "the session is not sealed (still recording, or the writer died: run repair)"
        )
    records = _checked(session, report)
    if resim:
        try:
            report.divergence = resimulate(records, make_room or room_factory())
            report.resimulated = True
        except ReplayError as exc:
            report.problems.append(exc.message)
    for _ in records:
        pass
    return report
