"""What a relay keeps across its own restarts, and what lets any relay resume a session.

`RelaySessions` signs spectator session ids with the cluster's secret, so a relay that
restarted (or another relay of the cluster) recognises a session without having kept
it. `RelayState` is what a restarted relay reads back from its data directory: each
room's position in its feed, and the rates spectators asked for (`prefs`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time


class RelaySessions:
    """Spectator session ids, signed with the cluster's secret: any relay (this one after a
    restart, or another) recognises them without having kept them."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    @staticmethod
    def new_member() -> int:
        """A member id for a relay's spectator: not a room member (spectators have no
        avatar), below 2^53 so JavaScript holds it exactly."""
        return 2**32 + secrets.randbelow(2**52)

    def session(self, room_id: str, member: int) -> str:
        return f"{member:x}.{self._mac(room_id, member)}"

    def member(self, room_id: str, session: str) -> int | None:
        """The member a session of this room names; None for anything else."""
        head, _, mac = session.partition(".")
        try:
            member = int(head, 16)
        except ValueError:
            return None
        return member if hmac.compare_digest(mac, self._mac(room_id, member)) else None

    def _mac(self, room_id: str, member: int) -> str:
        digest = hmac.new(self._key, f"relay-session\0{room_id}\0{member}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()[:12]).decode()


class RelayState:
    """What a restarted relay needs: each room's stream position and the rates spectators
    asked for, kept until `grace_seconds` after they left (a resumed session keeps it).
    Positions read back are forgotten once the relay has run `RESTORE_SECONDS` without a
    spectator of that room coming back."""

    def __init__(self, grace_seconds: float, max_rates: int) -> None:
        self.restored: dict[str, str] = {}
        """Rooms' stream positions read back at start, until their copies take them."""
        self._rates: dict[str, tuple[int, float | None]] = {}
        """session -> (every, when it left, or None while connected)"""
        self._grace = grace_seconds
        self._max_rates = max_rates

    def rate(self, session: str) -> int:
        every = self._rates.get(session, (1, None))[0]
        if every != 1:
            self._rates[session] = (every, None)
        return every

    def set_rate(self, session: str, every: int) -> None:
        self._rates[session] = (every, None)
        while len(self._rates) > self._max_rates:  # forget the longest gone
            gone = min(self._rates, key=lambda s: self._rates[s][1] or float("inf"))
            del self._rates[gone]

    def left(self, session: str) -> None:
        if session in self._rates:
            self._rates[session] = (self._rates[session][0], time.time())

    def to_json(self, positions: dict[str, str]) -> str:
        """The state to keep: `positions` of the rooms followed now, the rates of sessions
        connected or gone for less than the grace period, positions not yet taken."""
        now = time.time()
        rates = {
            session: [every, left]
            for session, (every, left) in self._rates.items()
            if left is None or now - left < self._grace
        }
        return json.dumps({"positions": {**self.restored, **positions}, "rates": rates})

    def load(self, text: str) -> None:
        data = json.loads(text)
        self.restored = {str(k): str(v) for k, v in data.get("positions", {}).items()}
        for session, (every, left) in data.get("rates", {}).items():
            self._rates[str(session)] = (int(every), time.time() if left is None else float(left))
