"""The ``--write-config`` block loads with the real config parser, for every provider and
every recommendation."""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from hookwise.advise import FACTS, GENERIC, ProviderFacts, advise, config_block
from hookwise.advise.toml import PLACEHOLDER_URL
from hookwise.config import Settings, parse_config

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ALL_FACTS = [*FACTS.values(), GENERIC]


def cases() -> list[Any]:
    found = []
    for facts in ALL_FACTS:
        for recommendation in ("webhook", "poll", "hybrid"):
            found.append(pytest.param(facts, recommendation, id=f"{facts.name}-{recommendation}"))
    return found


def load(text: str, env: dict[str, str]) -> Settings:
    raw: dict[str, Any] = tomllib.loads(text)
    return parse_config(raw, env=env)


def example(provider: str | None) -> Mapping[str, Any]:
    """The settings hookwise's own provider tests build ``provider`` with: real-looking
    credentials in the shape the provider checks."""
    if provider is None:
        return {}
    module = importlib.import_module(f"hookwise.providers.{provider}")
    settings: Mapping[str, Any] = module.EXAMPLE_SETTINGS
    return settings


def env_for(
    variables: tuple[tuple[str, str], ...], facts: ProviderFacts | None = None
) -> dict[str, str]:
    settings = example(facts.hookwise_provider or "standard") if facts is not None else {}
    secrets = settings.get("secrets") or (SECRET,)
    options = settings.get("options") or {}
    env = {}
    for name, _ in variables:
        value = secrets[-1] if name.endswith("_WEBHOOK_SECRET") else SECRET
        for key, given in options.items() if isinstance(options, Mapping) else ():
            if name.endswith("_" + key.upper()):
                value = given[0] if isinstance(given, list | tuple) else given
        env[name] = str(value)
    return env


@pytest.mark.parametrize(("facts", "recommendation"), cases())
def test_the_block_loads(facts: ProviderFacts, recommendation: str) -> None:
    advice = replace(
        advise(facts.inputs(latency=60, changes_per_day=100)), recommendation=recommendation
    )
    block = config_block(advice, facts)
    settings = load(block.text, env_for(block.env, facts))
    if recommendation != "poll":
        assert block.source is not None and block.source in settings.sources
    if block.poll is not None:
        assert block.poll in settings.polls
    for name, _ in block.env:
        assert f"export {name}=" in block.text


def test_hybrid_with_a_preset_backfills_the_source() -> None:
    github = FACTS["github"]
    advice = advise(github.inputs(latency=30, changes_per_day=200))
    block = config_block(advice, github)
    settings = load(block.text, env_for(block.env))
    assert settings.sources["github"].backfill == "github-backfill"
    poll = settings.polls["github-backfill"]
    assert poll.preset == "github-deliveries" and poll.emit == "events"
    assert poll.source == "github"
    assert poll.min_every == poll.max_every == advice.figures.reconcile_interval_s


def test_stripe_hybrid_reads_the_events_still_undelivered() -> None:
    stripe = FACTS["stripe"]
    advice = replace(
        advise(stripe.inputs(latency=5, changes_per_day=2000)), recommendation="hybrid"
    )
    settings = load(config_block(advice, stripe).text, env_for(config_block(advice, stripe).env))
    poll = settings.polls["stripe-backfill"]
    assert poll.preset == "stripe-events"
    assert "delivery_success=false" in poll.url
    assert settings.sources["stripe"].backfill == "stripe-backfill"


def test_poll_intervals_come_from_the_latency() -> None:
    advice = advise(GENERIC.inputs(latency=120, changes_per_day=10))
    block = config_block(advice, GENERIC, name="catalogue")
    settings = load(block.text, env_for(block.env))
    poll = settings.polls["catalogue"]
    assert poll.max_every == 120 and poll.min_every == 30
    assert poll.url == PLACEHOLDER_URL
    assert poll.headers == (("Authorization", SECRET),)


def test_a_stripe_poll_goes_through_its_source_so_handlers_stay_the_same() -> None:
    stripe = FACTS["stripe"]
    advice = advise(stripe.inputs(latency=5, changes_per_day=2000, public_endpoint=False))
    assert advice.recommendation == "poll"
    block = config_block(advice, stripe)
    settings = load(block.text, env_for(block.env))
    poll = settings.polls["stripe-events"]
    assert poll.emit == "events" and poll.source == "stripe"
    assert poll.url == "https://api.stripe.com/v1/events"  # every event, not just failed ones
    assert poll.max_every == 5


def test_a_relay_is_mentioned() -> None:
    advice = advise(FACTS["stripe"].inputs(latency=0.5, changes_per_day=10, public_endpoint=False))
    assert advice.relay
    assert "relay" in config_block(advice, FACTS["stripe"]).text


def test_bad_names_are_refused() -> None:
    advice = advise(GENERIC.inputs(latency=60, changes_per_day=1))
    with pytest.raises(ValueError, match="lowercase letters"):
        config_block(advice, GENERIC, name="My Source")
