"""What only the SQLite store does: group commit, durability, migrations, failures."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hookwise.config import StoreSettings
from hookwise.errors import StoreNotOpen, StoreOverloaded, StoreUnavailable
from hookwise.events import NewEvent
from hookwise.store import SQLiteStore
from hookwise.store._sql import split_statements, sql_for

T0 = 1_700_000_000.0
TIME_LIMIT = 10.0
"""No test here may hang: every wait on the store is bounded by this."""


def new_event(key: str, *, source: str = "stripe") -> NewEvent:
    return NewEvent(source=source, dedup_key=key, type="invoice.paid", body=b"{}", received_at=T0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hookwise.db"


def sqlite_store(path: Path, **settings: object) -> SQLiteStore:
    return SQLiteStore(str(path), settings=StoreSettings(**settings))  # type: ignore[arg-type]


# -- group commit --------------------------------------------------------------------------


async def test_concurrent_appends_share_commits(db_path: Path) -> None:
    async with sqlite_store(db_path) as store:
        async with asyncio.timeout(TIME_LIMIT):
            results = await asyncio.gather(
                *(store.append(new_event(f"e{i}"), ["billing"]) for i in range(200))
            )
        stats = store.stats()
    assert len({r.seq for r in results}) == 200
    assert stats.appended == 200
    assert stats.largest_batch > 1
    # The writer wakes on the first append, so the rest share a commit or a few.
    assert stats.commits < 20


async def test_without_group_commit_every_append_commits_alone(db_path: Path) -> None:
    async with sqlite_store(db_path, group_commit=False, durability="normal") as store:
        async with asyncio.timeout(TIME_LIMIT):
            await asyncio.gather(*(store.append(new_event(f"e{i}"), ["h"]) for i in range(50)))
        stats = store.stats()
    assert (stats.commits, stats.appended, stats.largest_batch) == (50, 50, 1)


async def test_a_duplicate_inside_one_batch_gets_the_first_seq(db_path: Path) -> None:
    async with sqlite_store(db_path) as store:
        async with asyncio.timeout(TIME_LIMIT):
            results = await asyncio.gather(
                *(store.append(new_event(f"e{i % 3}"), ["h"]) for i in range(30))
            )
        assert store.stats().largest_batch > 3
    for i in range(3):
        mine = results[i::3]
        assert [r.duplicate for r in mine] == [False] + [True] * 9
        assert len({r.seq for r in mine}) == 1


async def test_close_answers_every_queued_append(db_path: Path) -> None:
    store = sqlite_store(db_path)
    await store.open()
    tasks = [asyncio.create_task(store.append(new_event(f"e{i}"), ["h"])) for i in range(100)]
    await asyncio.sleep(0)  # let every task queue its append
    async with asyncio.timeout(TIME_LIMIT):
        await store.close()
        results = await asyncio.gather(*tasks)
    assert sum(not r.duplicate for r in results) == 100
    with pytest.raises(StoreNotOpen):
        await store.append(new_event("late"), ["h"])


# -- durability ------------------------------------------------------------------------------


async def test_events_survive_close_and_reopen(db_path: Path) -> None:
    async with sqlite_store(db_path) as store:
        first = await store.append(new_event("e1"), ["billing"])
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT count(*) FROM events").fetchone() == (1,)
    raw.close()
    async with sqlite_store(db_path) as store:
        again = await store.append(new_event("e1"), ["billing"])
        assert again.duplicate and again.seq == first.seq
        record = await store.get_event(first.seq)
        assert record is not None and record.dedup_key == "e1"
        assert [c.event.id for c in await store.claim("w", limit=5, lease=30, now=T0)] == ["e1"]


@pytest.mark.parametrize(("durability", "expected"), [("full", 2), ("normal", 1)])
async def test_connection_settings(db_path: Path, durability: str, expected: int) -> None:
    async with sqlite_store(db_path, durability=durability, busy_timeout=1.5) as store:
        writer = store._writer  # the settings live on the connection itself
        assert writer is not None
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == expected
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert writer.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert writer.execute("PRAGMA busy_timeout").fetchone()[0] == 1500


# -- failures ----------------------------------------------------------------------------------


@contextmanager
def read_only_file(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root.

    Permission bits don't stop root (the tests run as root in CI containers), so as
    root the file is made immutable (``chattr +i``), which the kernel enforces for
    everyone; otherwise plain ``chmod 0o444`` is the real-world case.
    """
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


async def test_a_read_only_database_makes_writes_unavailable(db_path: Path) -> None:
    async with sqlite_store(db_path) as store:
        seq = (await store.append(new_event("e1"), ["h"])).seq
    with read_only_file(db_path):
        with pytest.raises(OSError):
            db_path.open("ab").close()  # the premise: nobody may write the file
        async with sqlite_store(db_path) as store:
            async with asyncio.timeout(TIME_LIMIT):
                with pytest.raises(StoreUnavailable, match="read-only") as info:
                    await store.append(new_event("e2"), ["h"])
                assert "writable" in str(info.value)
                with pytest.raises(StoreUnavailable):
                    await store.claim("w", limit=1, lease=30, now=T0)
                record = await store.get_event(seq)  # reads still work
                assert record is not None
                assert await store.find_event("stripe", "e2") is None


