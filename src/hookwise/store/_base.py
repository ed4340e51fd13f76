"""The store contract: what every engine (memory, SQLite, PostgreSQL) must do.

The store is hookwise's only shared state. Intakes append events through
:meth:`Store.append` (insert-or-skip on ``(source, dedup_key)``, with one delivery
row per matching handler, in one transaction). Workers :meth:`claim` due deliveries
under a lease, :meth:`extend` the lease while a handler runs, and :meth:`settle` the
outcome; a settle whose ``fence`` no longer matches (the lease expired and another
worker claimed the delivery) is refused. Everything else reads.

All times are UNIX seconds (float), passed in by the caller: the store never reads
the clock itself, so tests control time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

from ..events import Event, Intake, NewEvent
from ..transactions import StoreTransaction

__all__ = [
    "AppendResult",
    "AttemptRecord",
    "Claim",
    "DeliveryRecord",
    "DeliveryStatus",
    "EventFilter",
    "EventRecord",
    "Ordering",
    "OrderingState",
    "Outcome",
    "PollState",
    "RejectionRecord",
    "Settlement",
    "Store",
]

REJECTIONS_KEPT = 1000
"""Rejection records kept per source; older ones are dropped as new ones arrive."""

REJECTED_BODY_KEPT = 16 * 1024
"""Bytes of a rejected request's body kept in its record (``body_size`` tells the rest)."""

DeliveryStatus = Literal["pending", "waiting", "leased", "done", "retrying", "dead", "skipped"]
"""``waiting``: an ordered delivery queued behind the active member of its group
(stored as ``pending`` without a due time; no claim sees it until it is promoted)."""
Outcome = Literal["done", "retry", "dead", "skipped"]
OrderingPolicy = Literal["serial", "latest", "coalesce"]


@dataclass(frozen=True, slots=True)
class Ordering:
    """How the deliveries of one appended event are ordered within their group
    ``(handler, ordering_key)``: at most one member of a group runs at a time.

    ``serial`` runs every event, one after the other; ``latest`` skips an event older
    than the newest one applied (``stale``); ``coalesce`` runs only the newest waiting
    event and skips the others (``superseded``). ``window`` (seconds) holds a new
    head back that long so late, earlier events can still take its place.
    """

    policy: OrderingPolicy
    window: float = 0.0


@dataclass(frozen=True, slots=True)
class OrderingState:
    """What an ordered group has applied so far: the newest ``occurred_at`` and event
    ``seq`` among its deliveries settled ``done``."""

    handler: str
    ordering_key: str
    applied_at: float | None
    applied_seq: int | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class OrderingCounts:
    """Ordered deliveries waiting for their group, and deliveries skipped unrun by reason
    (``stale``, ``superseded``), among those the store still keeps."""

    waiting: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What happened to one append: the event's sequence number, and whether it was
    already stored (a duplicate delivery; nothing new was written)."""

    seq: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery leased to one worker: run ``handler`` on ``event``, then settle
    with the same ``fence``."""

    delivery_id: int
    handler: str
    fence: int
    attempt: int
    lease_expires_at: float
    event: Event


