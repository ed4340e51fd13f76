"""``hookwise tail``'s reader on every store: arrivals once each and in order, then each
delivery as it settles (done, retry, dead, skipped), with filters, history and bursts."""

from __future__ import annotations

import time

from hookwise.events import NewEvent
from hookwise.store import Claim, Settlement, Store
from hookwise.tail import PAGE, Arrived, Settled, Tail, TailLine, line_json, line_text

OWNER = "tail-test"


def event(key: str, *, source: str = "shop", kind: str = "order.created") -> NewEvent:
    return NewEvent(source, key, kind, b'{"id": "%s"}' % key.encode(), received_at=time.time())


async def claim(store: Store, handler: str, *, later: float = 1.0) -> Claim:
    [found] = await store.claim(
        OWNER, limit=1, lease=30, now=time.time() + later, handlers=[handler]
    )
    return found


async def settle(store: Store, found: Claim, outcome: str, error: str | None = None) -> None:
    now = time.time()
    applied = await store.settle(
        [
            Settlement(
                delivery_id=found.delivery_id,
                fence=found.fence,
                owner=OWNER,
                outcome=outcome,  # type: ignore[arg-type]
                started_at=now,
                finished_at=now,
                next_attempt_at=now + 60 if outcome == "retry" else None,
                error=error,
            )
        ]
    )
    assert applied == [True]


def summary(lines: list[TailLine]) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for line in lines:
        if isinstance(line, Arrived):
            found.append(("event", line.event.dedup_key, ",".join(line.handlers)))
        else:
            found.append(("delivery", line.event.dedup_key, line.delivery.handler, line.outcome))
    return found


async def test_arrivals_then_settlements_each_once(store: Store) -> None:
    await store.append(event("before"), handlers=["earlier"])
    tail = Tail(store)
    assert await tail.start() == []
    await store.append(event("a"), handlers=["ship", "bill"])
    await store.append(event("b", kind="order.note"), handlers=[])
    lines = await tail.poll()
    assert summary(lines) == [("event", "a", "ship,bill"), ("event", "b", "")]
    assert await tail.poll() == []

    await settle(store, await claim(store, "ship"), "done")
    await settle(store, await claim(store, "bill"), "retry", "HTTP 503 from billing")
    lines = await tail.poll()
    assert summary(lines) == [("delivery", "a", "ship", "done"), ("delivery", "a", "bill", "retry")]
    retry = lines[1]
    assert isinstance(retry, Settled)
    assert retry.delivery.last_error == "HTTP 503 from billing"
    assert retry.delivery.attempts == 1
    assert await tail.poll() == []

    await settle(store, await claim(store, "bill", later=120), "dead", "ValueError: no customer")
    lines = await tail.poll()
    assert summary(lines) == [("delivery", "a", "bill", "dead")]
    assert await tail.poll() == []


async def test_a_discarded_dead_letter_shows_as_skipped(store: Store) -> None:
    tail = Tail(store)
    await tail.start()
    await store.append(event("c"), handlers=["ship"])
    assert summary(await tail.poll()) == [("event", "c", "ship")]
    found = await claim(store, "ship")
    await settle(store, found, "dead", "boom")
    await store.discard_dead([found.delivery_id], now=time.time())
    lines = await tail.poll()
    assert summary(lines) == [("delivery", "c", "ship", "skipped")]
    assert line_json(lines[0])["error"] == "discarded"


async def test_filters_and_history(store: Store) -> None:
    start = time.time() - 1
    await store.append(event("old", source="crm"), handlers=[])
    await store.append(event("x1", kind="invoice.paid"), handlers=["bill"])
    await store.append(event("x2", kind="order.created"), handlers=["ship"])
    history = Tail(store, source="shop", type_glob="invoice.*", since=start)
    assert summary(await history.start()) == [("event", "x1", "bill")]
    await store.append(event("x3", kind="invoice.voided"), handlers=[])
    await store.append(event("x4", source="crm", kind="invoice.paid"), handlers=[])
    assert summary(await history.poll()) == [("event", "x3", "")]
    later = Tail(store, since=time.time() + 3600)
    assert await later.start() == []


async def test_a_burst_larger_than_a_page_is_shown_whole_and_in_order(store: Store) -> None:
    tail = Tail(store)
    await tail.start()
    count = PAGE * 2 + 50
    for number in range(count):
        await store.append(event(f"burst-{number:04d}"), handlers=[])
    lines = await tail.poll()
    keys = [line.event.dedup_key for line in lines]
    assert keys == [f"burst-{number:04d}" for number in range(count)]
    seqs = [line.event.seq for line in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == count
    assert await tail.poll() == []


async def test_lines_as_printed(store: Store) -> None:
    tail = Tail(store)
    await tail.start()
    await store.append(event("evt_[1]"), handlers=["ship"])
    await settle(store, await claim(store, "ship"), "retry", "timeout [after 30s]")
    arrived, retried = await tail.poll()
    document = line_json(arrived)
    assert document["kind"] == "event" and document["id"] == "evt_[1]"
    assert document["handlers"] == ["ship"] and document["intake"] == "push"
    assert str(document["time"]).endswith("Z")
    retry = line_json(retried)
    assert retry["kind"] == "delivery" and retry["status"] == "retry"
    assert retry["handler"] == "ship" and retry["error"] == "timeout [after 30s]"
    assert retry["next_attempt_at"] is not None and retry["seq"] == arrived.event.seq
    text = line_text(retried, now=time.time())
    assert "-> ship" in text and "retry" in text and "next in" in text
    assert "timeout \\[after 30s]" in text  # markup escaped
    assert "(push, 1 handler)" in line_text(arrived, now=time.time())
