"""The store contract, run against every engine (see conftest.STORE_ENGINES)."""

from __future__ import annotations

import asyncio

import pytest

from hookwise.config import StoreSettings
from hookwise.errors import ConfigError, StoreNotOpen
from hookwise.events import NewEvent
from hookwise.store import (
    EventFilter,
    MemoryStore,
    Settlement,
    SQLiteStore,
    Store,
    open_store,
)

T0 = 1_700_000_000.0
LEASE = 30.0
ALL_STATUSES = {"pending", "leased", "done", "retrying", "dead", "skipped"}


def new_event(
    key: str = "evt_1",
    *,
    source: str = "stripe",
    type: str = "invoice.paid",
    received_at: float = T0,
    body: bytes = b'{"id": "evt_1"}',
) -> NewEvent:
    return NewEvent(
        source=source,
        dedup_key=key,
        type=type,
        body=body,
        headers=(("content-type", "application/json"), ("x-request-id", "r1")),
        ordering_key="cus_1",
        occurred_at=T0 - 5,
        received_at=received_at,
    )


def settled(
    claim_id: int,
    fence: int,
    outcome: str = "done",
    *,
    owner: str = "w1",
    at: float = T0 + 1,
    retry_at: float | None = None,
    error: str | None = None,
) -> Settlement:
    return Settlement(
        delivery_id=claim_id,
        fence=fence,
        owner=owner,
        outcome=outcome,  # type: ignore[arg-type]
        started_at=at - 0.5,
        finished_at=at,
        next_attempt_at=retry_at,
        error=error,
    )


# -- lifecycle -----------------------------------------------------------------------------


async def test_using_a_store_before_open_raises_store_not_open(make_store) -> None:
    store = make_store()
    with pytest.raises(StoreNotOpen, match="open"):
        await store.append(new_event(), ["billing"])
    with pytest.raises(StoreNotOpen):
        await store.claim("w1", limit=1, lease=LEASE, now=T0)
    with pytest.raises(StoreNotOpen):
        await store.get_event(1)


async def test_close_is_idempotent_and_a_closed_store_refuses_work(make_store) -> None:
    store = make_store()
    async with store:
        await store.append(new_event(), ["billing"])
    await store.close()
    with pytest.raises(StoreNotOpen):
        await store.counts()


async def test_a_store_satisfies_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)
    await store.ping()


# -- append ----------------------------------------------------------------------------------


async def test_append_stores_the_event_exactly(store: Store) -> None:
    result = await store.append(new_event(body=b"\x00raw\xffbytes"), ["billing"])
    assert not result.duplicate
    record = await store.get_event(result.seq)
    assert record is not None
    assert (record.seq, record.source, record.dedup_key, record.type) == (
        result.seq,
        "stripe",
        "evt_1",
        "invoice.paid",
    )
    assert record.body == b"\x00raw\xffbytes"
    assert record.headers == (("content-type", "application/json"), ("x-request-id", "r1"))
    assert (record.ordering_key, record.occurred_at, record.received_at) == ("cus_1", T0 - 5, T0)
    assert record.intake == "push"
    assert record.status == "pending"
    assert await store.find_event("stripe", "evt_1") == record
    assert await store.find_event("stripe", "nope") is None
    assert await store.get_event(result.seq + 100) is None


async def test_a_duplicate_append_returns_the_first_seq_and_writes_nothing(store: Store) -> None:
    first = await store.append(new_event(), ["billing"])
    again = await store.append(new_event(body=b"different"), ["billing", "audit"])
    assert again.duplicate
    assert again.seq == first.seq
    record = await store.get_event(first.seq)
    assert record is not None and record.body == b'{"id": "evt_1"}'
    assert [d.handler for d in await store.deliveries(first.seq)] == ["billing"]


