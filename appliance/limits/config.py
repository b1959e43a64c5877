"""The ``[limits_policy]`` section: prices, default limits, reservation cap, ledger cadence.

Money is integer micro-dollars everywhere (1 USD = 1,000,000), so no float rounding ever lets a
budget drift; prices are micro-dollars per million tokens, the unit providers publish in
(``gpt-4o`` input at $2.50 / 1M tokens is ``input = 2500000``).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


class PricingConfig(_Section, frozen=True):
    """One model's price in micro-dollars per million tokens."""

    input: NonNegativeInt
    output: NonNegativeInt
    #: Prompt tokens served from the provider's prompt cache; unset means the input price.
    cached_input: NonNegativeInt | None = None


class LevelLimits(_Section, frozen=True):
    """Limits for one scope; unset means unlimited. 0 blocks that scope outright."""

    rpm: NonNegativeInt | None = None
    tpm: NonNegativeInt | None = None
    tpd: NonNegativeInt | None = None
    monthly_budget_micros: NonNegativeInt | None = None


#: Every key has a requests- and a tokens-per-minute limit unless the config sets others, so
#: every response can carry OpenAI's ``x-ratelimit-*`` headers and a runaway integration is
#: stopped by default: 600 requests and 1,000,000 tokens a minute per key is far above what
#: one app sends the box's own model and well below a cloud bill surprise.
DEFAULT_KEY_LIMITS = LevelLimits(rpm=600, tpm=1_000_000)


class DefaultLimits(_Section, frozen=True):
    """What a key, app, department or tenant gets when the ``limits`` table says nothing for a
    column (a row's non-null columns override these one by one). ``[limits_policy.defaults.
    key]`` replaces the key defaults; one that leaves out ``rpm`` or ``tpm`` keeps 600 or
    1,000,000 for it (the limiter fills them in), so a key is never without both."""

    key: LevelLimits = DEFAULT_KEY_LIMITS
    app: LevelLimits = LevelLimits()
    department: LevelLimits = LevelLimits()
    tenant: LevelLimits = LevelLimits()


class LimitsPolicyConfig(_Section, frozen=True):
    """Rate limits and budgets (issue 4). TOML::

        [limits_policy]
        default_max_tokens = 1024
        ledger_batch_interval_ms = 1000
        [limits_policy.prices]
        "gpt-4o" = {input = 2500000, output = 10000000, cached_input = 1250000}
        [limits_policy.defaults.department]
        tpm = 200000
        monthly_budget_micros = 500000000
    """

    #: Tokens reserved for the answer when a request gives no max_tokens: the reservation must
    #: be a worst case, so it cannot be "unbounded".
    default_max_tokens: PositiveInt = 4096
    #: Usage rows are committed to state.db this often. A SIGKILL (or power loss) loses at most
    #: the rows of the last interval; a clean shutdown loses nothing.
    ledger_batch_interval_ms: PositiveInt = 1000
    #: Limit definitions changed outside this process (``appliance`` CLI) are seen within this.
    limits_refresh_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    #: Per-model prices; a model not listed costs ``default_price`` (free when unset, right for
    #: the box's own models, wrong for a cloud model: list those).
    prices: dict[str, PricingConfig] = msgspec.field(default_factory=dict)
    #: How prompts for models with no tokenizer here (Anthropic, Gemini, site models) are
    #: estimated: UTF-8 bytes / this, rounded up. 2.5 over-estimates English and code by
    #: 40-80%; 1 is a hard upper bound (no byte-level tokenizer makes more tokens than bytes),
    #: so budgets cannot be overshot even by digit-dense prompts.
    approx_bytes_per_token: Annotated[float, msgspec.Meta(ge=1, le=8)] = 2.5
    default_price: PricingConfig | None = None
    defaults: DefaultLimits = DefaultLimits()

    def price(self, model: str) -> PricingConfig | None:
        return self.prices.get(model, self.default_price)


def cost_micros(price: PricingConfig | None, prompt_tokens: int, completion_tokens: int,
                cached_tokens: int = 0) -> int:
    """Cost in micro-dollars, rounded up so a sum of charges never undercuts the prices."""
    if price is None:
        return 0
    cached = min(max(cached_tokens, 0), prompt_tokens)
    cached_price = price.input if price.cached_input is None else price.cached_input
    scaled = ((prompt_tokens - cached) * price.input + cached * cached_price
              + completion_tokens * price.output)
    return -(-scaled // 1_000_000)
