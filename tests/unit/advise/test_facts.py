from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import hookwise.advise
from hookwise.advise import FACTS, GENERIC, facts, model, provider_facts, rates, stats, toml
from hookwise.advise.facts import facts_for_host, known_facts
from hookwise.poller.settings import POLL_PRESETS
from hookwise.providers import KNOWN_PROVIDERS

DAY = 86400.0


def test_every_provider_hookwise_verifies_has_facts() -> None:
    missing = sorted(set(KNOWN_PROVIDERS) - set(FACTS))
    assert not missing, f"add ProviderFacts for {missing} in hookwise/advise/facts.py"


def test_there_are_apis_without_webhooks_too() -> None:
    without = [name for name, found in FACTS.items() if not found.webhooks]
    assert len(without) >= 3
    for name in without:
        assert FACTS[name].hookwise_provider is None


@pytest.mark.parametrize("name", sorted(FACTS))
def test_each_fact_is_sourced_and_usable(name: str) -> None:
    found = FACTS[name]
    assert found.source, f"{name}: say where the facts come from"
    assert found.title
    if found.webhooks:
        assert found.hookwise_provider in KNOWN_PROVIDERS
    if found.reconcile_preset is not None:
        assert found.reconcile_preset in POLL_PRESETS
    for host in found.api_hosts:
        assert facts_for_host(host.lstrip(".") if not host.startswith(".") else "x" + host) is (
            found
        )
    inputs = found.inputs(latency=60, changes_per_day=100)
    assert inputs.webhooks == found.webhooks
    assert inputs.retry_window == found.retry_window


def test_the_facts_the_decision_hangs_on() -> None:
    stripe, github, shopify = FACTS["stripe"], FACTS["github"], FACTS["shopify"]
    assert stripe.retry_window == 3 * DAY and stripe.reconcile_preset == "stripe-events"
    assert "delivery_success=false" in (stripe.reconcile or "")
    assert github.retry_window == 0 and github.reconcile_preset == "github-deliveries"
    assert github.counts_304 is False and github.conditional
    assert shopify.retry_window == 4 * 3600
    assert FACTS["slack"].retry_window is not None and FACTS["slack"].retry_window < 3600


def test_unknown_provider_names_the_closest() -> None:
    with pytest.raises(ValueError, match="did you mean 'github'"):
        provider_facts("githb")
    with pytest.raises(ValueError, match="known: "):
        provider_facts("zzzzzz")
    assert provider_facts(" Stripe ").name == "stripe"


def test_generic_knows_nothing() -> None:
    assert not GENERIC.known and GENERIC.rate_limit_per_day is None
    assert GENERIC.inputs(latency=1, changes_per_day=1).provider == ""
    assert "generic" not in known_facts()


def test_hosts_map_to_providers() -> None:
    assert facts_for_host("API.GitHub.com:443") is FACTS["github"]
    assert facts_for_host("shop.myshopify.com") is FACTS["shopify"]
    assert facts_for_host("example.com") is None


def test_given_values_override_facts() -> None:
    inputs = FACTS["stripe"].inputs(latency=5, changes_per_day=1, retry_window=60.0)
    assert inputs.retry_window == 60.0


MODULES: list[ModuleType] = [hookwise.advise, facts, model, rates, stats, toml]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_hold(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_all_is_complete() -> None:
    for name in hookwise.advise.__all__:
        assert hasattr(hookwise.advise, name), name
    assert "advise" not in hookwise.__all__  # a module of its own, not a top-level name


def test_the_guide_covers_every_reason_and_provider() -> None:
    from pathlib import Path

    from hookwise.advise.model import REASON_CODES

    guide = (Path(__file__).resolve().parents[3] / "docs" / "choosing.md").read_text("utf-8")
    for code in REASON_CODES:
        assert f"`{code}`" in guide, code
    for name in FACTS:
        assert f"`{name}`" in guide, name
