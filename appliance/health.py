"""Provider health as the router sees it: a circuit breaker per provider, and measured latency
per provider and model.

Each provider's circuit::

    closed ──failure_threshold consecutive failures──▶ open
    closed ──a cloud provider cannot be connected to──▶ every cloud circuit open (uplink down)
    open ──cooldown_seconds──▶ half_open
    half_open ──half_open_successes successful trials──▶ closed
    half_open ──a failed trial──▶ open again, twice as long (up to max_cooldown_seconds)

A connection-level failure (refused, unresolvable, connect timeout: no HTTP answer at all) to a
cloud provider whose circuit is closed means the uplink is probably down, so every cloud
circuit opens at once while device and site providers keep serving; each is then probed on its
own when it goes half-open, so one misconfigured cloud provider does not keep the others out.
Failures are what the call step may fall back from (upstream errors, timeouts, 429s); an
upstream answer the client caused (400) is neither a failure nor a success.

A half-open circuit lets ``half_open_requests`` trial requests through at once: the router
keeps such a candidate in its usual place while a trial slot is free and ranks it after every
closed candidate otherwise. A trial that never reports back (its client left) frees its slot
after ``TRIAL_EXPIRY_SECONDS``.

Latency is kept per (provider, model): time to first token (the first delta of a stream; for a
whole answer the answer is the first byte) and tokens/s (completion tokens over generation
time), each as a moving average plus the last ``latency_samples`` samples for percentiles.
All of it is in memory: a restart forgets it, which is what state measured in seconds wants.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from appliance.config import ProviderHealthConfig

Clock = Callable[[], float]
CircuitState = Literal["closed", "open", "half_open"]

#: Error codes that mean no HTTP answer came back at all (``appliance.providers.transport``).
CONNECTION_CODES = frozenset({"upstream_unreachable", "upstream_connect_timeout"})
#: A trial request that has not reported back by then no longer holds its slot.
TRIAL_EXPIRY_SECONDS = 120.0


class Samples:
    """A moving average of every sample, and a ring of the latest ones for percentiles."""

    __slots__ = ("alpha", "ewma", "ring")

    def __init__(self, alpha: float, size: int) -> None:
        self.alpha = alpha
        self.ewma: float | None = None
        self.ring: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self.ewma = value if self.ewma is None else (
            self.alpha * value + (1 - self.alpha) * self.ewma)
        self.ring.append(value)

    def percentile(self, q: float) -> float | None:
        """Nearest rank over the ring (p95 of 20 samples is the 19th smallest)."""
        if not self.ring:
            return None
        ordered = sorted(self.ring)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    def summary(self, scale: float = 1.0) -> dict[str, Any]:
        def scaled(value: float | None) -> float | None:
            return None if value is None else round(value * scale, 3)
        return {"ewma": scaled(self.ewma), "p50": scaled(self.percentile(50)),
                "p95": scaled(self.percentile(95)), "samples": len(self.ring)}


@dataclass(slots=True)
class Latency:
    """What one provider's model has been measured at."""

    ttft: Samples  # seconds to the first token
    tokens_per_second: Samples


@dataclass(slots=True)
class Circuit:
    state: CircuitState = "closed"
    #: Consecutive failures (reset by a success while closed, and on closing).
    failures: int = 0
    #: Consecutive openings: each grows the next open period.
    trips: int = 0
    open_until: float = 0.0
    #: Why it opened ("3 consecutive failures", "uplink down: ..."), for 503s and admins.
    reason: str = ""
    #: Successful trials since it went half-open.
    successes: int = 0
    #: When each trial request now in flight started.
    trials: list[float] = field(default_factory=list)