@dataclass(frozen=True, slots=True)
class Settlement:
    """The outcome of one attempt.

    ``outcome``: ``done``; ``retry`` (pending again at ``next_attempt_at``);
    ``dead`` (kept in the dead-letter list); ``skipped`` (not run, with ``error``
    as the reason). The attempt is recorded in the history whatever it was.
    """

    delivery_id: int
    fence: int
    owner: str
    outcome: Outcome
    started_at: float
    finished_at: float
    next_attempt_at: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as stored, for listings and ``events show``."""

    seq: int
    source: str
    dedup_key: str
    type: str
    ordering_key: str | None
    occurred_at: float | None
    received_at: float
    intake: Intake
    headers: tuple[tuple[str, str], ...]
    body: bytes
    status: str = ""
    """Summary over its deliveries: the least settled one (``pending`` < ``leased``
    < ``retrying`` < ``dead`` < ``skipped`` < ``done``), or ``"none"`` without any."""


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One (event, handler) pair and where it stands."""

    id: int
    event_seq: int
    handler: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float | None
    lease_owner: str | None
    lease_expires_at: float | None
    fence: int
    last_error: str | None
    updated_at: float
    source: str = ""
    event_type: str = ""
    dedup_key: str = ""
    ordering_key: str | None = None
    policy: str | None = None
    """The ordering policy the delivery was stored with; None when unordered."""


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One try of one delivery, kept as history."""

    id: int
    delivery_id: int
    number: int
    started_at: float
    finished_at: float
    outcome: str
    error: str | None
    owner: str


@dataclass(frozen=True, slots=True)
class RejectionRecord:
    """A request that was refused (401 or 403), kept for diagnosis: bounded, and with
    its headers redacted like an event's, so no secret is stored.

    ``reason`` is machine-readable (``no_matching_signature``, ``timestamp_too_old``,
    ``missing_header``, ``ip_not_allowed``...); ``hints`` say, where hookwise could
    tell, why (clock skew, a re-serialized body, an API key used as the secret...).
    """

    source: str
    received_at: float
    reason: str
    detail: str
    hints: tuple[str, ...]
    status: int
    method: str
    url: str
    client: str | None
    headers: tuple[tuple[str, str], ...]
    body: bytes
    """At most :data:`REJECTED_BODY_KEPT` bytes of it."""
    body_size: int
    id: int = 0
    """Assigned by the store."""


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a listing wants. ``status`` matches any of the event's deliveries."""

    source: str | None = None
    type: str | None = None
    """A glob on the event type, e.g. ``invoice.*``."""
    status: DeliveryStatus | None = None
    since: float | None = None
    before_seq: int | None = None
    limit: int = 50
    extra: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Store(Protocol):
    """The contract every store engine implements. Use it as an async context manager:

    >>> async with open_store("sqlite:///hookwise.db") as store:
    ...     result = await store.append(new_event, handlers=["billing"])
    """

    url: str

    async def open(self) -> None:
        """Connect, migrate to the newest schema, start background machinery."""

    async def close(self) -> None:
        """Flush pending appends, stop background machinery, disconnect. Idempotent."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # -- intake ---------------------------------------------------------------------

    async def append(
        self, event: NewEvent, handlers: Sequence[str], *, ordering: Ordering | None = None
    ) -> AppendResult:
        """Store ``event`` unless ``(source, dedup_key)`` is already there, creating one
        ``pending`` delivery per handler (due at ``event.received_at``), in one
        transaction. Returns only after that transaction is durable.

        With ``ordering`` and an ``event.ordering_key``, each delivery joins its group
        ``(handler, ordering_key)``: it waits while another member is active, or is
        skipped as ``stale`` (``latest``/``coalesce``) when a newer event was applied.

        Raises :class:`~hookwise.errors.StoreUnavailable` when it can't be written and
        :class:`~hookwise.errors.StoreOverloaded` when too much is queued.
        """

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
        """Lease up to ``limit`` due deliveries to ``owner`` until ``now + lease``.

        Due means ``pending``/``retrying`` with ``next_attempt_at <= now``, or
        ``leased`` with an expired lease (a crashed worker's work). Each claim bumps
        the delivery's ``fence`` and ``attempts``. Oldest due first. ``handlers``
        restricts the claim to the handlers this worker can run.
        """

    async def extend(
        self, owner: str, leases: Sequence[tuple[int, int]], *, until: float
    ) -> list[int]:
        """Extend the leases ``(delivery_id, fence)`` still held by ``owner``.
        Returns the ids whose lease was extended (a lost lease is left out)."""

    async def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        """Apply outcomes in one transaction. Each is applied only if the delivery is
        still ``leased`` to ``owner`` with the same ``fence``; the result says which."""

    async def release(self, owner: str, leases: Sequence[tuple[int, int]], *, now: float) -> int:
        """Give leased deliveries back (graceful shutdown): pending again, due ``now``,
        the interrupted attempt not counted. Returns how many were released."""

    supports_transactions: bool
    """Whether :meth:`begin` gives handler transactions (SQLite and PostgreSQL do)."""

    async def begin(self, *, limit: float = 300.0) -> StoreTransaction:
        """Open a transaction for a transactional handler's attempt (see
        :mod:`hookwise.transactions`): its statements run in it, and its ``commit``
        settles the delivery done (fenced) in the same transaction. ``limit``: seconds
        the store may keep it open waiting for a statement before rolling it back."""

    # -- reads --------------------------------------------------------------------------

    async def ping(self) -> None:
        """Return if the store answers and is migrated; raise StoreUnavailable if not."""

    async def get_event(self, seq: int) -> EventRecord | None: ...

    async def find_event(self, source: str, dedup_key: str) -> EventRecord | None: ...

    async def list_events(self, flt: EventFilter) -> list[EventRecord]:
        """Newest first."""

    async def deliveries(self, event_seq: int) -> list[DeliveryRecord]: ...

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None: ...

    async def attempts(self, delivery_id: int) -> list[AttemptRecord]:
        """Oldest first."""

    async def list_dead(
        self, *, source: str | None = None, handler: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """Dead letters, newest first."""

    async def counts(self) -> dict[str, int]:
        """Deliveries per status, every status present (zero when none); ``waiting``
        counts ordered deliveries queued behind their group's active member."""

    async def ordering_counts(self) -> OrderingCounts:
        """Waiting and skipped deliveries (for metrics); cheap: read from partial indexes."""
        ...

    async def ordering_state(self, handler: str, ordering_key: str) -> OrderingState | None:
        """What the group ``(handler, ordering_key)`` has applied; None before its
        first ``done``."""

    # -- operator actions ---------------------------------------------------------------

    async def retry_dead(
        self, delivery_ids: Sequence[int] | None, *, now: float, source: str | None = None
    ) -> int:
        """Make dead deliveries pending again now with a fresh attempt budget; their
        history stays. ``None`` means every dead delivery (of ``source`` if given)."""

    async def replay(
        self, event_seqs: Sequence[int], handlers: Sequence[str], *, now: float
    ) -> int:
        """Run events again for ``handlers``: settled or pending deliveries become
        pending now with a fresh attempt budget (history kept); a handler without a
        delivery for the event gets one. A delivery currently leased is left alone.
        Returns how many deliveries were scheduled."""

    async def discard_dead(
        self, delivery_ids: Sequence[int] | None, *, now: float, source: str | None = None
    ) -> int:
        """Give up on dead letters: they become ``skipped`` with the error
        ``"discarded"`` (their history stays), so retention may purge their events.
        ``None`` means every dead delivery (of ``source`` if given). Returns how many."""

    # -- housekeeping -------------------------------------------------------------------

    async def purge(self, *, before: float, batch: int = 500) -> int:
        """Delete finished events received before ``before``, with their deliveries
        and attempts. Finished means every delivery is ``done`` or ``skipped`` (or the
        event has none); an event with a delivery pending, leased, retrying or dead is
        kept. Works in transactions of at most ``batch`` events, so no lock is held
        for long, and concurrent purges (several workers) don't wait on each other.
        The ordering state of a group with no delivery left is deleted too once it was
        last updated before ``before``. Returns how many events were deleted."""

    async def record_rejections(self, records: Sequence[RejectionRecord]) -> None:
        """Keep refused requests for diagnosis, newest :data:`REJECTIONS_KEPT` per
        source (older ones of the same source are deleted in the same transaction).
        Bodies longer than :data:`REJECTED_BODY_KEPT` are cut by the caller."""

    async def list_rejections(
        self, *, source: str | None = None, limit: int = 50
    ) -> list[RejectionRecord]:
        """Rejection records, newest first."""

    async def get_rejection(self, rejection_id: int) -> RejectionRecord | None: ...

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` on the subscribing event loop whenever new work may be
        due: an append that created deliveries, a replay or a dead-letter retry. The
        in-process engines see their own process's writes; PostgreSQL relays every
        process's through ``LISTEN/NOTIFY``. Wake-ups are hints (workers still poll);
        several may be merged into one. Returns a function that unsubscribes."""

    # -- polls --------------------------------------------------------------------------

    async def get_poll_state(self, name: str) -> PollState | None:
        """What the poll ``name`` remembered from its last run; None before its first."""

    async def list_poll_states(self) -> list[PollState]:
        """Every poll's state, ordered by name (code point order, on every engine)."""

    async def save_poll_state(self, state: PollState) -> None:
        """Store ``state`` as the state of the poll ``state.name``, replacing the one
        stored before (every field: ``None`` clears one)."""

    async def poll_index(self, name: str) -> dict[str, str]:
        """The change-detection index of the poll ``name``: item id -> version as last
        seen (empty before its first run)."""

    async def update_poll_index(
        self,
        name: str,
        *,
        upsert: Mapping[str, str],
        delete: Collection[str],
        state: PollState | None = None,
    ) -> None:
        """Change the index of the poll ``name`` and, with ``state``, save its state,
        all in one transaction: set the versions of ``upsert``'s ids (new or changed),
        remove the ids in ``delete`` (absent ones are ignored). Either everything
        lands or nothing does, so a crash never leaves an index that disagrees with
        the cursor beside it. Batched: a run that saw 100 000 items is a few
        statements. Raises ``ValueError`` (before writing anything) when ``state``
        belongs to another poll or an id is both upserted and deleted."""

    async def forget_poll(self, name: str) -> None:
        """Delete the state and the index of the poll ``name`` (its next run starts
        from scratch). Forgetting an unknown poll does nothing."""


PollStatValue = int | float | str | None
"""What a poll's ``stats`` counters may hold: what JSON round-trips on every engine."""


@dataclass(frozen=True, slots=True)
class PollState:
    """What a poll remembers between runs, so a restart neither refetches everything
    nor forgets how the source was failing.

    >>> PollState("github-issues", etag='W/"abc"', cursor="2024-05-01T00:00:00Z",
    ...           next_due_at=1_700_000_060.0, interval=60.0, stats={"fetched": 30},
    ...           updated_at=1_700_000_000.0)  # doctest: +ELLIPSIS
    PollState(name='github-issues', etag='W/"abc"', ...)

    ``etag`` and ``last_modified`` are the first page's validators exactly as the
    server sent them (for ``If-None-Match`` / ``If-Modified-Since``); ``cursor`` is
    where the next incremental run starts (a ``since`` value, a page cursor);
    ``next_due_at`` is when the next run is due (UNIX seconds) and ``interval`` the
    current adaptive interval (seconds). ``error`` is the last run's error (None
    after a success), ``error_since`` when the current run of failures began and
    ``failures`` how many runs in a row failed. ``stats`` holds counters: string
    keys, values ``int``, finite ``float``, ``str`` or ``None`` (what JSON carries
    on every engine). Times are passed in by the caller, like everywhere in the store.

    Raises ``ValueError`` on an empty name, negative ``failures``, a NaN time or a
    stats value JSON can't carry.
    """

    name: str
    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None
    next_due_at: float | None = None
    interval: float | None = None
    error: str | None = None
    error_since: float | None = None
    failures: int = 0
    stats: Mapping[str, PollStatValue] = field(default_factory=dict)
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a poll state needs the poll's name; got an empty one")
        if self.failures < 0:
            raise ValueError(
                f"poll {self.name!r}: failures counts failed runs in a row, so it can't be "
                f"negative (got {self.failures}); use 0 after a success"
            )
        for label in ("next_due_at", "interval", "error_since", "updated_at"):
            value = getattr(self, label)
            if value is not None and math.isnan(value):
                raise ValueError(f"poll {self.name!r}: {label} is NaN; pass a time or None")
        stats = dict(self.stats)
        for key, value in stats.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"poll {self.name!r}: stats keys are strings (JSON object keys), not {key!r}"
                )
            if value is not None and not isinstance(value, int | float | str):
                raise ValueError(
                    f"poll {self.name!r}: stats[{key!r}] is a {type(value).__name__}; "
                    "keep counters as int, float, str or None"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(
                    f"poll {self.name!r}: stats[{key!r}] is {value}, which JSON can't "
                    "carry; store None instead"
                )
        # A copy of its own: the caller's dict changing later can't change a saved state.
        object.__setattr__(self, "stats", stats)


def check_poll_update(
    name: str, upsert: Mapping[str, str], delete: Collection[str], state: PollState | None
) -> None:
    """Refuse an index update that can't mean what it says (every engine calls this
    before writing, so nothing is half-done):

    >>> check_poll_update("a", {"1": "v"}, ["1"], None)
    Traceback (most recent call last):
    ValueError: poll 'a': item ids both upserted and deleted: '1'; pass each id in one of them
    """
    if state is not None and state.name != name:
        raise ValueError(
            f"update_poll_index({name!r}) was given the state of poll {state.name!r}; "
            "pass the state of the poll whose index it updates"
        )
    if upsert and delete:
        both = sorted(item_id for item_id in delete if item_id in upsert)
        if both:
            shown = ", ".join(repr(item_id) for item_id in both[:5])
            more = f" and {len(both) - 5} more" if len(both) > 5 else ""
            raise ValueError(
                f"poll {name!r}: item ids both upserted and deleted: {shown}{more}; "
                "pass each id in one of them"
            )
