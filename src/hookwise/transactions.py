"""Transactional handlers: a handler's database writes commit with its delivery's ``done``.

A handler that takes a second argument gets a transaction on the store's database::

    @hw.handler("stripe", "invoice.paid")
    async def record_payment(event: Event, tx: AsyncTransaction) -> None:
        invoice = event.json()["data"]["object"]
        await tx.execute(
            "INSERT INTO payments (invoice, amount) VALUES (%s, %s)",   # PostgreSQL style
            (invoice["id"], invoice["amount_paid"]),
        )

The worker opens the transaction, runs the handler, then settles the delivery ``done``
*inside the same transaction* (fenced, like every settle) and commits. Either both the
handler's writes and the ``done`` are on disk, or neither is:

- the handler raises, or times out: the transaction rolls back, and the attempt is
  settled ``retry`` or ``dead`` as usual (its writes are gone);
- the worker dies before the commit: nothing was written, the lease runs out and the
  delivery runs again;
- the lease passed to another worker meanwhile (this one stalled): the fenced settle
  matches nothing, the transaction rolls back, and only the other worker's attempt can
  commit.

So each event's effects on tables in the same database are applied exactly once. What is
*not* covered: anything outside that database (HTTP calls, e-mails, other databases, files);
for those pass :attr:`Event.idempotency_key <hookwise.Event.idempotency_key>` downstream.

Sync handlers get a :class:`Transaction` (``tx.execute(...)``), async ones an
:class:`AsyncTransaction` (``await tx.execute(...)``). SQL and its parameters are in the
store engine's own style: ``?`` / ``:name`` on SQLite, ``%s`` / ``%(name)s`` on
PostgreSQL (:attr:`Transaction.engine` says which). Statements that end the transaction
(``BEGIN``, ``COMMIT``, ``END``, ``ROLLBACK`` without ``TO``) are refused; savepoints are
fine.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from .errors import HookwiseError

__all__ = [
    "AsyncTransaction",
    "Params",
    "StoreTransaction",
    "Transaction",
    "TransactionClosed",
    "TxResult",
    "check_statement",
]

Params = Sequence[Any] | Mapping[str, Any]
T = TypeVar("T")
Engine = Literal["sqlite", "postgresql"]


class TransactionClosed(HookwiseError):
    """A statement came after the transaction ended (the handler timed out, or kept a
    reference to ``tx`` past its return), or tried to end the transaction itself."""


@dataclass(frozen=True, slots=True)
class TxResult:
    """What one statement returned: its rows (tuples) and how many rows it changed.

    >>> result = tx.execute("SELECT balance FROM accounts WHERE id = ?", ("acct_1",))
    >>> result.scalar()
    1200
    """

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rowcount: int = -1

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self.rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or ``None`` without rows."""
        return self.rows[0][0] if self.rows and self.rows[0] else None


class StoreTransaction(Protocol):
    """The store's side of a handler transaction (one per attempt). The worker calls
    :meth:`commit` with the ``done`` settlement, or :meth:`rollback`."""

    @property
    def engine(self) -> Engine: ...

    async def execute(self, sql: str, params: Params = ()) -> TxResult: ...

    async def executemany(self, sql: str, rows: Sequence[Params]) -> int: ...

    async def commit(self, settlement: Any) -> bool:
        """Settle ``settlement`` (fenced) in this transaction and commit; ``False``
        (and rolled back) when the lease was lost."""
        ...

    async def rollback(self) -> None:
        """Undo everything; idempotent, and a no-op after :meth:`commit`."""
        ...


_ENDS_TRANSACTION = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*(BEGIN|COMMIT|END|ABORT|ROLLBACK(?!\s+(?:TRANSACTION\s+|WORK\s+)?TO\b))\b",
    re.IGNORECASE | re.DOTALL,
)


def check_statement(sql: str) -> None:
    """Refuse a statement that would begin or end the handler's transaction.

    >>> check_statement("COMMIT")
    Traceback (most recent call last):
    hookwise.transactions.TransactionClosed: ...
    """
    found = _ENDS_TRANSACTION.match(sql)
    if found:
        raise TransactionClosed(
            f"a transactional handler can't run {found.group(1).upper()}: hookwise commits "
            "the handler's writes together with the delivery's done (or rolls them back when "
            "it fails); use SAVEPOINT / ROLLBACK TO for partial undo"
        )


class AsyncTransaction:
    """The transaction an async handler gets: ``await tx.execute(sql, params)``."""

    __slots__ = ("_inner",)

    def __init__(self, inner: StoreTransaction) -> None:
        self._inner = inner

    @property
    def engine(self) -> Engine:
        """``"sqlite"`` or ``"postgresql"``: which SQL dialect and parameter style to use."""
        return self._inner.engine

    async def execute(self, sql: str, params: Params = ()) -> TxResult:
        check_statement(sql)
        return await self._inner.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> int:
        """Run ``sql`` once per parameter set; returns the rows changed in total."""
        check_statement(sql)
        return await self._inner.executemany(sql, rows)

    def __repr__(self) -> str:
        return f"<AsyncTransaction on {self.engine}>"


class Transaction:
    """The transaction a sync handler gets (it runs in a worker thread):
    ``tx.execute(sql, params)``. The statements run on the worker's event loop."""

    __slots__ = ("_inner", "_loop")

    def __init__(self, inner: StoreTransaction, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop

    @property
    def engine(self) -> Engine:
        """``"sqlite"`` or ``"postgresql"``: which SQL dialect and parameter style to use."""
        return self._inner.engine

    def execute(self, sql: str, params: Params = ()) -> TxResult:
        check_statement(sql)
        call = self._inner.execute(sql, params)
        return self._wait(asyncio.run_coroutine_threadsafe(call, self._loop))

    def executemany(self, sql: str, rows: Sequence[Params]) -> int:
        """Run ``sql`` once per parameter set; returns the rows changed in total."""
        check_statement(sql)
        call = self._inner.executemany(sql, list(rows))
        return self._wait(asyncio.run_coroutine_threadsafe(call, self._loop))

    def _wait(self, future: Future[T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            future.cancel()
            raise RuntimeError(
                "a sync Transaction was used on the worker's event loop; an async handler "
                "gets an AsyncTransaction (await tx.execute(...))"
            )
        return future.result()

    def __repr__(self) -> str:
        return f"<Transaction on {self.engine}>"
