"""What ``hookwise send`` will send, decided before anything is sent: pure and seeded.

A plan is a list of *events* (a body and a delivery id each, some marked to go with a
bad signature or a stale timestamp) and the *requests* that carry them: each event
``duplicates`` times, in order or shuffled, grouped into *steps* — the requests of one
step start at the same moment. Nothing here signs, sends or reads the clock.
"""

from __future__ import annotations

import math
import random
import secrets as _random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_REQUESTS",
    "Chaos",
    "EventContent",
    "Plan",
    "PlannedEvent",
    "PlannedRequest",
    "make_plan",
]

MAX_REQUESTS = 100_000
"""The most requests one run plans (events x duplicates): a tool for tests, not a load
generator."""
MAX_CONCURRENCY = 256
"""The most requests in flight at once."""

Expected = Literal["2xx", "4xx"]


@dataclass(frozen=True, slots=True)
class Chaos:
    """How to send: how many events, how often each, in what order, how many broken.

    >>> Chaos(count=20, duplicates=3, shuffle=True, seed=7, bad_signature_rate=0.25)

    Rates are shares of the events (not of the requests): ``round(rate * count)`` of
    them, at least one when the rate is above zero, chosen at random. Every copy of
    such an event is broken the same way, as a forger's retries would be.
    ``ValueError`` with what is wrong for values out of range.
    """

    count: int = 1
    duplicates: int = 1
    shuffle: bool = False
    seed: int | None = None
    bad_signature_rate: float = 0.0
    stale_rate: float = 0.0
    concurrency: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count {self.count} must be at least 1")
        if self.duplicates < 1:
            raise ValueError(f"duplicates {self.duplicates} must be at least 1 (1: no copies)")
        if self.count * self.duplicates > MAX_REQUESTS:
            raise ValueError(
                f"count x duplicates is {self.count * self.duplicates} requests; at most "
                f"{MAX_REQUESTS} are sent in one run"
            )
        for name in ("bad_signature_rate", "stale_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} {rate!r} must be between 0 and 1, e.g. 0.25")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(
                f"concurrency {self.concurrency} must be between 1 and {MAX_CONCURRENCY}"
            )

    @property
    def random(self) -> bool:
        """Whether the plan depends on a random draw (and so on a seed)."""
        partial = any(0.0 < r < 1.0 for r in (self.bad_signature_rate, self.stale_rate))
        return self.shuffle or partial


class EventContent(NamedTuple):
    """What an event is made of: its type, its body and the delivery id it is sent with."""

    type: str
    body: bytes
    delivery_id: str


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One event: sent ``duplicates`` times, each copy with the same body and id."""

    number: int
    """1, 2, ... in the order the events were made."""
    type: str
    body: bytes
    delivery_id: str
    bad_signature: bool = False
    stale: bool = False

    @property
    def kind(self) -> str:
        """``good``, ``bad signature``, ``stale`` or ``bad signature, stale``."""
        broken = []
        if self.bad_signature:
            broken.append("bad signature")
        if self.stale:
            broken.append("stale")
        return ", ".join(broken) or "good"

    @property
    def expected(self) -> Expected:
        """What a correct receiver answers: ``2xx`` (stored, or already stored) for a
        good event, ``4xx`` (refused) for a forged or stale one."""
        return "4xx" if self.bad_signature or self.stale else "2xx"


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One request of the plan: a copy of an event, at a place in the order."""

    number: int
    """1, 2, ... in the order the requests start."""
    event: PlannedEvent
    copy: int
    """1 for the first copy of the event, up to ``duplicates``."""
    step: int
    """Requests with the same step start at the same moment."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The events and the requests of one run, and the seed that drew them."""

    chaos: Chaos
    events: tuple[PlannedEvent, ...]
    requests: tuple[PlannedRequest, ...]
    seed: int | None
    """The seed of the random draws (shuffle, which events break); ``None`` when the
    plan drew nothing at random."""

    @property
    def steps(self) -> list[tuple[PlannedRequest, ...]]:
        """The requests grouped by step, in the order they start."""
        groups: list[tuple[PlannedRequest, ...]] = []
        for request in self.requests:
            if groups and groups[-1][0].step == request.step:
                groups[-1] = (*groups[-1], request)
            else:
                groups.append((request,))
        return groups


def make_plan(
    chaos: Chaos,
    new_event: Callable[[int, bool], EventContent],
    *,
    new_seed: Callable[[], int] = lambda: _random.randbelow(2**31),
) -> Plan:
    """The plan for ``chaos``; ``new_event(number, stale)`` makes each event's content
    (a stale event is made as of its old signing time).

    >>> plan = make_plan(Chaos(count=2, duplicates=2),
    ...                  lambda n, stale: EventContent("ping", b"{}", f"msg_{n}"))
    >>> [(r.event.number, r.copy) for r in plan.requests]
    [(1, 1), (1, 2), (2, 1), (2, 2)]

    Each event's copies go one after the other; with ``concurrency`` above 1, the
    first two copies of every other event (the 1st, the 3rd, ...) share a step: they
    are sent at the same moment, as a provider's retry that overlaps the first
    attempt. ``shuffle`` puts the steps in a random order. The random draws come
    from ``chaos.seed``, else from a new seed, returned in :attr:`Plan.seed`.
    """
    seed = chaos.seed if chaos.seed is not None else new_seed() if chaos.random else None
    draw = random.Random(seed)
    bad = _pick(draw, chaos.count, chaos.bad_signature_rate)
    stale = _pick(draw, chaos.count, chaos.stale_rate)
    events = []
    for number in range(1, chaos.count + 1):
        content = new_event(number, number in stale)
        events.append(
            PlannedEvent(
                number=number,
                type=content.type,
                body=content.body,
                delivery_id=content.delivery_id,
                bad_signature=number in bad,
                stale=number in stale,
            )
        )
    steps: list[list[tuple[PlannedEvent, int]]] = []
    for event in events:
        copies = [(event, copy) for copy in range(1, chaos.duplicates + 1)]
        together = chaos.concurrency > 1 and chaos.duplicates > 1 and event.number % 2 == 1
        if together:
            steps.append(copies[:2])
            copies = copies[2:]
        steps.extend([one] for one in copies)
    if chaos.shuffle:
        draw.shuffle(steps)
    requests: list[PlannedRequest] = []
    for step_number, step in enumerate(steps, start=1):
        for event, copy in step:
            requests.append(
                PlannedRequest(number=len(requests) + 1, event=event, copy=copy, step=step_number)
            )
    return Plan(chaos=chaos, events=tuple(events), requests=tuple(requests), seed=seed)


def _pick(draw: random.Random, count: int, rate: float) -> frozenset[int]:
    """Event numbers (1..count) for a share ``rate``: the nearest whole number of
    them, at least one when ``rate`` is above zero."""
    if rate <= 0.0:
        return frozenset()
    if rate >= 1.0:
        return frozenset(range(1, count + 1))
    wanted = max(1, min(count, math.floor(rate * count + 0.5)))
    return frozenset(draw.sample(range(1, count + 1), wanted))
