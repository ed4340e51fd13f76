"""Webhook, poll, or both: the push-vs-pull decision as a pure function of the facts.

>>> advice = advise(Inputs(latency=60, changes_per_day=200, retry_window=0.0,
...                        reconcile="the deliveries API"))
>>> advice.recommendation, advice.reasons[0].code
('hybrid', 'provider_never_retries')

:func:`advise` takes :class:`Inputs` (how fresh the data must be, how often it changes,
what the provider offers, what the API allows) and returns :class:`Advice`: the
recommendation, the :class:`Reason` objects that decided it (most decisive first), and
the :class:`Figures` behind them. Nothing here does I/O or reads a clock.

How the figures are computed (``T`` is the poll interval, ``λ`` the change rate):

- A poll every ``T`` sees a change at most ``T`` (plus one response time) after it
  happened, so the interval the latency need asks for is ``T = latency``;
  polls/day = 86400 / T; the expected detection latency is T/2 + response time.
- A listing (``list_endpoint``) covers every resource in one request, plus one page per
  ``page_size`` changes; otherwise each resource is one request per poll.
- Changes are taken as a Poisson process spread evenly over the polled targets: the
  share of polls that find nothing (wasted) is ``exp(-λ_target * T)``.
- Rate-limit budget = requests counted per day / limit per day, where a 304 is not
  counted when the API says so.
- Bytes/day: every poll pays the full payload without conditional requests; with them,
  a wasted poll costs a ~300-byte 304.
- A webhook is one request per change and arrives ``send_delay`` after it.
- If the receiver is down for ``downtime`` and the provider retries for
  ``retry_window``, webhooks lose changes/day * (downtime - retry_window) / 86400; a
  poll loses none (it reads the current state when it runs again); a hybrid loses what
  its reconciliation list no longer holds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from ..durations import format_duration
from .facts import DEFAULT_SEND_DELAY

__all__ = [
    "BATCH_FACTOR",
    "CHEAP_LATENCY",
    "CHEAP_REQUESTS_PER_DAY",
    "DAY",
    "DEFAULT_DOWNTIME",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_PAYLOAD_BYTES",
    "DEFAULT_RESPONSE_TIME",
    "HIGH_CHANGE_RATE",
    "MIN_POLL_INTERVAL",
    "NOT_MODIFIED_BYTES",
    "REASON_CODES",
    "RECONCILE_EVERY_MAX",
    "RECONCILE_EVERY_MIN",
    "Advice",
    "Figures",
    "Inputs",
    "Reason",
    "ReasonCode",
    "Recommendation",
    "advise",
    "compute_figures",
]

Recommendation = Literal["webhook", "poll", "hybrid"]
"""``webhook`` (push), ``poll`` (pull), or ``hybrid``: webhooks plus a reconciliation poll."""

ReasonCode = Literal[
    "no_webhooks",
    "own_both_can_push",
    "no_public_endpoint",
    "relay_needed",
    "polling_is_cheap",
    "high_change_rate",
    "sub_second_latency",
    "rate_limit_exceeded",
    "rate_limit_tight",
    "polls_mostly_wasted",
    "webhook_fresher",
    "webhook_not_fresher",
    "provider_never_retries",
    "retry_policy_unknown",
    "short_retry_window",
    "retries_cover_downtime",
    "own_both_sets_retries",
    "conditional_requests_pay",
    "no_conditional_requests",
]
"""The codes of the reasons the model gives: stable names scripts may rely on."""

REASON_CODES: tuple[str, ...] = get_args(ReasonCode)
"""Every :attr:`Reason.code`, in the order of the decision's steps."""

