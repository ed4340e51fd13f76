"""Ordering policies in the store, run against every engine (see conftest.STORE_ENGINES).

One group = (handler, ordering key). At most one member of a group is active (due,
leased or retrying); the rest wait. Settling the head promotes the next one, by the
policy's rule; ``latest`` and ``coalesce`` skip stale and superseded events without
running them. The design is described in docs/ordering.md.
"""

from __future__ import annotations

import pytest

from hookwise.events import NewEvent
from hookwise.store import Ordering, OrderingCounts, Settlement, Store

T0 = 1_700_000_000.0
LEASE = 30.0
H = "billing"
SERIAL = Ordering("serial")
LATEST = Ordering("latest")
COALESCE = Ordering("coalesce")


def event(
    key: str,
    *,
    obj: str | None = "sub_1",
    at: float | None = None,
    received_at: float = T0,
    source: str = "stripe",
) -> NewEvent:
    return NewEvent(
        source=source,
        dedup_key=key,
        type="customer.subscription.updated",
        body=b"{}",
        headers=(),
        ordering_key=obj,
        occurred_at=at,
        received_at=received_at,
    )


def outcome(claim_id: int, fence: int, result: str = "done", *, at: float = T0 + 1) -> Settlement:
    return Settlement(
        delivery_id=claim_id,
        fence=fence,
        owner="w1",
        outcome=result,  # type: ignore[arg-type]
        started_at=at - 0.1,
        finished_at=at,
        next_attempt_at=at + 60 if result == "retry" else None,
        error=None if result == "done" else "boom",
    )


async def keys_claimed(store: Store, now: float = T0 + 1, limit: int = 100) -> list[str]:
    return [c.event.id for c in await store.claim("w1", limit=limit, lease=LEASE, now=now)]


async def run_head(store: Store, now: float, result: str = "done") -> str | None:
    """Claim what is due, expect at most one delivery, settle it with ``result``."""
    claims = await store.claim("w1", limit=100, lease=LEASE, now=now)
    assert len(claims) <= 1, [c.event.id for c in claims]
    if not claims:
        return None
    [claim] = claims
    [applied] = await store.settle([outcome(claim.delivery_id, claim.fence, result, at=now)])
    assert applied
    return claim.event.id


async def statuses(store: Store, seqs: list[int]) -> list[str]:
    found = []
    for seq in seqs:
        [delivery] = await store.deliveries(seq)
        found.append(delivery.status)
    return found


# -- serial --------------------------------------------------------------------------------


async def test_serial_runs_one_at_a_time_per_key_in_arrival_order(store: Store) -> None:
    seqs = [(await store.append(event(f"e{i}"), [H], ordering=SERIAL)).seq for i in range(3)]
    other = (await store.append(event("x1", obj="sub_2"), [H], ordering=SERIAL)).seq
    assert await statuses(store, seqs) == ["pending", "waiting", "waiting"]
    assert sorted(await keys_claimed(store)) == ["e0", "x1"]  # one per key, keys in parallel
    counts = await store.counts()
    assert counts["waiting"] == 2
    assert counts["leased"] == 2
    assert other


async def test_serial_promotes_the_next_when_the_head_is_done(store: Store) -> None:
    for i in range(3):
        await store.append(event(f"e{i}"), [H], ordering=SERIAL)
    order = []
    now = T0 + 1
    while (done := await run_head(store, now)) is not None:
        order.append(done)
        now += 1
    assert order == ["e0", "e1", "e2"]


async def test_a_retrying_head_blocks_its_key(store: Store) -> None:
    await store.append(event("e0"), [H], ordering=SERIAL)
    await store.append(event("e1"), [H], ordering=SERIAL)
    assert await run_head(store, T0 + 1, "retry") == "e0"
    assert await keys_claimed(store, now=T0 + 30) == []  # e1 waits behind the retrying head
    assert await keys_claimed(store, now=T0 + 62) == ["e0"]  # the head's retry comes first


