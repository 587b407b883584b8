"""A token bucket counted in room ticks, so what it allows replays exactly."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TickAllowance:
    """`per_second` uses a second on average, bursts up to `burst`, at `tick_hz` ticks a second."""

    burst: float
    per_second: float
    tick_hz: int
    tokens: float = -1.0
    """Left now; a new allowance starts full."""
    last_tick: int = 0

    def take(self, tick: int) -> bool:
        if self.tokens < 0:
            self.tokens = self.burst
        elif tick > self.last_tick:
            refill = (tick - self.last_tick) * self.per_second / self.tick_hz
            self.tokens = min(self.burst, self.tokens + refill)
        self.last_tick = tick
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def export(self) -> list[float]:
        return [self.tokens, self.last_tick]

    def restore(self, state: list[float]) -> None:
        self.tokens, self.last_tick = float(state[0]), int(state[1])
