"""The embedded store: one SQLite file in WAL mode, written by one thread.

Every write (appends, claims, settles, operator actions) is a job on one queue,
run by one writer thread in ``BEGIN IMMEDIATE`` transactions. Appends are
**group-committed**: the writer takes every append waiting in the queue, stores
them all in one transaction and pays for one fsync, then answers each waiting
request. Under load that turns N fsyncs into a few, and a ``2xx`` still means the
event is on disk. Reads use their own connections, off the event loop.

Why one writer: SQLite lets one connection write at a time anyway, and a queue in
the process is cheaper and fairer than many connections spinning on the file lock.

Subscribers (:meth:`SQLiteStore.subscribe`, how a worker in the same process hears of
new work at once) are told by the writer after the commit, in the same wake-up of
their loop that answers the appends waiting there: no system call is added per append.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from json.encoder import encode_basestring_ascii as _json_string
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast, get_args

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
from .memory import DELIVERY_STATUSES, DISCARDED, Subscribers, call_subscribers

__all__ = ["SQLiteStore", "WriterStats"]

T = TypeVar("T")

MAX_BATCH = 512
"""Most appends shared by one transaction; bounds how long one commit holds the lock."""

_log = logging.getLogger("hookwise.store")

TRANSACTION_LIMIT = 300.0
"""Seconds a handler transaction may wait for its next statement before the writer rolls
it back on its own (its caller is gone); the worker passes the handler's timeout."""

_SQL = sql_for("sqlite")
_Q = _SQL.queries

_SETTLED_STATUS = {"done": "done", "retry": "retrying", "dead": "dead", "skipped": "skipped"}

_POLICIES: frozenset[str] = frozenset(get_args(OrderingPolicy))
STALE = "stale"
"""Why an ordered delivery is skipped unrun: a newer event of its group was applied."""
SUPERSEDED = "superseded"
"""Why a coalesced delivery is skipped unrun: a newer one of its group runs instead."""


@dataclass(frozen=True, slots=True)
class WriterStats:
    """What the writer thread has done since the store was opened.

    >>> store.stats()
    WriterStats(commits=3, appended=200, largest_batch=120)

    ``appended`` counts append requests answered (new and duplicate alike).
    """

    commits: int
    appended: int
    largest_batch: int


class _Waiter:
    """A future on the caller's loop that the writer thread settles."""

    __slots__ = ("future", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[Any] = self.loop.create_future()

    def resolve(self, value: object) -> None:
        self._call(_set_result, value)

    def fail(self, exc: BaseException) -> None:
        self._call(_set_exception, exc)

    def _call(self, fn: Callable[[asyncio.Future[Any], Any], None], arg: object) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, self.future, arg)
        except RuntimeError:
            # The caller's loop is gone; nobody is left to tell.
            pass


_Wake = Mapping[asyncio.AbstractEventLoop, Sequence[Callable[[], None]]]
"""Subscriber callbacks to run after a commit, by the loop each must run on."""


def _resolve_all(outcomes: Sequence[tuple[_Waiter, object]], wake: _Wake | None = None) -> None:
    """Answer many waiters with one wake-up per event loop, not one per waiter: under
    load a batch holds hundreds of requests, and each wake-up is a system call.

    ``wake``'s callbacks ride along with the answers for their loop; a loop with
    subscribers but no waiter in this batch gets a wake-up of its own.
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
    for waiter, value in outcomes:
        by_loop.setdefault(waiter.loop, []).append((waiter.future, value))
    for loop, pairs in by_loop.items():
        callbacks = wake.get(loop, ()) if wake else ()
        try:
            loop.call_soon_threadsafe(_set_results, pairs, callbacks)
        except RuntimeError:
            pass  # that loop is gone; nobody is left to tell
    if wake:
        for loop, callbacks in wake.items():
            if loop in by_loop:
                continue
            try:
                loop.call_soon_threadsafe(call_subscribers, callbacks)
            except RuntimeError:
                pass  # that loop is gone; nobody is left to wake


def _set_results(
    pairs: Sequence[tuple[asyncio.Future[Any], object]],
    callbacks: Sequence[Callable[[], None]] = (),
) -> None:
    for future, value in pairs:
        if not future.done():
            future.set_result(value)
    if callbacks:
        call_subscribers(callbacks)


def _set_result(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class _AppendJob:
    """One append on its way to the writer. A plain class: a frozen dataclass costs
    a microsecond more to build, on the request path.

    ``ordering`` is None for an unordered event, and for an event without an
    ordering key whatever its source's policy.
    """

    __slots__ = ("event", "handlers", "ordering", "waiter")

    def __init__(
        self,
        event: NewEvent,
        handlers: tuple[str, ...],
        waiter: _Waiter,
        ordering: Ordering | None = None,
    ) -> None:
        self.event = event
        self.handlers = handlers
        self.waiter = waiter
        self.ordering = ordering


@dataclass(frozen=True, slots=True)
class _WriteJob:
    what: str
    work: Callable[[sqlite3.Connection], Any]
    waiter: _Waiter
    in_transaction: bool = True
    """False for work that runs its own transactions (migrations)."""
    wakes: bool = False
    """The work returns ``(answer, due)``: the caller gets ``answer``, and subscribers
    are told after the commit when ``due`` (deliveries the work made due: a replay, a
    retry of dead letters, a settle that promoted a waiting delivery) is above zero."""


@dataclass(frozen=True, slots=True)
class _StopJob:
    waiter: _Waiter


class _SQLiteTransaction:
    """A handler transaction, served by the writer thread (:meth:`serve` is its job).

    The event loop side (:meth:`execute`, :meth:`commit`, :meth:`rollback`) puts
    requests on a queue and awaits their answers; the writer runs them in the open
    transaction, one at a time, until a commit or a rollback ends it.
    """

    engine: Literal["sqlite"] = "sqlite"

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.started = _Waiter()
        self.finished: asyncio.Future[Any] | None = None
        self._requests: queue.SimpleQueue[tuple[str, Any, _Waiter | None]] = queue.SimpleQueue()
        self._closed = False

    # -- the event loop's side ----------------------------------------------------------

    async def execute(self, sql: str, params: Params = ()) -> TxResult:
        return cast(TxResult, await self._ask("execute", (sql, params)))

    async def executemany(self, sql: str, rows: Sequence[Params]) -> int:
        return cast(int, await self._ask("executemany", (sql, rows)))

    async def commit(self, settlement: Settlement) -> bool:
        applied = await self._ask("commit", settlement, closing=True)
        return bool(applied)

    async def rollback(self) -> None:
        if self._closed:
            return
        await self._ask("rollback", None, closing=True)

    def abandon(self) -> None:
        """Roll back without waiting (the caller is going away)."""
        if not self._closed:
            self._closed = True
            self._requests.put(("rollback", None, None))

    async def _ask(self, kind: str, payload: Any, *, closing: bool = False) -> Any:
        if self._closed:
            raise TransactionClosed(
                "this handler transaction has ended (the attempt finished, timed out or "
                "was cancelled); its statements can no longer run"
            )
        if closing:
            self._closed = True
        waiter = _Waiter()
        self._requests.put((kind, payload, waiter))
        try:
            return await waiter.future
        except asyncio.CancelledError:
            self.abandon()
            raise

    # -- the writer thread's side -------------------------------------------------------

    def serve(self, conn: sqlite3.Connection) -> tuple[bool | None, int]:
        """Run the transaction; returns (committed, deliveries made due)."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:
            self.started.fail(_copy_error(exc))
            return None, 0
        self.started.resolve(None)
        try:
            while True:
                try:
                    kind, payload, waiter = self._requests.get(timeout=self.limit)
                except queue.Empty:
                    _log.warning("a handler transaction was idle for %ss; rolled back", self.limit)
                    self._closed = True
                    conn.execute("ROLLBACK")
                    return None, 0
                if kind == "rollback":
                    conn.execute("ROLLBACK")
                    if waiter is not None:
                        waiter.resolve(None)
                    return None, 0
                if kind == "commit":
                    return self._commit(conn, payload, waiter)
                try:
                    answer = self._run(conn, kind, payload)
                except Exception as exc:  # the handler's own SQL: its error is its own
                    if waiter is not None:
                        waiter.fail(exc)
                else:
                    if waiter is not None:
                        waiter.resolve(answer)
        finally:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass

    @staticmethod
    def _run(conn: sqlite3.Connection, kind: str, payload: Any) -> TxResult | int:
        sql, params = payload
        if kind == "executemany":
            return conn.executemany(sql, params).rowcount
        cursor = conn.execute(sql, params)
        rows = [tuple(row) for row in cursor.fetchall()]
        return TxResult(rows=rows, rowcount=cursor.rowcount)

    def _commit(
        self, conn: sqlite3.Connection, settlement: Settlement, waiter: _Waiter | None
    ) -> tuple[bool | None, int]:
        try:
            applied, promoted = _settle_rows(conn, [settlement])
            if not applied[0]:
                conn.execute("ROLLBACK")  # the lease is gone: so are the handler's writes
                if waiter is not None:
                    waiter.resolve(False)
                return False, 0
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if waiter is not None:
                waiter.fail(_copy_error(exc))
            return None, 0
        if waiter is not None:
            waiter.resolve(True)
        return True, promoted


