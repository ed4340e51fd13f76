"""A running poll, measured: should it become a webhook, or poll less often?

>>> from hookwise.advise import provider_facts
>>> seen = ObservedPoll(name="issues", requests=400, not_modified=392, changes=8,
...                     bytes=80_000, interval=60.0)
>>> result = advise_from_stats(seen, provider_facts("github"))
>>> result.verdict, result.runs
('become_hybrid', 400)

The poll's counters (``hookwise poll --stats``) give its measured change rate and 304
share; they go through the same model as ``hookwise advise`` with the poll's own numbers.
The store keeps no time of a poll's first run, so the observed period is estimated as
runs * interval (plus the time spent waiting for rate limits): see
:attr:`StatsAdvice.assumptions`, which says every estimate made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..durations import format_duration
from .facts import ProviderFacts
from .model import DAY, DEFAULT_DOWNTIME, Advice, advise
from .rates import format_rate

__all__ = ["MIN_RUNS", "ObservedPoll", "StatsAdvice", "StatsVerdict", "advise_from_stats"]

MIN_RUNS = 20
"""Runs needed before a poll's counters say anything about its change rate."""

StatsVerdict = Literal[
    "not_enough_data", "become_webhook", "become_hybrid", "relax_interval", "keep"
]


def _count(stats: Mapping[str, object], key: str) -> int:
    value = stats.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True, slots=True)
class ObservedPoll:
    """What a poll's stored state says about it.

    >>> ObservedPoll.from_stats("issues", {"requests": 30, "not_modified": 20, "changes": 4},
    ...                         interval=60.0).runs
    30

    ``requests`` counts every request of every run (pages and detail requests too);
    ``changes`` counts the changes found, or, for a poll that emits a provider's
    deliveries, the deliveries it emitted (``backfilled`` of them were missing from the
    store: the ones the webhooks lost). ``interval`` is the current interval, ``min_every``
    and ``max_every`` the configured bounds (``None`` when the poll is no longer
    configured).
    """

    name: str
    requests: int
    not_modified: int
    changes: int
    bytes: int = 0
    detail_requests: int = 0
    wait_seconds: float = 0.0
    interval: float | None = None
    min_every: float | None = None
    max_every: float | None = None
    emits_events: bool = False
    backfilled: int = 0

    @classmethod
    def from_stats(
        cls,
        name: str,
        stats: Mapping[str, object],
        *,
        interval: float | None,
        min_every: float | None = None,
        max_every: float | None = None,
        emits_events: bool = False,
    ) -> ObservedPoll:
        """Read the counters of ``PollState.stats`` (missing ones count as 0)."""
        waited = stats.get("wait_seconds")
        return cls(
            name=name,
            requests=_count(stats, "requests"),
            not_modified=_count(stats, "not_modified"),
            changes=_count(stats, "changes") + _count(stats, "emitted"),
            bytes=_count(stats, "bytes"),
            detail_requests=_count(stats, "detail_requests"),
            wait_seconds=float(waited) if isinstance(waited, int | float) else 0.0,
            interval=interval,
            min_every=min_every,
            max_every=max_every,
            emits_events=emits_events,
            backfilled=_count(stats, "backfilled"),
        )

    @property
    def runs(self) -> int:
        """Listing requests: one per run, more for a run that walked several pages."""
        return max(0, self.requests - self.detail_requests)


@dataclass(frozen=True, slots=True)
class StatsAdvice:
    """What a poll's measurements say.

    ``verdict``: ``become_webhook`` / ``become_hybrid`` (the model prefers push at these
    numbers), ``relax_interval`` (keep polling, less often: ``suggested_every``),
    ``keep``, or ``not_enough_data``. ``observed`` holds the measured and derived
    numbers; ``assumptions`` every estimate made on the way, in words.
    """

    poll: str
    runs: int
    verdict: StatsVerdict
    summary: str
    observed: dict[str, float | int | None] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()
    suggested_every: float | None = None
    advice: Advice | None = None

    def to_dict(self) -> dict[str, Any]:
        """As ``hookwise advise --from-stats POLL --json`` prints it."""
        document: dict[str, Any] = {
            "poll": self.poll,
            "runs": self.runs,
            "enough_data": self.verdict != "not_enough_data",
            "verdict": self.verdict,
            "summary": self.summary,
            "observed": self.observed,
            "assumptions": list(self.assumptions),
            "suggested_every_s": self.suggested_every,
        }
        if self.advice is not None:
            document.update(self.advice.to_dict())
        return document