async def test_a_lock_held_too_long_is_unavailable_then_recovers(db_path: Path) -> None:
    async with sqlite_store(db_path, busy_timeout=0.2) as store:
        blocker = sqlite3.connect(db_path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            async with asyncio.timeout(TIME_LIMIT):
                failed = await asyncio.gather(
                    store.append(new_event("e1"), ["h"]),
                    store.append(new_event("e2"), ["h"]),
                    return_exceptions=True,
                )
            assert all(isinstance(f, StoreUnavailable) for f in failed), failed
            assert "busy_timeout (0.2s)" in str(failed[0])
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        async with asyncio.timeout(TIME_LIMIT):
            result = await store.append(new_event("e1"), ["h"])
            assert not result.duplicate
            assert len(await store.claim("w", limit=5, lease=30, now=T0)) == 1
        assert await store.find_event("stripe", "e2") is None


async def test_too_many_waiting_appends_are_refused_at_once(db_path: Path) -> None:
    async with sqlite_store(db_path, busy_timeout=5.0, max_pending=1) as store:
        blocker = sqlite3.connect(db_path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            waiting = asyncio.create_task(store.append(new_event("e1"), ["h"]))
            await asyncio.sleep(0)  # the first append is now queued behind the lock
            with pytest.raises(StoreOverloaded, match="max_pending"):
                await store.append(new_event("e2"), ["h"])
            assert not waiting.done()
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        async with asyncio.timeout(TIME_LIMIT):
            assert not (await waiting).duplicate
            assert not (await store.append(new_event("e2"), ["h"])).duplicate


async def test_a_missing_directory_is_unavailable_at_open(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "missing" / "hookwise.db")
    with pytest.raises(StoreUnavailable, match="directory exists"):
        await store.open()
    with pytest.raises(StoreNotOpen):
        await store.counts()


async def test_a_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    async with sqlite_store(db_path) as running:
        with sqlite3.connect(db_path) as raw:
            raw.execute("INSERT INTO schema_migrations VALUES ('9999_future', 0)")
        raw.close()
        await running.ping()  # a rolling upgrade migrated: a running process stays ready
    with pytest.raises(StoreUnavailable, match="upgrade hookwise"):
        await sqlite_store(db_path).open()


# -- migrations ----------------------------------------------------------------------------------


async def test_migrate_applies_each_version_once(db_path: Path) -> None:
    versions = [m.version for m in sql_for("sqlite").migrations]
    store = sqlite_store(db_path)
    assert await store.schema_version() is None
    assert not await asyncio.to_thread(db_path.exists)  # asking did not create the file
    assert await store.migrate() == versions
    assert await store.migrate() == []
    assert await store.schema_version() == versions[-1]
    async with store:
        assert store.migrations_applied == []
        assert await store.migrate() == []
        await store.ping()


async def test_open_migrates_a_new_file(db_path: Path) -> None:
    async with sqlite_store(db_path) as store:
        assert store.migrations_applied == [m.version for m in sql_for("sqlite").migrations]
        assert await store.schema_version() == store.migrations_applied[-1]


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    """sqlite_master with comments and layout taken out of the SQL text."""

    def normalized(sql: str | None) -> str:
        text = re.sub(r"--[^\n]*", "", sql or "")
        text = re.sub(r"\s+", " ", text)
        return re.sub(r"\s*([(),=])\s*", r"\1", text).strip().lower()

    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return sorted((type_, name, table, normalized(sql)) for type_, name, table, sql in rows)


async def test_the_migrated_schema_equals_schema_sql(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated.db"
    await sqlite_store(migrated).migrate()
    fresh = sqlite3.connect(tmp_path / "fresh.db")
    old = sqlite3.connect(migrated)
    try:
        for statement in split_statements(sql_for("sqlite").schema):
            fresh.execute(statement)
        fresh.commit()
        fresh_schema = _schema(fresh)
        assert {"events", "deliveries", "attempts", "schema_migrations"} <= {
            name for type_, name, _, _ in fresh_schema if type_ == "table"
        }
        assert _schema(old) == fresh_schema
    finally:
        fresh.close()
        old.close()


async def test_claims_read_the_partial_indexes(db_path: Path) -> None:
    async with sqlite_store(db_path):
        pass
    conn = sqlite3.connect(db_path)
    try:
        params = {"owner": "w", "until": 1.0, "now": 0.0, "limit": 5, "handlers": None}
        plan = " ".join(
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN " + sql_for("sqlite").queries["claim_due"], params
            )
        )
    finally:
        conn.close()
    assert "USING INDEX deliveries_due" in plan
    assert "USING INDEX deliveries_lease_expiry" in plan