_Job = _AppendJob | _WriteJob | _StopJob


class SQLiteStore:
    """The store in one SQLite file.

    >>> async with SQLiteStore("hookwise.db") as store:
    ...     result = await store.append(new_event, handlers=["billing"])

    ``path`` is a file path (``open_store("sqlite:///hookwise.db")`` builds this).
    Opening creates the file if needed and migrates it to the newest schema.
    """

    def __init__(
        self, path: str, *, settings: StoreSettings | None = None, url: str | None = None
    ) -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.settings = settings or StoreSettings(url=self.url)
        self._open = False
        self._writer: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._readers: list[sqlite3.Connection] = []
        self._idle_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending_appends = 0
        self._commits = 0
        self._appended = 0
        self._largest_batch = 0
        self._writer_broken = False
        self._subscribers = Subscribers()
        self.migrations_applied: list[str] = []
        """Versions the last :meth:`open` applied (empty when the file was up to date)."""

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Create or open the file, migrate it, start the writer thread."""
        if self._open:
            return
        writer = await asyncio.to_thread(self._connect)
        try:
            self.migrations_applied = await asyncio.to_thread(self._migrate, writer)
        except BaseException:
            writer.close()
            raise
        self._writer = writer
        self._commits = self._appended = self._largest_batch = 0
        self._thread = threading.Thread(
            target=self._write_loop, args=(writer,), name=f"hookwise-sqlite-writer:{self.path}"
        )
        # A daemon, so a store never closed can't hang interpreter exit; every append
        # was answered only after its commit, so nothing acknowledged is lost.
        self._thread.daemon = True
        self._thread.start()
        self._open = True

    async def close(self) -> None:
        """Answer everything queued, stop the writer, close every connection."""
        if not self._open:
            return
        self._open = False
        waiter = _Waiter()
        self._jobs.put(_StopJob(waiter))
        await waiter.future
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        # Anything that slipped in behind the stop job is refused, not left hanging.
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            job.waiter.fail(StoreNotOpen("SQLite store"))
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._idle_readers.clear()

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
            raise StoreNotOpen("SQLite store")

    def stats(self) -> WriterStats:
        """Commits and appends since :meth:`open` (the group-commit ratio)."""
        return WriterStats(self._commits, self._appended, self._largest_batch)

    # -- migrations -------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply every migration the file lacks, in order; return their versions.

        Works on an unopened store too (``hookwise migrate``); :meth:`open` migrates
        by itself, so on an open store this returns ``[]`` unless the files changed.
        """
        if self._open:
            return cast(
                list[str], await self._write("migrate", self._migrate, in_transaction=False)
            )
        conn = await asyncio.to_thread(self._connect)
        try:
            return await asyncio.to_thread(self._migrate, conn)
        finally:
            conn.close()

    async def schema_version(self) -> str | None:
        """The newest migration applied to the file, or ``None`` for a bare or missing file."""
        # Connecting would create a missing file; asking must not.
        if not await asyncio.to_thread(os.path.exists, self.path):
            return None
        conn = await asyncio.to_thread(self._connect, reader=True)
        try:
            applied = await asyncio.to_thread(self._guarded, "read the schema", _applied, conn)
        finally:
            conn.close()
        return applied[-1] if applied else None

    def _migrate(self, conn: sqlite3.Connection) -> list[str]:
        applied_now: list[str] = []
        with self._errors("migrate the database"):
            conn.execute(_Q["create_schema_migrations"])
            known = {m.version for m in _SQL.migrations}
            applied = set(_applied(conn))
            unknown = sorted(applied - known)
            if unknown:
                raise StoreUnavailable(
                    f"{self.path} has schema {unknown[-1]}, newer than this hookwise knows; "
                    "upgrade hookwise (or point it at another database)"
                )
            # An up-to-date file is opened without taking the write lock.
            for migration in [m for m in _SQL.migrations if m.version not in applied]:
                with _transaction(conn):
                    # Checked inside the write lock: another process may have just run it.
                    if migration.version in _applied(conn):
                        continue
                    # Statement by statement: executescript() would COMMIT half-way.
                    for statement in split_statements(migration.sql):
                        conn.execute(statement)
                    conn.execute(
                        _Q["record_migration"],
                        # When it ran is bookkeeping for operators, not domain time.
                        {"version": migration.version, "applied_at": time.time()},
                    )
                applied_now.append(migration.version)
        return applied_now

    # -- connections ------------------------------------------------------------------

    def _connect(self, *, reader: bool = False) -> sqlite3.Connection:
        with self._errors("open the database"):
            conn = sqlite3.connect(
                self.path,
                timeout=self.settings.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=128 if reader else WRITER_CACHED_STATEMENTS,
            )
            try:
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {int(self.settings.busy_timeout * 1000)}")
                conn.execute("PRAGMA foreign_keys = ON")
                if reader:
                    conn.execute("PRAGMA query_only = ON")
                else:
                    conn.execute("PRAGMA journal_mode = WAL")
                    synchronous = "FULL" if self.settings.durability == "full" else "NORMAL"
                    conn.execute(f"PRAGMA synchronous = {synchronous}")
            except BaseException:
                conn.close()
                raise
        return conn

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        with self._readers_lock:
            conn = self._idle_readers.pop() if self._idle_readers else None
        if conn is None:
            conn = self._connect(reader=True)
            with self._readers_lock:
                self._readers.append(conn)
        try:
            yield conn
        finally:
            with self._readers_lock:
                if conn in self._readers:
                    self._idle_readers.append(conn)

    async def _read(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()

        def run() -> T:
            with self._reader() as conn:
                return self._guarded(what, work, conn)

        return await asyncio.to_thread(run)

    def _guarded(
        self, what: str, work: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection
    ) -> T:
        with self._errors(what):
            return work(conn)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except sqlite3.Error as exc:
            error = _unavailable(exc, what, self.path, self.settings.busy_timeout)
            if error is None:
                raise
            raise error from exc

    # -- the writer thread --------------------------------------------------------------

    async def _write(
        self,
        what: str,
        work: Callable[[sqlite3.Connection], Any],
        *,
        in_transaction: bool = True,
        wakes: bool = False,
    ) -> Any:
        self._check_open()
        waiter = _Waiter()
        self._jobs.put(_WriteJob(what, work, waiter, in_transaction, wakes))
        return await waiter.future

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        stopping: _StopJob | None = None
        while stopping is None:
            batch = [self._jobs.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            if self._writer_broken and not all(isinstance(j, _StopJob) for j in batch):
                conn = self._reconnect_writer(conn, batch)
            appends: list[_AppendJob] = []
            for job in batch:
                if stopping is not None:
                    job.waiter.fail(StoreNotOpen("SQLite store"))
                elif isinstance(job, _AppendJob):
                    appends.append(job)
                    if not self.settings.group_commit:
                        self._commit_appends(conn, appends)
                        appends = []
                else:
                    # Writes run in arrival order: appends queued before this job first.
                    self._commit_appends(conn, appends)
                    appends = []
                    if isinstance(job, _WriteJob):
                        self._run_write(conn, job)
                    else:
                        stopping = job
            self._commit_appends(conn, appends)
        stopping.waiter.resolve(None)

    def _reconnect_writer(
        self, conn: sqlite3.Connection, batch: list[_AppendJob | _WriteJob | _StopJob]
    ) -> sqlite3.Connection:
        """Open a fresh write connection after a failure that a connection can keep
        (a file opened read-only stays read-only even once it is writable again)."""
        try:
            fresh = self._connect()
        except StoreError:
            return conn  # still broken: this batch fails on the old connection, as it should
        conn.close()
        self._writer = fresh
        self._writer_broken = False
        del batch
        return fresh

    def _note_failure(self, exc: BaseException) -> None:
        if (
            isinstance(exc, StoreUnavailable)
            and "locked" not in str(exc)
            and "busy" not in str(exc)
        ):
            self._writer_broken = True

    def _commit_appends(self, conn: sqlite3.Connection, jobs: list[_AppendJob]) -> None:
        if not jobs:
            return
        held: set[_AppendJob] = set()
        try:
            with self._errors("write events"), _transaction(conn):
                results = _insert_batch(conn, jobs, held)
        except Exception as exc:
            self._note_failure(exc)
            self._done_appending(len(jobs))
            for job in jobs:
                job.waiter.fail(_copy_error(exc))
            return
        self._commits += 1
        self._appended += len(jobs)
        self._largest_batch = max(self._largest_batch, len(jobs))
        self._done_appending(len(jobs))
        wake = self._subscribers.by_loop
        if wake and not any(
            job.handlers and not result.duplicate and job not in held
            for job, result in zip(jobs, results, strict=True)
        ):
            wake = {}  # nothing new to run: duplicates, events no handler takes, waiting ones
        _resolve_all(
            [(job.waiter, result) for job, result in zip(jobs, results, strict=True)], wake
        )

    def _run_write(self, conn: sqlite3.Connection, job: _WriteJob) -> None:
        try:
            with self._errors(job.what):
                if not job.in_transaction:
                    result = job.work(conn)
                else:
                    with _transaction(conn):
                        result = job.work(conn)
                    self._commits += 1
        except Exception as exc:
            self._note_failure(exc)
            job.waiter.fail(exc)
            return
        if job.wakes:
            result, due = result
            if due and self._subscribers.by_loop:
                _resolve_all([(job.waiter, result)], self._subscribers.by_loop)
                return
        job.waiter.resolve(result)

    def _done_appending(self, n: int) -> None:
        with self._pending_lock:
            self._pending_appends -= n

    # -- intake ---------------------------------------------------------------------

    async def append(
        self, event: NewEvent, handlers: Sequence[str], *, ordering: Ordering | None = None
    ) -> AppendResult:
        if not self._open:
            raise StoreNotOpen("SQLite store")
        if ordering is not None:
            if ordering.policy not in _POLICIES:
                raise ValueError(
                    f"unknown ordering policy {ordering.policy!r}; "
                    f"use one of {', '.join(sorted(_POLICIES))}"
                )
            if event.ordering_key is None:
                ordering = None  # nothing to order it by: it runs like any other
        # Routing gives a tuple of distinct names: the common case is not copied.
        names: tuple[str, ...] = (
            handlers
            if isinstance(handlers, tuple) and len(handlers) <= 1
            else tuple(dict.fromkeys(handlers))
        )
        with self._pending_lock:
            if self._pending_appends >= self.settings.max_pending:
                raise StoreOverloaded(
                    f"{self._pending_appends} events are already waiting to be written "
                    f"to {self.path}; retry in a moment (or raise [store] max_pending)"
                )
            self._pending_appends += 1
        try:
            waiter = _Waiter()
            self._jobs.put(_AppendJob(event, names, waiter, ordering))
        except BaseException:
            self._done_appending(1)
            raise
        return cast(AppendResult, await waiter.future)

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
        params = {
            "owner": owner,
            "until": now + lease,
            "now": now,
            "limit": limit,
            "handlers": None if handlers is None else json.dumps(sorted(handlers)),
        }

        def work(conn: sqlite3.Connection) -> list[Claim]:
            rows = conn.execute(_Q["claim_due"], params).fetchall()
            if not rows:
                return []
            rows.sort(key=lambda r: (r["next_attempt_at"], r["id"]))
            seqs = json.dumps(sorted({r["event_seq"] for r in rows}))
            events = {e["seq"]: e for e in conn.execute(_Q["events_by_seqs"], {"seqs": seqs})}
            return [_claim(row, events[row["event_seq"]]) for row in rows]

        return cast(list[Claim], await self._write("claim deliveries", work))

    async def extend(
        self, owner: str, leases: Sequence[tuple[int, int]], *, until: float
    ) -> list[int]:
        self._check_open()

        def work(conn: sqlite3.Connection) -> list[int]:
            extended = []
            for delivery_id, fence in leases:
                params = {"id": delivery_id, "fence": fence, "owner": owner, "until": until}
                if conn.execute(_Q["extend_lease"], params).fetchone() is not None:
                    extended.append(delivery_id)
            return extended

        return cast(list[int], await self._write("extend leases", work))

    async def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        self._check_open()
        work = partial(_settle_rows, settlements=settlements)
        return cast(list[bool], await self._write("settle deliveries", work, wakes=True))

    supports_transactions = True

    async def begin(self, *, limit: float = TRANSACTION_LIMIT) -> StoreTransaction:
        """A handler transaction: a job on the writer thread that holds ``BEGIN
        IMMEDIATE`` and runs the handler's statements until it commits (settling the
        delivery done in the same transaction) or rolls back. It holds the database's
        write lock meanwhile: appends and settles wait for it. Past ``limit`` seconds
        without a statement, the writer rolls it back by itself."""
        self._check_open()
        tx = _SQLiteTransaction(limit)
        done = _Waiter()
        self._jobs.put(
            _WriteJob("run a handler transaction", tx.serve, done, in_transaction=False, wakes=True)
        )
        tx.finished = done.future
        try:
            await tx.started.future
        except BaseException:
            tx.abandon()
            raise
        return tx

    async def release(self, owner: str, leases: Sequence[tuple[int, int]], *, now: float) -> int:
        self._check_open()

        def work(conn: sqlite3.Connection) -> int:
            released = 0
            for delivery_id, fence in leases:
                params = {"id": delivery_id, "fence": fence, "owner": owner, "now": now}
                released += conn.execute(_Q["release_lease"], params).rowcount
            return released

        return cast(int, await self._write("release leases", work))

    # -- reads --------------------------------------------------------------------------

    async def ping(self) -> None:
        """Answer if the file is readable and has every migration this version knows
        (a newer one applied by an upgrade rolling out keeps this process ready)."""

        def work(conn: sqlite3.Connection) -> None:
            missing = missing_migrations(_applied(conn), _SQL.migrations)
            if missing:
                raise StoreUnavailable(
                    f"{self.path} lacks schema {missing[-1]}; run `hookwise migrate`"
                )

        await self._read("ping the database", work)

    async def get_event(self, seq: int) -> EventRecord | None:
        def work(conn: sqlite3.Connection) -> EventRecord | None:
            row = conn.execute(_Q["get_event"], {"seq": seq}).fetchone()
            return None if row is None else _event_record(row)

        return await self._read("read an event", work)

    async def find_event(self, source: str, dedup_key: str) -> EventRecord | None:
        params = {"source": source, "dedup_key": dedup_key}

        def work(conn: sqlite3.Connection) -> EventRecord | None:
            row = conn.execute(_Q["find_event"], params).fetchone()
            return None if row is None else _event_record(row)

        return await self._read("find an event", work)

    async def list_events(self, flt: EventFilter) -> list[EventRecord]:
        params = {
            "source": flt.source,
            "type": flt.type,
            "status": flt.status,
            "since": flt.since,
            "before_seq": flt.before_seq,
            "limit": max(flt.limit, 0),
        }

        def work(conn: sqlite3.Connection) -> list[EventRecord]:
            return [_event_record(row) for row in conn.execute(_Q["list_events"], params)]

        return await self._read("list events", work)

    async def deliveries(self, event_seq: int) -> list[DeliveryRecord]:
        def work(conn: sqlite3.Connection) -> list[DeliveryRecord]:
            rows = conn.execute(_Q["event_deliveries"], {"event_seq": event_seq})
            return [_delivery(row) for row in rows]

        return await self._read("read deliveries", work)

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        def work(conn: sqlite3.Connection) -> DeliveryRecord | None:
            row = conn.execute(_Q["get_delivery"], {"id": delivery_id}).fetchone()
            return None if row is None else _delivery(row)

        return await self._read("read a delivery", work)

    async def attempts(self, delivery_id: int) -> list[AttemptRecord]:
        def work(conn: sqlite3.Connection) -> list[AttemptRecord]:
            rows = conn.execute(_Q["delivery_attempts"], {"delivery_id": delivery_id})
            return [AttemptRecord(**dict(row)) for row in rows]

        return await self._read("read attempts", work)

    async def list_dead(
        self, *, source: str | None = None, handler: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        params = {"source": source, "handler": handler, "limit": max(limit, 0)}

        def work(conn: sqlite3.Connection) -> list[DeliveryRecord]:
            return [_delivery(row) for row in conn.execute(_Q["list_dead"], params)]

        return await self._read("list dead letters", work)

    async def counts(self) -> dict[str, int]:
        def work(conn: sqlite3.Connection) -> dict[str, int]:
            counts: dict[str, int] = dict.fromkeys(DELIVERY_STATUSES, 0)
            for row in conn.execute(_Q["count_by_status"]):
                counts[row["status"]] = row["n"]
            return counts

        return await self._read("count deliveries", work)

    async def ordering_counts(self) -> OrderingCounts:
        def work(conn: sqlite3.Connection) -> OrderingCounts:
            waiting = conn.execute(_Q["count_waiting"]).fetchone()["n"]
            skipped = {row["reason"]: row["n"] for row in conn.execute(_Q["count_skipped"])}
            return OrderingCounts(waiting=int(waiting), skipped=skipped)

        return await self._read("count waiting and skipped deliveries", work)

    async def ordering_state(self, handler: str, ordering_key: str) -> OrderingState | None:
        params = {"handler": handler, "ordering_key": ordering_key}

        def work(conn: sqlite3.Connection) -> OrderingState | None:
            row = conn.execute(_Q["get_ordering_state"], params).fetchone()
            return None if row is None else OrderingState(**dict(row))

        return await self._read("read ordering state", work)

    # -- operator actions ---------------------------------------------------------------

    async def retry_dead(
        self, delivery_ids: Sequence[int] | None, *, now: float, source: str | None = None
    ) -> int:
        self._check_open()
        params = {
            "ids": None if delivery_ids is None else json.dumps(list(delivery_ids)),
            "source": source,
            "now": now,
        }

        def work(conn: sqlite3.Connection) -> tuple[int, int]:
            scheduled = due = conn.execute(_Q["retry_dead"], params).rowcount
            # One by one, oldest first: in a group with no head, the oldest becomes it
            # and the others wait behind it.
            for dead in conn.execute(_Q["dead_ordered"], params).fetchall():
                row = conn.execute(_Q["retry_dead_ordered"], {"id": dead["id"], "now": now})
                scheduled += 1
                due += row.fetchone()["next_attempt_at"] is not None
            return scheduled, due

        return cast(int, await self._write("retry dead letters", work, wakes=True))

    async def replay(
        self, event_seqs: Sequence[int], handlers: Sequence[str], *, now: float
    ) -> int:
        self._check_open()

        def work(conn: sqlite3.Connection) -> tuple[int, int]:
            scheduled = due = 0
            for seq in dict.fromkeys(event_seqs):
                for handler in dict.fromkeys(handlers):
                    params = {"event_seq": seq, "handler": handler, "now": now}
                    row = conn.execute(_Q["replay_existing"], params).fetchone()
                    if row is None:
                        row = conn.execute(_Q["replay_new"], params).fetchone()
                    if row is not None:
                        scheduled += 1
                        due += row["next_attempt_at"] is not None  # else it waits its turn
            return scheduled, due

        return cast(int, await self._write("replay events", work, wakes=True))

    async def discard_dead(
        self, delivery_ids: Sequence[int] | None, *, now: float, source: str | None = None
    ) -> int:
        self._check_open()
        params = {
            "ids": None if delivery_ids is None else json.dumps(list(delivery_ids)),
            "source": source,
            "now": now,
            "error": DISCARDED,
        }

        def work(conn: sqlite3.Connection) -> int:
            return conn.execute(_Q["discard_dead"], params).rowcount

        return cast(int, await self._write("discard dead letters", work))

    # -- housekeeping -------------------------------------------------------------------

    async def purge(self, *, before: float, batch: int = 500) -> int:
        """Delete finished events received before ``before``; see :meth:`Store.purge`.

        Each batch is its own job on the writer thread, so appends queued meanwhile
        are committed between two batches rather than after the whole purge. Within
        one call the scan resumes after the last event it deleted: old events that
        must be kept (dead letters, unfinished work) are read once, not once a batch.
        Then the ordering state of groups with no delivery left, not updated since
        ``before``, read in key order ``batch`` groups at a time; then rejection records
        received before ``before``, in batches as well.
        """
        self._check_open()
        if batch < 1:
            raise ValueError(f"purge batch must be at least 1, not {batch}")
        total = 0
        after = _PURGE_START
        while True:
            deleted, after = cast(
                tuple[int, tuple[float, int]],
                await self._write(
                    "purge old events",
                    partial(_purge_batch, before=before, after=after, batch=batch),
                ),
            )
            total += deleted
            if deleted < batch:
                break
        group: tuple[str, str] | None = None
        while True:
            scanned, group = cast(
                tuple[int, tuple[str, str] | None],
                await self._write(
                    "purge old ordering state",
                    partial(_purge_ordering_state, before=before, after=group, batch=batch),
                ),
            )
            if scanned < batch:
                break
        while True:
            refused = cast(
                int,
                await self._write(
                    "purge old rejection records",
                    partial(_purge_rejections, before=before, batch=batch),
                ),
            )
            if refused < batch:
                return total

    # -- rejections ---------------------------------------------------------------------

    async def record_rejections(self, records: Sequence[RejectionRecord]) -> None:
        self._check_open()
        if not records:
            return
        kept, body_kept = _base.REJECTIONS_KEPT, _base.REJECTED_BODY_KEPT
        rows = [
            {
                "source": r.source,
                "received_at": r.received_at,
                "reason": r.reason,
                "detail": r.detail,
                "hints": json.dumps(list(r.hints)),
                "status": r.status,
                "method": r.method,
                "url": r.url,
                "client": r.client,
                "headers": headers_json(r.headers),
                "body": bytes(r.body[:body_kept]),
                "body_size": r.body_size,
            }
            for r in records
        ]
        sources = sorted({r.source for r in records})

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(_Q["insert_rejection"], rows)
            for source in sources:
                conn.execute(_Q["trim_rejections"], {"source": source, "kept": kept})

        await self._write("record rejections", work)

    async def list_rejections(
        self, *, source: str | None = None, limit: int = 50
    ) -> list[RejectionRecord]:
        query = _Q["list_rejections" if source is None else "list_rejections_of_source"]
        params = {"source": source, "limit": max(limit, 0)}

        def work(conn: sqlite3.Connection) -> list[RejectionRecord]:
            return [rejection_record(row) for row in conn.execute(query, params)]

        return await self._read("list rejection records", work)

    async def get_rejection(self, rejection_id: int) -> RejectionRecord | None:
        def work(conn: sqlite3.Connection) -> RejectionRecord | None:
            row = conn.execute(_Q["get_rejection"], {"id": rejection_id}).fetchone()
            return None if row is None else rejection_record(row)

        return await self._read("read a rejection record", work)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` on the running loop after this store committed new work:
        an append that created deliveries, a replay, a retry of dead letters. Writes
        made through other store objects (or processes) on the same file are not seen;
        workers poll for those."""
        return self._subscribers.add(callback)

    # -- polls --------------------------------------------------------------------------

    async def get_poll_state(self, name: str) -> _base.PollState | None:
        def work(conn: sqlite3.Connection) -> _base.PollState | None:
            row = conn.execute(_Q["get_poll_state"], {"name": name}).fetchone()
            return None if row is None else _poll_state(row)

        return await self._read("read a poll's state", work)

    async def list_poll_states(self) -> list[_base.PollState]:
        def work(conn: sqlite3.Connection) -> list[_base.PollState]:
            return [_poll_state(row) for row in conn.execute(_Q["list_poll_states"])]

        return await self._read("list poll states", work)

    async def save_poll_state(self, state: _base.PollState) -> None:
        self._check_open()
        params = _poll_state_params(state)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(_Q["save_poll_state"], params)

        await self._write("save a poll's state", work)

    async def poll_index(self, name: str) -> dict[str, str]:
        def work(conn: sqlite3.Connection) -> dict[str, str]:
            rows = conn.execute(_Q["poll_index"], {"poll": name})
            return {item_id: version for item_id, version in rows}

        return await self._read("read a poll's index", work)

    async def update_poll_index(
        self,
        name: str,
        *,
        upsert: Mapping[str, str],
        delete: Collection[str],
        state: _base.PollState | None = None,
    ) -> None:
        """One job on the writer, so one transaction; each list is one statement
        (a JSON document read with json_each), however many ids it holds."""
        self._check_open()
        _base.check_poll_update(name, upsert, delete, state)
        items = {"poll": name, "items": json.dumps(dict(upsert))} if upsert else None
        gone = {"poll": name, "ids": json.dumps(list(delete))} if delete else None
        saved = None if state is None else _poll_state_params(state)

        def work(conn: sqlite3.Connection) -> None:
            if items is not None:
                conn.execute(_Q["upsert_poll_items"], items)
            if gone is not None:
                conn.execute(_Q["delete_poll_items"], gone)
            if saved is not None:
                conn.execute(_Q["save_poll_state"], saved)

        await self._write("update a poll's index", work)

    async def forget_poll(self, name: str) -> None:
        self._check_open()

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(_Q["forget_poll_items"], {"poll": name})
            conn.execute(_Q["forget_poll_state"], {"poll": name})

        await self._write("forget a poll", work)


# -- helpers run on the writer thread or a reader thread ------------------------------------


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so a busy database fails here, after
    # busy_timeout, instead of half-way through.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # Also after a failed COMMIT: a transaction left open would wedge the writer.
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise


def _settle_rows(
    conn: sqlite3.Connection, settlements: Sequence[Settlement]
) -> tuple[list[bool], int]:
    """Apply fenced outcomes in the open transaction; returns which applied and how many
    waiting deliveries their groups promoted (work now due)."""
    applied = []
    promoted = 0
    for s in settlements:
        retry_at = s.next_attempt_at if s.next_attempt_at is not None else s.finished_at
        row = conn.execute(
            _Q["settle_delivery"],
            {
                "id": s.delivery_id,
                "fence": s.fence,
                "owner": s.owner,
                "status": _SETTLED_STATUS[s.outcome],
                "next_attempt_at": retry_at if s.outcome == "retry" else None,
                "error": s.error,
                "finished_at": s.finished_at,
            },
        ).fetchone()
        if row is None:
            applied.append(False)
            continue
        conn.execute(
            _Q["insert_attempt"],
            {
                "delivery_id": s.delivery_id,
                "number": row["attempts"],
                "started_at": s.started_at,
                "finished_at": s.finished_at,
                "outcome": s.outcome,
                "error": s.error,
                "owner": s.owner,
            },
        )
        applied.append(True)
        if row["policy"] is not None and s.outcome != "retry":
            # A retrying head keeps its group; any other outcome releases it.
            promoted += _leave_group(conn, row, s.outcome, s.finished_at)
    return applied, promoted


def _applied(conn: sqlite3.Connection) -> list[str]:
    if conn.execute(_Q["has_schema_migrations"]).fetchone() is None:
        return []
    return [row["version"] for row in conn.execute(_Q["applied_migrations"])]


_PURGE_START = (float("-inf"), 0)
"""A (received_at, seq) position before every event."""


def _purge_batch(
    conn: sqlite3.Connection, *, before: float, after: tuple[float, int], batch: int
) -> tuple[int, tuple[float, int]]:
    """Delete up to ``batch`` finished events received before ``before``, oldest first,
    from after the (received_at, seq) position ``after``. Returns how many were
    deleted and the position of the last one (where the next batch starts)."""
    params = {
        "before": before,
        "after_received_at": after[0],
        "after_seq": after[1],
        "batch": batch,
    }
    victims = conn.execute(_Q["purge_candidates"], params).fetchall()
    if not victims:
        return 0, after
    seqs = {"seqs": json.dumps([row["seq"] for row in victims])}
    conn.execute(_Q["purge_attempts"], seqs)
    conn.execute(_Q["purge_deliveries"], seqs)
    deleted: int = conn.execute(_Q["purge_events"], seqs).rowcount
    last = victims[-1]
    return deleted, (last["received_at"], last["seq"])


def _purge_ordering_state(
    conn: sqlite3.Connection, *, before: float, after: tuple[str, str] | None, batch: int
) -> tuple[int, tuple[str, str] | None]:
    """Read up to ``batch`` groups with ordering state after the group ``after`` (from
    the first one when None), in key order, and delete the state of those with no
    delivery left and not updated since ``before``. Returns how many groups were read
    and the last one (where the next batch starts)."""
    if after is None:
        rows = conn.execute(
            _Q["ordering_state_scan_first"], {"before": before, "batch": batch}
        ).fetchall()
    else:
        params = {
            "before": before,
            "after_handler": after[0],
            "after_key": after[1],
            "batch": batch,
        }
        rows = conn.execute(_Q["ordering_state_scan"], params).fetchall()
    if not rows:
        return 0, after
    forgotten = [[row["handler"], row["ordering_key"]] for row in rows if row["forgotten"]]
    if forgotten:
        conn.execute(_Q["ordering_state_forget"], {"groups": json.dumps(forgotten)})
    return len(rows), (rows[-1]["handler"], rows[-1]["ordering_key"])


def _purge_rejections(conn: sqlite3.Connection, *, before: float, batch: int) -> int:
    """Delete up to ``batch`` rejection records received before ``before``."""
    deleted: int = conn.execute(_Q["purge_rejections"], {"before": before, "batch": batch}).rowcount
    return deleted


def _insert_batch(
    conn: sqlite3.Connection, jobs: Sequence[_AppendJob], held: set[_AppendJob] | None = None
) -> list[AppendResult]:
    """Insert-or-skip a whole batch in as few statements as possible.

    Each statement is one trip into SQLite, and each trip gives up and takes back the
    GIL, which the request-handling thread holds most of the time under load: the
    number of statements per batch, not their size, sets how long a commit takes.
    So the common batch (no duplicate) is two statements, events then deliveries,
    and the seqs come from ``lastrowid`` rather than from a query.
    A duplicate inside the batch, or of an event already stored, gets the stored seq.

    Deliveries of ordered events are decided in batch order and inserted after the
    others, in a few more statements (:func:`_join_groups`); ``held`` receives the
    jobs whose deliveries all wait or were skipped, which make no new work due.
    """
    slot_of: dict[tuple[str, str], int] = {}  # key -> its row among the new rows
    keys: list[tuple[str, str]] = []
    slots: list[int] = []  # per job
    values: list[object] = []
    for job in jobs:
        event = job.event
        key = (event.source, event.dedup_key)
        slot = slot_of.get(key)
        if slot is None:
            slot = slot_of[key] = len(keys)
            keys.append(key)
            values += (
                event.source,
                event.dedup_key,
                event.type,
                event.ordering_key,
                event.occurred_at,
                event.received_at,
                event.intake,
                headers_json(event.headers),
                event.body,
            )
        slots.append(slot)

    width = ROW_WIDTHS["insert_event_rows"]
    seqs: list[int] = []  # per key: its seq, new or stored
    new: list[bool] = []  # per key: whether this batch stored it
    all_new = True
    for start, size in _chunks(len(keys)):
        cursor = conn.execute(
            expand_rows("insert_event_rows", size),
            values[start * width : (start + size) * width],
        )
        inserted = cursor.rowcount
        if inserted == size:  # SQLite numbered the rows last - size + 1 .. last
            first = cast(int, cursor.lastrowid) - size + 1
            seqs.extend(range(first, first + size))
            new.extend([True] * size)
            continue
        all_new = False
        # Rows inserted now are numbered above every row stored before them.
        floor = cast(int, cursor.lastrowid) - inserted if inserted else None
        chunk = keys[start : start + size]
        stored = {
            (row[1], row[2]): row[0]
            for row in conn.execute(_Q["event_seqs_by_keys"], {"keys": json.dumps(chunk)})
        }
        for key in chunk:
            seq = stored[key]
            seqs.append(seq)
            new.append(floor is not None and seq > floor)

    deliveries: list[object] = []
    ordered: list[tuple[_AppendJob, int]] = []
    results: list[AppendResult] = []
    answered: set[int] | None = None if all_new and len(keys) == len(jobs) else set()
    for job, slot in zip(jobs, slots, strict=True):
        seq = seqs[slot]
        if answered is not None:
            if not new[slot] or slot in answered:
                results.append(AppendResult(seq=seq, duplicate=True))
                continue
            answered.add(slot)
        results.append(AppendResult(seq=seq, duplicate=False))
        if job.ordering is not None:
            ordered.append((job, seq))
            continue
        due = job.event.received_at
        for handler in job.handlers:
            deliveries += (seq, handler, due)
    if deliveries:
        width = ROW_WIDTHS["insert_pending_delivery_rows"]
        for start, size in _chunks(len(deliveries) // width):
            conn.execute(
                expand_rows("insert_pending_delivery_rows", size),
                deliveries[start * width : (start + size) * width],
            )
    if ordered:
        _join_groups(conn, ordered, set() if held is None else held)
    return results


class _Head:
    """The active member of a group, as an append batch sees it: stored before the
    batch (``id``), or decided earlier in it (``row``: its values, not yet inserted)."""

    __slots__ = ("attempts", "due", "id", "occurred_at", "row", "status")

    def __init__(
        self,
        status: str,
        attempts: int,
        occurred_at: float | None,
        due: float,
        *,
        id: int | None = None,
        row: list[object] | None = None,
    ) -> None:
        self.status = status
        self.attempts = attempts
        self.occurred_at = occurred_at
        self.due = due
        self.id = id
        self.row = row


_DUE = 3
"""Where the due time sits in a row of insert_ordered_delivery_rows."""


def _join_groups(
    conn: sqlite3.Connection, ordered: Sequence[tuple[_AppendJob, int]], held: set[_AppendJob]
) -> None:
    """Insert the deliveries of ordered events (job, seq), each into its group
    ``(handler, ordering_key)``, in batch order: skipped as ``stale`` when
    ``latest``/``coalesce`` already applied a newer event; waiting while the group
    has an active member (stored, or made earlier in this batch); active otherwise.
    Jobs none of whose deliveries became active go to ``held``.

    With a reorder window, an event that happened before the group's head, which
    has not started yet, takes its place (the old head waits again), due no sooner
    than the old head was: the window holds the group back, not each event.

    Like the unordered path, a constant number of statements per batch: one lookup
    of every group, then one insert (and one update when a window displaced a
    stored head); the decisions in between are made here.
    """
    groups = sorted({(h, job.event.ordering_key) for job, _ in ordered for h in job.handlers})
    applied: dict[tuple[str, str | None], float | None] = {}
    heads: dict[tuple[str, str | None], _Head] = {}
    for found in conn.execute(_Q["group_states"], {"groups": json.dumps(groups)}):
        group = (found["handler"], found["ordering_key"])
        applied[group] = found["applied_at"]
        if found["id"] is not None:
            heads[group] = _Head(
                found["status"],
                found["attempts"],
                found["occurred_at"],
                found["next_attempt_at"],
                id=found["id"],
            )

    rows: list[list[object]] = []
    holds: list[int] = []
    for job, seq in ordered:
        event, ordering = job.event, job.ordering
        assert ordering is not None
        occurred_at = event.occurred_at
        due = event.received_at + ordering.window
        activated = False
        for handler in job.handlers:
            group = (handler, event.ordering_key)
            row: list[object] = [
                seq,
                handler,
                "pending",
                due,
                None,
                event.received_at,
                event.ordering_key,
                occurred_at,
                ordering.policy,
                ordering.window,
            ]
            rows.append(row)
            head = heads.get(group)
            if ordering.policy != "serial" and _stale(occurred_at, applied.get(group)):
                row[2:5] = ["skipped", None, STALE]
                continue
            if head is not None:
                if not _takes_place(ordering, occurred_at, head):
                    row[_DUE] = None  # waits behind the head
                    continue
                if head.row is not None:
                    head.row[_DUE] = None
                elif head.id is not None:
                    holds.append(head.id)
                row[_DUE] = max(due, head.due)
            heads[group] = _Head("pending", 0, occurred_at, cast(float, row[_DUE]), row=row)
            activated = True
        if not activated:
            held.add(job)

    if holds:
        conn.execute(_Q["hold_deliveries"], {"ids": json.dumps(holds)})
    width = ROW_WIDTHS["insert_ordered_delivery_rows"]
    values = [value for row in rows for value in row]
    for start, size in _chunks(len(rows)):
        conn.execute(
            expand_rows("insert_ordered_delivery_rows", size),
            values[start * width : (start + size) * width],
        )


def _takes_place(ordering: Ordering, occurred_at: float | None, head: _Head) -> bool:
    """Whether a new event takes the place of its group's head: within a reorder
    window, before the head has started, when it happened earlier."""
    return (
        ordering.window > 0
        and head.status == "pending"
        and head.attempts == 0
        and occurred_at is not None
        and head.occurred_at is not None
        and occurred_at < head.occurred_at
    )


def _leave_group(conn: sqlite3.Connection, settled: sqlite3.Row, outcome: str, now: float) -> int:
    """After an ordered delivery (the head of its group) settled ``done``, ``dead`` or
    ``skipped``: record what ``done`` applied, then promote the next waiting member by
    the policy's rule. Returns how many became due (0 or 1)."""
    group = {"handler": settled["handler"], "ordering_key": settled["ordering_key"]}
    policy: str = settled["policy"]
    if outcome == "done":
        applied = {
            **group,
            "occurred_at": settled["occurred_at"],
            "event_seq": settled["event_seq"],
            "now": now,
        }
        applied_at = conn.execute(_Q["record_applied"], applied).fetchone()["applied_at"]
    elif policy == "serial":
        applied_at = None  # serial never skips: what was applied does not matter
    else:
        applied_at = _applied_at(conn, group)
    by_time = (settled["ordering_window"] or 0) > 0
    while (candidate := _next_waiting(conn, group, policy, by_time, now)) is not None:
        if policy != "serial" and _stale(candidate["occurred_at"], applied_at):
            conn.execute(_Q["skip_waiting"], {"id": candidate["id"], "error": STALE, "now": now})
            continue
        conn.execute(_Q["activate_delivery"], {"id": candidate["id"], "now": now})
        return 1
    return 0


def _next_waiting(
    conn: sqlite3.Connection, group: Mapping[str, object], policy: str, by_time: bool, now: float
) -> sqlite3.Row | None:
    """The waiting member of ``group`` to promote next: the oldest event (with a reorder
    window, the one that happened first). For ``coalesce``, the one that happened last,
    and every other waiting member is skipped as superseded."""
    if policy != "coalesce":
        query = _Q["next_waiting_by_time" if by_time else "next_waiting"]
        row: sqlite3.Row | None = conn.execute(query, group).fetchone()
        return row
    newest: sqlite3.Row | None = conn.execute(_Q["newest_waiting"], group).fetchone()
    if newest is not None:
        conn.execute(
            _Q["supersede_waiting"],
            {**group, "keep": newest["id"], "error": SUPERSEDED, "now": now},
        )
    return newest


def _stale(occurred_at: float | None, applied_at: float | None) -> bool:
    """Whether an event that happened at ``occurred_at`` is older than the newest one
    its group applied (either unknown: not stale)."""
    return occurred_at is not None and applied_at is not None and occurred_at < applied_at


def _applied_at(conn: sqlite3.Connection, group: Mapping[str, object]) -> float | None:
    row = conn.execute(_Q["applied_at"], group).fetchone()
    return None if row is None else cast(float | None, row["applied_at"])


def _delivery(row: sqlite3.Row) -> DeliveryRecord:
    return replace(_delivery_record(row), ordering_key=row["ordering_key"], policy=row["policy"])


_ROW_SQL: dict[tuple[str, int], str] = {}

ROW_WIDTHS = {
    "insert_event_rows": 9,
    "insert_pending_delivery_rows": 3,
    "insert_ordered_delivery_rows": 10,
}
"""Values per row of each ``{rows}`` query."""

MAX_ROWS_PER_STATEMENT = 128
"""Rows per multi-row statement; a larger batch takes a few."""

WRITER_CACHED_STATEMENTS = len(ROW_WIDTHS) * MAX_ROWS_PER_STATEMENT + 64
"""Every statement shape the writer uses stays prepared: preparing a 100-row insert
costs about as much as running it."""


def expand_rows(query: str, count: int) -> str:
    """The SQL of a ``{rows}`` query for ``count`` rows (cached)."""
    key = (query, count)
    sql = _ROW_SQL.get(key)
    if sql is None:
        group = "(" + ", ".join("?" * ROW_WIDTHS[query]) + ")"
        sql = _Q[query].replace("{rows}", ", ".join([group] * count))
        _ROW_SQL[key] = sql
    return sql


def _chunks(count: int) -> Iterator[tuple[int, int]]:
    """(start, size) pieces of ``count`` rows, each at most MAX_ROWS_PER_STATEMENT."""
    for start in range(0, count, MAX_ROWS_PER_STATEMENT):
        yield start, min(MAX_ROWS_PER_STATEMENT, count - start)


def headers_json(headers: Sequence[tuple[str, str]]) -> str:
    """Headers as stored: the text ``json.dumps`` gives for a list of pairs, built
    without the general encoder (a third of the writer's Python time per event).

    >>> headers_json((("content-type", "application/json"),))
    '[["content-type", "application/json"]]'
    """
    return (
        "["
        + ", ".join(
            ["[" + _json_string(name) + ", " + _json_string(value) + "]" for name, value in headers]
        )
        + "]"
    )


# -- errors ---------------------------------------------------------------------------------

_ADVICE = (
    (
        "locked",
        "another connection held the write lock longer than busy_timeout ({timeout:g}s); "
        "retry shortly, and look for a process keeping a transaction open on this file",
    ),
    (
        "busy",
        "another connection held the write lock longer than busy_timeout ({timeout:g}s); "
        "retry shortly, and look for a process keeping a transaction open on this file",
    ),
    (
        "readonly",
        "the database is read-only; make the file, its -wal/-shm files and its "
        "directory writable by this process (and the file system not read-only)",
    ),
    (
        "read-only",
        "the database is read-only; make the file, its -wal/-shm files and its "
        "directory writable by this process (and the file system not read-only)",
    ),
    ("full", "the disk is full; free some space"),
    ("disk i/o", "the disk reported an I/O error; check the disk and the file system"),
    (
        "unable to open",
        "the file can't be opened; check that its directory exists and is writable by this process",
    ),
    ("not a database", "the file is not a SQLite database; point [store] url at another file"),
    ("malformed", "the database file is damaged; restore it from a backup"),
)


def _unavailable(
    exc: sqlite3.Error, what: str, path: str, timeout: float
) -> StoreUnavailable | None:
    """The operator-facing error for a database failure, or None for our own bugs."""
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return None
    if not isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        return None
    message = str(exc)
    lowered = message.lower()
    for needle, advice in _ADVICE:
        if needle in lowered:
            return StoreUnavailable(
                f"could not {what} in {path} ({message}): {advice.format(timeout=timeout)}"
            )
    return StoreUnavailable(f"could not {what} in {path} ({message})")


def _copy_error(exc: Exception) -> Exception:
    """A fresh exception per waiting request, so their tracebacks don't pile up on one."""
    if isinstance(exc, StoreUnavailable):
        copy = StoreUnavailable(str(exc))
        copy.__cause__ = exc.__cause__
        return copy
    return exc


# -- polls ----------------------------------------------------------------------------------


def _poll_state(row: sqlite3.Row) -> _base.PollState:
    return _base.PollState(
        name=row["name"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        cursor=row["cursor"],
        next_due_at=row["next_due_at"],
        interval=row["interval"],
        error=row["error"],
        error_since=row["error_since"],
        failures=row["failures"],
        stats=json.loads(row["stats"]),
        updated_at=row["updated_at"],
    )