async def test_the_same_key_in_another_source_is_another_event(store: Store) -> None:
    a = await store.append(new_event(source="stripe"), ["h"])
    b = await store.append(new_event(source="github"), ["h"])
    assert not a.duplicate and not b.duplicate
    assert a.seq != b.seq


async def test_seq_follows_arrival_order(store: Store) -> None:
    seqs = [(await store.append(new_event(f"e{i}"), [])).seq for i in range(5)]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 5


async def test_concurrent_duplicates_store_one_event(store: Store) -> None:
    same = [store.append(new_event("evt_dup"), ["billing", "audit"]) for _ in range(50)]
    others = [store.append(new_event(f"other_{i}"), ["billing"]) for i in range(20)]
    results = await asyncio.gather(*same, *others)
    dup_results = results[:50]
    assert sum(not r.duplicate for r in dup_results) == 1
    assert len({r.seq for r in dup_results}) == 1
    assert all(not r.duplicate for r in results[50:])
    deliveries = await store.deliveries(dup_results[0].seq)
    assert sorted(d.handler for d in deliveries) == ["audit", "billing"]
    counts = await store.counts()
    assert counts["pending"] == 2 + 20


async def test_append_creates_one_pending_delivery_per_handler(store: Store) -> None:
    result = await store.append(new_event(), ["billing", "audit", "billing"])
    deliveries = await store.deliveries(result.seq)
    assert [d.handler for d in deliveries] == ["billing", "audit"]
    for d in deliveries:
        assert d.status == "pending"
        assert (d.attempts, d.fence) == (0, 0)
        assert d.next_attempt_at == T0
        assert d.lease_owner is None and d.lease_expires_at is None
        assert (d.event_seq, d.source, d.event_type, d.dedup_key) == (
            result.seq,
            "stripe",
            "invoice.paid",
            "evt_1",
        )
        assert await store.get_delivery(d.id) == d
    assert await store.get_delivery(10_000) is None


async def test_an_event_without_handlers_is_stored_without_deliveries(store: Store) -> None:
    result = await store.append(new_event(), [])
    record = await store.get_event(result.seq)
    assert record is not None and record.status == "none"
    assert await store.deliveries(result.seq) == []
    assert await store.claim("w1", limit=10, lease=LEASE, now=T0 + 100) == []


# -- claim -----------------------------------------------------------------------------------


async def test_claim_takes_only_due_deliveries(store: Store) -> None:
    await store.append(new_event(received_at=T0 + 10), ["billing"])
    assert await store.claim("w1", limit=10, lease=LEASE, now=T0) == []
    claims = await store.claim("w1", limit=10, lease=LEASE, now=T0 + 10)
    assert len(claims) == 1


async def test_a_claim_carries_the_whole_event(store: Store) -> None:
    result = await store.append(new_event(), ["billing"])
    [claim] = await store.claim("w1", limit=10, lease=LEASE, now=T0 + 1)
    assert claim.handler == "billing"
    assert (claim.fence, claim.attempt) == (1, 1)
    assert claim.lease_expires_at == T0 + 1 + LEASE
    event = claim.event
    assert (event.id, event.seq, event.source, event.type) == (
        "evt_1",
        result.seq,
        "stripe",
        "invoice.paid",
    )
    assert event.body == b'{"id": "evt_1"}'
    assert event.headers == {"content-type": "application/json", "x-request-id": "r1"}
    assert (event.ordering_key, event.occurred_at, event.received_at) == ("cus_1", T0 - 5, T0)
    assert (event.intake, event.attempt) == ("push", 1)
    [delivery] = await store.deliveries(result.seq)
    assert delivery.status == "leased"
    assert (delivery.lease_owner, delivery.lease_expires_at) == ("w1", T0 + 1 + LEASE)
    record = await store.get_event(result.seq)
    assert record is not None and record.status == "leased"