DAY = 86400.0
MIN_POLL_INTERVAL = 1.0
"""The shortest poll interval hookwise recommends: below a second, use push."""
NOT_MODIFIED_BYTES = 300
"""What a ``304 Not Modified`` costs on the wire: status line and headers, no body."""
DEFAULT_PAYLOAD_BYTES = 2000
"""The size of one full answer (one resource, one page, one webhook body) if not given."""
DEFAULT_RESPONSE_TIME = 0.3
"""Seconds one API request takes, if not given."""
DEFAULT_DOWNTIME = DAY
"""The receiver outage the loss figures assume: a day (an outage noticed the next day)."""
DEFAULT_PAGE_SIZE = 100
"""Items per page of a listing, if not given."""
RECONCILE_EVERY_MIN = 300.0
RECONCILE_EVERY_MAX = 3600.0
"""A reconciliation poll runs every ``latency``, kept within these bounds: it is a
safety net, not the main intake."""
CHEAP_LATENCY = 900.0
CHEAP_REQUESTS_PER_DAY = 1000.0
CHEAP_BUDGET_SHARE = 0.1
"""Polling counts as cheap when the data may be this old (15 min or more), it costs at
most this many requests a day, and at most this share of the rate limit."""
BATCH_FACTOR = 10.0
HIGH_CHANGE_RATE = 10_000.0
"""Polling beats webhooks on volume when changes are many (this many a day or more) and
polling needs ``BATCH_FACTOR`` times fewer requests than one webhook per change."""
WASTED_SHARE = 0.5
TIGHT_BUDGET_SHARE = 0.5
LOST_CHANGES = 1.0
"""Expected changes lost in an outage from which a reconciliation poll is worth it."""


