"""The batched append path of the SQLite store, driven directly so one batch holds
exactly the mix of new events and duplicates under test."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hookwise.events import NewEvent
from hookwise.store import SQLiteStore
from hookwise.store.sqlite import (
    MAX_ROWS_PER_STATEMENT,
    _AppendJob,
    _insert_batch,
    _Waiter,
    headers_json,
)


def event(key: str, source: str = "s") -> NewEvent:
    return NewEvent(source=source, dedup_key=key, type="t", body=key.encode(), received_at=1.0)


async def _jobs(events: list[NewEvent]) -> list[_AppendJob]:
    return [_AppendJob(e, ("h",), _Waiter()) for e in events]


def test_one_batch_with_new_stored_and_repeated_keys(tmp_path: Path) -> None:
    db = tmp_path / "b.db"

    async def setup() -> None:
        async with SQLiteStore(str(db)) as store:
            await store.append(event("old"), ["h"])

    asyncio.run(setup())
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    batch = [event("a"), event("old"), event("b"), event("a"), event("old"), event("a", "t")]
    jobs = asyncio.run(_jobs(batch))
    conn.execute("BEGIN IMMEDIATE")
    results = _insert_batch(conn, jobs)
    conn.execute("COMMIT")
    got = [(r.seq, r.duplicate) for r in results]
    seqs = {
        row["dedup_key"] + "@" + row["source"]: row["seq"]
        for row in conn.execute("select seq, source, dedup_key from events")
    }
    assert got == [
        (seqs["a@s"], False),
        (seqs["old@s"], True),
        (seqs["b@s"], False),
        (seqs["a@s"], True),
        (seqs["old@s"], True),
        (seqs["a@t"], False),
    ]
    assert seqs["old@s"] < seqs["a@s"] < seqs["b@s"] < seqs["a@t"]
    # one delivery per new event, none for the duplicates
    per_event = dict(conn.execute("select event_seq, count(*) from deliveries group by event_seq"))
    assert per_event == {seqs[k]: 1 for k in seqs}


def _run_batch(conn: sqlite3.Connection, batch: list[NewEvent]) -> list[tuple[int, bool]]:
    jobs = asyncio.run(_jobs(batch))
    conn.execute("BEGIN IMMEDIATE")
    results = _insert_batch(conn, jobs)
    conn.execute("COMMIT")
    return [(r.seq, r.duplicate) for r in results]


def _fresh(tmp_path: Path) -> sqlite3.Connection:
    db = tmp_path / "b.db"

    async def setup() -> None:
        async with SQLiteStore(str(db)):
            pass

    asyncio.run(setup())
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def test_a_batch_larger_than_one_statement_is_numbered_in_arrival_order(tmp_path: Path) -> None:
    conn = _fresh(tmp_path)
    count = 2 * MAX_ROWS_PER_STATEMENT + 3
    got = _run_batch(conn, [event(f"k{i}") for i in range(count)])
    assert got == [(i + 1, False) for i in range(count)]
    stored = [tuple(row) for row in conn.execute("select seq, dedup_key from events order by seq")]
    assert stored == [(i + 1, f"k{i}") for i in range(count)]
    deliveries = conn.execute("select count(*), min(event_seq), max(event_seq) from deliveries")
    assert tuple(deliveries.fetchone()) == (count, 1, count)


def test_duplicates_spread_over_several_statements(tmp_path: Path) -> None:
    conn = _fresh(tmp_path)
    _run_batch(conn, [event("old0"), event("old1")])
    size = MAX_ROWS_PER_STATEMENT
    keys = [f"k{i}" for i in range(size)] + ["old1", "k0", "new", "old0"]
    got = _run_batch(conn, [event(key) for key in keys])
    seqs = dict(conn.execute("select dedup_key, seq from events"))
    repeated = {"old0", "old1"}  # stored by the first batch
    expected = []
    for key in keys:
        expected.append((seqs[key], key in repeated))
        repeated.add(key)
    assert got == expected
    assert seqs["new"] == size + 3  # the new events are numbered on from the stored ones
    assert [seqs[f"k{i}"] for i in range(size)] == list(range(3, size + 3))
    per_event = dict(conn.execute("select event_seq, count(*) from deliveries group by event_seq"))
    assert per_event == {seq: 1 for seq in seqs.values()}


def test_numbering_follows_events_another_connection_stored(tmp_path: Path) -> None:
    conn = _fresh(tmp_path)
    assert _run_batch(conn, [event("a")]) == [(1, False)]
    other = sqlite3.connect(tmp_path / "b.db", isolation_level=None)
    other.execute(
        "insert into events (seq, source, dedup_key, type, received_at, intake, body) "
        "values (7, 's', 'elsewhere', 't', 1.0, 'push', x'')"
    )
    other.close()
    assert _run_batch(conn, [event("b"), event("elsewhere"), event("c")]) == [
        (8, False),
        (7, True),
        (9, False),
    ]


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=20)), max_size=6))
def test_headers_are_stored_as_json_dumps_writes_them(headers: list[tuple[str, str]]) -> None:
    text = headers_json(tuple(headers))
    assert text == json.dumps(headers)
    assert [tuple(pair) for pair in json.loads(text)] == headers
