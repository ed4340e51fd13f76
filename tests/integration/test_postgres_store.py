"""What only the PostgreSQL engine has to show: its schema, several processes' worth of
stores on one database, wake-ups across them, and failing closed when the server is gone.

The behaviour every engine shares is in test_store_contract.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from hookwise.config import StoreSettings
from hookwise.errors import StoreUnavailable
from hookwise.events import NewEvent
from hookwise.store import Ordering, Settlement, open_store
from hookwise.store._sql import split_statements, sql_for
from hookwise.store.postgres import PostgresStore, glob_to_regex

from ._postgres import admin_connect, pg_schema

NOW = 1_700_000_000.0
LEASE = 30.0


def event(key: str, *, type: str = "invoice.paid", source: str = "stripe") -> NewEvent:
    return NewEvent(source, key, type, b'{"ok": true}', (("content-type", "application/json"),))


@pytest.fixture
async def url() -> AsyncIterator[str]:
    with pg_schema() as schema_url:
        yield schema_url


async def opened(url: str, **settings: object) -> PostgresStore:
    store = PostgresStore(url, settings=StoreSettings(url=url, **settings))  # type: ignore[arg-type]
    await store.open()
    return store


# -- schema -------------------------------------------------------------------------------


def describe_schema(schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Everything about a schema's tables that matters: columns, constraints, indexes,
    storage options and views, in a comparable form."""
    queries = {
        "columns": """
            SELECT table_name, column_name, data_type, is_nullable, column_default,
                   is_identity, identity_generation
            FROM information_schema.columns WHERE table_schema = %(s)s
            ORDER BY table_name, column_name""",
        "constraints": """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
            FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace
            WHERE n.nspname = %(s)s ORDER BY 1, 2""",
        "indexes": """
            SELECT tablename, indexname, indexdef FROM pg_indexes
            WHERE schemaname = %(s)s ORDER BY 1, 2""",
        "options": """
            SELECT c.relname, c.relkind, coalesce(c.reloptions, '{}')
            FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = %(s)s ORDER BY 1""",
        "views": """
            SELECT viewname, definition FROM pg_views WHERE schemaname = %(s)s ORDER BY 1""",
    }
    with admin_connect() as conn:
        conn.execute(f"SET search_path = {schema}")
        described = {
            name: [tuple(row) for row in conn.execute(query, {"s": schema}).fetchall()]
            for name, query in queries.items()
        }
    # Names carry the schema they live in; compare them without it.
    return {
        name: [tuple(str(v).replace(f"{schema}.", "") for v in row) for row in rows]
        for name, rows in described.items()
    }


def schema_of(url: str) -> str:
    return url.rsplit("search_path%3D", 1)[1]


async def test_the_migrated_schema_equals_the_fresh_one(url: str) -> None:
    store = PostgresStore(url)
    assert await store.schema_version() is None
    assert await store.migrate() == [m.version for m in sql_for("postgresql").migrations]
    assert await store.migrate() == []  # idempotent
    migrated = describe_schema(schema_of(url))

    with pg_schema() as fresh_url:
        fresh = schema_of(fresh_url)
        with admin_connect() as conn:
            conn.execute(f"SET search_path = {fresh}")
            for statement in split_statements(sql_for("postgresql").schema):
                conn.execute(statement.encode())
        assert describe_schema(fresh) == migrated
    assert migrated["indexes"], "the comparison saw no indexes at all"
    assert any("deliveries_due" in row[1] for row in migrated["indexes"])