async def test_claim_takes_the_oldest_due_first_up_to_the_limit(store: Store) -> None:
    for i, received in enumerate([T0 + 3, T0 + 1, T0 + 2, T0 + 1]):
        await store.append(new_event(f"e{i}", received_at=received), ["h"])
    claims = await store.claim("w1", limit=3, lease=LEASE, now=T0 + 10)
    assert [c.event.id for c in claims] == ["e1", "e3", "e2"]
    rest = await store.claim("w2", limit=3, lease=LEASE, now=T0 + 10)
    assert [c.event.id for c in rest] == ["e0"]
    assert await store.claim("w3", limit=3, lease=LEASE, now=T0 + 10) == []
    assert await store.claim("w3", limit=0, lease=LEASE, now=T0 + 10) == []


async def test_claim_can_be_restricted_to_handlers(store: Store) -> None:
    await store.append(new_event(), ["billing", "audit", "mail"])
    claims = await store.claim("w1", limit=10, lease=LEASE, now=T0, handlers=["audit", "mail"])
    assert sorted(c.handler for c in claims) == ["audit", "mail"]
    assert await store.claim("w1", limit=10, lease=LEASE, now=T0, handlers=["nope"]) == []
    [billing] = await store.claim("w2", limit=10, lease=LEASE, now=T0)
    assert billing.handler == "billing"


async def test_an_expired_lease_is_claimed_again_with_a_new_fence(store: Store) -> None:
    await store.append(new_event(), ["billing"])
    [first] = await store.claim("w1", limit=10, lease=LEASE, now=T0)
    assert await store.claim("w2", limit=10, lease=LEASE, now=T0 + LEASE - 1) == []
    [second] = await store.claim("w2", limit=10, lease=LEASE, now=T0 + LEASE)
    assert second.delivery_id == first.delivery_id
    assert (second.fence, second.attempt) == (first.fence + 1, 2)
    delivery = await store.get_delivery(first.delivery_id)
    assert delivery is not None and delivery.lease_owner == "w2"


# -- settle ----------------------------------------------------------------------------------


async def test_settle_done_records_the_attempt(store: Store) -> None:
    result = await store.append(new_event(), ["billing"])
    [claim] = await store.claim("w1", limit=1, lease=LEASE, now=T0)
    assert await store.settle([settled(claim.delivery_id, claim.fence, at=T0 + 2)]) == [True]
    delivery = await store.get_delivery(claim.delivery_id)
    assert delivery is not None
    assert delivery.status == "done"
    assert (delivery.lease_owner, delivery.lease_expires_at) == (None, None)
    assert delivery.updated_at == T0 + 2
    [attempt] = await store.attempts(claim.delivery_id)
    assert (attempt.number, attempt.outcome, attempt.owner) == (1, "done", "w1")
    assert (attempt.started_at, attempt.finished_at, attempt.error) == (T0 + 1.5, T0 + 2, None)
    record = await store.get_event(result.seq)
    assert record is not None and record.status == "done"
    assert await store.claim("w1", limit=1, lease=LEASE, now=T0 + 10_000) == []


async def test_a_retry_comes_back_at_its_time(store: Store) -> None:
    await store.append(new_event(), ["billing"])
    [claim] = await store.claim("w1", limit=1, lease=LEASE, now=T0)
    retry = settled(claim.delivery_id, claim.fence, "retry", retry_at=T0 + 60, error="HTTP 502")
    assert await store.settle([retry]) == [True]
    delivery = await store.get_delivery(claim.delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.next_attempt_at, delivery.last_error) == (
        "retrying",
        T0 + 60,
        "HTTP 502",
    )
    assert await store.claim("w1", limit=1, lease=LEASE, now=T0 + 59) == []
    [again] = await store.claim("w1", limit=1, lease=LEASE, now=T0 + 60)
    assert (again.attempt, again.fence) == (2, 2)
    assert await store.settle([settled(again.delivery_id, again.fence, at=T0 + 61)]) == [True]
    history = await store.attempts(claim.delivery_id)
    assert [(a.number, a.outcome, a.error) for a in history] == [
        (1, "retry", "HTTP 502"),
        (2, "done", None),
    ]