def advise_from_stats(
    seen: ObservedPoll,
    facts: ProviderFacts,
    *,
    latency: float | None = None,
    public_endpoint: bool = True,
    own_both: bool = False,
    rate_limit_per_day: float | None = None,
    downtime: float = DEFAULT_DOWNTIME,
    overrides: Mapping[str, Any] | None = None,
) -> StatsAdvice:
    """Advice for the poll ``seen``, whose API ``facts`` describe.

    ``latency`` is how fresh the data must be; without it, the poll's longest interval
    is taken as the need (what it delivers today). ``overrides`` go to
    :meth:`ProviderFacts.inputs` (``webhooks``, ``retry_window``...).
    """
    runs = seen.runs
    if runs < MIN_RUNS:
        return StatsAdvice(
            poll=seen.name,
            runs=runs,
            verdict="not_enough_data",
            summary=f"not enough data yet ({runs} run{'' if runs == 1 else 's'}); the "
            f"measured change rate means something after {MIN_RUNS} runs or more",
        )
    interval = seen.interval or seen.max_every or seen.min_every
    if interval is None or not interval > 0:
        return StatsAdvice(
            poll=seen.name,
            runs=runs,
            verdict="not_enough_data",
            summary=f"not enough data yet: poll {seen.name!r} has no interval recorded",
        )
    assumptions: list[str] = []
    period = runs * interval + seen.wait_seconds
    bounds = ""
    if (
        seen.min_every is not None
        and seen.max_every is not None
        and seen.min_every < seen.max_every
    ):
        low = runs * seen.min_every + seen.wait_seconds
        high = runs * seen.max_every + seen.wait_seconds
        bounds = (
            f"; with an adaptive interval the true period lies between {_dur(low)} and {_dur(high)}"
        )
    assumptions.append(
        f"observed period ≈ {runs} runs * {_dur(interval)} (the current interval)"
        + (f" + {_dur(seen.wait_seconds)} of rate-limit waits" if seen.wait_seconds else "")
        + f" = {_dur(period)}: the store keeps no time of the first run{bounds}"
    )
    assumptions.append(
        "runs are counted as listing requests (requests - detail requests); a run that "
        "walked several pages counts once per page"
    )
    rate_per_day = seen.changes / period * DAY
    not_modified_share = seen.not_modified / runs
    quiet = max(seen.not_modified, runs - seen.changes)
    wasted = min(1.0, quiet / runs)
    full_answers = max(1, runs - seen.not_modified)
    payload = max(1, round(seen.bytes / full_answers)) if seen.bytes else None
    need = latency
    if need is None:
        need = seen.max_every or interval
        assumptions.append(
            f"freshness need taken as {_dur(need)}, what the poll delivers now (its longest "
            "interval); pass --latency for the real need"
        )
    given: dict[str, Any] = {
        "latency": need,
        "changes_per_day": rate_per_day,
        "resources": 1,
        "list_endpoint": True,
        "public_endpoint": public_endpoint,
        "own_both": own_both,
        "downtime": downtime,
    }
    if payload is not None:
        given["payload_bytes"] = payload
    if rate_limit_per_day is not None:
        given["rate_limit_per_day"] = rate_limit_per_day
    given.update(overrides or {})
    advice = advise(facts.inputs(**given))
    observed: dict[str, float | int | None] = {
        "runs": runs,
        "requests": seen.requests,
        "not_modified": seen.not_modified,
        "changes": seen.changes,
        "interval_s": interval,
        "observed_period_s": round(period, 3),
        "change_rate_per_day": round(rate_per_day, 6),
        "not_modified_share": round(not_modified_share, 6),
        "wasted_share_at_least": round(wasted, 6),
        "bytes_per_full_answer": payload,
        "requests_per_day_now": round(runs / period * DAY, 3),
    }
    if seen.emits_events:
        observed["backfilled"] = seen.backfilled
        return _reconciliation(seen, runs, observed, tuple(assumptions), advice)
    rate_text = format_rate(rate_per_day / DAY)
    if advice.recommendation != "poll":
        verdict: StatsVerdict = (
            "become_webhook" if advice.recommendation == "webhook" else "become_hybrid"
        )
        what = (
            "a webhook" if verdict == "become_webhook" else "a webhook with a reconciliation poll"
        )
        summary = (
            f"{_pct(wasted)} of {runs} runs found nothing new at about {rate_text}; at "
            f"these numbers this should become {what} (the reasons below say why)"
        )
        return StatsAdvice(
            seen.name, runs, verdict, summary, observed, tuple(assumptions), None, advice
        )
    relaxed = _relaxed(seen, interval, rate_per_day, latency)
    if relaxed is not None:
        now_per_day = DAY / interval
        later_per_day = DAY / relaxed
        summary = (
            f"keep polling, less often: {_pct(wasted)} of {runs} runs found "
            f"nothing new at about {rate_text}; every {_dur(relaxed)} instead of "
            f"{_dur(interval)} saves about {now_per_day - later_per_day:,.0f} requests a day"
        )
        if latency is None:
            summary += (
                f" (at that pace about half the polls find a change; only if the data may "
                f"be {_dur(relaxed)} old)"
            )
        return StatsAdvice(
            seen.name,
            runs,
            "relax_interval",
            summary,
            observed,
            tuple(assumptions),
            relaxed,
            advice,
        )
    summary = (
        f"keep it as it is: {_pct(1 - wasted)} of {runs} runs found changes (about "
        f"{rate_text}), and polling stays the better fit ({advice.reasons[0].code})"
    )
    return StatsAdvice(seen.name, runs, "keep", summary, observed, tuple(assumptions), None, advice)


def _relaxed(
    seen: ObservedPoll, interval: float, rate_per_day: float, latency: float | None
) -> float | None:
    """A longer interval worth suggesting, or ``None``.

    With a known need, the need itself when it is longer than the poll's longest
    interval. Without one, the interval at which half the polls would find a change
    (``ln 2 / rate``), when that is over twice the current one.
    """
    longest = seen.max_every or interval
    if latency is not None:
        return latency if latency > longest * 1.01 else None
    if rate_per_day <= 0:
        return None
    half = math.log(2) / (rate_per_day / DAY)
    return float(round(half)) if half > 2 * longest else None


def _reconciliation(
    seen: ObservedPoll,
    runs: int,
    observed: dict[str, float | int | None],
    assumptions: tuple[str, ...],
    advice: Advice,
) -> StatsAdvice:
    share = seen.backfilled / seen.changes if seen.changes else 0.0
    observed["backfilled_share"] = round(share, 6)
    summary = (
        f"this poll lists the provider's deliveries: of {seen.changes} it emitted, "
        f"{seen.backfilled} ({_pct(share)}) were missing from the store — the webhooks "
        "lost them and this poll brought them back; keep it"
    )
    return StatsAdvice(seen.name, runs, "keep", summary, observed, assumptions, None, advice)


def _dur(seconds: float) -> str:
    return format_duration(seconds)


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"