async def test_processes_starting_together_migrate_once(url: str) -> None:
    stores = [PostgresStore(url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        applied = [s.migrations_applied for s in stores]
        assert sorted(map(len, applied)) == [0, 0, 0, len(sql_for("postgresql").migrations)]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_newer_schema_keeps_running_processes_ready_but_refuses_new_ones(
    url: str,
) -> None:
    running = await opened(url)
    table = f"{schema_of(url)}.schema_migrations"
    try:
        with admin_connect() as conn:
            conn.execute(f"INSERT INTO {table} VALUES ('9999_future', 0)")
        await running.ping()  # a rolling upgrade migrated: this process stays ready
        with pytest.raises(StoreUnavailable, match="newer than this hookwise knows"):
            await PostgresStore(url).open()
        with admin_connect() as conn:
            conn.execute(f"DELETE FROM {table} WHERE version = '0001_initial'")
        with pytest.raises(StoreUnavailable, match="lacks schema 0001_initial"):
            await running.ping()
    finally:
        await running.close()


# -- many stores on one database ------------------------------------------------------------


async def test_concurrent_claims_from_several_stores_never_share_a_delivery(url: str) -> None:
    intake = await opened(url)
    workers = [await opened(url) for _ in range(3)]
    try:
        await asyncio.gather(*(intake.append(event(f"evt_{i}"), ["billing"]) for i in range(300)))

        async def drain(store: PostgresStore, owner: str) -> list[int]:
            got: list[int] = []
            while batch := await store.claim(owner, limit=7, lease=LEASE, now=NOW + 10):
                got += [c.delivery_id for c in batch]
            return got

        claimed = await asyncio.gather(*(drain(w, f"w{i}") for i, w in enumerate(workers)))
        every = [d for got in claimed for d in got]
        assert len(every) == 300
        assert len(set(every)) == 300
        assert all(claimed), "every worker should have won some deliveries"
    finally:
        for store in (intake, *workers):
            await store.close()


async def test_the_same_event_through_two_intakes_is_stored_once(url: str) -> None:
    first, second = await opened(url), await opened(url)
    try:
        results = await asyncio.gather(
            *(
                store.append(event(f"evt_{i}"), ["billing"])
                for i in range(200)
                for store in (first, second)
            )
        )
        new = [r for r in results if not r.duplicate]
        assert len(new) == 200
        assert len({r.seq for r in results}) == 200
        counts = await first.counts()
        assert counts["pending"] == 200
    finally:
        await first.close()
        await second.close()


async def test_an_append_wakes_a_subscriber_in_another_process(url: str) -> None:
    intake, worker = await opened(url), await opened(url)
    woken = asyncio.Event()
    unsubscribe = worker.subscribe(woken.set)
    try:
        deadline = time.monotonic() + 10
        while not worker.listening:
            assert time.monotonic() < deadline, "the store never started listening"
            await asyncio.sleep(0.02)
        woken.clear()  # the wake-up every (re)start of listening gives
        started = time.perf_counter()
        await intake.append(event("evt_1"), ["billing"])
        await asyncio.wait_for(woken.wait(), timeout=5)
        assert time.perf_counter() - started < 2
        woken.clear()
        await intake.append(event("evt_1"), ["billing"])  # a duplicate creates no work
        await intake.append(event("evt_2"), [])  # nor does an event without handlers
        await asyncio.sleep(0.3)
        assert not woken.is_set()
    finally:
        unsubscribe()
        await intake.close()
        await worker.close()


# -- input the database would refuse ------------------------------------------------------------


async def test_nul_characters_are_stored_without_failing_the_batch(url: str) -> None:
    store = await opened(url)
    try:
        results = await asyncio.gather(
            store.append(event("evt_\x00nul", type="a\x00b"), ["billing"]),
            *(store.append(event(f"evt_{i}"), ["billing"]) for i in range(20)),
        )
        assert not any(r.duplicate for r in results)
        stored = await store.get_event(results[0].seq)
        assert stored is not None
        assert stored.type == "a\ufffdb"
        assert stored.dedup_key == "evt_\ufffdnul"
    finally:
        await store.close()


# -- failing closed ---------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_an_unreachable_server_is_unavailable_with_advice(closed_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port}/test"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="not running or not listening"):
        await open_store(url).open()
    assert time.monotonic() - started < 5


async def test_appends_fail_fast_while_the_server_is_gone_and_recover(url: str) -> None:
    store = await opened(url)
    try:
        await store.append(event("evt_before"), ["billing"])
        # Cut the intake's connection from the server side, as a restart would.
        with admin_connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND query LIKE %s",
                ("%INSERT INTO events%",),
            )
        outcomes: list[str] = []
        for i in range(5):
            try:
                await store.append(event(f"evt_after_{i}"), ["billing"])
                outcomes.append("ok")
            except StoreUnavailable:
                outcomes.append("unavailable")
        # At most the first append notices the dead connection; then it reconnects.
        assert outcomes[1:] == ["ok"] * 4
        assert await store.find_event("stripe", "evt_after_4") is not None
    finally:
        await store.close()


async def test_a_lost_listen_connection_is_taken_up_again(url: str) -> None:
    intake, worker = await opened(url), await opened(url)
    woken = asyncio.Event()
    unsubscribe = worker.subscribe(woken.set)
    try:
        deadline = time.monotonic() + 10
        while not worker.listening:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        with admin_connect() as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %%'"
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        deadline = time.monotonic() + 10
        while worker.listening:
            assert time.monotonic() < deadline, "the lost connection went unnoticed"
            await asyncio.sleep(0.02)
        while not worker.listening:
            assert time.monotonic() < deadline, "never listened again"
            await asyncio.sleep(0.05)
        woken.clear()
        await intake.append(event("evt_1"), ["billing"])
        await asyncio.wait_for(woken.wait(), timeout=5)
    finally:
        unsubscribe()
        await intake.close()
        await worker.close()


# -- small pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("invoice.*", ["invoice.paid", "invoice."], ["invoicexpaid", "an invoice.paid"]),
        ("*.paid", ["invoice.paid"], ["invoice.paid.x"]),
        ("a?c", ["abc"], ["ac", "abbc"]),
        ("[ab]x", ["ax", "bx"], ["cx"]),
        ("[!ab]x", ["cx"], ["ax"]),
        ("a+b(c)", ["a+b(c)"], ["aab(c)"]),
    ],
)
def test_type_globs_read_as_sqlite_reads_them(
    glob: str, matches: list[str], misses: list[str]
) -> None:
    with admin_connect() as conn:
        for text in matches:
            row = conn.execute("SELECT %s ~ %s", (text, glob_to_regex(glob))).fetchone()
            assert row == (True,), (glob, text)
        for text in misses:
            row = conn.execute("SELECT %s ~ %s", (text, glob_to_regex(glob))).fetchone()
            assert row == (False,), (glob, text)


