"""``hookwise advise``: the push-vs-pull decision at the command line.

>>> hookwise advise --provider github --latency 30s --changes 200/day --resources 20
>>> hookwise advise --provider stripe --latency 5s --changes 2/min --write-config >> hookwise.toml
>>> hookwise advise --from-stats github-issues --latency 1h

Flags give the facts; anything missing is asked for (Rich prompts) when the command runs
in a terminal, or with ``--interactive``. ``--json`` prints one JSON document;
``--write-config`` prints the matching ``hookwise.toml`` block on stdout (the advice
itself then goes to stderr, so ``>> hookwise.toml`` appends only the block).
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.prompt import Confirm, IntPrompt, Prompt
from rich.table import Table

from ..durations import format_duration, parse_duration
from .facts import GENERIC, ProviderFacts, facts_for_host, known_facts, provider_facts
from .model import DEFAULT_DOWNTIME, DEFAULT_PAYLOAD_BYTES, Advice, Inputs, advise
from .rates import format_rate, per_day
from .stats import ObservedPoll, StatsAdvice, advise_from_stats
from .toml import ConfigBlock, config_block

if TYPE_CHECKING:
    from ..config import Settings
    from ..store import PollState

__all__ = ["ADVISE_HELP", "advise_command"]

_LABELS = {
    "webhook": "WEBHOOK",
    "poll": "POLL",
    "hybrid": "HYBRID (webhook + reconciliation poll)",
}


@dataclass
class _Given:
    """What the flags (and then the prompts) said; ``None`` is "not said"."""

    facts: ProviderFacts
    latency: float | None = None
    changes: float | None = None
    resources: int | None = None
    public_endpoint: bool | None = None
    own_both: bool | None = None
    rate_limit: float | None = None
    webhooks: bool | None = None
    retry_window: float | None = None
    retry_window_given: bool = False
    list_endpoint: bool | None = None
    counts_304: bool | None = None
    payload_bytes: int | None = None
    downtime: float = DEFAULT_DOWNTIME

    def overrides(self) -> dict[str, Any]:
        """The facts the flags override (given for any provider, known or not)."""
        found: dict[str, Any] = {}
        if self.webhooks is not None:
            found["webhooks"] = self.webhooks
        if self.retry_window_given:
            found["retry_window"] = self.retry_window
        if self.list_endpoint is not None:
            found["list_endpoint"] = self.list_endpoint
        if self.counts_304 is not None:
            found["counts_304"] = self.counts_304
        if self.rate_limit is not None:
            found["rate_limit_per_day"] = self.rate_limit
        return found

    def webhooks_offered(self) -> bool:
        return self.webhooks if self.webhooks is not None else self.facts.webhooks

    def lists(self) -> bool:
        return self.list_endpoint if self.list_endpoint is not None else self.facts.list_endpoint

    def inputs(self) -> Inputs:
        if self.latency is None or self.changes is None:
            raise typer.BadParameter(
                "give --latency (how fresh the data must be, e.g. 5s or 1h) and --changes "
                "(how often it changes, e.g. 10/day); or run `hookwise advise -i` in a "
                "terminal to be asked",
                param_hint="--latency/--changes",
            )
        given: dict[str, Any] = {
            "latency": self.latency,
            "changes_per_day": self.changes,
            "resources": self.resources or 1,
            "public_endpoint": True if self.public_endpoint is None else self.public_endpoint,
            "own_both": bool(self.own_both),
            "payload_bytes": self.payload_bytes or DEFAULT_PAYLOAD_BYTES,
            "downtime": self.downtime,
            **self.overrides(),
        }
        try:
            return self.facts.inputs(**given)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None


def advise_command(
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            "-p",
            help="A provider or API hookwise knows (stripe, github, shopify, slack, rss...; "
            "--provider list shows all): fills in its webhooks, retries and rate limit.",
            show_default=False,
        ),
    ] = None,
    latency: Annotated[
        str | None,
        typer.Option(
            "--latency", help="How fresh the data must be, e.g. 5s, 1m, 1h.", show_default=False
        ),
    ] = None,
    changes: Annotated[
        str | None,
        typer.Option(
            "--changes",
            help="How often the data changes (all resources together), e.g. 10/day, 2/min.",
            show_default=False,
        ),
    ] = None,
    resources: Annotated[
        int | None,
        typer.Option(
            "--resources",
            min=1,
            help="How many resources are watched (repositories, channels, accounts).",
            show_default=False,
        ),
    ] = None,
    public_endpoint: Annotated[
        bool | None,
        typer.Option(
            "--public-endpoint/--no-public-endpoint",
            help="Whether the receiver can be reached from the internet (default: yes).",
            show_default=False,
        ),
    ] = None,
    own_both: Annotated[
        bool | None,
        typer.Option(
            "--own-both/--third-party",
            help="You run both systems (you set the cadence, retries and limits), or the "
            "other side is a third party (default).",
            show_default=False,
        ),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            "--rate-limit",
            help="The API's rate limit, e.g. 5000/h (default: the provider's, if known).",
            show_default=False,
        ),
    ] = None,
    webhooks: Annotated[
        bool | None,
        typer.Option(
            "--webhooks/--no-webhooks",
            help="Whether the provider offers webhooks (default: what hookwise knows).",
            show_default=False,
        ),
    ] = None,
    retry_window: Annotated[
        str | None,
        typer.Option(
            "--retry-window",
            help="How long the provider retries a failed delivery, e.g. 3d; 0 = never, "
            "unknown = not known.",
            show_default=False,
        ),
    ] = None,
    list_endpoint: Annotated[
        bool | None,
        typer.Option(
            "--list/--per-resource",
            help="One listing shows the changes of all resources, or each resource is "
            "polled on its own.",
            show_default=False,
        ),
    ] = None,
    counts_304: Annotated[
        bool | None,
        typer.Option(
            "--304-counts/--304-free",
            help="Whether a 304 Not Modified counts against the rate limit.",
            show_default=False,
        ),
    ] = None,
    payload_bytes: Annotated[
        int | None,
        typer.Option(
            "--payload-bytes",
            min=0,
            help=f"Bytes of one full answer or webhook body (default {DEFAULT_PAYLOAD_BYTES}).",
            show_default=False,
        ),
    ] = None,
    downtime: Annotated[
        str,
        typer.Option("--downtime", help="The receiver outage to plan for, for the loss figures."),
    ] = "1d",
    interactive: Annotated[
        bool,
        typer.Option("--interactive", "-i", help="Ask for what the flags didn't say."),
    ] = False,
    write_config: Annotated[
        bool,
        typer.Option(
            "--write-config",
            help="Print the matching hookwise.toml block on stdout (the advice goes to "
            "stderr): `>> hookwise.toml` appends it.",
        ),
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Name of the source/poll in the block (default: the provider's)."
        ),
    ] = None,
    from_stats: Annotated[
        str | None,
        typer.Option(
            "--from-stats",
            metavar="POLL",
            help="Judge the running poll POLL from its stored counters (change rate, 304 "
            "share): should it become a webhook, or poll less often?",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The config file (default: ./hookwise.toml); read by --from-stats.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")
    ] = False,
) -> None:
    """Webhook or polling? The recommendation, the reasons that decided it, and the numbers.

    Recommends webhook, poll, or hybrid (webhook + reconciliation poll) from how fresh the
    data must be (--latency), how often it changes (--changes), how many resources there
    are, who runs the two systems, whether the receiver is public, what the provider
    offers (its webhooks and retries, from --provider) and the API's rate limit. Shows
    polls a day, the share of wasted polls, the rate-limit budget, bytes a day with and
    without conditional requests, detection latency of each pattern, and what an outage
    longer than the provider's retries loses. Missing facts are asked for in a terminal.
    --write-config prints the matching hookwise.toml block; --from-stats POLL judges a
    running poll from its stored counters. The guide: docs/choosing.md.
    """
    if provider is not None and provider.strip().lower() == "list":
        _list_providers(as_json)
        return
    facts = _facts(provider)
    given = _Given(
        facts=facts,
        latency=_duration(latency, "--latency"),
        changes=_rate(changes, "--changes"),
        resources=resources,
        public_endpoint=public_endpoint,
        own_both=own_both,
        rate_limit=_rate(rate_limit, "--rate-limit"),
        webhooks=webhooks,
        list_endpoint=list_endpoint,
        counts_304=counts_304,
        payload_bytes=payload_bytes,
        downtime=_duration(downtime, "--downtime") or 0.0,
    )
    if retry_window is not None:
        given.retry_window_given = True
        given.retry_window = _retry_window(retry_window)
    if from_stats is not None:
        if write_config or interactive:
            flag = "--write-config" if write_config else "--interactive"
            raise typer.BadParameter(
                f"{flag} doesn't go with --from-stats, which reads its facts from the store; "
                "run `hookwise advise` with flags for a config block",
                param_hint=flag,
            )
        _from_stats(from_stats, config, given, provider is not None, as_json)
        return
    missing = given.latency is None or given.changes is None
    if interactive or (missing and not as_json and sys.stdin.isatty()):
        _ask(given, ask_provider=provider is None)
    inputs = given.inputs()
    advice = advise(inputs)
    block = _block(advice, given.facts, name) if write_config else None
    if as_json:
        document = _document(advice, given.facts)
        if block is not None:
            document["config"] = block.text
            document["config_env"] = [
                {"name": variable, "holds": holds} for variable, holds in block.env
            ]
        _emit_json(document)
        return
    console = Console(stderr=True, highlight=False) if block is not None else _stdout()
    _print_advice(console, advice, given.facts)
    if block is not None:
        sys.stdout.write(block.text)
        sys.stdout.flush()


ADVISE_HELP = inspect.cleandoc(advise_command.__doc__ or "")
"""The command's help: its docstring (the first line is what ``hookwise --help`` lists)."""