async def test_dead_and_skipped_are_final(store: Store) -> None:
    result = await store.append(new_event(), ["billing", "audit"])
    claims = {c.handler: c for c in await store.claim("w1", limit=2, lease=LEASE, now=T0)}
    applied = await store.settle(
        [
            settled(claims["billing"].delivery_id, claims["billing"].fence, "dead", error="boom"),
            settled(claims["audit"].delivery_id, claims["audit"].fence, "skipped", error="old"),
        ]
    )
    assert applied == [True, True]
    statuses = {d.handler: d.status for d in await store.deliveries(result.seq)}
    assert statuses == {"billing": "dead", "audit": "skipped"}
    record = await store.get_event(result.seq)
    assert record is not None and record.status == "dead"
    [dead] = await store.list_dead()
    assert (dead.handler, dead.last_error, dead.source, dead.dedup_key) == (
        "billing",
        "boom",
        "stripe",
        "evt_1",
    )
    assert await store.claim("w1", limit=5, lease=LEASE, now=T0 + 10_000) == []


async def test_a_stale_fence_is_refused_and_changes_nothing(store: Store) -> None:
    await store.append(new_event(), ["billing"])
    [old] = await store.claim("w1", limit=1, lease=LEASE, now=T0)
    [new] = await store.claim("w2", limit=1, lease=LEASE, now=T0 + LEASE + 1)
    before = await store.get_delivery(old.delivery_id)
    stale = settled(old.delivery_id, old.fence, owner="w1", at=T0 + LEASE + 2)
    assert await store.settle([stale]) == [False]
    assert await store.get_delivery(old.delivery_id) == before
    assert await store.attempts(old.delivery_id) == []
    current = settled(new.delivery_id, new.fence, owner="w2", at=T0 + LEASE + 3)
    assert await store.settle([stale, current]) == [False, True]
    [attempt] = await store.attempts(old.delivery_id)
    assert (attempt.number, attempt.owner) == (2, "w2")


async def test_settle_refuses_another_owner_or_a_settled_delivery(store: Store) -> None:
    await store.append(new_event(), ["billing"])
    [claim] = await store.claim("w1", limit=1, lease=LEASE, now=T0)
    assert await store.settle([settled(claim.delivery_id, claim.fence, owner="w9")]) == [False]
    assert await store.settle([settled(claim.delivery_id, claim.fence)]) == [True]
    assert await store.settle([settled(claim.delivery_id, claim.fence)]) == [False]
    assert await store.settle([settled(999_999, 1)]) == [False]
    assert len(await store.attempts(claim.delivery_id)) == 1


# -- extend and release ------------------------------------------------------------------------


async def test_extend_keeps_a_lease_held(store: Store) -> None:
    await store.append(new_event(), ["billing", "audit"])
    a, b = await store.claim("w1", limit=2, lease=LEASE, now=T0)
    extended = await store.extend(
        "w1", [(a.delivery_id, a.fence), (b.delivery_id, b.fence + 7)], until=T0 + 100
    )
    assert extended == [a.delivery_id]
    assert await store.extend("w2", [(a.delivery_id, a.fence)], until=T0 + 500) == []
    reclaimed = await store.claim("w2", limit=5, lease=LEASE, now=T0 + LEASE)
    assert [c.delivery_id for c in reclaimed] == [b.delivery_id]
    delivery = await store.get_delivery(a.delivery_id)
    assert delivery is not None
    assert (delivery.lease_owner, delivery.lease_expires_at) == ("w1", T0 + 100)


