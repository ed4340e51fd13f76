"""The ``hookwise.toml`` block that puts an :class:`~hookwise.advise.model.Advice` to work.

>>> from hookwise.advise import advise, provider_facts
>>> github = provider_facts("github")
>>> block = config_block(advise(github.inputs(latency=30, changes_per_day=200)), github)
>>> block.source, block.poll
('github', 'github-backfill')
>>> for line in block.text.splitlines()[4:8]:
...     print(line)
[sources.github]
provider = "github"
secrets = ["env:GITHUB_WEBHOOK_SECRET"]
backfill = "github-backfill"

- ``webhook``: a ``[sources.NAME]`` with the provider and its secret.
- ``poll``: a ``[polls.NAME]`` whose ``min_every``/``max_every`` come from the latency
  need: ``max_every`` is the need (a change waits at most the current interval), and
  ``min_every`` a quarter of it, the pace right after a change. Providers with an
  events preset poll through it into a source of theirs, so the handlers are the same
  as for webhooks.
- ``hybrid``: the source, plus a reconciliation poll: the provider's preset
  (``stripe-events``, ``github-deliveries``) with the source's ``backfill`` naming it,
  or else a poll of the resources themselves at the reconciliation interval.

Secrets and API credentials are ``env:`` references; :attr:`ConfigBlock.env` lists the
variables to export.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..durations import format_duration
from .facts import ProviderFacts
from .model import MIN_POLL_INTERVAL, Advice

__all__ = ["PLACEHOLDER_URL", "ConfigBlock", "config_block"]

PLACEHOLDER_URL = "https://api.example.com/items"
"""The url of a poll whose API hookwise knows nothing about: replace it."""

_NAME = re.compile(r"[a-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class ConfigBlock:
    """A ``hookwise.toml`` block: its text, the names it defines, and the environment
    variables it reads (``(name, what goes in it)``)."""

    text: str
    source: str | None
    poll: str | None
    env: tuple[tuple[str, str], ...]


def config_block(advice: Advice, facts: ProviderFacts, *, name: str | None = None) -> ConfigBlock:
    """The block for ``advice`` about the provider ``facts`` describe.

    ``name`` names the source and the poll (default: the provider's name, or ``api``).
    Raises ``ValueError`` for a name ``hookwise.toml`` would not accept.
    """
    chosen = name if name is not None else (facts.name if facts.known else "api")
    if not _NAME.fullmatch(chosen):
        raise ValueError(
            f"{chosen!r} can't name a source: use lowercase letters, digits, '_' and '-' "
            "(e.g. --name billing)"
        )
    return _Writer(advice, facts, chosen).write()


class _Writer:
    def __init__(self, advice: Advice, facts: ProviderFacts, name: str) -> None:
        self.advice = advice
        self.facts = facts
        self.name = name
        self.prefix = re.sub(r"[^A-Z0-9]", "_", name.upper())
        self.secret_var = f"{self.prefix}_WEBHOOK_SECRET"
        self.auth_var = f"{self.prefix}_API_AUTH"
        self.env: list[tuple[str, str]] = []
        self.lines: list[str] = []

    def write(self) -> ConfigBlock:
        advice, facts = self.advice, self.facts
        what = {
            "webhook": "webhook",
            "poll": "poll",
            "hybrid": "hybrid (webhook + reconciliation poll)",
        }[advice.recommendation]
        title = facts.title if facts.known else "this API"
        self.lines.append(f"# hookwise advise: {what} for {title}")
        source: str | None = None
        poll: str | None = None
        if advice.recommendation == "webhook":
            source = self.source()
        elif advice.recommendation == "hybrid":
            poll = f"{self.name}-backfill" if facts.reconcile_preset else f"{self.name}-reconcile"
            source = self.source(backfill=poll if facts.reconcile_preset else None)
            self.reconciliation_poll(poll)
        elif "preset" in facts.poll:
            source = self.source(receives=False)
            poll = f"{self.name}-events"
            self.preset_poll(poll)
        else:
            poll = self.name
            self.plain_poll(poll, every=advice.poll_every, adaptive=True)
        header = [self.lines[0]]
        header += [f"# export {variable}=...  ({what_goes})" for variable, what_goes in self.env]
        text = "\n".join([*header, *self.lines[1:]]) + "\n"
        return ConfigBlock(text=text, source=source, poll=poll, env=tuple(self.env))

    # -- sections --------------------------------------------------------------------------

    def source(self, *, backfill: str | None = None, receives: bool = True) -> str:
        facts = self.facts
        provider = facts.hookwise_provider or "standard"
        self.lines.append("")
        if self.advice.relay:
            self.lines.append(
                "# no public endpoint: deliveries reach POST /hooks/"
                f"{self.name} through a relay or tunnel"
            )
        if not receives:
            self.lines.append(
                "# no webhooks come in yet: this source describes the polled events as a "
                "webhook would, so the handlers stay the same if webhooks come later "
                "(until then its secret may be a placeholder)"
            )
        if facts.hookwise_provider is None:
            self.lines.append(
                "# the sender signs with Standard Webhooks; use another provider if it "
                "signs otherwise"
            )
        self.lines.append(f"[sources.{self.name}]")
        self.lines.append(f"provider = {_string(provider)}")
        if facts.uses_secrets:
            self.lines.append(f"secrets = [{_string('env:' + self.secret_var)}]")
            self.env.append((self.secret_var, _credential(provider)))
        for key, value in facts.source_keys.items():
            if value.startswith("env:"):
                variable = f"{self.prefix}_{value[4:]}"
                self.env.append((variable, f"the {key} of the source"))
                value = f"env:{variable}"
            self.lines.append(f"{key} = {_string(value)}")
        if backfill is not None:
            self.lines.append(f"backfill = {_string(backfill)}")
        return self.name

    def reconciliation_poll(self, poll: str) -> None:
        facts, every = self.facts, self.advice.figures.reconcile_interval_s
        self.lines.append("")
        if facts.reconcile_preset is not None:
            self.lines.append(f"# catches what the webhooks missed: {facts.reconcile}")
            self.lines.append(f"[polls.{poll}]")
            self.lines.append(f"preset = {_string(facts.reconcile_preset)}")
            if facts.reconcile_url is not None:
                self.lines.append(f"url = {_string(facts.reconcile_url)}  # fill in")
            self.lines.append(f"every = {_string(_duration(every))}")
            self._headers({})
            return
        self.lines.append(
            f"# reconciliation: reads the resources every {_duration(every)}; its events "
            f'come from source "{poll}" (handlers upsert the current state)'
        )
        self.plain_poll(poll, every=every, adaptive=False, comment=False)

    def preset_poll(self, poll: str) -> None:
        keys = dict(self.facts.poll)
        every = self.advice.poll_every
        self.lines.append("")
        self.lines.append(f"[polls.{poll}]")
        self.lines.append(f"preset = {_string(str(keys.pop('preset')))}")
        self.lines.append(f"source = {_string(self.name)}")
        for key, value in keys.items():
            self.lines.append(f"{key} = {_value(value)}")
        self.lines.extend(_intervals(every, adaptive=True))
        self._headers({})

    def plain_poll(self, poll: str, *, every: float, adaptive: bool, comment: bool = True) -> None:
        keys = dict(self.facts.poll)
        url = str(keys.pop("url", PLACEHOLDER_URL))
        headers = keys.pop("headers", {})
        if comment:
            self.lines.append("")
        self.lines.append(f"[polls.{poll}]")
        self.lines.append(f"url = {_string(url)}  # the listing to poll")
        for key, value in keys.items():
            self.lines.append(f"{key} = {_value(value)}")
        self.lines.extend(_intervals(every, adaptive=adaptive))
        self._headers(headers if isinstance(headers, Mapping) else {})

    def _headers(self, given: Mapping[str, object]) -> None:
        """The poll's ``headers``: ``given`` plus the API credential, read from the
        environment, when the API takes one in a header."""
        facts = self.facts
        merged = dict(given)
        if facts.auth_header is not None:
            merged[facts.auth_header] = f"env:{self.auth_var}"
            if not any(variable == self.auth_var for variable, _ in self.env):
                example = f", e.g. {facts.auth_example}" if facts.auth_example else ""
                self.env.append(
                    (self.auth_var, f"the API credential for {facts.auth_header}{example}")
                )
        if merged:
            self.lines.append(f"headers = {_inline(merged)}")


def _credential(provider: str) -> str:
    """What the source's secret is, as the provider's own description says."""
    from ..providers import provider_spec

    info = provider_spec(provider).info
    return info.credential if info is not None else "the webhook signing secret"


def _intervals(every: float, *, adaptive: bool) -> list[str]:
    """``every``, or ``min_every``/``max_every`` around it for an adaptive poll.

    >>> _intervals(60, adaptive=True)
    ['min_every = "15s"', 'max_every = "1m"  # the latency bound: a change waits at most this']
    """
    longest = max(MIN_POLL_INTERVAL, float(round(every)))
    shortest = max(MIN_POLL_INTERVAL, float(round(longest / 4)))
    if not adaptive or shortest >= longest:
        return [f"every = {_string(_duration(longest))}"]
    return [
        f"min_every = {_string(_duration(shortest))}",
        f"max_every = {_string(_duration(longest))}  # the latency bound: a change waits at "
        "most this",
    ]


def _duration(seconds: float) -> str:
    return format_duration(seconds)


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's too)."""
    return json.dumps(text, ensure_ascii=True)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return _inline(value)
    return _string(str(value))


def _inline(table: Mapping[str, object]) -> str:
    inner = ", ".join(f"{_string(key)} = {_value(value)}" for key, value in table.items())
    return "{ " + inner + " }"