# -- ordering across processes -------------------------------------------------------------------

SERIAL = Ordering("serial")
KEYS = [f"sub_{k}" for k in range(5)]


def ordered_event(n: int) -> NewEvent:
    return NewEvent(
        "stripe",
        f"evt_{n}",
        "customer.subscription.updated",
        b"{}",
        (),
        ordering_key=KEYS[n % len(KEYS)],
        occurred_at=NOW + n,
        received_at=NOW,
    )


def members_per_key(url: str) -> dict[str, tuple[int, int]]:
    """(active, waiting) members of each ordering key, read in one snapshot."""
    with admin_connect() as conn:
        conn.execute(f"SET search_path = {schema_of(url)}")
        rows = conn.execute(
            """
            SELECT ordering_key,
                   count(*) FILTER (WHERE status IN ('leased', 'retrying')
                                       OR (status = 'pending' AND next_attempt_at IS NOT NULL)),
                   count(*) FILTER (WHERE status = 'pending' AND next_attempt_at IS NULL)
            FROM deliveries WHERE ordering_key IS NOT NULL GROUP BY ordering_key"""
        ).fetchall()
    return {str(key): (int(active), int(waiting)) for key, active, waiting in rows}  # type: ignore[call-overload]


async def test_two_intakes_appending_to_the_same_keys_leave_one_active_member_each(
    url: str,
) -> None:
    first, second = await opened(url), await opened(url)
    try:
        # Even events through one intake, odd ones through the other, at once: their
        # transactions race to place members of the same five keys. (No event goes
        # through both: a shared dedup key would make one transaction wait for the other.)
        intakes = (first, second)
        results = await asyncio.gather(
            *(
                intakes[n % 2].append(ordered_event(n), ["billing"], ordering=SERIAL)
                for n in range(200)
            )
        )
        assert not any(r.duplicate for r in results)
        assert first.stats()[0] + second.stats()[0] < 20, "the intakes should batch"
        assert members_per_key(url) == {key: (1, 39) for key in KEYS}

        claims = await second.claim("w1", limit=100, lease=LEASE, now=NOW + 1)
        heads = {c.event.ordering_key: c.event.seq for c in claims}
        oldest = {key: min(r.seq for r in results[k::5]) for k, key in enumerate(KEYS)}
        assert heads == oldest  # each key's oldest event, and only it
    finally:
        await first.close()
        await second.close()