class ProviderHealth:
    def __init__(self, config: ProviderHealthConfig | None = None, *,
                 clock: Clock = time.monotonic, wall_clock: Clock = time.time) -> None:
        self.config = config or ProviderHealthConfig()
        self.clock = clock
        self.wall_clock = wall_clock
        #: The cloud providers' names, for opening them all when the uplink is down (the
        #: ``Router`` sets it to read its provider list).
        self.cloud_providers: Callable[[], Iterable[str]] = lambda: ()
        self._circuits: dict[str, Circuit] = {}
        self._latency: dict[tuple[str, str], Latency] = {}

    # -- circuit ---------------------------------------------------------------------------

    def _circuit(self, provider: str) -> Circuit:
        """The provider's circuit, moved from open to half-open once its time is up."""
        circuit = self._circuits.get(provider)
        if circuit is None:
            circuit = self._circuits[provider] = Circuit()
        if circuit.state == "open" and self.clock() >= circuit.open_until:
            circuit.state, circuit.successes, circuit.trials = "half_open", 0, []
        return circuit

    def state(self, provider: str) -> CircuitState:
        return self._circuit(provider).state

    def available(self, provider: str) -> bool:
        """False while the circuit is open: the router skips the provider."""
        return self._circuit(provider).state != "open"

    def trial_free(self, provider: str) -> bool:
        """A half-open circuit with a trial slot free (closed or open: False)."""
        circuit = self._circuit(provider)
        if circuit.state != "half_open":
            return False
        expired = self.clock() - TRIAL_EXPIRY_SECONDS
        circuit.trials = [t for t in circuit.trials if t > expired]
        return len(circuit.trials) < self.config.half_open_requests

    def unavailable_reason(self, provider: str) -> str:
        circuit = self._circuit(provider)
        if circuit.state == "closed":
            return f"provider '{provider}' is healthy"
        if circuit.state == "half_open":
            return (f"provider '{provider}' is half-open ({circuit.reason}): trial requests "
                    "in flight")
        wait = max(0.0, circuit.open_until - self.clock())
        return (f"provider '{provider}' is unhealthy (circuit open: {circuit.reason}; "
                f"half-open in {math.ceil(wait)}s)")

    def begin(self, provider: str) -> None:
        """A call to ``provider`` starts: a half-open circuit counts it as a trial."""
        if self.trial_free(provider):
            self._circuits[provider].trials.append(self.clock())

    def _open(self, circuit: Circuit, reason: str) -> None:
        config = self.config
        circuit.trips += 1
        period = min(config.max_cooldown_seconds,
                     config.cooldown_seconds * 2 ** min(circuit.trips - 1, 32))
        circuit.state, circuit.open_until, circuit.reason = "open", self.clock() + period, reason
        circuit.successes, circuit.trials = 0, []

    def record_success(self, provider: str, model: str, first_byte_seconds: float | None = None,
                       completion_tokens: int | None = None) -> None:
        """A call gave its first output after ``first_byte_seconds``; for a whole answer,
        ``completion_tokens`` in that time also give a tokens/s sample."""
        circuit = self._circuit(provider)
        if circuit.trials:
            circuit.trials.pop(0)
        if circuit.state == "closed":
            circuit.failures = 0
        else:  # a trial (or a call a lone candidate had to make while open) worked
            circuit.state = "half_open"
            circuit.successes += 1
            if circuit.successes >= self.config.half_open_successes:
                self._circuits[provider] = Circuit()
        if first_byte_seconds is not None:
            self._measured(provider, model).ttft.add(first_byte_seconds)
            if completion_tokens:
                self.record_throughput(provider, model, completion_tokens, first_byte_seconds)

    def record_failure(self, provider: str, error: BaseException | None = None) -> None:
        """A call failed before its first output (or a stream broke). ``error``'s code tells a
        connection failure (uplink down, for a cloud provider) from an HTTP one."""
        circuit = self._circuit(provider)
        if circuit.trials:
            circuit.trials.pop(0)
        circuit.failures += 1
        code = getattr(error, "code", None)
        if circuit.state != "closed":
            self._open(circuit, f"a trial failed ({code or 'error'}) after "
                                f"{circuit.failures} consecutive failures")
        elif code in CONNECTION_CODES and provider in set(self.cloud_providers()):
            reason = f"uplink down: provider '{provider}' could not be reached ({code})"
            for name in {provider, *self.cloud_providers()}:
                other = self._circuit(name)
                if other.state != "open":
                    self._open(other, reason)
        elif circuit.failures >= self.config.failure_threshold:
            self._open(circuit, f"{circuit.failures} consecutive failures")

    # -- latency ---------------------------------------------------------------------------

    def _measured(self, provider: str, model: str) -> Latency:
        found = self._latency.get((provider, model))
        if found is None:
            alpha, size = self.config.latency_alpha, self.config.latency_samples
            found = self._latency[provider, model] = Latency(Samples(alpha, size),
                                                             Samples(alpha, size))
        return found

    def record_throughput(self, provider: str, model: str, tokens: int, seconds: float) -> None:
        """``tokens`` generated in ``seconds`` (a stream: after its first token)."""
        if tokens > 0 and seconds > 0:
            self._measured(provider, model).tokens_per_second.add(tokens / seconds)

    def latency(self, provider: str, model: str) -> Latency | None:
        """What ``model`` at ``provider`` has been measured at; None before any call."""
        return self._latency.get((provider, model))

    # -- for admins --------------------------------------------------------------------------

    def describe(self, provider: str, models: Iterable[str]) -> dict[str, Any]:
        """The circuit and the latency of each model, as ``GET /admin/v1/providers`` shows."""
        circuit = self._circuit(provider)
        retry_in = (max(0.0, circuit.open_until - self.clock())
                    if circuit.state == "open" else None)
        latency: dict[str, Any] = {}
        for model in models:
            measured = self.latency(provider, model)
            latency[model] = None if measured is None else {
                "ttft_ms": measured.ttft.summary(1000.0),
                "tokens_per_second": measured.tokens_per_second.summary()}
        return {
            "circuit": {
                "state": circuit.state, "reason": circuit.reason or None,
                "consecutive_failures": circuit.failures, "trips": circuit.trips,
                "open_until": (None if retry_in is None
                               else round(self.wall_clock() + retry_in, 3)),
                "retry_in_seconds": None if retry_in is None else round(retry_in, 3),
                "trials_in_flight": len(circuit.trials)},
            "latency": latency}
