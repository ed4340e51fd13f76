"""Webhook or polling? ``hookwise advise`` as a library: the decision model, the facts
about common providers, rate parsing and the ``hookwise.toml`` block that follows.

>>> from hookwise.advise import Inputs, advise, provider_facts
>>> stripe = provider_facts("stripe")
>>> advise(stripe.inputs(latency=5, changes_per_day=2000)).recommendation
'webhook'

Everything here is pure: no I/O, no clock, no terminal. The command lives in
:mod:`hookwise.advise.command`.
"""

from __future__ import annotations

from .facts import FACTS, GENERIC, ProviderFacts, known_facts, provider_facts
from .model import (
    REASON_CODES,
    Advice,
    Figures,
    Inputs,
    Reason,
    ReasonCode,
    Recommendation,
    advise,
    compute_figures,
)
from .rates import format_rate, parse_rate, per_day
from .stats import ObservedPoll, StatsAdvice, advise_from_stats
from .toml import ConfigBlock, config_block

__all__ = [
    "FACTS",
    "GENERIC",
    "REASON_CODES",
    "Advice",
    "ConfigBlock",
    "Figures",
    "Inputs",
    "ObservedPoll",
    "ProviderFacts",
    "Reason",
    "ReasonCode",
    "Recommendation",
    "StatsAdvice",
    "advise",
    "advise_from_stats",
    "compute_figures",
    "config_block",
    "format_rate",
    "known_facts",
    "parse_rate",
    "per_day",
    "provider_facts",
]
