"""The policy schema: validation naming the field, overrides by tenant/department/app with the
most specific applied last, and the holder's atomic swap."""

from __future__ import annotations

import pytest

from appliance.policy import (EffectivePolicy, Owner, PolicyError, PolicyHolder, parse_policy)

POLICY = """
version = 7
description = "hospital default"
[allowed_zones]
internal = ["device", "site"]
[on_forbidden]
internal = "reroute"
[fallback_model]
internal = "site-llama"

[[overrides]]
tenant = "Clinic"
allowed_zones.public = ["device"]
classification = "internal"

[[overrides]]
tenant = "Clinic"
department = "Radiology"
allowed_zones.public = ["device", "site"]
on_forbidden.restricted = "redact"

[[overrides]]
app = "app_pacs"
allowed_zones.public = ["device", "site", "cloud"]
max_latency_ms = 1500
"""


def owner(tenant: str = "t1", dept: str = "d1", app: str = "a1") -> Owner:
    names = {"t1": "Clinic", "t2": "Plant", "d1": "Radiology", "d2": "Billing",
             "a1": "viewer", "app_pacs": "pacs"}
    return Owner((tenant, names.get(tenant)), (dept, names.get(dept)), (app, names.get(app)))


def holder(text: str = POLICY) -> PolicyHolder:
    return PolicyHolder(parse_policy(text), "test",
                        owner_lookup=lambda t, d, a: owner(t or "", d or "", a or ""))


def test_base_policy_applies_to_keys_without_overrides() -> None:
    effective = holder().for_owner("t2", "d2", "a1")
    assert effective.zones("public") == ("device", "site", "cloud")
    assert effective.zones("internal") == ("device", "site")
    assert effective.on_forbidden["internal"] == "reroute"
    assert effective.fallback_model["internal"] == "site-llama"
    assert effective.classification is None and effective.max_latency_ms is None


def test_most_specific_override_wins_and_others_keep_theirs() -> None:
    h = holder()
    tenant_only = h.for_owner("t1", "d2", "a1")  # Clinic, Billing
    assert tenant_only.zones("public") == ("device",)
    assert tenant_only.classification == "internal"
    radiology = h.for_owner("t1", "d1", "a1")
    assert radiology.zones("public") == ("device", "site")  # department over tenant
    assert radiology.classification == "internal"  # inherited from the tenant override
    assert radiology.on_forbidden["restricted"] == "redact"
    assert radiology.zones("internal") == ("device", "site")  # untouched levels: the base
    pacs = h.for_owner("t1", "d1", "app_pacs")  # matched by id
    assert pacs.zones("public") == ("device", "site", "cloud")
    assert pacs.max_latency_ms == 1500 and pacs.on_forbidden["restricted"] == "redact"


def test_swap_replaces_policy_and_cache_at_once() -> None:
    h = holder()
    assert h.for_owner("t1", "d2", "a1").zones("public") == ("device",)
    h.swap(parse_policy("version = 8\n"), "central")
    assert h.version == 8 and h.source == "central"
    assert h.for_owner("t1", "d2", "a1").zones("public") == ("device", "site", "cloud")
    assert isinstance(h.base(), EffectivePolicy)


@pytest.mark.parametrize(("text", "field"), [
    ('version = -1', "version"),
    ('[allowed_zones]\ninternal = ["moon"]', "allowed_zones.internal[0]"),
    ('[on_forbidden]\nrestricted = "nuke"', "on_forbidden.restricted"),
    ('[[overrides]]\napp = "x"\nallowed_zone.public = ["device"]',
     "overrides[0].allowed_zone"),
    ('[[overrides]]\nmax_latency_ms = 5', "overrides[0]"),
    ('[[overrides]]\napp = "x"\nclassification = "secret"', "overrides[0].classification"),
    ('colour = "red"', "colour"),
])
def test_errors_name_the_field(text: str, field: str) -> None:
    with pytest.raises(PolicyError) as bad:
        parse_policy(text, "policy.toml")
    assert f"`{field}`" in str(bad.value) and str(bad.value).startswith("policy.toml")


def test_not_toml_is_refused() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("version = ")
