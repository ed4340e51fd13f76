"""What a ``hookwise send`` run amounts to: counts by status, answer and kind, expected
against observed, latency, errors; as a Rich table or one JSON document."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..durations import format_duration
from .forge import Breakage
from .plan import Plan
from .runner import Outcome

__all__ = ["KindCount", "Report", "outcome_line", "percentile", "print_report"]


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in 0..100) of ``values``; ``None`` if empty.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.0
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(slots=True)
class KindCount:
    """The requests of one kind of event and their answers."""

    kind: str
    expected: str
    requests: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    """Requests per status (``"200"``), or per error when none came."""
    as_expected: int = 0


def _answered(outcome: Outcome) -> str:
    if outcome.status is not None:
        return str(outcome.status)
    return outcome.error or "error"


@dataclass(frozen=True, slots=True)
class Report:
    """The outcomes of one run and what they add up to.

    >>> report = Report(plan, outcomes, url=url, provider="stripe", source="send",
    ...                 elapsed=1.2, delay=0.0)
    >>> report.ok, report.by_status
    (True, {'200': 3})
    """

    plan: Plan
    outcomes: tuple[Outcome, ...]
    url: str
    provider: str
    source: str
    elapsed: float
    delay: float
    bad_signature: Breakage | None = None
    """How bad signatures were made, and what the provider's own check said of them."""
    stale: Breakage | None = None
    """How stale requests were made, and what the provider's own check said of them."""

    @property
    def by_status(self) -> dict[str, int]:
        """Requests per HTTP status (as text, for JSON), lowest status first."""
        counts = Counter(o.status for o in self.outcomes if o.status is not None)
        return {str(status): counts[status] for status in sorted(counts)}

    @property
    def answers(self) -> dict[str, int]:
        """Requests per ``status`` of the JSON answer (``accepted``, ``duplicate``...)."""
        return dict(sorted(Counter(o.answer for o in self.outcomes if o.answer).items()))

    @property
    def errors(self) -> dict[str, int]:
        """Requests that got no answer, per kind of error."""
        return dict(sorted(Counter(o.error for o in self.outcomes if o.error).items()))

    @property
    def expected(self) -> dict[str, int]:
        """Requests per expected answer class (``2xx``, ``4xx``)."""
        counts = Counter(o.request.event.expected for o in self.outcomes)
        return {kind: counts[kind] for kind in ("2xx", "4xx") if counts[kind]}

    @property
    def as_expected(self) -> int:
        return sum(o.as_expected for o in self.outcomes)

    @property
    def ok(self) -> bool:
        """Whether every answer was what a correct receiver says."""
        return all(o.as_expected for o in self.outcomes)

    @property
    def latencies(self) -> list[float]:
        return [o.latency for o in self.outcomes if o.latency is not None]

    def latency_ms(self) -> dict[str, float | None]:
        values = self.latencies
        return {
            "p50": _ms(percentile(values, 50)),
            "p95": _ms(percentile(values, 95)),
            "max": _ms(max(values) if values else None),
        }

    def kinds(self) -> list[KindCount]:
        """Per kind of event (good, bad signature, stale): the requests, what a correct
        receiver answers, what came back, and how many were as expected."""
        found: dict[str, KindCount] = {}
        for outcome in self.outcomes:
            event = outcome.request.event
            count = found.setdefault(event.kind, KindCount(event.kind, event.expected))
            count.requests += 1
            count.answered[_answered(outcome)] += 1
            count.as_expected += outcome.as_expected
        order = ("good", "bad signature", "stale", "bad signature, stale")
        return [found[kind] for kind in order if kind in found]

    def document(self) -> dict[str, Any]:
        """Everything, as one JSON-ready document (``hookwise send --json``)."""
        plan = self.plan
        bad_events = sum(e.bad_signature for e in plan.events)
        stale_events = sum(e.stale for e in plan.events)
        return {
            "url": self.url,
            "provider": self.provider,
            "source": self.source,
            "events": len(plan.events),
            "duplicates": plan.chaos.duplicates,
            "concurrency": plan.chaos.concurrency,
            "delay_ms": round(self.delay * 1000, 1),
            "shuffled": plan.chaos.shuffle,
            "seed": plan.seed,
            "bad_signature": _broken(bad_events, self.bad_signature),
            "stale": _broken(stale_events, self.stale),
            "sent": len(self.outcomes),
            "by_status": self.by_status,
            "answers": self.answers,
            "expected": self.expected,
            "as_expected": self.as_expected,
            "unexpected": len(self.outcomes) - self.as_expected,
            "errors": self.errors,
            "latency_ms": self.latency_ms(),
            "elapsed_ms": round(self.elapsed * 1000, 1),
            "ok": self.ok,
            "requests": [_row(o) for o in self.outcomes],
        }