async def test_release_gives_work_back_without_counting_the_attempt(store: Store) -> None:
    await store.append(new_event(), ["billing", "audit"])
    a, b = await store.claim("w1", limit=2, lease=LEASE, now=T0)
    released = await store.release(
        "w1", [(a.delivery_id, a.fence), (b.delivery_id, b.fence + 1)], now=T0 + 5
    )
    assert released == 1
    delivery = await store.get_delivery(a.delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, T0 + 5)
    assert delivery.lease_owner is None
    [again] = await store.claim("w2", limit=5, lease=LEASE, now=T0 + 5)
    assert again.delivery_id == a.delivery_id
    assert (again.attempt, again.fence) == (1, a.fence + 1)
    assert await store.release("w2", [(b.delivery_id, b.fence)], now=T0 + 5) == 0


# -- operator actions --------------------------------------------------------------------------


async def _kill(store: Store, key: str, *, source: str = "stripe", at: float = T0 + 1) -> int:
    await store.append(new_event(key, source=source), ["billing"])
    [claim] = await store.claim("w1", limit=1, lease=LEASE, now=at)
    assert await store.settle([settled(claim.delivery_id, claim.fence, "dead", at=at)]) == [True]
    return claim.delivery_id


async def test_retry_dead_by_id_keeps_history_and_resets_the_budget(store: Store) -> None:
    first = await _kill(store, "e1", at=T0 + 1)
    second = await _kill(store, "e2", at=T0 + 2)
    assert [d.id for d in await store.list_dead()] == [second, first]
    assert await store.retry_dead([first, 424_242], now=T0 + 10) == 1
    delivery = await store.get_delivery(first)
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, T0 + 10)
    assert len(await store.attempts(first)) == 1
    [claim] = await store.claim("w1", limit=5, lease=LEASE, now=T0 + 10)
    assert (claim.delivery_id, claim.attempt) == (first, 1)
    assert [d.id for d in await store.list_dead()] == [second]


async def test_retry_dead_all_or_by_source(store: Store) -> None:
    await _kill(store, "e1", source="stripe")
    github = await _kill(store, "e2", source="github")
    await _kill(store, "e3", source="stripe")
    assert [d.id for d in await store.list_dead(source="github")] == [github]
    assert await store.list_dead(handler="nope") == []
    assert await store.retry_dead(None, now=T0 + 5, source="stripe") == 2
    assert [d.id for d in await store.list_dead()] == [github]
    assert await store.retry_dead(None, now=T0 + 5) == 1
    assert await store.list_dead() == []
    assert await store.retry_dead(None, now=T0 + 5) == 0


async def test_replay_reschedules_settled_work_and_keeps_history(store: Store) -> None:
    result = await store.append(new_event(), ["billing", "audit"])
    claims = {c.handler: c for c in await store.claim("w1", limit=2, lease=LEASE, now=T0)}
    billing = claims["billing"]
    await store.settle([settled(billing.delivery_id, billing.fence)])
    # audit is still leased: replay leaves it alone; mail has no delivery yet.
    scheduled = await store.replay([result.seq, 999_999], ["billing", "audit", "mail"], now=T0 + 10)
    assert scheduled == 2
    deliveries = {d.handler: d for d in await store.deliveries(result.seq)}
    assert deliveries["billing"].status == "pending"
    assert deliveries["billing"].attempts == 0
    assert deliveries["billing"].next_attempt_at == T0 + 10
    assert deliveries["audit"].status == "leased"
    assert deliveries["mail"].status == "pending"
    assert deliveries["mail"].next_attempt_at == T0 + 10
    assert len(await store.attempts(billing.delivery_id)) == 1
    again = await store.claim("w2", limit=5, lease=LEASE, now=T0 + 10)
    assert sorted(c.handler for c in again) == ["billing", "mail"]
    replayed = next(c for c in again if c.handler == "billing")
    assert replayed.attempt == 1
    assert replayed.fence == billing.fence + 1


# -- reads -----------------------------------------------------------------------------------


