"""Provider health as the router sees it: consecutive failures and measured latency.

A provider that fails ``failure_threshold`` times in a row is skipped for a cool-down; when
the cool-down is over it gets one more try (half-open), and each further failure doubles the
cool-down up to ``max_cooldown_seconds``. One success makes it healthy again. Time to first
byte is kept per provider as an exponentially weighted moving average, updated on every
successful call, for aliases that prefer the fastest candidate. The state is in memory only:
a restart forgets it, which is what a cool-down measured in seconds wants.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(slots=True)
class _State:
    failures: int = 0
    #: How many times in a row the provider was put in cool-down (grows the next one).
    trips: int = 0
    until: float = 0.0
    latency: float | None = None


class ProviderHealth:
    def __init__(self, failure_threshold: int = 3, cooldown_seconds: float = 10.0,
                 max_cooldown_seconds: float = 300.0, alpha: float = 0.3,
                 clock: Clock = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self.max_cooldown_seconds = max_cooldown_seconds
        self.alpha = alpha
        self.clock = clock
        self._states: dict[str, _State] = {}

    def _state(self, provider: str) -> _State:
        return self._states.setdefault(provider, _State())

    def available(self, provider: str) -> bool:
        """False while the provider is cooling down after repeated failures."""
        state = self._states.get(provider)
        return state is None or self.clock() >= state.until

    def unavailable_reason(self, provider: str) -> str:
        state = self._state(provider)
        wait = max(0.0, state.until - self.clock())
        return (f"provider '{provider}' is unhealthy after {state.failures} consecutive "
                f"failures (retried in {wait:.0f}s)")

    def latency(self, provider: str) -> float | None:
        """Smoothed time to first byte in seconds; None until a call has been measured."""
        state = self._states.get(provider)
        return state.latency if state is not None else None

    def record_success(self, provider: str, first_byte_seconds: float) -> None:
        state = self._state(provider)
        state.failures = state.trips = 0
        state.until = 0.0
        state.latency = (first_byte_seconds if state.latency is None else
                         self.alpha * first_byte_seconds + (1 - self.alpha) * state.latency)

    def record_failure(self, provider: str) -> None:
        state = self._state(provider)
        state.failures += 1
        if state.failures >= self.failure_threshold:
            state.trips += 1
            cooldown = self.cooldown_seconds * 2 ** (state.trips - 1)
            state.until = self.clock() + min(self.max_cooldown_seconds, cooldown)
