"""The shared store: PostgreSQL, for many receivers and workers on many hosts.

Every process talks to one database; nothing else is shared (no Redis, no cluster of
our own). The pieces:

- **Intake**: appends are **group-committed** on one dedicated connection. While one
  batch is being written, new appends queue up; the next batch is all of them, in one
  statement (arrays unnested server-side), one round trip and one commit. A ``2xx``
  still means the event is committed.
- **Claims**: ``FOR UPDATE SKIP LOCKED`` over small partial indexes, so workers never
  wait on each other and a claim costs the same however long the history grows.
  Leases and fences as in every engine.
- **Wake-ups**: an append that creates work sends ``NOTIFY`` in the same statement;
  subscribed workers ``LISTEN`` on a connection of their own and claim at once. When
  that connection is lost they keep polling (``[worker] poll_interval``) and listen
  again as soon as the database answers.
- **Ordering**: a group ``(handler, ordering_key)`` has at most one active member
  (due, leased or retrying); the others wait (``pending`` without a due time, which no
  claim ever sees). Placing a new member, promoting the next one when the head settles,
  and rescheduling a dead or replayed one each read the group and then change it, from
  several processes at once. Each runs in a transaction that first takes the group's
  **transaction-scoped advisory lock** (``pg_advisory_xact_lock`` on a 64-bit hash of
  schema, handler and key), all of a batch's groups in key order so two transactions
  can't deadlock; every read comes after the lock, so it sees what the previous holder
  committed. Why this lock: it is per group, so unrelated keys never wait on each other
  (a table lock, or ``SERIALIZABLE`` with its retries, would serialize or abort them);
  it needs no row to exist (a row lock can't guard "is there an active member?" when
  there is none yet); and it is released by the commit, so a crash leaves nothing
  behind. Only ordered work takes it: unordered appends keep their one statement and
  unordered settles theirs. A unique partial index (``deliveries_group_active``)
  refuses a second active member whatever happens, and makes "has this group an active
  member?" one index probe however long its backlog.
- **Failure**: a lost or refused connection is :class:`StoreUnavailable` (the receiver
  answers 503 with Retry-After, never 200), and the next use connects again.

Needs the ``postgres`` extra: ``pip install 'hookwise[postgres]'`` (psycopg 3 and its pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast, get_args

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..config import StoreSettings
from ..errors import StoreError, StoreNotOpen, StoreOverloaded, StoreUnavailable
from ..events import NewEvent
from ..transactions import Params, StoreTransaction, TransactionClosed, TxResult
from . import _base
from ._base import (
    AppendResult,
    AttemptRecord,
    Claim,
    DeliveryRecord,
    EventFilter,
    EventRecord,
    Ordering,
    OrderingCounts,
    OrderingPolicy,
    OrderingState,
    RejectionRecord,
    Settlement,
)
from ._rows import claim_record as _claim
from ._rows import delivery_record as _delivery_record
from ._rows import event_record as _event_record
from ._rows import poll_state_params as _poll_state_params
from ._rows import rejection_record
from ._sql import missing_migrations, split_statements, sql_for
from .memory import DELIVERY_STATUSES, STALE, SUPERSEDED
from .sqlite import headers_json

__all__ = ["PostgresStore"]

log = logging.getLogger("hookwise.store.postgres")

T = TypeVar("T")
Row = dict[str, Any]
Group = tuple[str, str]
"""An ordering group: (handler, ordering_key)."""
Queued = tuple[NewEvent, tuple[str, ...], Ordering | None, asyncio.Future[AppendResult]]
"""An append waiting for its batch: the event, its handlers, its ordering, its answer."""

MAX_BATCH = 1000
"""Most appends shared by one statement."""

FIRST_ANALYZE = 2000
"""Appends after which a process first refreshes the planner's statistics (then at
twice as many, and so on; see ``PostgresStore._refresh_statistics``)."""

RECONNECT_PAUSE = 0.5
"""After a failed connection attempt, appends fail at once (503) for this long before
the intake tries to connect again: an outage answers fast instead of queueing."""

LISTEN_RETRY_MAX = 5.0
"""Longest pause between attempts to listen again after the connection was lost."""

MAX_ORDERED_HINTS = 100_000
"""Claimed ordered deliveries remembered for their settle; past this many (leases lost
and settled elsewhere), the memory starts again."""

PROMOTION_PEEK = 64
"""Waiting members a ``latest`` promotion reads at once: the stale ones before the first
fresh one are skipped; a longer run of stale ones takes another read."""

_SQL = sql_for("postgresql")
_Q = _SQL.queries

_POLICIES: frozenset[str] = frozenset(get_args(OrderingPolicy))

_SETTLED_STATUS = {"done": "done", "retry": "retrying", "dead": "dead", "skipped": "skipped"}


class PostgresStore:
    """The store in a PostgreSQL database.

    >>> async with PostgresStore("postgresql://hookwise@db/hookwise") as store:
    ...     result = await store.append(new_event, handlers=["billing"])

    ``open_store("postgresql://...")`` builds this. Opening migrates the database to the
    newest schema (under an advisory lock, so processes starting together take turns).
    Tables live in the connection's ``search_path`` schema: give each deployment its own
    database or schema (``?options=-csearch_path%3Dname`` in the URL).
    """

    def __init__(self, url: str, *, settings: StoreSettings | None = None) -> None:
        self.url = url
        self.settings = settings or StoreSettings(url=url)
        self._conninfo = _conninfo(url)
        self._open = False
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] | None = None
        self._channel = "hookwise"
        # intake
        self._intake: psycopg.AsyncConnection[Row] | None = None
        self._intake_lock = asyncio.Lock()
        self._connect_failed_at = float("-inf")
        self._connect_error: StoreUnavailable | None = None
        self._queue: list[Queued] = []
        self._flusher: asyncio.Task[None] | None = None
        self._has_work = asyncio.Event()
        self._commits = 0
        self._appended = 0
        self._largest_batch = 0
        self._analyze_at = FIRST_ANALYZE
        self._analyzer: asyncio.Task[None] | None = None
        # work
        self._ordered_claims: set[int] = set()
        """Ordered deliveries this process claimed and has not settled or released: their
        settle goes straight to the ordered path (a hint only; see :meth:`settle`)."""
        # wake-ups
        self._subscribers: list[tuple[Callable[[], None], asyncio.AbstractEventLoop]] = []
        self._listener: asyncio.Task[None] | None = None
        self.listening = False
        """Whether a LISTEN connection is up right now (polling covers the gaps)."""
        self.migrations_applied: list[str] = []
        """Versions the last :meth:`open` applied (empty when the database was up to date)."""

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate, start the intake and the connection pool."""
        if self._open:
            return
        async with self._connection("connect to the database") as conn:
            self.migrations_applied = await self._migrate(conn)
            row = await (await conn.execute(_Q["current_schema"])).fetchone()
            schema = row["name"] if row else None
        self._channel = f"hookwise:{schema}" if schema else "hookwise"
        self._pool = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self.settings.pool_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            check=AsyncConnectionPool.check_connection,
            timeout=self.settings.busy_timeout,
            name="hookwise",
            open=False,
        )
        await self._pool.open(wait=False)
        self._has_work = asyncio.Event()
        self._intake_lock = asyncio.Lock()
        self._flusher = asyncio.create_task(self._flush_forever(), name="hookwise-pg-intake")
        self._open = True
        if self._subscribers and self._listener is None:
            self._start_listener()

    async def close(self) -> None:
        """Write what is queued, stop listening, disconnect. Idempotent."""
        if not self._open:
            return
        self._open = False
        if self._flusher is not None:
            self._has_work.set()
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        for *_, future in self._queue:
            if not future.done():
                future.set_exception(StoreNotOpen("PostgreSQL store"))
        self._queue.clear()
        if self._analyzer is not None:
            self._analyzer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._analyzer
            self._analyzer = None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._intake is not None:
            await self._intake.close()
            self._intake = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

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
            raise StoreNotOpen("PostgreSQL store")

    # -- connections --------------------------------------------------------------------

    async def _connect(self, *, autocommit: bool = True) -> psycopg.AsyncConnection[Row]:
        try:
            return await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=autocommit,
                row_factory=dict_row,
                connect_timeout=max(2, round(self.settings.busy_timeout)),
            )
        except psycopg.Error as exc:
            raise _unavailable(exc, "connect to the database", self.url) from exc

    @contextlib.asynccontextmanager
    async def _connection(self, what: str) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A short-lived connection of its own (migrations, schema checks)."""
        conn = await self._connect()
        try:
            with _errors(what, self.url):
                yield conn
        finally:
            await conn.close()

    @contextlib.asynccontextmanager
    async def _pooled(self, what: str) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        self._check_open()
        assert self._pool is not None
        try:
            async with self._pool.connection() as conn:
                with _errors(what, self.url):
                    yield conn
        except PoolTimeout as exc:
            raise StoreUnavailable(
                f"could not {what}: no connection to {_safe_url(self.url)} within "
                f"{self.settings.busy_timeout:g}s; check that PostgreSQL is up and reachable "
                "(or raise [store] pool_size if every connection is busy)"
            ) from exc

    async def _fetch(
        self, what: str, query: str, params: dict[str, Any] | None = None
    ) -> list[Row]:
        async with self._pooled(what) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    # -- migrations -------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply every migration the database lacks, in order; return their versions.
        Works on an unopened store too (``hookwise migrate``)."""
        async with self._connection("migrate the database") as conn:
            return await self._migrate(conn)

    async def schema_version(self) -> str | None:
        """The newest migration applied, or ``None`` for a database without hookwise tables."""
        async with self._connection("read the schema") as conn:
            applied = await _applied(conn)
        return applied[-1] if applied else None

    async def _migrate(self, conn: psycopg.AsyncConnection[Row]) -> list[str]:
        known = {m.version for m in _SQL.migrations}
        applied = set(await _applied(conn))
        unknown = sorted(applied - known)
        if unknown:
            raise StoreUnavailable(
                f"{_safe_url(self.url)} has schema {unknown[-1]}, newer than this hookwise "
                "knows; upgrade hookwise (or point it at another database)"
            )
        if all(m.version in applied for m in _SQL.migrations):
            return []  # an up-to-date database is opened without taking the lock
        applied_now: list[str] = []
        async with conn.transaction():
            await conn.execute(_Q["migration_lock"])
            await conn.execute(_Q["create_schema_migrations"])
            # Read again under the lock: another process may have just migrated.
            applied = set(await _applied(conn))
            for migration in _SQL.migrations:
                if migration.version in applied:
                    continue
                for statement in split_statements(migration.sql):
                    await conn.execute(statement.encode())
                await conn.execute(
                    _Q["record_migration"],
                    # When it ran is bookkeeping for operators, not domain time.
                    {"version": migration.version, "applied_at": time.time()},
                )
                applied_now.append(migration.version)
        return applied_now

    # -- intake ---------------------------------------------------------------------

    def stats(self) -> tuple[int, int, int]:
        """(commits, appends answered, largest batch) since :meth:`open`."""
        return self._commits, self._appended, self._largest_batch

    async def append(
        self, event: NewEvent, handlers: Sequence[str], *, ordering: Ordering | None = None
    ) -> AppendResult:
        if not self._open:
            raise StoreNotOpen("PostgreSQL store")
        if len(self._queue) >= self.settings.max_pending:
            raise StoreOverloaded(
                f"{len(self._queue)} events are already waiting to be written to "
                f"{_safe_url(self.url)}; retry in a moment (or raise [store] max_pending)"
            )
        names: tuple[str, ...] = (
            handlers
            if isinstance(handlers, tuple) and len(handlers) <= 1
            else tuple(dict.fromkeys(handlers))
        )
        if ordering is not None:
            if ordering.policy not in _POLICIES:  # the database would refuse the batch
                raise ValueError(
                    f"unknown ordering policy {ordering.policy!r}; "
                    f"use one of {', '.join(sorted(_POLICIES))}"
                )
            if event.ordering_key is None:
                ordering = None  # nothing to order on: runs like an unordered event
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._queue.append((event, names, ordering, future))
        self._has_work.set()
        return await future

    async def _flush_forever(self) -> None:
        limit = MAX_BATCH if self.settings.group_commit else 1
        while True:
            await self._has_work.wait()
            self._has_work.clear()
            while self._queue:
                batch = self._queue[:limit]
                del self._queue[:limit]
                await self._flush(batch)

    async def _flush(self, batch: list[Queued]) -> None:
        try:
            results = await self._write_batch(batch)
        except psycopg.DataError as exc:
            if len(batch) == 1:
                _fail(batch, StoreUnavailable(f"could not store the event: {exc}"))
                return
            # One event the database refuses must not take the others down with it.
            log.warning(
                "a batch of %d appends was refused (%s); writing one by one", len(batch), exc
            )
            for item in batch:
                await self._flush([item])
            return
        except StoreError as exc:
            _fail(batch, exc)
            return
        except Exception as exc:  # never leave a request hanging
            log.exception("unexpected error writing %d events", len(batch))
            _fail(batch, StoreUnavailable(f"could not store events: {exc}"))
            return
        self._commits += 1
        self._appended += len(batch)
        self._largest_batch = max(self._largest_batch, len(batch))
        if self._appended >= self._analyze_at:
            self._refresh_statistics()
        for (*_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _refresh_statistics(self) -> None:
        """ANALYZE the queue tables in the background, each time this process's appends
        double (FIRST_ANALYZE, twice that, ...).

        Autovacuum analyzes a table a minute or more after it has grown by a tenth. Until
        then the planner works from figures taken when the store was young, believes
        there is almost nothing waiting, and a promotion that should fetch a few rows by
        id walks the whole backlog instead, on every settle. A young store taking its
        first burst is exactly when that hurts; this closes the gap, a few dozen times
        in a process's life at most."""
        self._analyze_at = max(self._analyze_at * 2, self._appended + 1)
        if self._analyzer is not None and not self._analyzer.done():
            return
        self._analyzer = asyncio.create_task(self._analyze(), name="hookwise-pg-analyze")

    async def _analyze(self) -> None:
        try:
            async with self._pooled("refresh table statistics") as conn:
                await conn.execute(_Q["analyze_queue"])
        except Exception as exc:  # only a missed optimisation: autovacuum catches up
            log.debug("refreshing table statistics failed: %s", exc)

    async def _intake_connection(self) -> psycopg.AsyncConnection[Row]:
        conn = self._intake
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        self._intake = None
        now = time.monotonic()
        if now - self._connect_failed_at < RECONNECT_PAUSE and self._connect_error is not None:
            raise StoreUnavailable(str(self._connect_error))
        try:
            conn = await self._connect()
            # "full": a 2xx waits for the commit to be flushed to disk (whatever the
            # server's default); "normal": the last commits may be lost if the database
            # server crashes, never corrupted.
            synchronous = "on" if self.settings.durability == "full" else "off"
            await conn.execute(f"SET synchronous_commit = {synchronous}")
        except StoreUnavailable as exc:
            self._connect_failed_at = now
            self._connect_error = exc
            raise
        except psycopg.Error as exc:
            self._connect_failed_at = now
            self._connect_error = _unavailable(exc, "connect to the database", self.url)
            raise self._connect_error from exc
        self._connect_error = None
        self._intake = conn
        return conn

    async def _write_batch(self, batch: list[Queued]) -> list[AppendResult]:
        slot_of: dict[tuple[str, str], int] = {}
        keys: list[tuple[str, str]] = []
        slots: list[int] = []
        # slot, event, ordering key, handlers, ordering
        ordered: list[tuple[int, NewEvent, str, tuple[str, ...], Ordering]] = []
        columns: dict[str, list[Any]] = {
            name: []
            for name in (
                "source", "dedup_key", "type", "ordering_key", "occurred_at", "received_at",
                "intake", "headers", "body", "d_idx", "d_handler", "d_due",
            )
        }  # fmt: skip
        for event, handlers, ordering, _ in batch:
            key = (_text(event.source), _text(event.dedup_key))
            slot = slot_of.get(key)
            if slot is None:
                slot = slot_of[key] = len(keys)
                keys.append(key)
                columns["source"].append(key[0])
                columns["dedup_key"].append(key[1])
                columns["type"].append(_text(event.type))
                columns["ordering_key"].append(
                    None if event.ordering_key is None else _text(event.ordering_key)
                )
                columns["occurred_at"].append(event.occurred_at)
                columns["received_at"].append(event.received_at)
                columns["intake"].append(event.intake)
                columns["headers"].append(_text(headers_json(event.headers)))
                columns["body"].append(event.body)
                if ordering is not None and event.ordering_key is not None and handlers:
                    ordered.append((slot, event, _text(event.ordering_key), handlers, ordering))
                else:
                    for handler in handlers:
                        columns["d_idx"].append(slot + 1)
                        columns["d_handler"].append(handler)
                        columns["d_due"].append(event.received_at)
            slots.append(slot)
        columns["channel"] = self._channel  # type: ignore[assignment]

        async with self._intake_lock:
            conn = await self._intake_connection()
            with _errors("write events", self.url):
                if ordered:
                    seqs, new = await self._write_ordered(conn, columns, keys, ordered)
                else:
                    seqs, new = await self._insert_events(conn, columns, keys)

        results: list[AppendResult] = []
        answered: set[int] = set()
        for slot in slots:
            seq = seqs[slot]
            assert seq is not None
            duplicate = not new[slot] or slot in answered
            answered.add(slot)
            results.append(AppendResult(seq=seq, duplicate=duplicate))
        return results

    async def _write_ordered(
        self,
        conn: psycopg.AsyncConnection[Row],
        columns: dict[str, list[Any]],
        keys: list[tuple[str, str]],
        ordered: list[tuple[int, NewEvent, str, tuple[str, ...], Ordering]],
    ) -> tuple[list[int | None], list[bool]]:
        """A batch with ordered deliveries: one transaction that locks their groups,
        inserts the events (and unordered deliveries), then places the ordered ones by
        what their groups hold."""
        async with conn.transaction():
            groups = ((h, key) for _, _, key, handlers, _ in ordered for h in handlers)
            await conn.execute(_Q["lock_groups"], _group_params(groups))
            seqs, new = await self._insert_events(conn, columns, keys)
            members = [
                _Member(seq, h, key, e.occurred_at, e.received_at, o.policy, o.window)
                for slot, e, key, handlers, o in ordered
                if new[slot] and (seq := seqs[slot]) is not None
                for h in handlers
            ]
            if members:
                await self._place_ordered(conn, members)
        return seqs, new

    async def _insert_events(
        self,
        conn: psycopg.AsyncConnection[Row],
        columns: dict[str, list[Any]],
        keys: list[tuple[str, str]],
    ) -> tuple[list[int | None], list[bool]]:
        """Insert-or-skip the events with their unordered deliveries (one statement);
        the stored seq of each and whether this statement inserted it."""
        cursor = await conn.execute(_Q["append_batch"], columns)
        rows = await cursor.fetchall()
        seqs: list[int | None] = [row["seq"] for row in rows]
        new: list[bool] = [row["new"] for row in rows]
        missing = [i for i, seq in enumerate(seqs) if seq is None]
        if missing:
            # Stored by another process after this statement's snapshot was taken.
            cursor = await conn.execute(
                _Q["event_seqs_by_keys"],
                {
                    "source": [keys[i][0] for i in missing],
                    "dedup_key": [keys[i][1] for i in missing],
                },
            )
            found = {(r["source"], r["dedup_key"]): r["seq"] for r in await cursor.fetchall()}
            for i in missing:
                seqs[i] = found[keys[i]]
        return seqs, new

    async def _place_ordered(
        self, conn: psycopg.AsyncConnection[Row], members: list[_Member]
    ) -> None:
        """Insert the ordered deliveries of new events, their groups locked by the caller:
        each active, waiting or stale as :func:`_place` decides from what its group
        holds (its active member, its newest applied time)."""
        cursor = await conn.execute(_Q["group_heads"], _group_params(m.group for m in members))
        heads: dict[Group, _Head] = {}
        applied: dict[Group, float | None] = {}
        for row in await cursor.fetchall():
            group = (row["handler"], row["ordering_key"])
            applied[group] = row["applied_at"]
            if row["id"] is not None:
                started = row["status"] != "pending" or row["attempts"] > 0
                heads[group] = _Head(row["id"], started, row["occurred_at"], row["next_attempt_at"])
        windowed = {m.group for m in members if m.window > 0}
        unstarted = [
            head.id
            for group, head in heads.items()
            if group in windowed and not head.started and head.id is not None
        ]
        if unstarted:
            # An earlier event may take an unstarted head's place. A claim may have
            # taken some since they were read: the others are locked until commit.
            cursor = await conn.execute(_Q["hold_unstarted_heads"], {"id": unstarted})
            held = {row["id"] for row in await cursor.fetchall()}
            for head in heads.values():
                if head.id in unstarted and head.id not in held:
                    head.started = True
        displaced = _place(members, heads, applied)
        if displaced:
            await conn.execute(
                _Q["demote_heads"],
                {"id": displaced, "now": max(m.received_at for m in members)},
            )
        await conn.execute(
            _Q["insert_ordered_deliveries"],
            {
                "event_seq": [m.event_seq for m in members],
                "handler": [m.handler for m in members],
                "status": [m.status for m in members],
                "due": [m.due for m in members],
                "error": [m.error for m in members],
                "received_at": [m.received_at for m in members],
                "ordering_key": [m.ordering_key for m in members],
                "occurred_at": [m.occurred_at for m in members],
                "policy": [m.policy for m in members],
                "ordering_window": [m.window for m in members],
                "channel": self._channel,
            },
        )

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
        rows = await self._fetch(
            "claim deliveries",
            _Q["claim_due"],
            {
                "owner": owner,
                "until": now + lease,
                "now": now,
                "limit": limit,
                "handlers": None if handlers is None else sorted(handlers),
            },
        )
        ordered = self._ordered_claims
        if len(ordered) > MAX_ORDERED_HINTS:  # leases lost and never settled here
            ordered.clear()
        ordered.update(row["id"] for row in rows if row["ordered"])
        return [_claim(row, row) for row in rows]

    async def extend(
        self, owner: str, leases: Sequence[tuple[int, int]], *, until: float
    ) -> list[int]:
        self._check_open()
        if not leases:
            return []
        rows = await self._fetch(
            "extend leases",
            _Q["extend_leases"],
            {
                "owner": owner,
                "until": until,
                "id": [d for d, _ in leases],
                "fence": [f for _, f in leases],
            },
        )
        extended = {row["id"] for row in rows}
        return [d for d, _ in leases if d in extended]

    async def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        self._check_open()
        if not settlements:
            return []
        params = _settle_params(settlements)
        async with self._pooled("settle deliveries") as conn:
            return await self._settle_on(conn, settlements, params)

    async def _settle_on(
        self,
        conn: psycopg.AsyncConnection[Row],
        settlements: Sequence[Settlement],
        params: dict[str, list[Any]],
    ) -> list[bool]:
        ordered = self._ordered_claims
        positions = range(1, len(settlements) + 1)
        applied: set[int] = set()  # 1-based positions
        if not all(s.delivery_id in ordered for s in settlements):
            # Unordered ones: one statement, no lock, as if ordering did not exist.
            # (Those known ordered never match it: the column can't change.)
            cursor = await conn.execute(_Q["settle_deliveries"], {**params, "ordered": False})
            applied.update(row["idx"] for row in await cursor.fetchall())
        rest = [i for i in positions if i not in applied]
        if rest:  # ordered, or a lease lost meanwhile
            applied.update(await self._settle_ordered(conn, params, rest))
        ordered.difference_update(s.delivery_id for s in settlements)
        return [i in applied for i in positions]

    async def _settle_ordered(
        self, conn: psycopg.AsyncConnection[Row], params: dict[str, list[Any]], rest: list[int]
    ) -> set[int]:
        """Settle the ordered deliveries among the positions ``rest`` (1-based) of
        ``params`` in one transaction with their groups locked: record what was
        applied, promote the next member of each group whose head finished. Returns
        the positions applied."""
        subset: dict[str, Any] = {name: [v[i - 1] for i in rest] for name, v in params.items()}
        async with conn.transaction():
            cursor = await conn.execute(_Q["lock_groups_of"], {"id": subset["id"]})
            if not await cursor.fetchall():
                return set()  # none of them is ordered: their leases were lost
            cursor = await conn.execute(_Q["settle_deliveries"], {**subset, "ordered": True})
            settled = await cursor.fetchall()
            finished = [row for row in settled if row["status"] in ("done", "dead", "skipped")]
            if finished:
                await self._promote(conn, finished)
        return {rest[row["idx"] - 1] for row in settled}

    async def _promote(self, conn: psycopg.AsyncConnection[Row], finished: list[Row]) -> None:
        """Give each group whose head just finished its next active member, by the rule
        of the policy that head was stored with (:func:`_promotion`); its lock is held."""
        todo: dict[Group, tuple[Ordering, float]] = {}
        for row in finished:
            ordering = Ordering(row["policy"], row["ordering_window"] or 0.0)
            group = (row["handler"], row["ordering_key"])
            now = max(row["finished_at"], todo[group][1]) if group in todo else row["finished_at"]
            todo[group] = (ordering, now)
        while todo:
            by_query: dict[str, list[Group]] = {}
            for group, (ordering, _) in todo.items():
                by_query.setdefault(_waiting_query(ordering), []).append(group)
            found: dict[Group, list[tuple[int, float | None]]] = {}
            applied: dict[Group, float | None] = {}
            for name, groups in by_query.items():
                peek = max(_peek(todo[g][0]) for g in groups)
                cursor = await conn.execute(_Q[name], {**_group_params(groups), "limit": peek})
                for row in await cursor.fetchall():
                    group = (row["handler"], row["ordering_key"])
                    found.setdefault(group, []).append((row["id"], row["occurred_at"]))
                    applied[group] = row["applied_at"]
            decided: dict[str, list[Any]] = {
                name: []
                for name in (
                    "activate", "activate_now", "skip", "skip_reason", "skip_now",
                    "keep_handler", "keep_ordering_key", "keep", "keep_now",
                )
            }  # fmt: skip
            again: dict[Group, tuple[Ordering, float]] = {}
            for group, candidates in found.items():
                ordering, now = todo[group]
                step = _promotion(ordering, candidates, applied[group], _peek(ordering))
                if step.activate is not None:
                    decided["activate"].append(step.activate)
                    decided["activate_now"].append(now)
                for delivery_id in step.stale:
                    decided["skip"].append(delivery_id)
                    decided["skip_reason"].append(STALE)
                    decided["skip_now"].append(now)
                if step.keep is not None:
                    decided["keep_handler"].append(group[0])
                    decided["keep_ordering_key"].append(group[1])
                    decided["keep"].append(step.keep)
                    decided["keep_now"].append(now)
                if step.again:
                    again[group] = todo[group]
            if found:
                await conn.execute(
                    _Q["promote"],
                    {**decided, "superseded": SUPERSEDED, "channel": self._channel},
                )
            todo = again

    supports_transactions = True

    async def begin(self, *, limit: float = 300.0) -> StoreTransaction:
        """A handler transaction on a pooled connection of its own, held until it commits
        (settling the delivery done in the same transaction) or rolls back. ``limit`` is
        accepted for symmetry with SQLite: here a stalled transaction holds only its
        own connection and row locks, and the worker rolls it back at its timeout."""
        self._check_open()
        stack = contextlib.AsyncExitStack()
        conn = await stack.enter_async_context(self._pooled("begin a handler transaction"))
        try:
            await conn.execute("BEGIN")
        except BaseException:
            await stack.aclose()
            raise
        return _PostgresTransaction(self, conn, stack)

    async def release(self, owner: str, leases: Sequence[tuple[int, int]], *, now: float) -> int:
        self._check_open()
        if not leases:
            return 0
        rows = await self._fetch(
            "release leases",
            _Q["release_leases"],
            {
                "owner": owner,
                "now": now,
                "id": [d for d, _ in leases],
                "fence": [f for _, f in leases],
                "channel": self._channel,
            },
        )
        self._ordered_claims.difference_update(d for d, _ in leases)
        return int(rows[0]["released"])

    # -- reads --------------------------------------------------------------------------

    async def ping(self) -> None:
        """Answer if the database is reachable and has every migration this version
        knows (a newer one applied by an upgrade rolling out keeps this process ready)."""
        async with self._pooled("ping the database") as conn:
            applied = await _applied(conn)
        missing = missing_migrations(applied, _SQL.migrations)
        if missing:
            raise StoreUnavailable(
                f"{_safe_url(self.url)} lacks schema {missing[-1]}; run `hookwise migrate`"
            )

    async def get_event(self, seq: int) -> EventRecord | None:
        rows = await self._fetch("read an event", _Q["get_event"], {"seq": seq})
        return _event_record(rows[0]) if rows else None

    async def find_event(self, source: str, dedup_key: str) -> EventRecord | None:
        rows = await self._fetch(
            "find an event", _Q["find_event"], {"source": source, "dedup_key": dedup_key}
        )
        return _event_record(rows[0]) if rows else None

    async def list_events(self, flt: EventFilter) -> list[EventRecord]:
        params = {
            "source": flt.source,
            "type": None if flt.type is None else glob_to_regex(flt.type),
            "status": flt.status,
            "since": flt.since,
            "before_seq": flt.before_seq,
            "limit": max(flt.limit, 0),
        }
        rows = await self._fetch("list events", _Q["list_events"], params)
        return [_event_record(row) for row in rows]

    async def deliveries(self, event_seq: int) -> list[DeliveryRecord]:
        rows = await self._fetch(
            "read deliveries", _Q["event_deliveries"], {"event_seq": event_seq}
        )
        return [_delivery(row) for row in rows]

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        rows = await self._fetch("read a delivery", _Q["get_delivery"], {"id": delivery_id})
        return _delivery(rows[0]) if rows else None

    async def attempts(self, delivery_id: int) -> list[AttemptRecord]:
        rows = await self._fetch(
            "read attempts", _Q["delivery_attempts"], {"delivery_id": delivery_id}
        )
        return [AttemptRecord(**row) for row in rows]

    async def list_dead(
        self, *, source: str | None = None, handler: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        rows = await self._fetch(
            "list dead letters",
            _Q["list_dead"],
            {"source": source, "handler": handler, "limit": max(limit, 0)},
        )
        return [_delivery(row) for row in rows]

    async def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(DELIVERY_STATUSES, 0)
        for row in await self._fetch("count deliveries", _Q["count_by_status"]):
            counts[row["status"]] = int(row["n"])
        return counts

    async def ordering_counts(self) -> OrderingCounts:
        async with self._pooled("count waiting and skipped deliveries") as conn:
            row = await (await conn.execute(_Q["count_waiting"])).fetchone()
            rows = await (await conn.execute(_Q["count_skipped"])).fetchall()
        waiting = int(row["n"]) if row else 0
        return OrderingCounts(waiting=waiting, skipped={r["reason"]: int(r["n"]) for r in rows})

    async def ordering_state(self, handler: str, ordering_key: str) -> OrderingState | None:
        rows = await self._fetch(
            "read ordering state",
            _Q["get_ordering_state"],
            {"handler": handler, "ordering_key": ordering_key},
        )
        return OrderingState(**rows[0]) if rows else None

    # -- operator actions ---------------------------------------------------------------

    async def retry_dead(
        self, delivery_ids: Sequence[int] | None, *, now: float, source: str | None = None
    ) -> int:
        self._check_open()
        params = {
            "ids": None if delivery_ids is None else list(delivery_ids),
            "source": source,
            "now": now,
            "channel": self._channel,
        }
        async with self._pooled("retry dead letters") as conn, conn.transaction():
            cursor = await conn.execute(_Q["retry_dead"], params)
            row = await cursor.fetchone()
            retried = int(row["retried"]) if row else 0
            cursor = await conn.execute(_Q["dead_ordered"], params)
            ordered = [row["id"] for row in await cursor.fetchall()]
            if ordered:
                # Each waits if its group has an active member: decided under the lock.
                await conn.execute(_Q["lock_groups_of"], {"id": ordered})
                cursor = await conn.execute(_Q["retry_ordered"], {**params, "ids": ordered})
                row = await cursor.fetchone()
                retried += int(row["retried"]) if row else 0
        return retried

    async def discard_dead(
        self, delivery_ids: Sequence[int] | None, *, now: float, source: str | None = None
    ) -> int:
        self._check_open()
        async with self._pooled("discard dead letters") as conn:
            cursor = await conn.execute(
                _Q["discard_dead"],
                {
                    "ids": None if delivery_ids is None else list(delivery_ids),
                    "source": source,
                    "now": now,
                },
            )
            return cursor.rowcount

    async def replay(
        self, event_seqs: Sequence[int], handlers: Sequence[str], *, now: float
    ) -> int:
        self._check_open()
        seqs, names = list(dict.fromkeys(event_seqs)), list(dict.fromkeys(handlers))
        scheduled = due = 0
        async with self._pooled("replay events") as conn, conn.transaction():
            cursor = await conn.execute(_Q["replay_ordered_events"], {"event_seq": seqs})
            keys = [row["ordering_key"] for row in await cursor.fetchall()]
            if keys:
                # Whether each waits behind its group's active member is decided under
                # the lock of the group it is in (or joins, for a handler new to it).
                await conn.execute(
                    _Q["lock_groups"], _group_params((h, k) for k in keys for h in names)
                )
            for seq in seqs:
                for handler in names:
                    params = {"event_seq": seq, "handler": handler, "now": now}
                    cursor = await conn.execute(_Q["replay_existing"], params)
                    row = await cursor.fetchone()
                    if row is None:
                        cursor = await conn.execute(_Q["replay_new"], params)
                        row = await cursor.fetchone()
                    if row is not None:
                        scheduled += 1
                        due += row["next_attempt_at"] is not None
            if due:
                await conn.execute(_Q["notify"], {"channel": self._channel})
        return scheduled

    # -- housekeeping -------------------------------------------------------------------

    async def purge(self, *, before: float, batch: int = 500) -> int:
        """Delete finished events received before ``before`` (see :meth:`Store.purge`),
        then the ordering state of groups with nothing left (read ``batch`` groups at a
        time, in key order), then rejection records received before it, each in
        batches of ``batch``."""
        self._check_open()
        if batch <= 0:
            raise ValueError("batch must be at least 1")
        params = {"before": before, "batch": batch}
        total = 0
        while True:
            async with self._pooled("purge old events") as conn:
                cursor = await conn.execute(_Q["purge_batch"], params)
                deleted = cursor.rowcount
            total += deleted
            if deleted < batch:
                break
            await asyncio.sleep(0)  # let intake and claims in between batches
        query, group = _Q["purge_ordering_state_first"], dict(params)
        while True:
            async with self._pooled("purge old ordering state") as conn:
                cursor = await conn.execute(query, group)
                last = await cursor.fetchone()
            if last is None or last["scanned"] < batch:
                break
            query = _Q["purge_ordering_state"]
            group.update(after_handler=last["handler"], after_key=last["ordering_key"])
            await asyncio.sleep(0)
        while True:
            async with self._pooled("purge old rejection records") as conn:
                cursor = await conn.execute(_Q["purge_rejections"], params)
                refused = cursor.rowcount
            if refused < batch:
                return total
            await asyncio.sleep(0)

    # -- rejections ---------------------------------------------------------------------

    async def record_rejections(self, records: Sequence[RejectionRecord]) -> None:
        self._check_open()
        if not records:
            return
        kept, body_kept = _base.REJECTIONS_KEPT, _base.REJECTED_BODY_KEPT
        columns: dict[str, list[Any]] = {
            name: []
            for name in (
                "source", "received_at", "reason", "detail", "hints", "status", "method", "url",
                "client", "headers", "body", "body_size",
            )
        }  # fmt: skip
        for r in records:
            columns["source"].append(_text(r.source))
            columns["received_at"].append(r.received_at)
            columns["reason"].append(_text(r.reason))
            columns["detail"].append(_text(r.detail))
            columns["hints"].append(json.dumps(list(r.hints)))
            columns["status"].append(r.status)
            columns["method"].append(_text(r.method))
            columns["url"].append(_text(r.url))
            columns["client"].append(None if r.client is None else _text(r.client))
            columns["headers"].append(headers_json(r.headers))
            columns["body"].append(bytes(r.body[:body_kept]))
            columns["body_size"].append(r.body_size)
        trim = {"sources": sorted(set(columns["source"])), "kept": kept}
        async with self._pooled("record rejections") as conn, conn.transaction():
            await conn.execute(_Q["insert_rejections"], columns)
            await conn.execute(_Q["trim_rejections"], trim)

    async def list_rejections(
        self, *, source: str | None = None, limit: int = 50
    ) -> list[RejectionRecord]:
        query = _Q["list_rejections" if source is None else "list_rejections_of_source"]
        rows = await self._fetch(
            "list rejection records", query, {"source": source, "limit": max(limit, 0)}
        )
        return [rejection_record(row) for row in rows]

    async def get_rejection(self, rejection_id: int) -> RejectionRecord | None:
        rows = await self._fetch(
            "read a rejection record", _Q["get_rejection"], {"id": rejection_id}
        )
        return rejection_record(rows[0]) if rows else None

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        entry = (callback, asyncio.get_running_loop())
        self._subscribers.append(entry)
        if self._open and self._listener is None:
            self._start_listener()

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(entry)

        return unsubscribe

    def _start_listener(self) -> None:
        self._listener = asyncio.create_task(self._listen_forever(), name="hookwise-pg-listen")

    def _wake_subscribers(self) -> None:
        here = asyncio.get_running_loop()
        for callback, loop in list(self._subscribers):
            if loop is not here:
                with contextlib.suppress(RuntimeError):  # that loop is gone
                    loop.call_soon_threadsafe(callback)
                continue
            try:
                callback()
            except Exception:
                log.exception("a wake-up subscriber failed")

    async def _listen_forever(self) -> None:
        pause = RECONNECT_PAUSE
        while True:
            try:
                conn = await self._connect()
            except StoreUnavailable as exc:
                log.warning("can't listen for new work (%s); polling meanwhile", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, LISTEN_RETRY_MAX)
                continue
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                self.listening = True
                pause = RECONNECT_PAUSE
                # Work may have arrived while nobody listened.
                self._wake_subscribers()
                async for _ in conn.notifies():
                    self._wake_subscribers()
            except psycopg.Error as exc:
                log.warning("lost the connection that listens for new work (%s); polling", exc)
            finally:
                self.listening = False
                with contextlib.suppress(Exception):
                    await conn.close()
            await asyncio.sleep(pause)

    # -- polls --------------------------------------------------------------------------

    async def get_poll_state(self, name: str) -> _base.PollState | None:
        rows = await self._fetch("read a poll's state", _Q["get_poll_state"], {"name": name})
        return _poll_state(rows[0]) if rows else None

    async def list_poll_states(self) -> list[_base.PollState]:
        rows = await self._fetch("list poll states", _Q["list_poll_states"])
        return [_poll_state(row) for row in rows]

    async def save_poll_state(self, state: _base.PollState) -> None:
        params = _poll_state_params(state)
        async with self._pooled("save a poll's state") as conn:
            await conn.execute(_Q["save_poll_state"], params)

    async def poll_index(self, name: str) -> dict[str, str]:
        rows = await self._fetch("read a poll's index", _Q["poll_index"], {"poll": name})
        return {row["item_id"]: row["version"] for row in rows}

    async def update_poll_index(
        self,
        name: str,
        *,
        upsert: Mapping[str, str],
        delete: Collection[str],
        state: _base.PollState | None = None,
    ) -> None:
        """One transaction; each list travels as arrays unnested server-side, so it is
        one statement (and one round trip) however many ids it holds."""
        self._check_open()
        _base.check_poll_update(name, upsert, delete, state)
        pairs = list(upsert.items())
        saved = None if state is None else _poll_state_params(state)
        async with self._pooled("update a poll's index") as conn, conn.transaction():
            if pairs:
                await conn.execute(
                    _Q["upsert_poll_items"],
                    {
                        "poll": name,
                        "item_ids": [item_id for item_id, _ in pairs],
                        "versions": [version for _, version in pairs],
                    },
                )
            if delete:
                await conn.execute(
                    _Q["delete_poll_items"], {"poll": name, "item_ids": list(delete)}
                )
            if saved is not None:
                await conn.execute(_Q["save_poll_state"], saved)

    async def forget_poll(self, name: str) -> None:
        async with self._pooled("forget a poll") as conn, conn.transaction():
            await conn.execute(_Q["forget_poll_items"], {"poll": name})
            await conn.execute(_Q["forget_poll_state"], {"poll": name})


# -- helpers ----------------------------------------------------------------------------------


class _PostgresTransaction:
    """A handler transaction: one pooled connection inside ``BEGIN``, given back to the
    pool at commit or rollback."""

    engine: Literal["postgresql"] = "postgresql"

    def __init__(
        self,
        store: PostgresStore,
        conn: psycopg.AsyncConnection[Row],
        stack: contextlib.AsyncExitStack,
    ) -> None:
        self._store = store
        self._conn = conn
        self._stack = stack
        self._lock = asyncio.Lock()
        self._closed = False

    async def execute(self, sql: str, params: Params = ()) -> TxResult:
        async with self._using():
            cursor = self._conn.cursor(row_factory=tuple_row)
            await cursor.execute(cast(Any, sql), params if params else None)
            rows = await cursor.fetchall() if cursor.description is not None else []
            return TxResult(rows=list(rows), rowcount=cursor.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> int:
        async with self._using():
            cursor = self._conn.cursor(row_factory=tuple_row)
            await cursor.executemany(cast(Any, sql), rows)
            return cursor.rowcount

    async def commit(self, settlement: Settlement) -> bool:
        async with self._using(closing=True):
            try:
                with _errors("settle a transactional delivery", self._store.url):
                    settled = await self._store._settle_on(
                        self._conn, [settlement], _settle_params([settlement])
                    )
                    if not settled[0]:
                        await self._conn.execute("ROLLBACK")  # the lease is gone, and so are
                        return False  # the handler's writes
                    await self._conn.execute("COMMIT")
                    return True
            finally:
                await self._finish()

    async def rollback(self) -> None:
        if self._closed:
            return
        async with self._using(closing=True):
            await self._finish()

    @contextlib.asynccontextmanager
    async def _using(self, *, closing: bool = False) -> AsyncIterator[None]:
        if self._closed:
            raise TransactionClosed(
                "this handler transaction has ended (the attempt finished, timed out or "
                "was cancelled); its statements can no longer run"
            )
        async with self._lock:
            if self._closed:
                raise TransactionClosed("this handler transaction has ended")
            if closing:
                self._closed = True
            yield

    async def _finish(self) -> None:
        """Roll back whatever is still open and give the connection back."""
        try:
            if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                with contextlib.suppress(psycopg.Error):
                    await self._conn.execute("ROLLBACK")
        finally:
            await self._stack.aclose()


def _settle_params(settlements: Sequence[Settlement]) -> dict[str, list[Any]]:
    """The settle statement's parameters: one array per column."""
    params: dict[str, list[Any]] = {
        name: []
        for name in (
            "id", "fence", "owner", "status", "next_attempt_at", "error", "started_at",
            "finished_at", "outcome",
        )
    }  # fmt: skip
    for s in settlements:
        retry_at = s.next_attempt_at if s.next_attempt_at is not None else s.finished_at
        params["id"].append(s.delivery_id)
        params["fence"].append(s.fence)
        params["owner"].append(s.owner)
        params["status"].append(_SETTLED_STATUS[s.outcome])
        params["next_attempt_at"].append(retry_at if s.outcome == "retry" else None)
        params["error"].append(None if s.error is None else _text(s.error))
        params["started_at"].append(s.started_at)
        params["finished_at"].append(s.finished_at)
        params["outcome"].append(s.outcome)
    return params


def _fail(batch: list[Queued], exc: Exception) -> None:
    for *_, future in batch:
        if not future.done():
            # A fresh exception per waiting request, so their tracebacks don't pile up.
            copy = type(exc)(str(exc)) if isinstance(exc, StoreError) else exc
            future.set_exception(copy)


@dataclasses.dataclass(slots=True)
class _Head:
    """A group's active member as an append sees it."""

    id: int | None
    """None when this batch placed it."""
    started: bool
    """Claimed at least once (an earlier event can no longer take its place)."""
    occurred_at: float | None
    due: float | None
    row: int | None = None
    """Its place among the batch's members, when this batch placed it."""


@dataclasses.dataclass(slots=True)
class _Member:
    """A new ordered delivery, and where the append placed it in its group."""

    event_seq: int
    handler: str
    ordering_key: str
    occurred_at: float | None
    received_at: float
    policy: str
    window: float
    status: str = "pending"
    due: float | None = None
    """None: waiting (or skipped)."""
    error: str | None = None

    @property
    def group(self) -> Group:
        return (self.handler, self.ordering_key)


def _place(
    members: list[_Member], heads: dict[Group, _Head], applied: dict[Group, float | None]
) -> list[int]:
    """Place new ordered members, in arrival order, in their groups (``heads``: each
    group's active member, updated as members are placed): skipped as stale when older
    than the newest applied (latest, coalesce); else active when the group has no
    active member, or when its reorder window lets it take the place of an unstarted
    head that happened later; else waiting. Returns the ids of the stored heads whose
    place was taken (they wait again)."""
    displaced: list[int] = []
    for row, member in enumerate(members):
        group = member.group
        head = heads.get(group)
        if member.policy != "serial" and _is_stale(member.occurred_at, applied.get(group)):
            member.status, member.error = "skipped", STALE
        elif head is None:
            member.due = member.received_at + member.window
            heads[group] = _Head(None, False, member.occurred_at, member.due, row)
        elif (
            member.window > 0
            and not head.started
            and head.due is not None
            and head.occurred_at is not None
            and member.occurred_at is not None
            and member.occurred_at < head.occurred_at
        ):
            member.due = max(member.received_at + member.window, head.due)
            if head.row is not None:
                members[head.row].due = None
            elif head.id is not None:
                displaced.append(head.id)
            heads[group] = _Head(None, False, member.occurred_at, member.due, row)
    return displaced


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    """One promotion step in one group."""

    activate: int | None = None
    stale: tuple[int, ...] = ()
    """Waiting members skipped unrun as stale."""
    keep: int | None = None
    """coalesce: every other waiting member is skipped as superseded."""
    again: bool = False
    """Every member read was stale and there may be more: read again."""


def _waiting_query(ordering: Ordering) -> str:
    """The query that reads a group's next waiting members in the policy's order."""
    if ordering.policy == "coalesce":
        return "newest_waiting"
    return "waiting_by_time" if ordering.window > 0 else "waiting_by_arrival"


def _peek(ordering: Ordering) -> int:
    return PROMOTION_PEEK if ordering.policy == "latest" else 1


def _promotion(
    ordering: Ordering,
    candidates: Sequence[tuple[int, float | None]],
    applied_at: float | None,
    peek: int,
) -> _Step:
    """What promotes the next member of a group without an active one, given its
    waiting members ``(id, occurred_at)`` in the policy's order (coalesce: only the
    newest) and the newest time it applied.

    serial: the first. latest: the first that is not stale, the stale ones before it
    skipped. coalesce: the newest, unless stale; every other one is superseded.
    """
    if not candidates:
        return _Step()
    if ordering.policy == "coalesce":
        newest, occurred_at = candidates[0]
        if _is_stale(occurred_at, applied_at):
            return _Step(stale=(newest,), keep=newest)
        return _Step(activate=newest, keep=newest)
    if ordering.policy == "serial":
        return _Step(activate=candidates[0][0])
    stale: list[int] = []
    for delivery_id, occurred_at in candidates:
        if not _is_stale(occurred_at, applied_at):
            return _Step(activate=delivery_id, stale=tuple(stale))
        stale.append(delivery_id)
    return _Step(stale=tuple(stale), again=len(candidates) >= peek)


def _is_stale(occurred_at: float | None, applied_at: float | None) -> bool:
    """Whether an event that happened at ``occurred_at`` is older than the newest one
    its group applied (no time on either side: it is not)."""
    return occurred_at is not None and applied_at is not None and occurred_at < applied_at


def _delivery(row: Row) -> DeliveryRecord:
    return dataclasses.replace(
        _delivery_record(row), ordering_key=row["ordering_key"], policy=row["policy"]
    )


def _group_params(groups: Iterable[Group]) -> dict[str, list[str]]:
    distinct = sorted(set(groups))
    return {"handler": [h for h, _ in distinct], "ordering_key": [k for _, k in distinct]}


def _text(value: str) -> str:
    """PostgreSQL text can't hold NUL; a sender's NUL becomes U+FFFD rather than failing
    the batch it arrived in."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


async def _applied(conn: psycopg.AsyncConnection[Row]) -> list[str]:
    cursor = await conn.execute(_Q["has_schema_migrations"])
    if await cursor.fetchone() is None:
        return []
    cursor = await conn.execute(_Q["applied_migrations"])
    return [row["version"] for row in await cursor.fetchall()]


def glob_to_regex(pattern: str) -> str:
    """A glob on event types (``*``, ``?``, ``[...]``, ``[!...]``) as an anchored POSIX
    regular expression, as SQLite's GLOB reads it.

    >>> glob_to_regex("invoice.*")
    '^invoice\\\\..*$'
    """
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 1 if i < n and pattern[i] in "!^" else i)
            if end == -1:
                out.append("\\[")
                continue
            body = pattern[i:end]
            i = end + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append("[" + ("^" if negate else "") + body + "]")
        else:
            out.append(re.escape(char))
    out.append("$")
    return "".join(out)


def _conninfo(url: str) -> str:
    # psycopg reads postgresql:// URLs; "postgres://" is an alias libpq accepts too.
    return url


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


_ADVICE = (
    ("connection refused", "PostgreSQL is not running or not listening there; start it"),
    ("password authentication failed", "check the user and password in the store URL"),
    ("does not exist", "create the database (createdb) or fix its name in the store URL"),
    ("timeout", "PostgreSQL did not answer in time; check the host and the network"),
    ("terminating connection", "PostgreSQL closed the connection (restart or shutdown)"),
    ("server closed the connection", "PostgreSQL closed the connection (restart or shutdown)"),
    (
        "too many clients",
        "PostgreSQL is out of connections; lower [store] pool_size or raise max_connections",
    ),
)


def _unavailable(exc: psycopg.Error, what: str, url: str) -> StoreUnavailable:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = str(exc).lower()
    for needle, advice in _ADVICE:
        if needle in lowered:
            return StoreUnavailable(f"could not {what} at {_safe_url(url)} ({message}): {advice}")
    return StoreUnavailable(f"could not {what} at {_safe_url(url)} ({message})")


@contextlib.contextmanager
def _errors(what: str, url: str) -> Any:
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise _unavailable(exc, what, url) from exc
    except psycopg.errors.QueryCanceled as exc:
        raise _unavailable(exc, what, url) from exc


# -- polls ----------------------------------------------------------------------------------


def _poll_state(row: Row) -> _base.PollState:
    # psycopg reads jsonb as Python objects already.
    return _base.PollState(**row)
