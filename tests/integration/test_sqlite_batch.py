"""The batched append path of the SQLite store, driven directly so one batch holds
exactly the mix of new events and duplicates under test."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from hookwise.events import NewEvent
from hookwise.store import SQLiteStore
from hookwise.store.sqlite import _AppendJob, _insert_batch, _Waiter


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
