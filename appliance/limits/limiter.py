"""Admission against rate limits and budgets at every level: key, app, department, tenant.

Atomic by construction: the daemon is one asyncio process and ``reserve`` runs on the event loop
with no ``await`` between checking every level and charging every level, so no two requests can
both see the same remaining budget. That is what keeps 200 concurrent requests from
overshooting a budget together (gateways that check, call, then charge let them all through).

A reservation holds 1 request, ``prompt estimate + max_tokens`` tokens and the worst-case cost
(prompt at the input price, all of max_tokens at the output price) at each level; ``settle``
replaces it with actual usage and ``release`` gives it all back. Both are idempotent, and
``settle`` never charges more than the reservation unless the prompt was under-estimated
(then the level goes into debt and refuses until it is paid back), so the sum of charges stays
within the budget.

Windows:

- requests and tokens per minute: a token bucket per level (capacity = the limit, refilled
  continuously at limit/60 per second). Chosen over a sliding log because it is O(1) per level,
  refunds are exact arithmetic on one number, and the wait for N tokens is exact, which gives
  an honest retry-after; unlike a fixed window it allows no double burst at a minute's edge.
- tokens per day and money per month: calendar periods in UTC, reset at 00:00 UTC and on the
  1st of the month at 00:00 UTC. Their settled totals persist in ``state.db`` (written by the
  usage ledger with the rows) and are read back at start.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.errors import RateLimited
from appliance.keys import ApiKey
from appliance.limits.config import (DEFAULT_KEY_LIMITS, LimitsPolicyConfig, PricingConfig,
                                     cost_micros)
from appliance.limits.store import LimitStore, ScopeKind, ScopeLimits, utc_periods

Describe = Callable[[str, str], str]


class _Bucket:
    """A token bucket; ``rate`` (per second) is kept beside ``capacity`` since every request
    refills several buckets."""

    __slots__ = ("capacity", "level", "stamp", "rate")

    def __init__(self, capacity: int, level: float, stamp: float) -> None:
        self.capacity, self.level, self.stamp = capacity, level, stamp
        self.rate = capacity / 60.0

    def resize(self, capacity: int) -> None:
        self.capacity, self.rate = capacity, capacity / 60.0
        self.level = min(self.level, float(capacity))

    def refill(self, now: float) -> None:
        elapsed = now - self.stamp
        if elapsed > 0:
            level = self.level + elapsed * self.rate
            self.level = level if level < self.capacity else float(self.capacity)
        self.stamp = now

    def give_back(self, amount: float) -> None:
        self.level = min(float(self.capacity), self.level + amount)

    def wait_for(self, amount: float) -> float:
        if self.capacity <= 0:
            return 60.0
        return max(0.0, (amount - self.level) / self.rate)

    def reset_in(self) -> float:
        return 0.0 if self.capacity <= 0 else (self.capacity - self.level) / self.rate


@dataclass(slots=True)
class _Period:
    """Settled (``used``) and reserved (``held``) amounts in one UTC day or month."""

    period: str
    used: int = 0
    held: int = 0

    def roll(self, period: str) -> None:
        if period != self.period:
            self.period, self.used, self.held = period, 0, 0


@dataclass(slots=True)
class _Scope:
    kind: ScopeKind
    id: str
    label: str
    limits: ScopeLimits
    loaded_at: float
    day: _Period
    month: _Period
    requests: _Bucket | None = None
    tokens: _Bucket | None = None

    def apply(self, limits: ScopeLimits, now: float) -> None:
        """Take new limits in place (reservations keep pointing at this object)."""
        self.limits, self.loaded_at = limits, now
        self.requests = _resize(self.requests, limits.rpm, now)
        self.tokens = _resize(self.tokens, limits.tpm, now)


def _resize(bucket: _Bucket | None, capacity: int | None, now: float) -> _Bucket | None:
    if capacity is None:
        return None
    if bucket is None:
        return _Bucket(capacity, float(capacity), now)
    bucket.refill(now)
    bucket.resize(capacity)
    return bucket


@dataclass(slots=True)
class _Refusal:
    retry_after: float
    message: str


class Reservation:
    """What one admitted request holds at every level until it settles or is released."""

    __slots__ = ("_limiter", "scopes", "model", "price", "tokens", "cost_micros", "day",
                 "month", "state", "charged_micros")

    def __init__(self, limiter: Limiter, scopes: list[_Scope], model: str,
                 price: PricingConfig | None, tokens: int, cost: int, day: str,
                 month: str) -> None:
        self._limiter = limiter
        self.scopes = scopes
        self.model = model
        self.price = price
        self.tokens = tokens
        self.cost_micros = cost
        self.day, self.month = day, month
        self.state = "held"
        self.charged_micros = 0

    def settle(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0,
               model: str | None = None) -> int:
        """Charge actual usage instead of the reservation; returns its cost in micro-dollars.
        ``model`` is the one that served, when a fallback served instead of the reserved one
        (priced at its own price; the reservation was made at the dearest candidate's).
        A second call (or one after ``release``) changes nothing."""
        if self.state != "held":
            return self.charged_micros
        self.state = "settled"
        actual = prompt_tokens + completion_tokens
        price = self.price if model is None else self._limiter.policy.price(model)
        cost = cost_micros(price, prompt_tokens, completion_tokens, cached_tokens)
        self.charged_micros = cost
        self._limiter._adjust(self, actual, cost, request_back=False)
        return cost

    def release(self) -> None:
        """Give everything back: the call failed or was refused before it used anything."""
        if self.state != "held":
            return
        self.state = "released"
        self._limiter._adjust(self, 0, 0, request_back=True)


class Limiter:
    """Per-level limits held in memory on the event loop's thread (not thread-safe)."""

    def __init__(self, policy: LimitsPolicyConfig, store: LimitStore | None = None, *,
                 clock: Callable[[], float] = time.time,
                 describe: Describe | None = None) -> None:
        self.policy = policy
        self._store = store
        self._clock = clock
        self._describe = describe
        self._scopes: dict[tuple[str, str], _Scope] = {}
        now = clock()
        self._day, self._month = utc_periods(now)
        self._day_end, self._month_end = _period_ends(now)
        self._counters = store.load_counters(self._day, self._month) if store else {}

    # limits ------------------------------------------------------------------------------

    def set_limits(self, kind: str, scope_id: str, **limits: int | None) -> ScopeLimits:
        """Store a scope's limits and apply them to the next request."""
        if self._store is None:
            raise RuntimeError("Limiter has no store")
        stored = self._store.set_limits(kind, scope_id, **limits)
        self._scopes.pop((kind, scope_id), None)
        return stored

    def effective_limits(self, kind: ScopeKind, scope_id: str) -> ScopeLimits:
        return self._scope(kind, scope_id, self._clock()).limits

    def _load(self, kind: ScopeKind, scope_id: str) -> ScopeLimits:
        default = getattr(self.policy.defaults, kind)
        rpm, tpm = default.rpm, default.tpm
        if kind == "key":  # a key always has per-minute limits (and so x-ratelimit headers)
            rpm = DEFAULT_KEY_LIMITS.rpm if rpm is None else rpm
            tpm = DEFAULT_KEY_LIMITS.tpm if tpm is None else tpm
        defaults = ScopeLimits(rpm, tpm, default.tpd, default.monthly_budget_micros)
        row = self._store.get_limits(kind, scope_id) if self._store else None
        return defaults if row is None else row.over(defaults)

    def _scope(self, kind: ScopeKind, scope_id: str, now: float) -> _Scope:
        scope = self._scopes.get((kind, scope_id))
        if scope is None:
            label = self._describe(kind, scope_id) if self._describe else scope_id
            scope = _Scope(kind, scope_id, label, ScopeLimits(), now,
                           _Period(self._day, self._counters.pop((kind, scope_id, "day"), 0)),
                           _Period(self._month,
                                   self._counters.pop((kind, scope_id, "month"), 0)))
            scope.apply(self._load(kind, scope_id), now)
            self._scopes[(kind, scope_id)] = scope
        elif self._store is not None and now - scope.loaded_at >= self.policy.limits_refresh_s:
            scope.apply(self._load(kind, scope_id), now)
        scope.day.roll(self._day)
        scope.month.roll(self._month)
        return scope

    def _roll_periods(self, now: float) -> None:
        if now >= self._day_end:
            self._day, self._month = utc_periods(now)
            self._day_end, self._month_end = _period_ends(now)
            self._counters.clear()

    def _scopes_of(self, key: ApiKey, now: float) -> list[_Scope]:
        """The key's levels, the key first, then its app, department and tenant."""
        self._roll_periods(now)
        scopes = [self._scope("key", key.id, now)]
        if key.app_id is not None:
            scopes.append(self._scope("app", key.app_id, now))
        if key.department_id is not None:
            scopes.append(self._scope("department", key.department_id, now))
        if key.tenant_id is not None:
            scopes.append(self._scope("tenant", key.tenant_id, now))
        return scopes

    # admission ---------------------------------------------------------------------------

    def reserve(self, key: ApiKey, model: str, prompt_tokens: int,
                max_tokens: int | None) -> Reservation:
        """Hold 1 request, the tokens and the worst-case cost at every level, or raise
        RateLimited naming the level and limit that refused (the longest wait if several)."""
        now = self._clock()
        scopes = self._scopes_of(key, now)
        answer = self.policy.default_max_tokens if max_tokens is None else max_tokens
        tokens = prompt_tokens + answer
        price = self.policy.price(model)
        cost = cost_micros(price, prompt_tokens, answer)
        worst: _Refusal | None = None
        for scope in scopes:
            refusal = self._check(scope, now, model, tokens, cost)
            if refusal is not None and (worst is None
                                        or refusal.retry_after > worst.retry_after):
                worst = refusal
        if worst is not None:
            raise RateLimited(worst.message, retry_after=worst.retry_after)
        for scope in scopes:  # no await since the checks: this is the atomic part
            if scope.requests is not None:
                scope.requests.level -= 1
            if scope.tokens is not None:
                scope.tokens.level -= tokens
            scope.day.held += tokens
            scope.month.held += cost
        return Reservation(self, scopes, model, price, tokens, cost, self._day, self._month)

    def _check(self, scope: _Scope, now: float, model: str, tokens: int,
               cost: int) -> _Refusal | None:
        limits = scope.limits
        if scope.requests is not None:
            scope.requests.refill(now)
            if scope.requests.level < 1:
                wait = scope.requests.wait_for(1)
                return _Refusal(wait, f"{_where(model, scope)} requests per minute: limit "
                                      f"{limits.rpm}. {_again(wait)}")
        if scope.tokens is not None:
            scope.tokens.refill(now)
            if tokens > scope.tokens.capacity:
                return _Refusal(60.0, f"{_where(model, scope)} tokens per minute: limit "
                                      f"{limits.tpm}, requested {tokens}; reduce the prompt "
                                      "or max_tokens.")
            if scope.tokens.level < tokens:
                wait = scope.tokens.wait_for(tokens)
                used = max(0, scope.tokens.capacity - math.floor(scope.tokens.level))
                return _Refusal(wait, f"{_where(model, scope)} tokens per minute: limit "
                                      f"{limits.tpm}, used {used}, requested {tokens}. "
                                      f"{_again(wait)}")
        if limits.tpd is not None and scope.day.used + scope.day.held + tokens > limits.tpd:
            wait = self._day_end - now
            return _Refusal(wait, f"{_where(model, scope)} tokens per day: limit {limits.tpd}, "
                                  f"used {scope.day.used + scope.day.held}, requested "
                                  f"{tokens}. {_again(wait)}")
        budget = limits.monthly_budget_micros
        if budget is not None and scope.month.used + scope.month.held + cost > budget:
            wait = self._month_end - now
            return _Refusal(wait, f"{_where(model, scope)} monthly budget: limit {budget} "
                                  f"micro-USD, used {scope.month.used + scope.month.held}, "
                                  f"this request may cost up to {cost}. {_again(wait)}")
        return None

    def _adjust(self, res: Reservation, tokens: int, cost: int, request_back: bool) -> None:
        now = self._clock()
        self._roll_periods(now)
        day, month = self._day, self._month
        for scope in res.scopes:
            if scope.requests is not None and request_back:
                scope.requests.refill(now)
                scope.requests.give_back(1)
            if scope.tokens is not None:
                scope.tokens.refill(now)
                scope.tokens.give_back(res.tokens - tokens)
            # a reservation from a period that has ended was dropped with it
            scope.day.roll(day)
            if scope.day.period == res.day:
                scope.day.held -= res.tokens
            scope.day.used += tokens
            scope.month.roll(month)
            if scope.month.period == res.month:
                scope.month.held -= res.cost_micros
            scope.month.used += cost

    # headers -----------------------------------------------------------------------------

    def headers(self, target: Reservation | ApiKey) -> dict[str, str]:
        """OpenAI's six x-ratelimit-* headers for the tightest per-minute level (the lowest
        level, then the smallest capacity; the first of equals); none for a dimension no level
        limits."""
        now = self._clock()
        scopes = target.scopes if isinstance(target, Reservation) else self._scopes_of(
            target, now)
        requests: _Bucket | None = None
        tokens: _Bucket | None = None
        for scope in scopes:
            bucket = scope.requests
            if bucket is not None:
                bucket.refill(now)
                if requests is None or _tighter(bucket, requests):
                    requests = bucket
            bucket = scope.tokens
            if bucket is not None:
                bucket.refill(now)
                if tokens is None or _tighter(bucket, tokens):
                    tokens = bucket
        out: dict[str, str] = {}
        for name, tight in (("requests", requests), ("tokens", tokens)):
            if tight is not None:
                out[f"x-ratelimit-limit-{name}"] = str(tight.capacity)
                out[f"x-ratelimit-remaining-{name}"] = str(max(0, math.floor(tight.level)))
                out[f"x-ratelimit-reset-{name}"] = format_reset(tight.reset_in())
        return out


def _tighter(bucket: _Bucket, than: _Bucket) -> bool:
    return bucket.level < than.level or (bucket.level == than.level
                                         and bucket.capacity < than.capacity)


def _where(model: str, scope: _Scope) -> str:
    """The start of a refusal's message (formatted only when a level refuses)."""
    return f"Rate limit reached for {model} on {scope.kind} '{scope.label}'"


def _again(wait: float) -> str:
    return f"Please try again in {format_reset(wait)}."


def _period_ends(now: float) -> tuple[float, float]:
    """Epoch seconds of the next 00:00 UTC and of the next month's first 00:00 UTC."""
    t = time.gmtime(now)
    day_end = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)) + 86400
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return float(day_end), float(calendar.timegm((year, month, 1, 0, 0, 0)))


def format_reset(seconds: float) -> str:
    """OpenAI's reset format: ``"20ms"``, ``"1s"``, ``"6m0s"``, ``"1h2m3s"``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    hours, rest = divmod(math.ceil(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + \
        f"{secs}s"

