"""The manifest: what a session is, kept beside the log and derived from it.

Everything in it except media tracks can be rebuilt from the records (repair does);
it is there so that listing sessions never has to read a log. Participants appear
only under pseudonyms: display names stay in the log's join records.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from rooms.records import Record

FORMAT: Final = "grandrounds-replay"
FORMAT_VERSION: Final = 1


def pseudonym(session_id: str, member: Any) -> str:
    """Stable within a session, unlinkable across sessions without the session id."""
    digest = hashlib.sha256(f"{session_id}:{member}".encode()).hexdigest()
    return f"p-{digest[:12]}"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Manifest:
    session_id: str
    started_at: str
    server_version: str = ""
    status: str = "recording"
    """recording | sealed | repaired"""
    room_id: str = ""
    case: dict[str, Any] = field(default_factory=dict)
    seed: Any = None
    tick_hz: int = 0
    versions: dict[str, Any] = field(default_factory=dict)
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    media_tracks: list[dict[str, Any]] = field(default_factory=list)
    ended_at: str | None = None
    end_tick: int | None = None
    records: int = 0
    keyframe_interval_s: float = 0.0
    writer: dict[str, Any] = field(default_factory=dict)
    repair: dict[str, Any] | None = None

    def observe(self, record: Record) -> bool:
        """Fold one record into the manifest; True when it changed something.

        Only values of the expected type are taken (a text, a whole number, a finite
        number): whatever a record holds, the manifest stays writable as JSON, so a
        malformed record can never stop a session from being sealed."""
        data = record.data
        if record.kind == "start":
            self.room_id = _text(data.get("room")) or ""
            self.case = {
                "name": _text(data.get("scenario")) or "",
                "title": _text(data.get("title")) or "",
            }
            self.seed = _whole(data.get("seed"))
            self.tick_hz = _whole(data.get("tick_hz")) or 0
            config = data.get("config")
            keyframe_seconds = config.get("keyframe_seconds") if isinstance(config, dict) else None
            self.keyframe_interval_s = _finite(keyframe_seconds) or 0.0
            versions = data.get("versions")
            self.versions = {
                name: version
                for name, version in (versions.items() if isinstance(versions, dict) else ())
                if isinstance(name, str) and isinstance(version, str)
            }
            self.case["version"] = self.versions.get("case", self.versions.get("scenario"))
            self.server_version = self.versions.get("server", self.server_version)
            return True
        if record.kind in ("join", "leave", "expire"):
            member = _whole(data.get("member"))
            key = pseudonym(self.session_id, member)
            entry = self.participants.setdefault(
                key, {"pseudonym": key, "member": member, "role": _text(data.get("role"))}
            )
            if record.kind == "join":
                entry["joined_tick"] = record.tick
            else:
                entry["left_tick"] = record.tick
            return True
        if record.kind == "ended":
            self.end_tick = record.tick
            self.case["end_reason"] = _text(data.get("reason"))
            return True
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "session_id": self.session_id,
            "status": self.status,
            "room_id": self.room_id,
            "case": self.case,
            "seed": self.seed,
            "tick_hz": self.tick_hz,
            "versions": self.versions,
            "server_version": self.server_version,
            "participants": sorted(self.participants.values(), key=lambda p: str(p["member"])),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "end_tick": self.end_tick,
            "records": self.records,
            "keyframe_interval_s": self.keyframe_interval_s,
            "media_tracks": self.media_tracks,
            "writer": self.writer,
            "repair": self.repair,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Manifest:
        m = cls(session_id=obj["session_id"], started_at=obj["started_at"])
        for name in (
            "server_version",
            "status",
            "room_id",
            "case",
            "seed",
            "tick_hz",
            "versions",
            "media_tracks",
            "ended_at",
            "end_tick",
            "records",
            "keyframe_interval_s",
            "writer",
            "repair",
        ):
            if name in obj:
                setattr(m, name, obj[name])
        m.participants = {p["pseudonym"]: p for p in obj.get("participants", [])}
        return m