# -- flags --------------------------------------------------------------------------------


def _facts(provider: str | None) -> ProviderFacts:
    if provider is None:
        return GENERIC
    try:
        return provider_facts(provider)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--provider") from None


def _duration(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None
    if flag == "--latency" and not seconds > 0:
        raise typer.BadParameter(
            "the freshness need must be longer than zero; write it like 500ms, 5s or 1h",
            param_hint=flag,
        )
    if not math.isfinite(seconds):
        raise typer.BadParameter(f"{text!r} is not a finite duration", param_hint=flag)
    return seconds


def _rate(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        value = per_day(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None
    if flag == "--rate-limit" and value <= 0:
        raise typer.BadParameter(
            "a rate limit above zero, like 5000/h (leave the flag out for no limit)",
            param_hint=flag,
        )
    return value


def _retry_window(text: str) -> float | None:
    if text.strip().lower() in ("unknown", "?", ""):
        return None
    if text.strip().lower() in ("never", "none"):
        return 0.0
    return _duration(text, "--retry-window")


# -- interactive --------------------------------------------------------------------------


def _ask(given: _Given, *, ask_provider: bool) -> None:
    """Ask, on the terminal, only for what the flags left open and the advice needs."""
    console = Console(stderr=True, highlight=False)
    console.print("[bold]hookwise advise[/]: a few questions (Ctrl-C to stop)")
    if ask_provider:
        given.facts = _ask_provider(console)
    facts = given.facts
    if not facts.known:
        if given.webhooks is None:
            given.webhooks = Confirm.ask(
                "Does the provider offer webhooks?", default=False, console=console
            )
        if given.webhooks and not given.retry_window_given:
            given.retry_window = _ask_value(
                console,
                "How long does it retry a failed delivery? (e.g. 3d; 0 = never; Enter = not known)",
                _retry_window,
                default="unknown",
            )
            given.retry_window_given = True
        if given.rate_limit is None:
            given.rate_limit = _ask_value(
                console,
                "The API's rate limit? (e.g. 5000/h; Enter = none known)",
                lambda text: _rate(text, "--rate-limit") if text.strip() else None,
                default="",
            )
        if given.list_endpoint is None:
            given.list_endpoint = Confirm.ask(
                "Can one request list the changes of all resources (an events list, an "
                "updated-since filter)?",
                default=False,
                console=console,
            )
    if given.own_both is None and not given.webhooks_offered():
        given.own_both = Confirm.ask(
            "Do you run that system too (could it send webhooks)?", default=False, console=console
        )
    if given.latency is None:
        given.latency = _ask_value(
            console,
            "How fresh must the data be? (e.g. 5s, 1m, 1h)",
            lambda text: _duration(text, "--latency"),
        )
    if given.changes is None:
        given.changes = _ask_value(
            console,
            "How often does it change, all resources together? (e.g. 10/day, 2/min)",
            lambda text: _rate(text, "--changes"),
        )
    if given.resources is None and not given.lists():
        given.resources = IntPrompt.ask(
            "How many resources are watched (repositories, channels, accounts)?",
            default=1,
            console=console,
        )
        if given.resources < 1:
            given.resources = 1
    if given.public_endpoint is None and (given.webhooks_offered() or given.own_both):
        given.public_endpoint = Confirm.ask(
            "Can the receiver be reached from the internet (a public HTTPS endpoint)?",
            default=True,
            console=console,
        )


def _ask_provider(console: Console) -> ProviderFacts:
    names = ", ".join(known_facts())
    while True:
        answer = Prompt.ask(
            f"Which provider or API? ({names}; Enter for another)",
            default="",
            show_default=False,
            console=console,
        ).strip()
        if answer in ("", "other"):
            return GENERIC
        try:
            return provider_facts(answer)
        except ValueError as exc:
            console.print(f"[red]{escape(str(exc))}[/]")


def _ask_value(
    console: Console,
    question: str,
    parse: Any,
    *,
    default: str | None = None,
) -> Any:
    while True:
        if default is None:
            answer = Prompt.ask(question, console=console)
        else:
            answer = Prompt.ask(question, default=default, show_default=False, console=console)
        try:
            return parse(answer)
        except typer.BadParameter as exc:
            console.print(f"[red]{escape(exc.message)}[/]")


# -- output -------------------------------------------------------------------------------


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _emit_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _document(advice: Advice, facts: ProviderFacts) -> dict[str, Any]:
    document = advice.to_dict()
    document["provider"] = facts.name if facts.known else None
    document["provider_facts"] = {
        "title": facts.title,
        "webhooks": facts.webhooks,
        "signing": facts.signing,
        "retries": facts.retries,
        "reconcile": facts.reconcile,
        "rate_limit": facts.rate_limit,
        "source": facts.source,
    }
    return document


def _block(advice: Advice, facts: ProviderFacts, name: str | None) -> ConfigBlock:
    try:
        return config_block(advice, facts, name=name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None


def _print_advice(console: Console, advice: Advice, facts: ProviderFacts) -> None:
    who = f" for {facts.title}" if facts.known else ""
    style = {"webhook": "green", "poll": "cyan", "hybrid": "magenta"}[advice.recommendation]
    relay = " through a relay" if advice.relay else ""
    console.print(
        f"[bold]Recommendation{escape(who)}:[/] [bold {style}]"
        f"{_LABELS[advice.recommendation]}[/]{relay}"
    )
    console.print()
    console.print("[bold]Why[/] (most decisive first)")
    for number, reason in enumerate(advice.reasons, 1):
        console.print(f"  {number}. {escape(reason.text)} [dim]\\[{reason.code}][/]")
    console.print()
    console.print("[bold]The numbers[/]")
    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in _figure_rows(advice):
        table.add_row(label, escape(value))
    console.print(table)
    if facts.known:
        console.print()
        console.print(f"[dim]facts about {escape(facts.title)}: {escape(facts.source)}[/]")


def _figure_rows(advice: Advice) -> list[tuple[str, str]]:
    f, inputs = advice.figures, advice.inputs
    targets = "one listing" if inputs.list_endpoint else _plural(f.poll_targets, "resource")
    rows = [
        ("freshness need", _dur(f.latency_need_s)),
        ("changes", _changes(f.changes_per_day)),
        (
            "polling",
            f"every {_dur(f.poll_interval_s)}: {_num(f.polls_per_day)} polls/day x {targets} "
            f"= {_num(f.poll_requests_per_day)} requests/day",
        ),
        ("wasted polls", f"{_pct(f.wasted_poll_share)} find no change"),
    ]
    if f.rate_limit_per_day is not None and f.rate_limit_budget_share is not None:
        fastest = f.fastest_poll_interval_in_budget_s
        budget = (
            f"{_pct(f.rate_limit_budget_share)} ({_num(f.rate_limit_counted_requests_per_day)}"
            f" counted of {_num(f.rate_limit_per_day)}/day)"
        )
        if fastest is not None and f.rate_limit_budget_share >= 0.5:
            budget += f"; fastest poll that fits: every {_dur(fastest)}"
        rows.append(("rate-limit budget", budget))
    else:
        rows.append(("rate-limit budget", "no limit given (--rate-limit)"))
    rows += [
        (
            "poll bytes/day",
            f"{_size(f.poll_bytes_per_day_conditional)} with conditional requests, "
            f"{_size(f.poll_bytes_per_day_unconditional)} without",
        ),
        (
            "webhooks",
            f"{_num(f.webhook_requests_per_day)} "
            f"request{'' if f.webhook_requests_per_day == 1 else 's'}/day, "
            f"{_size(f.webhook_bytes_per_day)}/day",
        ),
        (
            "detection latency",
            f"poll {_dur(f.poll_detection_latency_expected_s)} expected, "
            f"{_dur(f.poll_detection_latency_worst_s)} worst; webhook ~"
            f"{_dur(f.webhook_detection_latency_s)}; hybrid: a missed delivery within "
            f"{_dur(f.hybrid_missed_detection_latency_worst_s)}",
        ),
        (
            "reconciliation",
            f"every {_dur(f.reconcile_interval_s)}: {_num(f.reconcile_requests_per_day)} "
            "requests/day",
        ),
    ]
    window = "unknown" if f.retry_window_s is None else _dur(f.retry_window_s)
    if f.retry_window_s == 0:
        window = "never retries"
    rows.append(
        (
            f"if down {_dur(f.downtime_s)}",
            f"provider retries: {window}; changes lost: webhook "
            f"{_maybe(f.lost_if_down_webhook)}, hybrid {_maybe(f.lost_if_down_hybrid)}, "
            f"poll {_num(f.lost_if_down_poll)}",
        )
    )
    return rows


def _list_providers(as_json: bool) -> None:
    from .facts import FACTS

    if as_json:
        _emit_json(
            [
                {
                    "name": facts.name,
                    "title": facts.title,
                    "webhooks": facts.webhooks,
                    "retry_window_s": facts.retry_window,
                    "retries": facts.retries,
                    "reconcile": facts.reconcile,
                    "reconcile_preset": facts.reconcile_preset,
                    "rate_limit": facts.rate_limit,
                    "source": facts.source,
                }
                for facts in (FACTS[name] for name in known_facts())
            ]
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("provider", "webhooks", "retries for", "reconcile from"):
        table.add_column(column, overflow="fold")
    for facts in (FACTS[name] for name in known_facts()):
        window = "?" if facts.retry_window is None else _dur(facts.retry_window)
        if facts.retry_window == 0:
            window = "never"
        table.add_row(
            escape(facts.name),
            "yes" if facts.webhooks else "no",
            window if facts.webhooks else "-",
            escape(facts.reconcile_preset or ("yes" if facts.reconcile else "-")),
        )
    _stdout().print(table)


# -- --from-stats -------------------------------------------------------------------------


def _from_stats(
    name: str, config: Path | None, given: _Given, provider_named: bool, as_json: bool
) -> None:
    from ..app import unknown_poll
    from ..cli import _open, _run, _settings

    settings = _settings(config, quiet=as_json)

    async def work() -> PollState | None:
        async with _open(settings) as store:
            return await store.get_poll_state(name)

    state = _run(work)
    poll = settings.polls.get(name)
    if state is None:
        if poll is None:
            raise unknown_poll(name, settings.polls, file=settings.path)
        message = (
            f"not enough data yet (0 runs): poll {name!r} has not run; start it with "
            "`hookwise poll` or `hookwise serve`, then ask again"
        )
        if as_json:
            _emit_json(
                {
                    "poll": name,
                    "runs": 0,
                    "enough_data": False,
                    "verdict": "not_enough_data",
                    "summary": message,
                }
            )
        else:
            _stdout().print(escape(message))
        return
    facts = given.facts if provider_named else _facts_for_poll(settings, name)
    seen = ObservedPoll.from_stats(
        name,
        state.stats,
        interval=state.interval,
        min_every=poll.min_every if poll is not None else None,
        max_every=poll.max_every if poll is not None else None,
        emits_events=poll is not None and poll.emit == "events",
    )
    result = advise_from_stats(
        seen,
        facts,
        latency=given.latency,
        public_endpoint=True if given.public_endpoint is None else given.public_endpoint,
        own_both=bool(given.own_both),
        downtime=given.downtime,
        overrides=given.overrides(),
    )
    if as_json:
        document = result.to_dict()
        document["provider"] = facts.name if facts.known else None
        document["updated_at"] = state.updated_at
        _emit_json(document)
        return
    _print_stats(_stdout(), result, facts)


def _facts_for_poll(settings: Settings, name: str) -> ProviderFacts:
    """The provider a configured poll reads: its preset, its webhook source's provider,
    or its url's host."""
    poll = settings.polls.get(name)
    if poll is None:
        return GENERIC
    presets = {"stripe-events": "stripe", "github-deliveries": "github"}
    if poll.preset in presets:
        return provider_facts(presets[poll.preset])
    source = settings.sources.get(poll.source)
    if source is not None:
        try:
            return provider_facts(source.provider)
        except ValueError:
            pass
    return facts_for_host(poll.host) or GENERIC


def _print_stats(console: Console, result: StatsAdvice, facts: ProviderFacts) -> None:
    verdicts = {
        "not_enough_data": "[yellow]not enough data yet[/]",
        "become_webhook": "[green]make it a webhook[/]",
        "become_hybrid": "[magenta]make it a webhook + reconciliation poll[/]",
        "relax_interval": "[cyan]keep polling, less often[/]",
        "keep": "[green]keep it as it is[/]",
    }
    console.print(f"[bold]{escape(result.poll)}:[/] {verdicts[result.verdict]}")
    console.print(escape(result.summary))
    if result.verdict == "not_enough_data":
        return
    console.print()
    console.print("[bold]Measured[/]")
    observed = result.observed
    rows = [
        ("runs", f"{observed['runs']} ({observed['requests']} requests)"),
        ("304 share", _pct(float(observed["not_modified_share"] or 0))),
        (
            "runs with nothing new",
            f"at least {_pct(float(observed['wasted_share_at_least'] or 0))}",
        ),
        ("change rate", format_rate(float(observed["change_rate_per_day"] or 0) / 86400)),
        ("interval", _dur(float(observed["interval_s"] or 0))),
    ]
    if result.suggested_every is not None:
        rows.append(("suggested interval", _dur(result.suggested_every)))
    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, escape(value))
    console.print(table)
    console.print()
    console.print("[bold]Assumed[/]")
    for text in result.assumptions:
        console.print(f"  - {escape(text)}")
    if result.advice is not None:
        console.print()
        _print_advice(console, result.advice, facts)


# -- formatting ---------------------------------------------------------------------------


def _dur(seconds: float) -> str:
    return format_duration(seconds)


def _num(value: float) -> str:
    if value >= 100 or value == round(value):
        return f"{round(value):,}"
    return f"{value:.3g}"


def _changes(per_day: float) -> str:
    rate = format_rate(per_day / 86400)
    return rate if rate.endswith("/day") else f"{rate} ({_num(per_day)}/day)"


def _maybe(value: float | None) -> str:
    return "unknown" if value is None else _num(value)


def _pct(share: float) -> str:
    percent = share * 100
    if 0 < percent < 1:
        return "under 1%"
    if 99 < percent < 100:
        return "over 99%"
    return f"{percent:,.0f}%"


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
