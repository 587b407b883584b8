"""Per-subscriber RTP header rewriting: SSRC, payload type, sequence, timestamp.

Each subscriber's sender has its own SSRC and sequence space, chosen by its own
negotiation. The rewriter maps the publisher's numbering onto it with two
offsets, re-based whenever forwarding resumes (first packet, after a mute,
after a keyframe wait) so the subscriber sees no gap it would try to NACK.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_SEQ = 1 << 16
_TS = 1 << 32


@dataclass
class Rewritten:
    ssrc: int
    payload_type: int
    sequence_number: int
    timestamp: int


class RtpRewriter:
    def __init__(self, ssrc: int, payload_type: int) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_in_seq: int | None = None
        self._base_in_seq = 0
        self._last_out_seq = random.randrange(_SEQ // 2)
        self._last_out_ts = random.randrange(_TS)
        self._last_in_ts: int | None = None
        self._rebase = True

    def rebase(self) -> None:
        """Continue the output numbering from where it stopped at the next packet."""
        self._rebase = True

    @property
    def started(self) -> bool:
        return self._last_in_seq is not None and not self._rebase

    def rewrite(self, sequence_number: int, timestamp: int) -> Rewritten | None:
        """Map one publisher packet; None for a packet from before the (re)base."""
        if self._rebase:
            gap = 1
            if self._last_in_ts is not None:
                # Keep the media clock running through the pause.
                elapsed = (timestamp - self._last_in_ts) % _TS
                ts_out = (self._last_out_ts + max(elapsed, 1)) % _TS
            else:
                ts_out = self._last_out_ts
            self._seq_offset = (self._last_out_seq + gap - sequence_number) % _SEQ
            self._ts_offset = (ts_out - timestamp) % _TS
            self._last_in_seq = sequence_number
            self._base_in_seq = sequence_number
            self._rebase = False
        else:
            assert self._last_in_seq is not None
            delta = (sequence_number - self._last_in_seq) % _SEQ
            if delta >= _SEQ // 2:
                # Older than the newest packet: a reordering or a retransmission,
                # forwarded only if it falls after the base.
                if (sequence_number - self._base_in_seq) % _SEQ >= _SEQ // 2:
                    return None
            else:
                self._last_in_seq = sequence_number
        out_seq = (sequence_number + self._seq_offset) % _SEQ
        out_ts = (timestamp + self._ts_offset) % _TS
        if out_seq == (self._last_out_seq + 1) % _SEQ or self._is_newer(out_seq):
            self._last_out_seq = out_seq
            self._last_out_ts = out_ts
            self._last_in_ts = timestamp
        return Rewritten(self.ssrc, self.payload_type, out_seq, out_ts)

    def _is_newer(self, out_seq: int) -> bool:
        return 0 < (out_seq - self._last_out_seq) % _SEQ < _SEQ // 2
