"""The store contract, run against every engine (see conftest.STORE_ENGINES)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from hookwise.config import StoreSettings
from hookwise.errors import ConfigError, StoreNotOpen
from hookwise.events import NewEvent
from hookwise.store import (
    EventFilter,
    MemoryStore,
    RejectionRecord,
    Settlement,
    SQLiteStore,
    Store,
    _base,
    open_store,
)

T0 = 1_700_000_000.0
LEASE = 30.0
ALL_STATUSES = {"pending", "waiting", "leased", "done", "retrying", "dead", "skipped"}


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


# -- discarding dead letters -------------------------------------------------------------------


async def test_discard_dead_skips_dead_letters_and_keeps_their_history(store: Store) -> None:
    first = await _kill(store, "e1", at=T0 + 1)
    second = await _kill(store, "e2", at=T0 + 2)
    seq = (await store.append(new_event("e3"), ["billing"])).seq
    [pending] = await store.deliveries(seq)
    assert await store.discard_dead([first, pending.id, 424_242], now=T0 + 10) == 1
    delivery = await store.get_delivery(first)
    assert delivery is not None
    assert (delivery.status, delivery.last_error, delivery.updated_at) == (
        "skipped",
        "discarded",
        T0 + 10,
    )
    [attempt] = await store.attempts(first)
    assert attempt.outcome == "dead"
    assert [d.id for d in await store.list_dead()] == [second]
    still_pending = await store.get_delivery(pending.id)
    assert still_pending is not None and still_pending.status == "pending"
    record = await store.get_event(delivery.event_seq)
    assert record is not None and record.status == "skipped"
    assert [c.delivery_id for c in await store.claim("w1", limit=5, lease=LEASE, now=T0 + 20)] == [
        pending.id
    ]
    assert await store.retry_dead([first], now=T0 + 30) == 0, "a discarded letter is not dead"


async def test_discard_dead_all_or_by_source(store: Store) -> None:
    await _kill(store, "e1", source="stripe")
    github = await _kill(store, "e2", source="github")
    await _kill(store, "e3", source="stripe")
    assert await store.discard_dead(None, now=T0 + 5, source="stripe") == 2
    assert [d.id for d in await store.list_dead()] == [github]
    assert await store.discard_dead(None, now=T0 + 5) == 1
    assert await store.list_dead() == []
    assert await store.discard_dead(None, now=T0 + 5) == 0
    assert (await store.counts())["skipped"] == 3


# -- purge -------------------------------------------------------------------------------------


async def _event_in(
    store: Store, key: str, status: str, *, received_at: float = T0, handlers: int = 1
) -> int:
    """Append event ``key`` and bring its deliveries (handlers named after it) to
    ``status``; returns its seq."""
    names = [f"{key}-h{n}" for n in range(handlers)]
    seq = (await store.append(new_event(key, received_at=received_at), names)).seq
    if status == "pending":
        return seq
    now = max(received_at, T0) + 10
    claims = await store.claim("w1", limit=10, lease=LEASE, now=now, handlers=names)
    assert len(claims) == len(names)
    if status == "leased":
        return seq
    outcome = {"done": "done", "skipped": "skipped", "dead": "dead", "retrying": "retry"}[status]
    results = await store.settle(
        [
            settled(c.delivery_id, c.fence, outcome, at=now + 1, retry_at=now + 10_000)
            for c in claims
        ]
    )
    assert all(results)
    return seq


async def test_purge_deletes_finished_old_events_with_their_history(store: Store) -> None:
    done = await _event_in(store, "done", "done", handlers=2)
    skipped = await _event_in(store, "skipped", "skipped")
    bare = (await store.append(new_event("bare"), [])).seq
    [delivery] = await store.deliveries(skipped)
    done_ids = [d.id for d in await store.deliveries(done)]
    assert await store.attempts(delivery.id)

    assert await store.purge(before=T0 + 1) == 3
    for seq in (done, skipped, bare):
        assert await store.get_event(seq) is None
        assert await store.deliveries(seq) == []
    for delivery_id in [delivery.id, *done_ids]:
        assert await store.get_delivery(delivery_id) is None
        assert await store.attempts(delivery_id) == []
    assert await store.find_event("stripe", "done") is None
    assert await store.list_events(EventFilter()) == []
    assert await store.counts() == dict.fromkeys(ALL_STATUSES, 0)
    assert await store.purge(before=T0 + 1) == 0
    again = await store.append(new_event("done"), ["h"])
    assert not again.duplicate, "a purged event is forgotten, dedup key included"


async def test_purge_keeps_events_that_still_need_work(store: Store) -> None:
    kept = {
        status: await _event_in(store, status, status)
        for status in ("dead", "retrying", "leased", "pending")
    }
    # Finished for one handler, not for the other.
    mixed = (await store.append(new_event("mixed"), ["a", "b"])).seq
    [claim] = await store.claim("w1", limit=1, lease=LEASE, now=T0 + 10, handlers=["a"])
    assert await store.settle([settled(claim.delivery_id, claim.fence, at=T0 + 11)]) == [True]
    kept["mixed"] = mixed
    finished = await _event_in(store, "finished", "done")

    assert await store.purge(before=T0 + 1_000_000) == 1
    assert await store.get_event(finished) is None
    for name, seq in kept.items():
        record = await store.get_event(seq)
        assert record is not None, f"the {name} event was purged"
        assert len(await store.deliveries(seq)) >= 1
    [dead] = await store.list_dead()
    assert len(await store.attempts(dead.id)) == 1


async def test_purge_deletes_only_events_received_before_the_cutoff(store: Store) -> None:
    old = await _event_in(store, "old", "done", received_at=T0)
    edge = await _event_in(store, "edge", "done", received_at=T0 + 100)
    new = await _event_in(store, "new", "done", received_at=T0 + 200)
    assert await store.purge(before=T0 + 100) == 1
    assert await store.get_event(old) is None
    assert await store.get_event(edge) is not None, "before is exclusive"
    assert await store.get_event(new) is not None
    assert await store.purge(before=T0 + 200.5) == 2
    assert await store.list_events(EventFilter()) == []


async def test_purge_works_through_every_batch(store: Store) -> None:
    seqs = [await _event_in(store, f"e{i}", "done", received_at=T0 + i) for i in range(5)]
    assert await store.purge(before=T0 + 100, batch=2) == 5
    for seq in seqs:
        assert await store.get_event(seq) is None


async def test_purge_in_batches_steps_over_events_it_keeps(store: Store) -> None:
    statuses = ["done", "dead", "done", "dead", "done", "pending", "done", "done", "dead"]
    seqs = {
        f"e{i}": await _event_in(store, f"e{i}", status, received_at=T0 + i)
        for i, status in enumerate(statuses)
    }
    assert await store.purge(before=T0 + 100, batch=2) == statuses.count("done")
    remaining = {e.dedup_key for e in await store.list_events(EventFilter())}
    assert remaining == {f"e{i}" for i, status in enumerate(statuses) if status != "done"}
    assert len(seqs) == len(statuses)


async def test_a_discarded_dead_letter_can_be_purged(store: Store) -> None:
    delivery_id = await _kill(store, "e1")
    assert await store.purge(before=T0 + 1_000) == 0
    assert await store.discard_dead([delivery_id], now=T0 + 5) == 1
    assert await store.purge(before=T0 + 1_000) == 1
    assert await store.get_delivery(delivery_id) is None


# -- subscribe ---------------------------------------------------------------------------------

QUIET = 0.3
"""Seconds a test waits to see that no wake-up comes (engines that relay wake-ups
through the database deliver them a little after the commit)."""


class Wakes:
    """A subscriber that counts its calls and remembers the loop it ran on."""

    def __init__(self) -> None:
        self.count = 0
        self.loops: set[asyncio.AbstractEventLoop] = set()
        self._changed = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self.loops.add(asyncio.get_running_loop())
        self._changed.set()

    async def wait(self, within: float = 10.0) -> None:
        """Until at least one call since the last :meth:`reset`."""
        async with asyncio.timeout(within):
            while self.count == 0:
                self._changed.clear()
                await self._changed.wait()

    async def none_within(self, seconds: float = QUIET) -> bool:
        await asyncio.sleep(seconds)
        return self.count == 0

    def reset(self) -> None:
        self.count = 0


async def test_subscribers_hear_of_appends_that_create_deliveries(store: Store) -> None:
    wakes = Wakes()
    unsubscribe = store.subscribe(wakes)
    try:
        await store.append(new_event("e1"), ["billing"])
        await wakes.wait()
        assert wakes.loops == {asyncio.get_running_loop()}
        # More hints of that append may be on their way (PostgreSQL also wakes its
        # subscribers once when it starts listening): let them land first.
        await asyncio.sleep(QUIET)
        wakes.reset()
        assert (await store.append(new_event("e1"), ["billing"])).duplicate
        await store.append(new_event("nobody"), [])
        assert await wakes.none_within(), "a duplicate or an unhandled event is no new work"
    finally:
        unsubscribe()


async def test_subscribers_hear_of_replays_and_retried_dead_letters(store: Store) -> None:
    delivery_id = await _kill(store, "e1")
    wakes = Wakes()
    unsubscribe = store.subscribe(wakes)
    try:
        await asyncio.sleep(QUIET)  # a hint of the append above may still be on its way
        wakes.reset()
        assert await store.replay([999_999], ["audit"], now=T0 + 5) == 0
        assert await store.retry_dead([424_242], now=T0 + 5) == 0
        assert await wakes.none_within(), "nothing was scheduled"
        assert await store.retry_dead([delivery_id], now=T0 + 5) == 1
        await wakes.wait()
        wakes.reset()
        delivery = await store.get_delivery(delivery_id)
        assert delivery is not None
        assert await store.replay([delivery.event_seq], ["audit"], now=T0 + 6) == 1
        await wakes.wait()
    finally:
        unsubscribe()


async def test_unsubscribe_stops_the_calls(store: Store) -> None:
    kept, dropped = Wakes(), Wakes()
    unsubscribe_kept = store.subscribe(kept)
    unsubscribe_dropped = store.subscribe(dropped)
    unsubscribe_dropped()
    unsubscribe_dropped()  # twice is harmless
    try:
        await store.append(new_event("e1"), ["billing"])
        await kept.wait()
        assert await dropped.none_within()
    finally:
        unsubscribe_kept()
    kept.reset()
    await store.append(new_event("e2"), ["billing"])
    assert await kept.none_within()


async def test_a_subscriber_runs_on_the_loop_it_subscribed_from(store: Store) -> None:
    ready = threading.Event()
    done = threading.Event()
    seen: list[tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]] = []

    async def elsewhere() -> None:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def on_wake() -> None:
            seen.append((loop, asyncio.get_running_loop()))
            woken.set()

        unsubscribe = store.subscribe(on_wake)
        ready.set()
        try:
            async with asyncio.timeout(10):
                await woken.wait()
        finally:
            unsubscribe()
            done.set()

    thread = threading.Thread(target=asyncio.run, args=(elsewhere(),))
    thread.start()
    try:
        assert await asyncio.to_thread(ready.wait, 10)
        await store.append(new_event("e1"), ["billing"])
        assert await asyncio.to_thread(done.wait, 10)
    finally:
        await asyncio.to_thread(thread.join, 10)
    assert len(seen) >= 1
    subscribed_on, ran_on = seen[0]
    assert ran_on is subscribed_on
    assert ran_on is not asyncio.get_running_loop()


async def test_a_failing_subscriber_is_logged_and_does_not_stop_the_others(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("subscriber bug")

    wakes = Wakes()
    unsubscribe_broken = store.subscribe(broken)
    unsubscribe = store.subscribe(wakes)
    try:
        with caplog.at_level(logging.ERROR):
            result = await store.append(new_event("e1"), ["billing"])
            await wakes.wait()
    finally:
        unsubscribe()
        unsubscribe_broken()
    assert not result.duplicate
    assert await store.get_event(result.seq) is not None
    failures = [r for r in caplog.records if r.exc_info and "subscriber bug" in str(r.exc_info[1])]
    assert failures, caplog.text


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


# -- rejection records --------------------------------------------------------------------------


def rejection(
    n: int = 1,
    *,
    source: str = "stripe",
    received_at: float = T0,
    body: bytes = b'{"id": "evt_1"}',
    hints: tuple[str, ...] = ("the timestamp is 312s old: is this host's clock right?",),
) -> RejectionRecord:
    return RejectionRecord(
        source=source,
        received_at=received_at,
        reason="no_matching_signature",
        detail=f"request {n}: no signature matched",
        hints=hints,
        status=401,
        method="POST",
        url=f"/hooks/{source}?n={n}",
        client="203.0.113.7:5123",
        headers=(("content-type", "application/json"), ("stripe-signature", "[redacted]")),
        body=body,
        body_size=len(body),
    )


async def test_a_rejection_record_keeps_every_field(store: Store) -> None:
    body = b"\x00\xff\xfe binary \x00 with NULs \x80"
    sent = RejectionRecord(
        source="github",
        received_at=T0 + 0.25,
        reason="timestamp_too_old",
        detail="the signature's timestamp is 2 hours old",
        hints=("l'horloge retarde de 7200 s ⏰", "a proxy re-serialized the body: “{}”"),
        status=403,
        method="PUT",
        url="/hooks/github?x=1",
        client=None,
        headers=(("x-hub-signature-256", "[redacted]"), ("x-émoji", "✓"), ("x-dup", "1")),
        body=body,
        body_size=40_000,
    )
    assert await store.record_rejections([sent]) is None
    [listed] = await store.list_rejections()
    assert listed.id > 0
    assert listed == RejectionRecord(**{**_fields(sent), "id": listed.id})
    assert isinstance(listed.hints, tuple) and isinstance(listed.headers, tuple)
    assert all(isinstance(pair, tuple) for pair in listed.headers)
    assert await store.get_rejection(listed.id) == listed


def _fields(record: RejectionRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in RejectionRecord.__dataclass_fields__}


async def test_rejection_records_are_listed_newest_first_by_source_and_limit(
    store: Store,
) -> None:
    await store.record_rejections([rejection(1), rejection(2, source="github")])
    await store.record_rejections([rejection(3), rejection(4)])

    def numbers(records: list[RejectionRecord]) -> list[str]:
        return [r.url.rsplit("=", 1)[1] for r in records]

    everything = await store.list_rejections()
    assert numbers(everything) == ["4", "3", "2", "1"]
    assert [r.id for r in everything] == sorted((r.id for r in everything), reverse=True)
    assert numbers(await store.list_rejections(source="stripe")) == ["4", "3", "1"]
    assert numbers(await store.list_rejections(source="github")) == ["2"]
    assert await store.list_rejections(source="nope") == []
    assert numbers(await store.list_rejections(limit=2)) == ["4", "3"]
    assert numbers(await store.list_rejections(source="stripe", limit=1)) == ["4"]
    assert await store.list_rejections(limit=0) == []


async def test_an_empty_batch_of_rejections_is_a_no_op(store: Store) -> None:
    await store.record_rejections([])
    assert await store.list_rejections() == []


async def test_an_unknown_rejection_id_is_none(store: Store) -> None:
    assert await store.get_rejection(1) is None
    await store.record_rejections([rejection()])
    [record] = await store.list_rejections()
    assert await store.get_rejection(record.id + 1000) is None


async def test_rejection_records_are_trimmed_per_source(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_base, "REJECTIONS_KEPT", 5)
    await store.record_rejections([rejection(n, source="github") for n in range(3)])
    await store.record_rejections([rejection(n) for n in range(4)])
    first = {r.url: r.id for r in await store.list_rejections(source="stripe")}
    await store.record_rejections([rejection(n) for n in range(4, 9)])
    await store.record_rejections([rejection(9)])

    stripe = await store.list_rejections(source="stripe", limit=100)
    assert [r.url for r in stripe] == [f"/hooks/stripe?n={n}" for n in range(9, 4, -1)]
    for url, rejection_id in first.items():
        assert await store.get_rejection(rejection_id) is None, f"{url} was kept"
    github = await store.list_rejections(source="github", limit=100)
    assert len(github) == 3, "another source's records are not trimmed"
    assert len(await store.list_rejections(limit=100)) == 8


async def test_one_big_batch_of_rejections_keeps_only_its_newest_records(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_base, "REJECTIONS_KEPT", 5)
    batch = [rejection(n, source="a" if n % 2 else "b") for n in range(20)]
    await store.record_rejections(batch)
    a = [r.url for r in await store.list_rejections(source="a", limit=100)]
    b = [r.url for r in await store.list_rejections(source="b", limit=100)]
    assert a == [f"/hooks/a?n={n}" for n in (19, 17, 15, 13, 11)]
    assert b == [f"/hooks/b?n={n}" for n in (18, 16, 14, 12, 10)]


async def test_a_rejection_body_is_cut_to_what_is_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_base, "REJECTED_BODY_KEPT", 8)
    sent = rejection(body=b"0123456789abcdef")
    await store.record_rejections([sent])
    [record] = await store.list_rejections()
    assert (record.body, record.body_size) == (b"01234567", 16)


async def test_purge_deletes_old_rejection_records(store: Store) -> None:
    await store.record_rejections(
        [rejection(n, received_at=T0 + n, source=("a", "b")[n % 2]) for n in range(7)]
    )
    kept_event = await _event_in(store, "young", "done", received_at=T0 + 100)
    assert await store.purge(before=T0 + 5, batch=2) == 0
    left = await store.list_rejections(limit=100)
    assert sorted(r.received_at for r in left) == [T0 + 5, T0 + 6]
    assert {r.source for r in left} == {"a", "b"}
    assert await store.purge(before=T0 + 10) == 0
    assert await store.list_rejections() == []
    assert await store.get_event(kept_event) is not None


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
        ("redis://localhost", "unknown scheme"),
        ("hookwise.db", "no scheme"),
    ],
)
def test_open_store_explains_a_bad_url(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        open_store(url)
    assert info.value.key == "store.url"
    assert info.value.fix
