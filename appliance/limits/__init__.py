"""Limits, budgets and usage (issue 4): token estimates, atomic admission at every level
(key, app, department, tenant), the batched usage ledger and its reports.

    TokenEstimator   prompt tokens per model family             estimate.py
    Limiter          reserve / settle / release, x-ratelimit-*   limiter.py
    LimitStore       limit definitions and persisted counters    store.py
    UsageLedger      usage rows into state.db in batches         ledger.py
    usage_report     grouped sums for the admin API and CLI      report.py
"""

from appliance.limits.config import LimitsPolicyConfig, PricingConfig, cost_micros
from appliance.limits.estimate import TokenEstimator
from appliance.limits.ledger import UsageLedger, UsageRow
from appliance.limits.limiter import Limiter, Reservation, format_reset
from appliance.limits.report import GROUP_BY, usage_report
from appliance.limits.store import LimitStore, ScopeLimits

__all__ = ["GROUP_BY", "LimitStore", "Limiter", "LimitsPolicyConfig", "PricingConfig",
           "Reservation", "ScopeLimits", "TokenEstimator", "UsageLedger", "UsageRow",
           "cost_micros", "format_reset", "usage_report"]
