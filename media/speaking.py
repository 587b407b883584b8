"""Who is speaking, from audio levels, without decoding audio.

Preferred source: the RFC 6464 client-to-mixer audio level header extension,
which aiortc and browsers send when it is negotiated (the worker offers it).
Fallback when absent: Opus packet size. With DTX or in silence an Opus encoder
emits tiny packets (a few bytes); speech at normal bitrates takes tens of bytes
per 20 ms. That heuristic cannot tell loud from quiet speech, only sound from
silence, which is all a speaking indicator needs.

Hysteresis keeps the indicator from flickering: speaking starts after
``START_PACKETS`` voiced packets within the recent window and stops after
``HANGOVER_S`` seconds without one.
"""

from __future__ import annotations

from collections import deque

#: RFC 6464 level is -dBov, 0 (loudest) to 127 (silence); below this is voiced.
LEVEL_THRESHOLD = 50
#: Opus payloads at or below this size are silence/DTX/comfort noise.
SILENT_OPUS_BYTES = 12
WINDOW = 10
START_PACKETS = 3
HANGOVER_S = 0.6


class SpeakingDetector:
    def __init__(self) -> None:
        self.speaking = False
        self._recent: deque[bool] = deque(maxlen=WINDOW)
        self._last_voiced = -1e9

    def update(self, now: float, level: int | None, payload_size: int) -> bool | None:
        """Feed one audio packet; return the new state if it changed, else None."""
        voiced = level < LEVEL_THRESHOLD if level is not None else payload_size > SILENT_OPUS_BYTES
        self._recent.append(voiced)
        if voiced:
            self._last_voiced = now
        if not self.speaking and sum(self._recent) >= START_PACKETS:
            self.speaking = True
            return True
        if self.speaking and now - self._last_voiced > HANGOVER_S:
            self.speaking = False
            return False
        return None

    def silence(self, now: float) -> bool | None:
        """Called when no packets arrive (muted, stalled): ends speaking after hangover."""
        if self.speaking and now - self._last_voiced > HANGOVER_S:
            self.speaking = False
            self._recent.clear()
            return False
        return None