@dataclass(frozen=True, slots=True)
class Inputs:
    """The facts of one integration. Durations are seconds, rates per day.

    >>> Inputs(latency=5, changes_per_day=1000).resources
    1

    ``latency`` is how fresh the data must be; ``changes_per_day`` counts the changes
    of all ``resources`` together. ``webhooks``: the provider can push;
    ``public_endpoint``: the receiver can be reached from the internet; ``own_both``:
    the same people run both systems, so they choose the cadence, the retries and the
    limits (and can make the source push). ``retry_window``: how long the provider
    keeps retrying a failed delivery (``0`` never, ``None`` unknown); ``reconcile``
    names its list of events or deliveries to catch up from, kept for
    ``reconcile_retention`` (``None``: unknown). ``list_endpoint``: one listing shows
    the changes of all resources, ``page_size`` per request. ``rate_limit_per_day``
    (``None``: no limit known), ``counts_304`` (does a 304 count against it),
    ``conditional`` (does the API answer 304 at all). ``payload_bytes``: one full
    answer; ``downtime``: the receiver outage to plan for.
    Raises ``ValueError`` on a value that can't be right, saying which.
    """

    latency: float
    changes_per_day: float
    resources: int = 1
    webhooks: bool = True
    public_endpoint: bool = True
    own_both: bool = False
    retry_window: float | None = None
    reconcile: str | None = None
    reconcile_retention: float | None = None
    list_endpoint: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    rate_limit_per_day: float | None = None
    counts_304: bool = True
    conditional: bool = True
    payload_bytes: int = DEFAULT_PAYLOAD_BYTES
    not_modified_bytes: int = NOT_MODIFIED_BYTES
    response_time: float = DEFAULT_RESPONSE_TIME
    send_delay: float = DEFAULT_SEND_DELAY
    downtime: float = DEFAULT_DOWNTIME
    provider: str = ""

    def __post_init__(self) -> None:
        _check(
            self.latency > 0 and math.isfinite(self.latency),
            "latency",
            self.latency,
            "a duration longer than zero, like 5s or 1h",
        )
        _check(
            self.changes_per_day >= 0 and math.isfinite(self.changes_per_day),
            "changes_per_day",
            self.changes_per_day,
            "a finite rate >= 0, like 10/day",
        )
        _check(
            _whole(self.resources) and self.resources >= 1,
            "resources",
            self.resources,
            "a whole number >= 1",
        )
        _check(
            _whole(self.page_size) and self.page_size >= 1,
            "page_size",
            self.page_size,
            "a whole number >= 1",
        )
        for name in ("retry_window", "reconcile_retention"):
            value = getattr(self, name)
            _check(
                value is None or (value >= 0 and not math.isnan(value)),
                name,
                value,
                "a duration >= 0 (0 = never), or None when unknown",
            )
        limit = self.rate_limit_per_day
        _check(
            limit is None or (limit > 0 and math.isfinite(limit)),
            "rate_limit_per_day",
            limit,
            "a rate above zero, like 5000/h, or None for no limit",
        )
        for name in ("payload_bytes", "not_modified_bytes"):
            value = getattr(self, name)
            _check(_whole(value) and value >= 0, name, value, "a whole number of bytes >= 0")
        for name in ("response_time", "send_delay", "downtime"):
            value = getattr(self, name)
            _check(value >= 0 and math.isfinite(value), name, value, "a duration >= 0")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {expected}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Figures:
    """The numbers behind the advice; seconds end in ``_s``; ``None`` means unknown (or,
    for a ratio, not a finite number: no changes to divide by).

    See the module docstring (and ``docs/choosing.md``) for how each is computed.
    """

    latency_need_s: float
    changes_per_day: float
    resources: int
    poll_interval_s: float
    polls_per_day: float
    poll_targets: int
    poll_requests_per_day: float
    wasted_poll_share: float
    poll_requests_per_change: float | None
    rate_limit_per_day: float | None
    rate_limit_counted_requests_per_day: float
    rate_limit_budget_share: float | None
    fastest_poll_interval_in_budget_s: float | None
    poll_bytes_per_day_conditional: float
    poll_bytes_per_day_unconditional: float
    webhook_requests_per_day: float
    webhook_bytes_per_day: float
    poll_detection_latency_expected_s: float
    poll_detection_latency_worst_s: float
    webhook_detection_latency_s: float
    reconcile_interval_s: float
    reconcile_requests_per_day: float
    hybrid_missed_detection_latency_worst_s: float
    retry_window_s: float | None
    downtime_s: float
    lost_if_down_webhook: float | None
    lost_if_down_hybrid: float | None
    lost_if_down_poll: float

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON carries them (floats rounded to 6 significant digits)."""
        return {name: _tidy(value) for name, value in asdict(self).items()}


def _tidy(value: object) -> object:
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    return value


@dataclass(frozen=True, slots=True)
class Reason:
    """One consideration: a stable ``code``, the sentence, how decisive it was, and
    which way it points (``None``: a caveat that points nowhere).

    >>> Reason("no_webhooks", "the provider offers no webhooks", 1.0, "poll").code
    'no_webhooks'
    """

    code: str
    text: str
    weight: float
    favours: Recommendation | None = None


@dataclass(frozen=True, slots=True)
class Advice:
    """What :func:`advise` concluded.

    ``reasons`` come most decisive first: those behind the recommendation (by weight),
    then caveats, then what spoke for another pattern. ``relay``: the webhooks must
    reach this machine through a relay (no public endpoint). ``poll_every`` is the
    interval the poll side of the advice should run at (the main poll, or the
    reconciliation poll of a hybrid).
    """

    recommendation: Recommendation
    reasons: tuple[Reason, ...]
    figures: Figures
    inputs: Inputs
    relay: bool = False
    poll_every: float = 60.0

    @property
    def codes(self) -> tuple[str, ...]:
        """The reasons' codes, in order."""
        return tuple(reason.code for reason in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        """The advice as ``hookwise advise --json`` prints it."""
        inputs = {name: _tidy(value) for name, value in asdict(self.inputs).items()}
        return {
            "recommendation": self.recommendation,
            "reasons": [reason.text for reason in self.reasons],
            "reason_codes": list(self.codes),
            "reason_details": [
                {"code": r.code, "favours": r.favours, "weight": round(r.weight, 3)}
                for r in self.reasons
            ],
            "relay": self.relay,
            "poll_every_s": _tidy(self.poll_every),
            "figures": self.figures.to_dict(),
            "inputs": inputs,
        }


# -- figures ----------------------------------------------------------------------------


def compute_figures(inputs: Inputs) -> Figures:
    """The figures of ``inputs``, with the poll interval equal to the latency need.

    >>> f = compute_figures(Inputs(latency=3600, changes_per_day=1, payload_bytes=1000))
    >>> f.polls_per_day, round(f.wasted_poll_share, 3), round(f.poll_bytes_per_day_conditional)
    (24.0, 0.959, 7886)
    """
    interval = inputs.latency
    targets = 1 if inputs.list_endpoint else inputs.resources
    polls_per_day = DAY / interval
    extra_pages = inputs.changes_per_day / inputs.page_size if inputs.list_endpoint else 0.0
    requests = polls_per_day * targets + extra_pages
    wasted = _wasted_share(inputs.changes_per_day, targets, interval)
    counted = _counted(inputs, interval, targets)
    limit = inputs.rate_limit_per_day
    full = inputs.payload_bytes
    first_pages = polls_per_day * targets
    if inputs.conditional:
        conditional_bytes = (
            first_pages * (wasted * inputs.not_modified_bytes + (1 - wasted) * full)
            + extra_pages * full
        )
    else:
        conditional_bytes = requests * full
    reconcile_every = _reconcile_every(inputs)
    reconcile_targets = 1 if (inputs.reconcile is not None or inputs.list_endpoint) else targets
    changes_per_second = inputs.changes_per_day / DAY
    return Figures(
        latency_need_s=inputs.latency,
        changes_per_day=inputs.changes_per_day,
        resources=inputs.resources,
        poll_interval_s=interval,
        polls_per_day=polls_per_day,
        poll_targets=targets,
        poll_requests_per_day=requests,
        wasted_poll_share=wasted,
        poll_requests_per_change=_ratio(requests, inputs.changes_per_day),
        rate_limit_per_day=limit,
        rate_limit_counted_requests_per_day=counted,
        rate_limit_budget_share=_ratio(counted, limit) if limit is not None else None,
        fastest_poll_interval_in_budget_s=_fastest_in_budget(inputs, targets),
        poll_bytes_per_day_conditional=conditional_bytes,
        poll_bytes_per_day_unconditional=requests * full,
        webhook_requests_per_day=inputs.changes_per_day,
        webhook_bytes_per_day=inputs.changes_per_day * full,
        poll_detection_latency_expected_s=interval / 2 + inputs.response_time,
        poll_detection_latency_worst_s=interval + inputs.response_time,
        webhook_detection_latency_s=inputs.send_delay,
        reconcile_interval_s=reconcile_every,
        reconcile_requests_per_day=DAY / reconcile_every * reconcile_targets,
        hybrid_missed_detection_latency_worst_s=reconcile_every + inputs.response_time,
        retry_window_s=inputs.retry_window,
        downtime_s=inputs.downtime,
        lost_if_down_webhook=_lost(changes_per_second, inputs.downtime, inputs.retry_window),
        lost_if_down_hybrid=_lost_hybrid(inputs, changes_per_second),
        lost_if_down_poll=0.0,
    )


def _ratio(part: float, whole: float) -> float | None:
    """``part / whole``, or ``None`` when that is not a finite number."""
    if whole <= 0:
        return None
    ratio = part / whole
    return ratio if math.isfinite(ratio) else None


def _wasted_share(changes_per_day: float, targets: int, interval: float) -> float:
    """P(no change at one target during one interval) for Poisson changes."""
    per_target = changes_per_day / DAY / targets
    return math.exp(-per_target * interval)


def _changed_share(changes_per_day: float, targets: int, interval: float) -> float:
    """1 - :func:`_wasted_share`, exact for tiny rates too (``expm1``)."""
    per_target = changes_per_day / DAY / targets
    return -math.expm1(-per_target * interval)


def _counted(inputs: Inputs, interval: float, targets: int) -> float:
    """Requests a day that count against the rate limit when polling every ``interval``."""
    first_pages = DAY / interval * targets
    extra_pages = inputs.changes_per_day / inputs.page_size if inputs.list_endpoint else 0.0
    if inputs.conditional and not inputs.counts_304:
        first_pages *= _changed_share(inputs.changes_per_day, targets, interval)
    return first_pages + extra_pages


def _fastest_in_budget(inputs: Inputs, targets: int) -> float | None:
    """The shortest interval (>= 1 s) whose counted requests fit in the rate limit.

    ``None`` without a limit, or when no interval fits (the extra pages alone exceed it).
    Counted requests fall as the interval grows, so a bisection finds the edge.
    """
    limit = inputs.rate_limit_per_day
    if limit is None:
        return None

    def fits(interval: float) -> bool:
        return _counted(inputs, interval, targets) <= limit

    if fits(MIN_POLL_INTERVAL):
        return MIN_POLL_INTERVAL
    high = DAY * 365
    if not fits(high):
        return None
    low = MIN_POLL_INTERVAL
    for _ in range(100):
        middle = (low + high) / 2
        if fits(middle):
            high = middle
        else:
            low = middle
    return high


def _reconcile_every(inputs: Inputs) -> float:
    every = min(max(inputs.latency, RECONCILE_EVERY_MIN), RECONCILE_EVERY_MAX)
    if inputs.reconcile_retention is not None and inputs.reconcile_retention > 0:
        every = min(every, inputs.reconcile_retention / 2)
    return every


def _lost(per_second: float, downtime: float, covered: float | None) -> float | None:
    if covered is None:
        return None
    return per_second * max(0.0, downtime - covered)


def _lost_hybrid(inputs: Inputs, per_second: float) -> float | None:
    """A reconciliation poll of the resources themselves reads their current state, so
    nothing is lost; one of the provider's list keeps what it holds for its retention."""
    if inputs.reconcile is None:
        return 0.0
    if inputs.reconcile_retention is None:
        return None
    covered = max(inputs.reconcile_retention, inputs.retry_window or 0.0)
    return _lost(per_second, inputs.downtime, covered)


# -- the decision -----------------------------------------------------------------------


def advise(inputs: Inputs) -> Advice:
    """The recommendation for ``inputs``, with its reasons and figures.

    >>> advise(Inputs(latency=60, changes_per_day=100, webhooks=False)).recommendation
    'poll'
    >>> advise(Inputs(latency=5, changes_per_day=1000, retry_window=3 * 86400)).codes[0]
    'polls_mostly_wasted'

    The steps, in order: no way to push → poll; no public endpoint → poll if polling can
    meet the need, else webhooks through a relay; a loose need that polling meets for
    next to nothing → poll; so many changes that polling takes far fewer requests than
    one webhook per change → poll; otherwise webhooks, made a hybrid when the
    provider's retries don't outlast the outage to plan for (never retries, unknown, or
    too short a window).
    """
    return _Decision(inputs, compute_figures(inputs)).run()


class _Decision:
    def __init__(self, inputs: Inputs, figures: Figures) -> None:
        self.inputs = inputs
        self.figures = figures
        self.reasons: list[Reason] = []
        self.relay = False
        share = figures.rate_limit_budget_share
        self.poll_fits = share is None or share <= 1.0
        self.poll_meets = self.poll_fits and inputs.latency >= MIN_POLL_INTERVAL

    def add(
        self, code: ReasonCode, weight: float, favours: Recommendation | None, text: str
    ) -> None:
        self.reasons.append(Reason(code, text, weight, favours))

    def run(self) -> Advice:
        recommendation = self.choose()
        return Advice(
            recommendation=recommendation,
            reasons=_rank(self.reasons, recommendation),
            figures=self.figures,
            inputs=self.inputs,
            relay=self.relay,
            poll_every=self.poll_every(recommendation),
        )

    def poll_every(self, recommendation: Recommendation) -> float:
        if recommendation == "hybrid":
            return self.figures.reconcile_interval_s
        every = max(self.inputs.latency, MIN_POLL_INTERVAL)
        fastest = self.figures.fastest_poll_interval_in_budget_s
        if fastest is not None:
            every = max(every, fastest)
        return every

    # The steps of the decision, in the order the docstring of advise() gives.

    def choose(self) -> Recommendation:
        inputs = self.inputs
        if not inputs.webhooks and not inputs.own_both:
            return self.without_push()
        if not inputs.webhooks:
            self.add(
                "own_both_can_push",
                0.7,
                "webhook",
                f"{self.who()} offers no webhooks, but you run both systems: have the "
                "source send signed webhooks (Standard Webhooks) when something changes",
            )
        if not inputs.public_endpoint:
            if self.poll_meets:
                self.add(
                    "no_public_endpoint",
                    1.0,
                    "poll",
                    "the receiver can't be reached from the internet, so webhooks can't "
                    f"arrive; polling every {_dur(self.poll_every('poll'))} meets the need "
                    f"({self.poll_cost()}) — or receive webhooks through a relay (a public "
                    "forwarder the receiver connects out to)",
                )
                self.notes_for_poll()
                return "poll"
            self.relay = True
            self.add(
                "relay_needed",
                1.0,
                "webhook",
                "the receiver can't be reached from the internet and polling can't meet the "
                f"need ({self.why_polling_fails()}): receive the webhooks through a relay (a "
                "public forwarder the receiver connects out to)",
            )
        elif self.poll_meets and (self.cheap() or self.batches()):
            return "poll"
        self.for_push()
        return self.webhook_or_hybrid()

    def without_push(self) -> Recommendation:
        self.add(
            "no_webhooks",
            1.0,
            "poll",
            f"{self.who()} offers no webhooks and you don't run it, so polling is the way "
            f"in: every {_dur(self.poll_every('poll'))} costs {self.poll_cost()}",
        )
        if self.inputs.latency < MIN_POLL_INTERVAL:
            self.add(
                "sub_second_latency",
                0.9,
                None,
                f"a {_dur(self.inputs.latency)} freshness need is below what polling "
                f"reaches (every {_dur(MIN_POLL_INTERVAL)} at best); ask for a streaming API "
                "(WebSocket, server-sent events) or accept a second",
            )
        if not self.poll_fits:
            self.add(
                "rate_limit_exceeded",
                0.9,
                None,
                f"polling every {_dur(self.inputs.latency)} needs "
                f"{_pct(self.figures.rate_limit_budget_share)} of the rate limit; "
                f"{self.budget_floor()}",
            )
        self.notes_for_poll()
        return "poll"

    def batches(self) -> bool:
        """Many changes, and polling needs BATCH_FACTOR times fewer requests than one
        webhook per change."""
        figures = self.figures
        if (
            figures.changes_per_day < HIGH_CHANGE_RATE
            or figures.poll_requests_per_day * BATCH_FACTOR > figures.webhook_requests_per_day
        ):
            return False
        what = "one listing" if self.inputs.list_endpoint else "each resource"
        ratio = figures.webhook_requests_per_day / figures.poll_requests_per_day
        self.add(
            "high_change_rate",
            0.9,
            "poll",
            f"at {_count(figures.changes_per_day)} changes a day, webhooks mean "
            f"{_count(figures.webhook_requests_per_day)} requests a day to your endpoint; "
            f"polling {what} every {_dur(self.inputs.latency)} takes "
            f"{_count(figures.poll_requests_per_day)} ({ratio:.0f}x fewer), and "
            f"{_pct(1 - figures.wasted_poll_share)} of polls find changes",
        )
        self.notes_for_poll()
        return True

    def cheap(self) -> bool:
        """A loose need that polling meets for next to nothing."""
        figures = self.figures
        share = figures.rate_limit_budget_share
        if (
            self.inputs.latency < CHEAP_LATENCY
            or figures.poll_requests_per_day > CHEAP_REQUESTS_PER_DAY
            or (share is not None and share > CHEAP_BUDGET_SHARE)
        ):
            return False
        self.add(
            "polling_is_cheap",
            0.8,
            "poll",
            f"the data may be {_dur(self.inputs.latency)} old, and polling that often costs "
            f"{self.poll_cost()}: no public endpoint to run, and a poll never misses a "
            "change for being down (it reads the current state when it runs again)",
        )
        self.notes_for_poll()
        return True

    def for_push(self) -> None:
        """What speaks for webhooks over polling."""
        inputs, figures = self.inputs, self.figures
        if inputs.latency < MIN_POLL_INTERVAL:
            delay = figures.webhook_detection_latency_s
            caveat = (
                f"; webhooks usually take about {_dur(delay)} themselves, so a need this "
                "tight calls for a streaming API (WebSocket, server-sent events)"
                if delay > inputs.latency
                else ""
            )
            self.add(
                "sub_second_latency",
                0.9,
                "webhook",
                f"a {_dur(inputs.latency)} freshness need is out of polling's reach "
                f"({_count(figures.poll_requests_per_day)} requests a day, and a poll "
                f"every {_dur(MIN_POLL_INTERVAL)} at best): only push comes close{caveat}",
            )
        elif not self.poll_fits:
            self.add(
                "rate_limit_exceeded",
                0.9,
                "webhook",
                f"polling every {_dur(inputs.latency)} needs "
                f"{_pct(figures.rate_limit_budget_share)} of the rate limit "
                f"({_count(figures.rate_limit_counted_requests_per_day)} of "
                f"{_count(figures.rate_limit_per_day or 0)} requests a day); "
                f"{self.budget_floor()}",
            )
        elif (figures.rate_limit_budget_share or 0.0) > TIGHT_BUDGET_SHARE:
            self.add(
                "rate_limit_tight",
                0.6,
                "webhook",
                f"polling every {_dur(inputs.latency)} would use "
                f"{_pct(figures.rate_limit_budget_share)} of the rate limit, leaving little "
                "for everything else that calls the API",
            )
        wasted = figures.wasted_poll_share
        if wasted >= WASTED_SHARE:
            self.add(
                "polls_mostly_wasted",
                0.5 + 0.4 * wasted,
                "webhook",
                f"{_pct(wasted)} of polls every {_dur(inputs.latency)} would find nothing "
                f"new ({_count(figures.poll_requests_per_day)} requests a day for "
                f"{_count(figures.changes_per_day)} changes); a webhook is one request "
                "per change",
            )
        poll_expected = figures.poll_detection_latency_expected_s
        webhook = figures.webhook_detection_latency_s
        if webhook < poll_expected:
            self.add(
                "webhook_fresher",
                0.4,
                "webhook",
                f"a webhook arrives about {_dur(webhook)} after the change; a poll every "
                f"{_dur(inputs.latency)} sees it {_dur(poll_expected)} later on average",
            )
        else:
            self.add(
                "webhook_not_fresher",
                0.3,
                None,
                f"a webhook (about {_dur(webhook)} after the change) is no fresher than a poll "
                f"every {_dur(inputs.latency)} ({_dur(poll_expected)} on average): webhooks win "
                "here on cost and load, not on latency",
            )

    def webhook_or_hybrid(self) -> Recommendation:
        """Webhooks alone when the provider's retries outlast the outage to plan for."""
        inputs, figures = self.inputs, self.figures
        window = inputs.retry_window
        outage = _dur(inputs.downtime)
        if inputs.own_both and (window is None or not inputs.webhooks):
            self.add(
                "own_both_sets_retries",
                0.5,
                "webhook",
                "you run the sender, so you choose its retries: make it retry for longer "
                f"than the outage you plan for ({outage}), e.g. the Standard Webhooks "
                "schedule (about 3 days)",
            )
            return "webhook"
        if window == 0:
            self.add(
                "provider_never_retries",
                0.95,
                "hybrid",
                f"{self.who()} does not retry failed deliveries: every change during any "
                f"outage is lost (about {_count(figures.lost_if_down_webhook or 0)} in "
                f"{outage}) unless a reconciliation poll catches up: "
                f"{self.reconcile_text()}",
            )
            return "hybrid"
        if window is None:
            self.add(
                "retry_policy_unknown",
                0.7,
                "hybrid",
                f"{self.who()}'s retry policy is not known, so an outage may lose changes; "
                f"a reconciliation poll makes that safe: {self.reconcile_text()}",
            )
            return "hybrid"
        lost = figures.lost_if_down_webhook or 0.0
        if window < inputs.downtime and lost >= LOST_CHANGES:
            self.add(
                "short_retry_window",
                0.85,
                "hybrid",
                f"{self.who()} retries for {_dur(window)}; a {outage} outage would lose "
                f"about {_count(lost)} changes, so add a reconciliation poll: "
                f"{self.reconcile_text()}",
            )
            return "hybrid"
        self.add(
            "retries_cover_downtime",
            0.5,
            "webhook",
            f"{self.who()} retries failed deliveries for {_dur(window)}, longer than the "
            f"{outage} outage planned for: nothing is lost while the receiver is down",
        )
        return "webhook"

    # -- wording helpers -----------------------------------------------------------------

    def who(self) -> str:
        return self.inputs.provider or "the provider"

    def poll_cost(self) -> str:
        figures = self.figures
        every = self.poll_every("poll")
        if every == self.inputs.latency:
            requests = figures.poll_requests_per_day
            share = figures.rate_limit_budget_share
        else:
            requests = DAY / every * figures.poll_targets
            limit = figures.rate_limit_per_day
            share = requests / limit if limit else None
        text = f"{_count(requests)} requests a day"
        if share is not None:
            text += f", {_pct(share)} of the rate limit"
        return text

    def why_polling_fails(self) -> str:
        if self.inputs.latency < MIN_POLL_INTERVAL:
            return f"{_dur(self.inputs.latency)} is below what polling reaches"
        return (
            f"every {_dur(self.inputs.latency)} needs "
            f"{_pct(self.figures.rate_limit_budget_share)} of the rate limit"
        )

    def budget_floor(self) -> str:
        fastest = self.figures.fastest_poll_interval_in_budget_s
        if fastest is None:
            return "no interval fits the limit; ask for a higher one"
        fix = "raise the limit (it is yours)" if self.inputs.own_both else "ask for a higher limit"
        return f"the limit allows a poll every {_dur(fastest)} at best; {fix} or accept that"

    def reconcile_text(self) -> str:
        every = _dur(self.figures.reconcile_interval_s)
        if self.inputs.reconcile is not None:
            return f"read {self.inputs.reconcile} every {every}"
        return f"poll the resources every {every} to pick up what the webhooks missed"

    def notes_for_poll(self) -> None:
        """Caveats worth knowing when polling is the answer."""
        inputs, figures = self.inputs, self.figures
        if inputs.conditional and figures.wasted_poll_share >= WASTED_SHARE:
            saved = (
                figures.poll_bytes_per_day_unconditional - figures.poll_bytes_per_day_conditional
            )
            free = " and don't count against the rate limit" if not inputs.counts_304 else ""
            self.add(
                "conditional_requests_pay",
                0.3,
                "poll",
                f"{_pct(figures.wasted_poll_share)} of polls find nothing; with conditional "
                f"requests they are answered 304 (saving {_bytes(saved)} a day){free}",
            )
        elif not inputs.conditional and figures.wasted_poll_share >= WASTED_SHARE:
            self.add(
                "no_conditional_requests",
                0.3,
                None,
                f"the API does not answer 304, so each of the {_pct(figures.wasted_poll_share)}"
                " of polls that find nothing still downloads the full answer "
                f"({_bytes(figures.poll_bytes_per_day_unconditional)} a day in all)",
            )


def _rank(reasons: list[Reason], recommendation: Recommendation) -> tuple[Reason, ...]:
    """Reasons behind the recommendation first (by weight), then caveats, then the rest."""

    def side(reason: Reason) -> int:
        if reason.favours == recommendation or (
            recommendation == "hybrid" and reason.favours == "webhook"
        ):
            return 0
        return 1 if reason.favours is None else 2

    def order(reason: Reason) -> tuple[int, float]:
        return side(reason), -reason.weight

    return tuple(sorted(reasons, key=order))


# -- wording ------------------------------------------------------------------------------


def _dur(seconds: float) -> str:
    return format_duration(seconds)


def _count(value: float) -> str:
    if value >= 10 or value == round(value):
        return f"{round(value):,}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def _pct(share: float | None) -> str:
    if share is None:
        return "an unknown share"
    percent = share * 100
    if 0 < percent < 1:
        return "under 1%"
    if 99 < percent < 100:
        return "over 99%"
    if percent >= 1000:
        return f"{percent:,.0f}%"
    return f"{percent:.0f}%"


def _bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"
