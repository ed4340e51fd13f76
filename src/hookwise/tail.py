"""Following the store: events as they arrive, deliveries as they settle.

>>> async with open_store(settings.store) as store:
...     tail = Tail(store, source="stripe")
...     await tail.follow(print_line, stop=stop)

What ``hookwise tail`` shows. It only reads, through the store's ordinary queries,
so it works the same on every engine and beside any number of receivers and workers:
each round asks for the newest events (paging back to the last one seen) and for the
deliveries of the events still being worked on. An event is followed until every
delivery of it is settled for good (``done``, ``dead`` or ``skipped``); a retry is
shown each time it is scheduled.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from .store import DeliveryRecord, EventFilter, EventRecord, Store

__all__ = [
    "DEFAULT_INTERVAL",
    "Arrived",
    "Settled",
    "Tail",
    "TailLine",
    "line_json",
    "line_text",
]

DEFAULT_INTERVAL = 0.5
"""Seconds between two looks at the store."""
PAGE = 200
"""Events asked for per query."""
FOLLOWED = 1000
"""Events whose deliveries are followed at most (the oldest are let go beyond it)."""
CHECKED_PER_ROUND = 50
"""Followed events whose deliveries are read per round, in turn, so a long list of
unsettled events costs the store a bounded number of queries per interval."""

Outcome = Literal["done", "retry", "dead", "skipped"]
_OUTCOMES: dict[str, Outcome] = {
    "done": "done",
    "retrying": "retry",
    "dead": "dead",
    "skipped": "skipped",
}
_FINAL = frozenset({"done", "dead", "skipped"})


@dataclass(frozen=True, slots=True)
class Arrived:
    """An event was stored, with deliveries to these handlers (none: no handler is
    subscribed to it)."""

    event: EventRecord
    handlers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settled:
    """One delivery of an event was settled: done, scheduled to retry, dead, or skipped."""

    event: EventRecord
    delivery: DeliveryRecord
    outcome: Outcome


TailLine = Arrived | Settled


class Tail:
    """Reads what changed in the store since the last look.

    >>> tail = Tail(store, type_glob="invoice.*", since=time.time() - 600)
    >>> lines = await tail.start()      # the events since then, and how they settled
    >>> lines = await tail.poll()       # what happened since

    Without ``since``, only what is stored after :meth:`start` is shown.
    """

    def __init__(
        self,
        store: Store,
        *,
        source: str | None = None,
        type_glob: str | None = None,
        since: float | None = None,
    ) -> None:
        self.store = store
        self.filter = EventFilter(source=source, type=type_glob, since=since, limit=PAGE)
        self._since = since
        self._floor = 0
        """Events at or below this seq are never shown (those stored before the start)."""
        self._high = 0
        """The highest seq shown so far."""
        self._shown: set[int] = set()
        self._followed: OrderedDict[int, _Followed] = OrderedDict()
        self._started = False

    async def start(self) -> list[TailLine]:
        """Take the starting position; with ``since``, return what happened since then."""
        self._started = True
        if self._since is None:
            newest = await self.store.list_events(EventFilter(limit=1))
            self._floor = self._high = newest[0].seq if newest else 0
            return []
        return await self.poll()

    async def poll(self) -> list[TailLine]:
        """What arrived and settled since the last call, in that order."""
        if not self._started:
            return await self.start()
        lines: list[TailLine] = []
        for record in await self._arrivals():
            followed = _Followed(record)
            settled = await self._check(followed)
            lines.append(Arrived(record, tuple(followed.handlers)))
            lines.extend(settled)
            if not followed.finished:
                self._followed[record.seq] = followed
        while len(self._followed) > FOLLOWED:
            self._followed.popitem(last=False)
        for seq in list(self._followed)[:CHECKED_PER_ROUND]:
            followed = self._followed.pop(seq)
            lines.extend(await self._check(followed))
            if not followed.finished:
                self._followed[seq] = followed  # to the back of the queue
        return lines

    async def follow(
        self,
        emit: Callable[[TailLine], None],
        *,
        stop: asyncio.Event,
        interval: float = DEFAULT_INTERVAL,
        ready: Callable[[], None] | None = None,
    ) -> None:
        """Call ``emit`` with every line until ``stop`` is set; ``ready()`` once the
        starting position is taken (what is stored from then on will be shown)."""
        for line in await self.start():
            emit(line)
        if ready is not None:
            ready()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
            if stop.is_set():
                return
            for line in await self.poll():
                emit(line)

    async def _arrivals(self) -> list[EventRecord]:
        # Newest first, page by page back to the newest already shown. Events that
        # commit late with a lower seq (concurrent writers on PostgreSQL) still show,
        # as long as they land in the first page.
        found: list[EventRecord] = []
        flt = self.filter
        high = self._high
        first = True
        while True:
            page = await self.store.list_events(flt)
            for record in page:
                if record.seq > self._floor and record.seq not in self._shown:
                    found.append(record)
            if first and page:
                lowest = page[-1].seq
                self._shown = {seq for seq in self._shown if seq >= lowest}
            first = False
            if len(page) < flt.limit or page[-1].seq <= high:
                break
            flt = EventFilter(
                source=flt.source,
                type=flt.type,
                since=flt.since,
                before_seq=page[-1].seq,
                limit=flt.limit,
            )
        found.sort(key=lambda record: record.seq)
        for record in found:
            self._shown.add(record.seq)
            self._high = max(self._high, record.seq)
        return found

    async def _check(self, followed: _Followed) -> list[TailLine]:
        lines: list[TailLine] = []
        deliveries = sorted(await self.store.deliveries(followed.event.seq), key=lambda d: d.id)
        followed.handlers = [delivery.handler for delivery in deliveries]
        for delivery in deliveries:
            outcome = _OUTCOMES.get(delivery.status)
            state = (delivery.status, delivery.attempts)
            if outcome is None or followed.seen.get(delivery.id) == state:
                continue
            followed.seen[delivery.id] = state
            lines.append(Settled(followed.event, delivery, outcome))
        followed.finished = all(delivery.status in _FINAL for delivery in deliveries)
        return lines


@dataclass(slots=True)
class _Followed:
    """An event whose deliveries are not all settled for good yet."""

    event: EventRecord
    seen: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Delivery id -> the (status, attempts) last shown."""
    handlers: list[str] = field(default_factory=list)
    finished: bool = False