async def test_list_events_filters_newest_first(store: Store) -> None:
    specs = [
        ("e1", "stripe", "invoice.paid", T0),
        ("e2", "github", "push", T0 + 1),
        ("e3", "stripe", "invoice.created", T0 + 2),
        ("e4", "stripe", "customer.updated", T0 + 3),
    ]
    seqs = {}
    for key, source, type_, at in specs:
        seqs[key] = (
            await store.append(new_event(key, source=source, type=type_, received_at=at), ["h"])
        ).seq
    [claim] = await store.claim("w1", limit=1, lease=LEASE, now=T0 + 10)
    await store.settle([settled(claim.delivery_id, claim.fence, at=T0 + 11)])

    async def keys(**kw: object) -> list[str]:
        return [e.dedup_key for e in await store.list_events(EventFilter(**kw))]  # type: ignore[arg-type]

    assert await keys() == ["e4", "e3", "e2", "e1"]
    assert await keys(source="stripe") == ["e4", "e3", "e1"]
    assert await keys(type="invoice.*") == ["e3", "e1"]
    assert await keys(source="github", type="invoice.*") == []
    assert await keys(status="done") == ["e1"]
    assert await keys(status="pending") == ["e4", "e3", "e2"]
    assert await keys(since=T0 + 2) == ["e4", "e3"]
    assert await keys(before_seq=seqs["e3"]) == ["e2", "e1"]
    assert await keys(limit=2) == ["e4", "e3"]
    statuses = {e.dedup_key: e.status for e in await store.list_events(EventFilter())}
    assert statuses == {"e1": "done", "e2": "pending", "e3": "pending", "e4": "pending"}


async def test_event_status_is_its_least_settled_delivery(store: Store) -> None:
    result = await store.append(new_event(), ["a", "b"])
    claims = {c.handler: c for c in await store.claim("w1", limit=2, lease=LEASE, now=T0)}
    await store.settle([settled(claims["a"].delivery_id, claims["a"].fence)])
    record = await store.get_event(result.seq)
    assert record is not None and record.status == "leased"
    await store.settle([settled(claims["b"].delivery_id, claims["b"].fence, "skipped")])
    record = await store.get_event(result.seq)
    assert record is not None and record.status == "skipped"


async def test_counts_has_every_status(store: Store) -> None:
    assert await store.counts() == dict.fromkeys(ALL_STATUSES, 0)
    await store.append(new_event("e1"), ["a", "b", "c"])
    claims = await store.claim("w1", limit=2, lease=LEASE, now=T0)
    await store.settle([settled(claims[0].delivery_id, claims[0].fence, "retry", retry_at=T0 + 9)])
    counts = await store.counts()
    assert set(counts) == ALL_STATUSES
    assert (counts["pending"], counts["leased"], counts["retrying"], counts["done"]) == (1, 1, 1, 0)


# -- open_store --------------------------------------------------------------------------------


def test_open_store_dispatches_on_the_url(tmp_path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    relative = open_store("sqlite:///data/hookwise.db")
    assert isinstance(relative, SQLiteStore) and relative.path == "data/hookwise.db"
    absolute = open_store(f"sqlite:///{tmp_path}/h.db")
    assert isinstance(absolute, SQLiteStore) and absolute.path == f"{tmp_path}/h.db"
    tuned = open_store(StoreSettings(url="sqlite:///x.db", busy_timeout=1.5))
    assert isinstance(tuned, SQLiteStore)
    assert (tuned.path, tuned.settings.busy_timeout) == ("x.db", 1.5)
    assert tuned.url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///:memory:", "memory://"),
        ("sqlite://relative.db", "three slashes"),
        ("sqlite:///", "memory://"),
        ("postgresql://localhost/hookwise", "postgres extra"),
        ("redis://localhost", "unknown scheme"),
        ("hookwise.db", "no scheme"),
    ],
)
def test_open_store_explains_a_bad_url(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        open_store(url)
    assert info.value.key == "store.url"
    assert info.value.fix