async def test_a_dead_head_releases_its_key(store: Store) -> None:
    await store.append(event("e0"), [H], ordering=SERIAL)
    await store.append(event("e1"), [H], ordering=SERIAL)
    assert await run_head(store, T0 + 1, "dead") == "e0"
    assert await run_head(store, T0 + 2) == "e1"


async def test_an_expired_lease_keeps_the_head(store: Store) -> None:
    await store.append(event("e0"), [H], ordering=SERIAL)
    await store.append(event("e1"), [H], ordering=SERIAL)
    assert await keys_claimed(store) == ["e0"]
    assert await keys_claimed(store, now=T0 + LEASE + 5) == ["e0"]  # taken over, still first


async def test_release_keeps_the_head_first(store: Store) -> None:
    await store.append(event("e0"), [H], ordering=SERIAL)
    await store.append(event("e1"), [H], ordering=SERIAL)
    [claim] = await store.claim("w1", limit=10, lease=LEASE, now=T0 + 1)
    assert await store.release("w1", [(claim.delivery_id, claim.fence)], now=T0 + 2) == 1
    assert await keys_claimed(store, now=T0 + 3) == ["e0"]


async def test_a_batch_of_one_key_appended_together_still_has_one_head(store: Store) -> None:
    import asyncio

    results = await asyncio.gather(
        *(store.append(event(f"e{i}"), [H], ordering=SERIAL) for i in range(20))
    )
    before = await statuses(store, [r.seq for r in results])
    assert before.count("pending") == 1
    assert before.count("waiting") == 19
    assert len(await keys_claimed(store)) == 1


async def test_events_without_a_key_and_unordered_sources_run_in_parallel(store: Store) -> None:
    for i in range(3):
        await store.append(event(f"n{i}", obj=None), [H], ordering=SERIAL)
        await store.append(event(f"u{i}"), [H])  # ordering none
    assert len(await keys_claimed(store)) == 6


async def test_each_handler_orders_on_its_own(store: Store) -> None:
    await store.append(event("e0"), [H, "audit"], ordering=SERIAL)
    await store.append(event("e1"), [H, "audit"], ordering=SERIAL)
    claims = await store.claim("w1", limit=10, lease=LEASE, now=T0 + 1)
    assert sorted((c.handler, c.event.id) for c in claims) == [("audit", "e0"), (H, "e0")]


async def test_retrying_a_dead_member_waits_behind_the_active_one(store: Store) -> None:
    first = await store.append(event("e0"), [H], ordering=SERIAL)
    await store.append(event("e1"), [H], ordering=SERIAL)
    await store.append(event("e2"), [H], ordering=SERIAL)
    assert await run_head(store, T0 + 1, "dead") == "e0"
    assert await keys_claimed(store, now=T0 + 2) == ["e1"]  # e1 is running now
    [dead] = await store.deliveries(first.seq)
    assert await store.retry_dead([dead.id], now=T0 + 3) == 1
    assert (await store.deliveries(first.seq))[0].status == "waiting"


# -- latest ----------------------------------------------------------------------------------


async def test_latest_skips_events_older_than_the_newest_applied(store: Store) -> None:
    await store.append(event("v3", at=T0 - 10), [H], ordering=LATEST)
    v1 = await store.append(event("v1", at=T0 - 30), [H], ordering=LATEST)
    v2 = await store.append(event("v2", at=T0 - 20), [H], ordering=LATEST)
    v4 = await store.append(event("v4", at=T0 - 5), [H], ordering=LATEST)
    assert await run_head(store, T0 + 1) == "v3"
    assert await run_head(store, T0 + 2) == "v4"  # v1 and v2 were stale: skipped unrun
    assert await run_head(store, T0 + 3) is None
    for stale in (v1, v2):
        [delivery] = await store.deliveries(stale.seq)
        assert (delivery.status, delivery.last_error) == ("skipped", "stale")
        assert await store.attempts(delivery.id) == []
    [newest] = await store.deliveries(v4.seq)
    assert newest.status == "done"
    state = await store.ordering_state(H, "sub_1")
    assert state is not None
    assert state.applied_at == T0 - 5
    assert state.applied_seq == v4.seq


