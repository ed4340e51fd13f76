"""Which handlers take a transaction, and which statements one refuses."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from hookwise import Event, TransactionClosed, TxResult
from hookwise.handlers import HandlerSpec, takes_transaction
from hookwise.transactions import check_statement


def one(event: Event) -> None: ...


def two(event: Event, tx: Any) -> None: ...


async def two_async(event: Event, tx: Any) -> None: ...


def optional_second(event: Event, tx: Any = None) -> None: ...


def star(*args: Any) -> None: ...


class Handler:
    def __call__(self, event: Event, tx: Any) -> None: ...

    def method(self, event: Event) -> None: ...


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (one, False),
        (two, True),
        (two_async, True),
        (optional_second, False),
        (star, False),
        (Handler(), True),
        (Handler().method, False),
        (functools.partial(two, tx=None), False),
        (print, False),
    ],
)
def test_takes_transaction_reads_the_signature(func: Any, expected: bool) -> None:
    assert takes_transaction(func) is expected


def test_handler_spec_decides_once_and_can_be_told() -> None:
    assert HandlerSpec("a", two).transactional is True
    assert HandlerSpec("b", one).transactional is False
    assert HandlerSpec("c", two, transactional=False).transactional is False


@pytest.mark.parametrize(
    "sql",
    [
        "COMMIT",
        "commit;",
        "  BEGIN IMMEDIATE",
        "END",
        "ROLLBACK",
        "rollback transaction",
        "-- note\nCOMMIT",
        "/* a\n b */ begin",
        "ABORT",
    ],
)
def test_statements_that_end_the_transaction_are_refused(sql: str) -> None:
    with pytest.raises(TransactionClosed, match="SAVEPOINT"):
        check_statement(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1)",
        "SAVEPOINT s1",
        "ROLLBACK TO s1",
        "ROLLBACK TO SAVEPOINT s1",
        "rollback transaction to savepoint s1",
        "RELEASE SAVEPOINT s1",
        "SELECT 'COMMIT'",
        "UPDATE beginnings SET n = 1",
        "WITH x AS (SELECT 1) SELECT * FROM x",
    ],
)
def test_other_statements_pass(sql: str) -> None:
    check_statement(sql)


def test_result_helpers() -> None:
    result = TxResult(rows=[(3, "a"), (4, "b")], rowcount=2)
    assert result.scalar() == 3
    assert result.fetchone() == (3, "a")
    assert result.fetchall() == [(3, "a"), (4, "b")]
    empty = TxResult()
    assert (empty.scalar(), empty.fetchone(), empty.fetchall()) == (None, None, [])
