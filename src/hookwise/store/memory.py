"""A store that lives in the process's memory: fast, and gone when the process ends.

It keeps exactly the promises of the SQLite and PostgreSQL stores (dedup on
``(source, dedup_key)``, leases with fencing, statuses, attempt history and ordering
groups), so it is what tests and ``hookwise.testing`` use.

:class:`Subscribers` (who wants to hear that new work may be due) lives here too:
the SQLite store shares it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Self, get_args

from ..config import StoreSettings
from ..errors import StoreError, StoreNotOpen
from ..events import Event, NewEvent
from ..transactions import StoreTransaction
from . import _base
from ._base import (
    AppendResult,
    AttemptRecord,
    Claim,
    DeliveryRecord,
    DeliveryStatus,
    EventFilter,
    EventRecord,
    Ordering,
    OrderingCounts,
    OrderingState,
    RejectionRecord,
    Settlement,
)

__all__ = ["MemoryStore", "Subscribers", "call_subscribers"]

MEMORY_URL = "memory://"

FINISHED_STATUSES = frozenset({"done", "skipped"})
"""A delivery in one of these needs nothing more; an event whose deliveries all are
(or that has none) may be purged."""

DISCARDED = "discarded"
"""The error a discarded dead letter is left with."""

STALE = "stale"
"""The error of an ordered delivery skipped because a newer event of its group was
already applied (``latest`` and ``coalesce``)."""

SUPERSEDED = "superseded"
"""The error of a waiting ``coalesce`` delivery skipped because a newer one runs."""

_log = logging.getLogger("hookwise.store")

DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)

# The event's summary status is its least settled delivery.
_SETTLEDNESS: dict[str, int] = {
    "pending": 0,
    "leased": 1,
    "retrying": 2,
    "dead": 3,
    "skipped": 4,
    "done": 5,
}

_SETTLED_STATUS: dict[str, DeliveryStatus] = {
    "done": "done",
    "retry": "retrying",
    "dead": "dead",
    "skipped": "skipped",
}


@dataclass(slots=True)
class _Delivery:
    id: int
    event_seq: int
    handler: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float | None
    created_at: float
    updated_at: float
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    fence: int = 0
    last_error: str | None = None
    history: list[AttemptRecord] = field(default_factory=list)
    ordering_key: str | None = None
    ordering: Ordering | None = None
    """Set (with ``ordering_key``) when the delivery belongs to an ordered group."""

    @property
    def group(self) -> tuple[str, str] | None:
        if self.ordering is None or self.ordering_key is None:
            return None
        return (self.handler, self.ordering_key)

    @property
    def shown_status(self) -> DeliveryStatus:
        """The status records show: a pending delivery without a due time waits
        behind the active member of its group."""
        if self.status == "pending" and self.next_attempt_at is None:
            return "waiting"
        return self.status

    def is_due(self, now: float) -> bool:
        if self.status in ("pending", "retrying"):
            return self.next_attempt_at is not None and self.next_attempt_at <= now
        if self.status == "leased":
            return self.lease_expires_at is not None and self.lease_expires_at <= now
        return False

    def holds(self, owner: str, fence: int) -> bool:
        return self.status == "leased" and self.lease_owner == owner and self.fence == fence

    def schedule(self, now: float, *, wait: bool = False) -> None:
        """Pending again now (or waiting, with ``wait``) with a fresh attempt budget."""
        self.status = "pending"
        self.attempts = 0
        self.next_attempt_at = None if wait else now
        self.lease_owner = None
        self.lease_expires_at = None
        self.updated_at = now

    def skip(self, reason: str, now: float) -> None:
        """Settled ``skipped`` without running: no attempt is recorded."""
        self.status = "skipped"
        self.last_error = reason
        self.next_attempt_at = None
        self.lease_owner = None
        self.lease_expires_at = None
        self.updated_at = now


@dataclass(slots=True)
class _Group:
    """The unfinished members of one ordered group ``(handler, ordering_key)``: at
    most one ``head`` (due, leased or retrying), the others waiting behind it."""

    head: _Delivery | None = None
    waiting: dict[int, _Delivery] = field(default_factory=dict)


class Subscribers:
    """Callbacks that want to hear that new work may be due, grouped by the event
    loop each one subscribed from (the loop it must run on).

    >>> subscribers = Subscribers()
    >>> unsubscribe = subscribers.add(worker.wake)   # from a coroutine
    >>> subscribers.notify()                         # after a commit, from any coroutine

    :attr:`by_loop` is replaced, never changed in place, so another thread (the
    SQLite writer) may read it without taking the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: tuple[_Subscription, ...] = ()
        self.by_loop: Mapping[asyncio.AbstractEventLoop, tuple[Callable[[], None], ...]] = {}

    def add(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Subscribe ``callback`` on the running loop; returns the function that
        unsubscribes it (calling that twice is harmless)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "subscribe() needs a running event loop: call it from a coroutine, "
                "on the loop the callback should run on"
            ) from None
        entry = _Subscription(loop, callback)
        with self._lock:
            self._entries = (*self._entries, entry)
            self._regroup()

        def unsubscribe() -> None:
            with self._lock:
                self._entries = tuple(e for e in self._entries if e is not entry)
                self._regroup()

        return unsubscribe

    def _regroup(self) -> None:
        grouped: dict[asyncio.AbstractEventLoop, tuple[Callable[[], None], ...]] = {}
        for entry in self._entries:
            grouped[entry.loop] = (*grouped.get(entry.loop, ()), entry.callback)
        self.by_loop = grouped

    def notify(self) -> None:
        """Schedule every callback on its own loop: one wake-up per other loop; on the
        loop this runs on, the callbacks just run at its next turn."""
        by_loop = self.by_loop
        if not by_loop:
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, callbacks in by_loop.items():
            try:
                if loop is current:
                    loop.call_soon(call_subscribers, callbacks)
                else:
                    loop.call_soon_threadsafe(call_subscribers, callbacks)
            except RuntimeError:
                pass  # that loop is closed; nobody is left to wake