async def test_latest_skips_a_stale_event_at_once_when_it_arrives_late(store: Store) -> None:
    await store.append(event("v2", at=T0 - 10), [H], ordering=LATEST)
    assert await run_head(store, T0 + 1) == "v2"
    late = await store.append(event("v1", at=T0 - 20), [H], ordering=LATEST)
    [delivery] = await store.deliveries(late.seq)
    assert (delivery.status, delivery.last_error) == ("skipped", "stale")
    equal = await store.append(event("v2b", at=T0 - 10), [H], ordering=LATEST)
    assert (await store.deliveries(equal.seq))[0].status == "pending"  # not older: runs


async def test_latest_without_times_is_serial(store: Store) -> None:
    for i in range(3):
        await store.append(event(f"e{i}", at=None), [H], ordering=LATEST)
    order = [await run_head(store, T0 + i + 1) for i in range(3)]
    assert order == ["e0", "e1", "e2"]


async def test_a_failed_event_is_not_applied(store: Store) -> None:
    await store.append(event("v2", at=T0 - 10), [H], ordering=LATEST)
    await store.append(event("v1", at=T0 - 20), [H], ordering=LATEST)
    assert await run_head(store, T0 + 1, "dead") == "v2"
    assert await run_head(store, T0 + 2) == "v1"  # v2 never applied: v1 is not stale
    assert await store.ordering_state(H, "nobody") is None


# -- coalesce --------------------------------------------------------------------------------


async def test_coalesce_runs_only_the_newest_of_the_waiting(store: Store) -> None:
    await store.append(event("a", at=T0 - 50), [H], ordering=COALESCE)
    waiting = [
        await store.append(event(key, at=T0 - age), [H], ordering=COALESCE)
        for key, age in (("b", 40), ("d", 20), ("c", 30))
    ]
    assert await run_head(store, T0 + 1) == "a"
    assert await run_head(store, T0 + 2) == "d"
    assert await run_head(store, T0 + 3) is None
    b, d, c = [(await store.deliveries(r.seq))[0] for r in waiting]
    assert (b.status, b.last_error) == ("skipped", "superseded")
    assert (c.status, c.last_error) == ("skipped", "superseded")
    assert d.status == "done"


async def test_ordering_counts_show_waiting_and_skips_by_reason(store: Store) -> None:
    assert await store.ordering_counts() == OrderingCounts(waiting=0, skipped={})
    await store.append(event("a", at=T0 - 50), [H], ordering=COALESCE)
    for key, age in (("b", 40), ("d", 20), ("c", 30)):
        await store.append(event(key, at=T0 - age), [H], ordering=COALESCE)
    counts = await store.ordering_counts()
    assert (counts.waiting, dict(counts.skipped)) == (3, {})
    assert await run_head(store, T0 + 1) == "a"
    assert await run_head(store, T0 + 2) == "d"
    await store.append(event("old", at=T0 - 60), [H], ordering=COALESCE)  # stale at once
    await store.append(event("u", obj=None), [H])  # unordered: pending, not waiting
    counts = await store.ordering_counts()
    assert (counts.waiting, dict(counts.skipped)) == (0, {"superseded": 2, "stale": 1})


# -- reorder window ------------------------------------------------------------------------------


async def test_a_reorder_window_holds_events_and_releases_them_in_time_order(store: Store) -> None:
    window = Ordering("serial", window=10.0)
    await store.append(event("t3", at=T0 - 1, received_at=T0), [H], ordering=window)
    await store.append(event("t1", at=T0 - 3, received_at=T0 + 1), [H], ordering=window)
    await store.append(event("t2", at=T0 - 2, received_at=T0 + 2), [H], ordering=window)
    assert await keys_claimed(store, now=T0 + 5) == []  # held for the window
    order = [await run_head(store, T0 + 20 + i) for i in range(3)]
    assert order == ["t1", "t2", "t3"]