async def test_settles_racing_appends_keep_one_active_member_per_key(url: str) -> None:
    intakes = [await opened(url), await opened(url)]
    workers = [await opened(url), await opened(url)]
    claimed: dict[str | None, list[int]] = {key: [] for key in KEYS}
    appending = True
    broken: list[dict[str, tuple[int, int]]] = []

    def check() -> None:
        members = members_per_key(url)
        if any(active > 1 or (waiting and not active) for active, waiting in members.values()):
            broken.append(members)

    async def append(store: PostgresStore, numbers: range) -> None:
        for start in range(numbers.start, numbers.stop, 10):
            chunk = range(start, min(start + 10, numbers.stop))
            await asyncio.gather(
                *(store.append(ordered_event(n), ["billing"], ordering=SERIAL) for n in chunk)
            )

    async def work(store: PostgresStore, owner: str) -> None:
        now = NOW + 10_000
        while True:
            claims = await store.claim(owner, limit=10, lease=LEASE, now=now)
            if not claims:
                if not appending:
                    return
                await asyncio.sleep(0.005)
                continue
            assert len({c.event.ordering_key for c in claims}) == len(claims)
            for c in claims:
                if claimed[c.event.ordering_key][-1:] != [c.event.seq]:  # not a retry
                    claimed[c.event.ordering_key].append(c.event.seq)
            settlements = []
            for c in claims:
                seq = c.event.seq
                assert seq is not None
                outcome = (
                    "dead"
                    if seq % 7 == 0
                    else "retry"
                    if seq % 3 == 0 and c.attempt == 1
                    else "done"
                )
                settlements.append(
                    Settlement(
                        c.delivery_id, c.fence, owner, outcome,  # type: ignore[arg-type]
                        started_at=now, finished_at=now, next_attempt_at=now,
                        error=None if outcome == "done" else "boom",
                    )
                )  # fmt: skip
            assert all(await store.settle(settlements))
            check()

    async def intake() -> None:
        nonlocal appending
        try:
            await asyncio.gather(
                append(intakes[0], range(0, 100)), append(intakes[1], range(100, 200))
            )
        finally:
            appending = False

    try:
        outcomes = await asyncio.gather(
            intake(), *(work(w, f"w{i}") for i, w in enumerate(workers)), return_exceptions=True
        )
        assert [o for o in outcomes if o is not None] == []
        assert broken == []
        counts = await workers[0].counts()
        assert counts["waiting"] == counts["pending"] == counts["leased"] == 0
        assert counts["retrying"] == 0
        assert counts["done"] + counts["dead"] == 200
        for key, seqs in claimed.items():
            assert seqs == sorted(seqs), key  # serial: each key ran in arrival order
            assert len(seqs) == 40, key
    finally:
        for store in (*intakes, *workers):
            await store.close()