@dataclass(frozen=True, slots=True, eq=False)
class _Subscription:
    loop: asyncio.AbstractEventLoop
    callback: Callable[[], None]


def call_subscribers(callbacks: Iterable[Callable[[], None]]) -> None:
    """Run subscriber callbacks (on their loop); one that fails is logged, and the
    others still run."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            _log.exception("a store subscriber (%r) failed", callback)


class MemoryStore:
    """The whole store in a few dicts, guarded by one lock.

    >>> async with MemoryStore() as store:
    ...     result = await store.append(new_event, handlers=["billing"])

    Closing keeps the data, so a closed store can be opened again and still holds
    what was appended.
    """

    supports_transactions = False
    """No database, so no handler transactions: :meth:`begin` refuses."""

    def __init__(self, url: str = MEMORY_URL, *, settings: StoreSettings | None = None) -> None:
        self.url = url
        self.settings = settings or StoreSettings(url=url)
        self._lock = threading.Lock()
        self._open = False
        self._events: dict[int, EventRecord] = {}
        self._seq_by_key: dict[tuple[str, str], int] = {}
        self._deliveries: dict[int, _Delivery] = {}
        self._by_event: dict[int, list[int]] = {}
        self._next_seq = 1
        self._next_delivery_id = 1
        self._next_attempt_id = 1
        self._rejections: dict[int, RejectionRecord] = {}
        self._rejection_ids: dict[str, deque[int]] = {}  # per source, oldest first
        self._next_rejection_id = 1
        self._groups: dict[tuple[str, str], _Group] = {}
        self._applied: dict[tuple[str, str], OrderingState] = {}
        self._subscribers = Subscribers()
        self._poll_states: dict[str, _base.PollState] = {}
        self._poll_items: dict[str, dict[str, str]] = {}

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if not self._open:
            raise StoreNotOpen("memory store")

    # -- intake ---------------------------------------------------------------------

    async def append(
        self, event: NewEvent, handlers: Sequence[str], *, ordering: Ordering | None = None
    ) -> AppendResult:
        self._check_open()
        if event.ordering_key is None:
            ordering = None  # nothing to order on: runs like an unordered event
        due_work = False
        with self._lock:
            key = (event.source, event.dedup_key)
            existing = self._seq_by_key.get(key)
            if existing is not None:
                return AppendResult(seq=existing, duplicate=True)
            seq = self._next_seq
            self._next_seq += 1
            self._events[seq] = EventRecord(
                seq=seq,
                source=event.source,
                dedup_key=event.dedup_key,
                type=event.type,
                ordering_key=event.ordering_key,
                occurred_at=event.occurred_at,
                received_at=event.received_at,
                intake=event.intake,
                headers=tuple(event.headers),
                body=bytes(event.body),
            )
            self._seq_by_key[key] = seq
            self._by_event[seq] = []
            for handler in dict.fromkeys(handlers):
                delivery = self._add_delivery(seq, handler, due=event.received_at)
                if ordering is None:
                    due_work = True
                else:
                    due_work |= self._join_group(delivery, ordering, event)
        if due_work:
            self._subscribers.notify()
        return AppendResult(seq=seq, duplicate=False)

    def _join_group(self, delivery: _Delivery, ordering: Ordering, event: NewEvent) -> bool:
        """Place a new ordered delivery in its group: skipped when stale, waiting
        behind an active member, else active. True when it is active (due work)."""
        assert event.ordering_key is not None
        delivery.ordering = ordering
        delivery.ordering_key = event.ordering_key
        key = (delivery.handler, event.ordering_key)
        occurred_at, received_at = event.occurred_at, event.received_at
        if ordering.policy != "serial" and self._is_stale(key, occurred_at):
            delivery.skip(STALE, received_at)
            return False
        group = self._groups.setdefault(key, _Group())
        head = group.head
        due = received_at + ordering.window
        if head is None:
            group.head = delivery
            delivery.next_attempt_at = due
            return True
        head_occurred_at = self._events[head.event_seq].occurred_at
        if (
            ordering.window > 0
            and head.status == "pending"
            and head.attempts == 0
            and head.next_attempt_at is not None
            and occurred_at is not None
            and head_occurred_at is not None
            and head_occurred_at > occurred_at
        ):
            # An earlier event arrived within the window: it goes first.
            delivery.next_attempt_at = max(due, head.next_attempt_at)
            head.next_attempt_at = None
            head.updated_at = received_at
            group.waiting[head.id] = head
            group.head = delivery
            return True
        delivery.next_attempt_at = None
        group.waiting[delivery.id] = delivery
        return False

    def _is_stale(self, key: tuple[str, str], occurred_at: float | None) -> bool:
        """Whether an event of the group ``key`` is older than the newest applied."""
        state = self._applied.get(key)
        return (
            occurred_at is not None
            and state is not None
            and state.applied_at is not None
            and occurred_at < state.applied_at
        )

    def _add_delivery(self, seq: int, handler: str, *, due: float) -> _Delivery:
        delivery = _Delivery(
            id=self._next_delivery_id,
            event_seq=seq,
            handler=handler,
            status="pending",
            attempts=0,
            next_attempt_at=due,
            created_at=due,
            updated_at=due,
        )
        self._next_delivery_id += 1
        self._deliveries[delivery.id] = delivery
        self._by_event[seq].append(delivery.id)
        return delivery

    # -- work -------------------------------------------------------------------------

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease: float,
        now: float,
        handlers: Collection[str] | None = None,
    ) -> list[Claim]:
        self._check_open()
        if limit <= 0:
            return []
        wanted = set(handlers) if handlers is not None else None
        with self._lock:
            due = [
                d
                for d in self._deliveries.values()
                if d.is_due(now) and (wanted is None or d.handler in wanted)
            ]
            due.sort(key=lambda d: (d.next_attempt_at or 0.0, d.id))
            claims = []
            for delivery in due[:limit]:
                delivery.status = "leased"
                delivery.lease_owner = owner
                delivery.lease_expires_at = now + lease
                delivery.fence += 1
                delivery.attempts += 1
                delivery.updated_at = now
                claims.append(self._claim_of(delivery))
            return claims

    def _claim_of(self, delivery: _Delivery) -> Claim:
        record = self._events[delivery.event_seq]
        assert delivery.lease_expires_at is not None
        return Claim(
            delivery_id=delivery.id,
            handler=delivery.handler,
            fence=delivery.fence,
            attempt=delivery.attempts,
            lease_expires_at=delivery.lease_expires_at,
            event=Event(
                id=record.dedup_key,
                source=record.source,
                type=record.type,
                body=record.body,
                headers=dict(record.headers),
                ordering_key=record.ordering_key,
                occurred_at=record.occurred_at,
                received_at=record.received_at,
                intake=record.intake,
                attempt=delivery.attempts,
                handler=delivery.handler,
                seq=record.seq,
            ),
        )

    async def extend(
        self, owner: str, leases: Sequence[tuple[int, int]], *, until: float
    ) -> list[int]:
        self._check_open()
        extended = []
        with self._lock:
            for delivery_id, fence in leases:
                delivery = self._deliveries.get(delivery_id)
                if delivery is not None and delivery.holds(owner, fence):
                    delivery.lease_expires_at = until
                    extended.append(delivery_id)
        return extended

    async def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        self._check_open()
        applied = []
        promoted = False
        with self._lock:
            for s in settlements:
                delivery = self._deliveries.get(s.delivery_id)
                if delivery is None or not delivery.holds(s.owner, s.fence):
                    applied.append(False)
                    continue
                delivery.history.append(
                    AttemptRecord(
                        id=self._next_attempt_id,
                        delivery_id=delivery.id,
                        number=delivery.attempts,
                        started_at=s.started_at,
                        finished_at=s.finished_at,
                        outcome=s.outcome,
                        error=s.error,
                        owner=s.owner,
                    )
                )
                self._next_attempt_id += 1
                delivery.status = _SETTLED_STATUS[s.outcome]
                delivery.next_attempt_at = (
                    (s.next_attempt_at if s.next_attempt_at is not None else s.finished_at)
                    if s.outcome == "retry"
                    else None
                )
                delivery.last_error = s.error
                delivery.lease_owner = None
                delivery.lease_expires_at = None
                delivery.updated_at = s.finished_at
                applied.append(True)
                if delivery.group is not None and s.outcome != "retry":
                    if s.outcome == "done":
                        self._mark_applied(delivery, s.finished_at)
                    promoted |= self._leave_group(delivery, s.finished_at)
        if promoted:
            self._subscribers.notify()
        return applied

    def _mark_applied(self, delivery: _Delivery, now: float) -> None:
        key = delivery.group
        assert key is not None
        occurred_at = self._events[delivery.event_seq].occurred_at
        old = self._applied.get(key)
        applied_at, applied_seq = occurred_at, delivery.event_seq
        if old is not None:
            if old.applied_at is not None:
                applied_at = (
                    old.applied_at if applied_at is None else max(old.applied_at, applied_at)
                )
            if old.applied_seq is not None:
                applied_seq = max(old.applied_seq, applied_seq)
        self._applied[key] = OrderingState(
            handler=key[0],
            ordering_key=key[1],
            applied_at=applied_at,
            applied_seq=applied_seq,
            updated_at=now,
        )

    def _leave_group(self, delivery: _Delivery, now: float) -> bool:
        """A settled member (done, dead or skipped) leaves its group, and the next
        waiting one is promoted by the policy. True when one was promoted."""
        key = delivery.group
        assert key is not None and delivery.ordering is not None
        group = self._groups.get(key)
        if group is None:
            return False
        if group.head is delivery:
            group.head = None
        group.waiting.pop(delivery.id, None)
        promoted = self._promote(key, group, delivery.ordering, now)
        if group.head is None and not group.waiting:
            del self._groups[key]
        return promoted

    def _promote(self, key: tuple[str, str], group: _Group, ordering: Ordering, now: float) -> bool:
        """Make the next waiting member of a group without a head active, skipping
        stale (``latest``, ``coalesce``) and superseded (``coalesce``) ones unrun."""
        while group.head is None and group.waiting:
            if ordering.policy == "coalesce":
                chosen = max(group.waiting.values(), key=self._newest_first)
                for other in group.waiting.values():
                    if other is not chosen:
                        other.skip(SUPERSEDED, now)
                group.waiting.clear()
            else:
                order = self._time_order if ordering.window > 0 else self._arrival_order
                chosen = min(group.waiting.values(), key=order)
                del group.waiting[chosen.id]
            event = self._events[chosen.event_seq]
            if ordering.policy != "serial" and self._is_stale(key, event.occurred_at):
                chosen.skip(STALE, now)
                continue
            chosen.next_attempt_at = max(now, event.received_at + ordering.window)
            chosen.updated_at = now
            group.head = chosen
            return True
        return False

    def _arrival_order(self, delivery: _Delivery) -> int:
        return delivery.event_seq

    def _time_order(self, delivery: _Delivery) -> tuple[bool, float, int]:
        occurred_at = self._events[delivery.event_seq].occurred_at
        return (occurred_at is None, occurred_at or 0.0, delivery.event_seq)

    def _newest_first(self, delivery: _Delivery) -> tuple[bool, float, int]:
        occurred_at = self._events[delivery.event_seq].occurred_at
        return (occurred_at is not None, occurred_at or 0.0, delivery.event_seq)

    async def begin(self, *, limit: float = 300.0) -> StoreTransaction:
        raise StoreError(
            "the memory store has no database to give a transactional handler "
            "(def handle(event, tx)); use a SQLite or PostgreSQL store"
        )

    async def release(self, owner: str, leases: Sequence[tuple[int, int]], *, now: float) -> int:
        self._check_open()
        released = 0
        with self._lock:
            for delivery_id, fence in leases:
                delivery = self._deliveries.get(delivery_id)
                if delivery is None or not delivery.holds(owner, fence):
                    continue
                delivery.status = "pending"
                delivery.next_attempt_at = now
                delivery.attempts = max(0, delivery.attempts - 1)
                delivery.lease_owner = None
                delivery.lease_expires_at = None
                delivery.updated_at = now
                released += 1
        return released

    # -- reads --------------------------------------------------------------------------

    async def ping(self) -> None:
        self._check_open()

    async def get_event(self, seq: int) -> EventRecord | None:
        self._check_open()
        with self._lock:
            return self._event_record(seq)

    async def find_event(self, source: str, dedup_key: str) -> EventRecord | None:
        self._check_open()
        with self._lock:
            seq = self._seq_by_key.get((source, dedup_key))
            return None if seq is None else self._event_record(seq)

    async def list_events(self, flt: EventFilter) -> list[EventRecord]:
        self._check_open()
        found: list[EventRecord] = []
        if flt.limit <= 0:
            return found
        with self._lock:
            for seq in sorted(self._events, reverse=True):
                if flt.before_seq is not None and seq >= flt.before_seq:
                    continue
                record = self._events[seq]
                if flt.source is not None and record.source != flt.source:
                    continue
                if flt.type is not None and not fnmatchcase(record.type, flt.type):
                    continue
                if flt.since is not None and record.received_at < flt.since:
                    continue
                members = [self._deliveries[i] for i in self._by_event[seq]]
                if flt.status is not None and all(d.shown_status != flt.status for d in members):
                    continue
                found.append(_with_status(record, [d.status for d in members]))
                if len(found) >= flt.limit:
                    break
        return found

    async def deliveries(self, event_seq: int) -> list[DeliveryRecord]:
        self._check_open()
        with self._lock:
            return [
                self._delivery_record(self._deliveries[i])
                for i in self._by_event.get(event_seq, [])
            ]

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        self._check_open()
        with self._lock:
            delivery = self._deliveries.get(delivery_id)
            return None if delivery is None else self._delivery_record(delivery)

    async def attempts(self, delivery_id: int) -> list[AttemptRecord]:
        self._check_open()
        with self._lock:
            delivery = self._deliveries.get(delivery_id)
            return [] if delivery is None else list(delivery.history)

    async def list_dead(
        self, *, source: str | None = None, handler: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        self._check_open()
        with self._lock:
            dead = [
                d
                for d in self._deliveries.values()
                if d.status == "dead"
                and (handler is None or d.handler == handler)
                and (source is None or self._events[d.event_seq].source == source)
            ]
            dead.sort(key=lambda d: (d.updated_at, d.id), reverse=True)
            return [self._delivery_record(d) for d in dead[: max(limit, 0)]]

    async def counts(self) -> dict[str, int]:
        self._check_open()
        counts: dict[str, int] = dict.fromkeys(DELIVERY_STATUSES, 0)
        with self._lock:
            for delivery in self._deliveries.values():
                counts[delivery.shown_status] += 1
        return counts

    async def ordering_counts(self) -> OrderingCounts:
        self._check_open()
        waiting = 0
        skipped: dict[str, int] = {}
        with self._lock:
            for delivery in self._deliveries.values():
                status = delivery.shown_status
                if status == "waiting":
                    waiting += 1
                elif status == "skipped":
                    reason = delivery.last_error or "unknown"
                    skipped[reason] = skipped.get(reason, 0) + 1
        return OrderingCounts(waiting=waiting, skipped=skipped)

    async def ordering_state(self, handler: str, ordering_key: str) -> OrderingState | None:
        self._check_open()
        with self._lock:
            return self._applied.get((handler, ordering_key))

    # -- operator actions ---------------------------------------------------------------

    async def retry_dead(
        self, delivery_ids: Sequence[int] | None, *, now: float, source: str | None = None
    ) -> int:
        self._check_open()
        scheduled = due_work = 0
        with self._lock:
            for delivery in self._dead(delivery_ids, source):
                due_work += self._reschedule(delivery, now)
                scheduled += 1
        if due_work:
            self._subscribers.notify()
        return scheduled

    async def replay(
        self, event_seqs: Sequence[int], handlers: Sequence[str], *, now: float
    ) -> int:
        self._check_open()
        scheduled = due_work = 0
        with self._lock:
            for seq in dict.fromkeys(event_seqs):
                record = self._events.get(seq)
                if record is None:
                    continue
                existing = {
                    self._deliveries[i].handler: self._deliveries[i] for i in self._by_event[seq]
                }
                # A handler new to the event joins the group its siblings were stored in.
                ordering = next((d.ordering for d in existing.values() if d.ordering), None)
                for handler in dict.fromkeys(handlers):
                    delivery = existing.get(handler)
                    if delivery is None:
                        delivery = self._add_delivery(seq, handler, due=now)
                        if ordering is not None and record.ordering_key is not None:
                            delivery.ordering = ordering
                            delivery.ordering_key = record.ordering_key
                    elif delivery.status == "leased":
                        continue
                    due_work += self._reschedule(delivery, now)
                    scheduled += 1
        if due_work:
            self._subscribers.notify()
        return scheduled

    def _reschedule(self, delivery: _Delivery, now: float) -> bool:
        """Pending now with a fresh attempt budget; an ordered delivery whose group has
        another active member waits behind it instead. True when it is due."""
        key = delivery.group
        if key is None:
            delivery.schedule(now)
            return True
        group = self._groups.setdefault(key, _Group())
        if group.head is not None and group.head is not delivery:
            delivery.schedule(now, wait=True)
            group.waiting[delivery.id] = delivery
            return False
        group.waiting.pop(delivery.id, None)
        group.head = delivery
        delivery.schedule(now)
        return True

    async def discard_dead(
        self, delivery_ids: Sequence[int] | None, *, now: float, source: str | None = None
    ) -> int:
        self._check_open()
        discarded = 0
        with self._lock:
            for delivery in self._dead(delivery_ids, source):
                delivery.status = "skipped"
                delivery.last_error = DISCARDED
                delivery.next_attempt_at = None
                delivery.updated_at = now
                discarded += 1
        return discarded

    def _dead(self, delivery_ids: Sequence[int] | None, source: str | None) -> list[_Delivery]:
        """The dead deliveries among ``delivery_ids`` (all when None), of ``source``."""
        candidates: Iterable[_Delivery]
        if delivery_ids is None:
            candidates = self._deliveries.values()
        else:
            found = (self._deliveries.get(i) for i in dict.fromkeys(delivery_ids))
            candidates = [d for d in found if d is not None]
        return [
            d
            for d in candidates
            if d.status == "dead" and (source is None or self._events[d.event_seq].source == source)
        ]

    # -- housekeeping -------------------------------------------------------------------

    async def purge(self, *, before: float, batch: int = 500) -> int:
        self._check_open()
        if batch < 1:
            raise ValueError(f"purge batch must be at least 1, not {batch}")
        with self._lock:
            old = [seq for seq, record in self._events.items() if record.received_at < before]
        deleted = 0
        for start in range(0, len(old), batch):
            with self._lock:
                for seq in old[start : start + batch]:
                    if seq in self._events and self._finished(seq):
                        self._delete_event(seq)
                        deleted += 1
            await asyncio.sleep(0)  # let other work in between batches, as the engines do
        with self._lock:
            forgotten = [k for k, state in self._applied.items() if state.updated_at < before]
        for start in range(0, len(forgotten), batch):
            with self._lock:
                kept = {d.group for d in self._deliveries.values() if d.group is not None}
                for key in forgotten[start : start + batch]:
                    state = self._applied.get(key)
                    if state is not None and state.updated_at < before and key not in kept:
                        del self._applied[key]
            await asyncio.sleep(0)
        with self._lock:
            refused = [r.id for r in self._rejections.values() if r.received_at < before]
        for start in range(0, len(refused), batch):
            with self._lock:
                for rejection_id in refused[start : start + batch]:
                    record = self._rejections.pop(rejection_id, None)
                    if record is not None:
                        self._rejection_ids[record.source].remove(rejection_id)
            await asyncio.sleep(0)
        return deleted

    def _finished(self, seq: int) -> bool:
        return all(self._deliveries[i].status in FINISHED_STATUSES for i in self._by_event[seq])

    def _delete_event(self, seq: int) -> None:
        for delivery_id in self._by_event.pop(seq):
            del self._deliveries[delivery_id]
        record = self._events.pop(seq)
        del self._seq_by_key[(record.source, record.dedup_key)]

    # -- rejections ---------------------------------------------------------------------

    async def record_rejections(self, records: Sequence[RejectionRecord]) -> None:
        self._check_open()
        if not records:
            return
        kept, body_kept = _base.REJECTIONS_KEPT, _base.REJECTED_BODY_KEPT
        with self._lock:
            for record in records:
                stored = replace(
                    record,
                    id=self._next_rejection_id,
                    hints=tuple(record.hints),
                    headers=tuple((name, value) for name, value in record.headers),
                    body=bytes(record.body[:body_kept]),
                )
                self._next_rejection_id += 1
                self._rejections[stored.id] = stored
                ids = self._rejection_ids.setdefault(stored.source, deque())
                ids.append(stored.id)
                while len(ids) > kept:
                    del self._rejections[ids.popleft()]

    async def list_rejections(
        self, *, source: str | None = None, limit: int = 50
    ) -> list[RejectionRecord]:
        self._check_open()
        with self._lock:
            if source is None:
                newest_first: Iterable[int] = reversed(self._rejections)
            else:
                newest_first = reversed(self._rejection_ids.get(source, ()))
            found: list[RejectionRecord] = []
            for rejection_id in newest_first:
                if len(found) >= limit:
                    break
                found.append(self._rejections[rejection_id])
            return found

    async def get_rejection(self, rejection_id: int) -> RejectionRecord | None:
        self._check_open()
        with self._lock:
            return self._rejections.get(rejection_id)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._subscribers.add(callback)

    # -- records ------------------------------------------------------------------------

    def _event_record(self, seq: int) -> EventRecord | None:
        record = self._events.get(seq)
        if record is None:
            return None
        return _with_status(record, [self._deliveries[i].status for i in self._by_event[seq]])

    def _delivery_record(self, d: _Delivery) -> DeliveryRecord:
        event = self._events[d.event_seq]
        return DeliveryRecord(
            id=d.id,
            event_seq=d.event_seq,
            handler=d.handler,
            status=d.shown_status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            lease_owner=d.lease_owner,
            lease_expires_at=d.lease_expires_at,
            fence=d.fence,
            last_error=d.last_error,
            updated_at=d.updated_at,
            source=event.source,
            event_type=event.type,
            dedup_key=event.dedup_key,
            ordering_key=d.ordering_key,
            policy=None if d.ordering is None else d.ordering.policy,
        )

    # -- polls --------------------------------------------------------------------------
    # Every state handed in or out is a copy (replace() copies stats): a caller changing
    # its object afterwards can't change what is stored.

    async def get_poll_state(self, name: str) -> _base.PollState | None:
        self._check_open()
        with self._lock:
            state = self._poll_states.get(name)
        return None if state is None else replace(state)

    async def list_poll_states(self) -> list[_base.PollState]:
        self._check_open()
        with self._lock:
            return [replace(self._poll_states[name]) for name in sorted(self._poll_states)]

    async def save_poll_state(self, state: _base.PollState) -> None:
        self._check_open()
        with self._lock:
            self._poll_states[state.name] = replace(state)

    async def poll_index(self, name: str) -> dict[str, str]:
        self._check_open()
        with self._lock:
            return dict(self._poll_items.get(name, {}))

    async def update_poll_index(
        self,
        name: str,
        *,
        upsert: Mapping[str, str],
        delete: Collection[str],
        state: _base.PollState | None = None,
    ) -> None:
        self._check_open()
        _base.check_poll_update(name, upsert, delete, state)
        saved = None if state is None else replace(state)
        with self._lock:
            items = self._poll_items.setdefault(name, {})
            items.update(upsert)
            for item_id in delete:
                items.pop(item_id, None)
            if not items:
                del self._poll_items[name]
            if saved is not None:
                self._poll_states[name] = saved

    async def forget_poll(self, name: str) -> None:
        self._check_open()
        with self._lock:
            self._poll_states.pop(name, None)
            self._poll_items.pop(name, None)


def _with_status(record: EventRecord, statuses: Sequence[str]) -> EventRecord:
    status = min(statuses, key=_SETTLEDNESS.__getitem__) if statuses else "none"
    return replace(record, status=status)