# -- visibility ----------------------------------------------------------------------------------


async def test_delivery_records_show_the_ordering(store: Store) -> None:
    result = await store.append(event("e0"), [H], ordering=LATEST)
    await store.append(event("e1"), [H], ordering=LATEST)
    [delivery] = await store.deliveries(result.seq)
    assert delivery.ordering_key == "sub_1"
    assert delivery.policy == "latest"
    unordered = await store.append(event("u0", obj="sub_9"), [H])
    [plain] = await store.deliveries(unordered.seq)
    assert (plain.ordering_key, plain.policy) == (None, None)


@pytest.mark.parametrize("policy", ["serial", "latest", "coalesce"])
async def test_every_policy_drains_a_shuffled_key_completely(store: Store, policy: str) -> None:
    import random

    rng = random.Random(7)
    times = list(range(30))
    rng.shuffle(times)
    for n, t in enumerate(times):
        await store.append(event(f"e{n}", at=T0 - 100 + t), [H], ordering=Ordering(policy))
    now = T0 + 1
    ran = []
    while (key := await run_head(store, now)) is not None:
        ran.append(key)
        now += 1
    counts = await store.counts()
    assert counts["pending"] == counts["waiting"] == counts["leased"] == 0
    assert counts["done"] + counts["skipped"] == 30
    assert counts["done"] == len(ran)
    if policy == "serial":
        assert ran == [f"e{n}" for n in range(30)]
    newest = f"e{times.index(29)}"
    assert ran[-1] == newest or policy == "serial"


# -- retention -----------------------------------------------------------------------------------


async def test_purge_forgets_the_state_of_a_group_with_nothing_left(store: Store) -> None:
    await store.append(event("e0"), [H], ordering=LATEST)
    assert await run_head(store, T0 + 1) == "e0"
    assert await store.ordering_state(H, "sub_1") is not None
    assert await store.purge(before=T0 + 100) == 1
    assert await store.ordering_state(H, "sub_1") is None


async def test_purge_keeps_the_state_of_a_group_with_a_delivery_left(store: Store) -> None:
    await store.append(event("e0"), [H], ordering=LATEST)
    await store.append(event("e1"), [H], ordering=LATEST)
    assert await run_head(store, T0 + 1) == "e0"
    assert await run_head(store, T0 + 2, "dead") == "e1"
    assert await store.purge(before=T0 + 100) == 1  # e0; the dead letter e1 stays
    state = await store.ordering_state(H, "sub_1")
    assert state is not None and state.applied_seq is not None


async def test_purge_keeps_state_updated_after_the_horizon(store: Store) -> None:
    await store.append(event("e0"), [H], ordering=LATEST)
    assert await run_head(store, T0 + 10) == "e0"
    assert await store.purge(before=T0 + 5) == 1  # the event is older than the horizon
    state = await store.ordering_state(H, "sub_1")
    assert state is not None and state.updated_at == T0 + 10


async def test_purge_forgets_ordering_state_in_batches(store: Store) -> None:
    keys = [f"sub_{n}" for n in range(7)]
    for n, key in enumerate(keys):
        await store.append(event(f"a{n}", obj=key), [H], ordering=SERIAL)
        if n % 3 == 0:  # a dead letter keeps the group's state
            await store.append(event(f"b{n}", obj=key), [H], ordering=SERIAL)
    now = T0 + 1
    while (claims := await store.claim("w1", limit=100, lease=LEASE, now=now)) != []:
        settled = [
            outcome(
                c.delivery_id, c.fence, "dead" if c.event.id.startswith("b") else "done", at=now
            )
            for c in claims
        ]
        assert all(await store.settle(settled))
        now += 1
    assert await store.purge(before=T0 + 100, batch=2) == 7
    kept = [key for key in keys if await store.ordering_state(H, key) is not None]
    assert kept == ["sub_0", "sub_3", "sub_6"]