def line_json(line: TailLine) -> dict[str, object]:
    """One line as ``hookwise tail --json`` prints it.

    ``{"kind": "event", "seq", "time", "source", "type", "id", "intake", "handlers",
    "ordering_key", "occurred_at"}`` or ``{"kind": "delivery", "seq", "time",
    "source", "type", "id", "delivery", "handler", "status", "attempts", "error",
    "next_attempt_at"}`` with ``status`` one of done, retry, dead, skipped.
    """
    event = line.event
    common: dict[str, object] = {
        "seq": event.seq,
        "source": event.source,
        "type": event.type,
        "id": event.dedup_key,
    }
    if isinstance(line, Arrived):
        return {
            "kind": "event",
            "time": _iso(event.received_at),
            **common,
            "intake": event.intake,
            "handlers": list(line.handlers),
            "ordering_key": event.ordering_key,
            "occurred_at": _iso(event.occurred_at),
        }
    delivery = line.delivery
    return {
        "kind": "delivery",
        "time": _iso(delivery.updated_at),
        **common,
        "delivery": delivery.id,
        "handler": delivery.handler,
        "status": line.outcome,
        "attempts": delivery.attempts,
        "error": delivery.last_error,
        "next_attempt_at": _iso(delivery.next_attempt_at) if line.outcome == "retry" else None,
    }


_STYLE = {"done": "green", "retry": "yellow", "dead": "red", "skipped": "dim"}


def line_text(line: TailLine, *, now: float) -> str:
    """One line as ``hookwise tail`` prints it (Rich markup; times are local).

    ``12:00:01.250  #12 stripe invoice.paid evt_1 (push, 1 handler)`` for an arrival,
    ``12:00:01.300  #12 stripe invoice.paid -> billing done (1 attempt)`` for a delivery.
    """
    from rich.markup import escape

    event = line.event
    head = f"#{event.seq} {escape(event.source)} {escape(event.type)}"
    if isinstance(line, Arrived):
        count = len(line.handlers)
        handlers = "no handler" if count == 0 else f"{count} handler{'' if count == 1 else 's'}"
        return (
            f"{_clock(event.received_at)}  [bold]{head}[/] {escape(event.dedup_key)} "
            f"[dim]({escape(event.intake)}, {handlers})[/]"
        )
    delivery = line.delivery
    attempts = f"{delivery.attempts} attempt{'' if delivery.attempts == 1 else 's'}"
    text = (
        f"{_clock(delivery.updated_at)}  {head} -> {escape(delivery.handler)} "
        f"[{_STYLE[line.outcome]}]{line.outcome}[/] ({attempts}"
    )
    if line.outcome == "retry" and delivery.next_attempt_at is not None:
        wait = max(0.0, delivery.next_attempt_at - now)
        text += f", next in {wait:.0f}s" if wait >= 1 else ", next now"
    text += ")"
    if delivery.last_error and line.outcome != "done":
        text += f": {escape(delivery.last_error)}"
    return text


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment).strftime("%H:%M:%S.%f")[:-3]


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    text = datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