def _broken(events: int, how: Breakage | None) -> dict[str, Any] | None:
    if not events or how is None:
        return None
    return {"events": events, "how": how.how, "reason": how.reason}


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


def _row(outcome: Outcome) -> dict[str, Any]:
    request = outcome.request
    event = request.event
    return {
        "n": request.number,
        "event": event.number,
        "copy": request.copy,
        "step": request.step,
        "type": event.type,
        "kind": event.kind,
        "expected": event.expected,
        "delivery_id": event.delivery_id,
        "event_id": outcome.event_id,
        "status": outcome.status,
        "answer": outcome.answer,
        "as_expected": outcome.as_expected,
        "latency_ms": _ms(outcome.latency),
        "started_ms": _ms(outcome.started),
        "error": outcome.error,
        "error_detail": outcome.error_detail,
        "response": outcome.response,
    }


# -- the terminal -------------------------------------------------------------------------


def outcome_line(outcome: Outcome, total: int) -> str:
    """One request as a line of Rich markup: number, status, latency, event, answer."""
    request = outcome.request
    event = request.event
    width = len(str(total))
    what = f"{escape(event.type)} {escape(outcome.event_id or event.delivery_id)}"
    if event.kind != "good":
        what += f" [yellow]({event.kind})[/]"
    if request.copy > 1:
        what += f" [dim]copy {request.copy}[/]"
    number = f"[dim]{request.number:>{width}}/{total}[/]"
    if outcome.status is None:
        return f"{number} [red]{escape(outcome.error or 'error')}[/] {what}"
    style = "green" if outcome.as_expected else "red"
    latency = f"{(outcome.latency or 0) * 1000:7.1f} ms"
    answer = escape(" ".join(outcome.response.split())[:200])
    return f"{number} [{style}]{outcome.status}[/] {latency}  {what}  [dim]{answer}[/]"


def print_report(report: Report, console: Console) -> None:
    """The summary: what was sent, answers per kind against what a correct receiver
    says, latency, errors, and the verdict."""
    plan = report.plan
    chaos = plan.chaos
    sent = len(report.outcomes)
    head = (
        f"sent {sent} request{'s' if sent != 1 else ''} ({len(plan.events)} event"
        f"{'s' if len(plan.events) != 1 else ''} x {chaos.duplicates}) to "
        f"{escape(report.url)} in {report.elapsed:.2f} s, {chaos.concurrency} at a time"
    )
    if report.delay:
        head += f", {format_duration(report.delay)} apart"
    console.print()
    console.print(head)
    if plan.seed is not None:
        console.print(f"random draws: seed {plan.seed} (--seed {plan.seed} repeats this plan)")
    for label, how in (("bad signature", report.bad_signature), ("stale", report.stale)):
        if how is not None:
            check = f"{escape(report.provider)}'s own check says {escape(how.reason)}"
            console.print(f"{label}: {escape(how.how)} ({check})")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("kind", "requests", "expected", "answered", "as expected"):
        table.add_column(column, no_wrap=True)
    for count in report.kinds():
        answered = ", ".join(f"{status} x{n}" for status, n in sorted(count.answered.items()))
        style = "green" if count.as_expected == count.requests else "red"
        shown = f"[{style}]{count.as_expected}/{count.requests}[/]"
        table.add_row(count.kind, str(count.requests), count.expected, escape(answered), shown)
    console.print(table)
    if report.answers:
        console.print(
            "answers: " + ", ".join(f"{escape(a)} x{n}" for a, n in report.answers.items())
        )
    latency = report.latency_ms()
    if latency["max"] is not None:
        console.print(
            f"latency: p50 {latency['p50']} ms, p95 {latency['p95']} ms, max {latency['max']} ms"
        )
    if report.errors:
        console.print(
            "[red]errors: "
            + ", ".join(f"{escape(e)} x{n}" for e, n in report.errors.items())
            + "[/]"
        )
    if report.ok:
        verdict = "the answer was" if sent == 1 else f"all {sent} answers were"
        console.print(f"[green]{verdict} what a correct receiver says[/]")
    else:
        wrong = sent - report.as_expected
        console.print(
            f"[red]{wrong} of {sent} answer{'s' if sent != 1 else ''} "
            f"{'was' if wrong == 1 else 'were'} not what a correct "
            "receiver says (2xx for good events, 4xx for forged or stale ones)[/]"
        )
