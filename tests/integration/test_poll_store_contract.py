"""What polls keep in the store (state, change-detection index), run against every engine
(see conftest.STORE_ENGINES)."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from hookwise.errors import StoreNotOpen
from hookwise.store import PollState, Store

from .conftest import StoreMaker

T0 = 1_700_000_000.0


def full_state(name: str = "github-issues", **changes: object) -> PollState:
    """A state with every field set to something other than its default."""
    state = PollState(
        name=name,
        etag='W/"5e1f-abc"',
        last_modified="Tue, 14 Nov 2023 22:13:20 GMT",
        cursor="2023-11-14T22:13:20Z",
        next_due_at=T0 + 60.5,
        interval=60.5,
        error="503 Service Unavailable: upstream busy ✗",
        error_since=T0 - 120.25,
        failures=3,
        stats={"fetched": 30, "changed": 0, "ratio": 0.25, "last_status": "304", "note": None},
        updated_at=T0,
    )
    return dataclasses.replace(state, **changes)  # type: ignore[arg-type]


# -- state -----------------------------------------------------------------------------------


async def test_a_poll_state_round_trips_every_field(store: Store) -> None:
    assert await store.get_poll_state("github-issues") is None
    state = full_state()
    await store.save_poll_state(state)

    got = await store.get_poll_state("github-issues")
    assert got == state
    assert got is not None
    assert got.stats == {
        "fetched": 30,
        "changed": 0,
        "ratio": 0.25,
        "last_status": "304",
        "note": None,
    }
    assert [type(got.stats[k]) for k in ("fetched", "ratio", "last_status")] == [int, float, str]
    assert isinstance(got.failures, int) and isinstance(got.next_due_at, float)
    assert await store.list_poll_states() == [state]


async def test_a_state_with_only_defaults_round_trips(store: Store) -> None:
    await store.save_poll_state(PollState("bare"))
    assert await store.get_poll_state("bare") == PollState("bare")


async def test_saving_again_replaces_every_field(store: Store) -> None:
    await store.save_poll_state(full_state())
    after_success = PollState(
        "github-issues",
        etag='"v2"',
        next_due_at=T0 + 120.0,
        stats={"fetched": 1},
        updated_at=T0 + 60,
    )
    await store.save_poll_state(after_success)

    got = await store.get_poll_state("github-issues")
    assert got == after_success
    assert got is not None
    assert (got.error, got.error_since, got.failures, got.cursor) == (None, None, 0, None)
    assert await store.list_poll_states() == [after_success]


async def test_poll_states_are_listed_in_code_point_order(store: Store) -> None:
    names = ["b", "A", "a", "_x", "é", "Z", "a-2", "a_1"]
    for name in names:
        await store.save_poll_state(PollState(name, updated_at=T0))
    assert [s.name for s in await store.list_poll_states()] == sorted(names)


async def test_changing_a_saved_states_stats_afterwards_changes_nothing(store: Store) -> None:
    stats: dict[str, int | float | str | None] = {"fetched": 1}
    state = PollState("p", stats=stats)
    stats["fetched"] = 99
    await store.save_poll_state(state)
    got = await store.get_poll_state("p")
    assert got is not None and got.stats == {"fetched": 1}
    got.stats["fetched"] = 7  # type: ignore[index]
    again = await store.get_poll_state("p")
    assert again is not None and again.stats == {"fetched": 1}


# -- index -----------------------------------------------------------------------------------


async def test_update_poll_index_upserts_and_deletes(store: Store) -> None:
    assert await store.poll_index("issues") == {}
    await store.update_poll_index("issues", upsert={"1": "v1", "2": "v1", "3": "v1"}, delete=())
    assert await store.poll_index("issues") == {"1": "v1", "2": "v1", "3": "v1"}

    await store.update_poll_index(
        "issues", upsert={"1": "v2", "4": "v1"}, delete=["3", "never-seen"]
    )
    assert await store.poll_index("issues") == {"1": "v2", "2": "v1", "4": "v1"}
    assert await store.get_poll_state("issues") is None  # no state given: none written

    await store.update_poll_index("issues", upsert={}, delete=["1", "2", "4"])
    assert await store.poll_index("issues") == {}


async def test_the_index_and_the_state_land_together(store: Store) -> None:
    first = full_state("issues", cursor="c1")
    await store.update_poll_index("issues", upsert={"a": "1", "b": "1"}, delete=(), state=first)
    assert await store.poll_index("issues") == {"a": "1", "b": "1"}
    assert await store.get_poll_state("issues") == first

    second = full_state("issues", cursor="c2", failures=0, error=None, error_since=None)
    await store.update_poll_index("issues", upsert={"a": "2"}, delete={"b"}, state=second)
    assert await store.poll_index("issues") == {"a": "2"}
    assert await store.get_poll_state("issues") == second

    await store.update_poll_index("issues", upsert={}, delete=(), state=first)  # state only
    assert await store.poll_index("issues") == {"a": "2"}
    assert await store.get_poll_state("issues") == first

    await store.update_poll_index("issues", upsert={"c": "1"}, delete=())  # index only
    assert await store.get_poll_state("issues") == first


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
async def test_a_state_the_database_refuses_rolls_the_index_back(store: Store) -> None:
    before = full_state("issues")
    await store.update_poll_index("issues", upsert={"a": "1", "b": "1"}, delete=(), state=before)

    # 2**63 fits no 64-bit integer column: the state is the last statement of the
    # transaction, so the index changes before it must be undone.
    refused = full_state("issues", cursor="next", failures=2**63)
    with pytest.raises((OverflowError, psycopg.DataError)):
        await store.update_poll_index(
            "issues", upsert={"a": "2", "c": "1"}, delete=["b"], state=refused
        )

    assert await store.poll_index("issues") == {"a": "1", "b": "1"}
    assert await store.get_poll_state("issues") == before
    # The store is still usable after the failed transaction.
    await store.update_poll_index("issues", upsert={"c": "1"}, delete=["b"], state=None)
    assert await store.poll_index("issues") == {"a": "1", "c": "1"}


async def test_an_update_that_contradicts_itself_writes_nothing(store: Store) -> None:
    before = full_state("issues")
    await store.update_poll_index("issues", upsert={"a": "1"}, delete=(), state=before)

    with pytest.raises(ValueError, match="state of poll 'other'"):
        await store.update_poll_index(
            "issues", upsert={"b": "1"}, delete=(), state=full_state("other")
        )
    with pytest.raises(ValueError, match="both upserted and deleted: 'a'"):
        await store.update_poll_index("issues", upsert={"a": "2", "b": "1"}, delete=["a"])

    assert await store.poll_index("issues") == {"a": "1"}
    assert await store.get_poll_state("issues") == before
    assert await store.get_poll_state("other") is None


async def test_a_hundred_thousand_ids_are_updated_and_read_back(store: Store) -> None:
    n = 100_000
    first = {f"item-{i:06d}": f"etag-{i}" for i in range(n)}
    await store.update_poll_index("big", upsert=first, delete=(), state=PollState("big"))
    assert await store.poll_index("big") == first

    # The next run: half of them changed, a quarter are gone, a quarter more are new.
    changed = {f"item-{i:06d}": f"etag-{i}-b" for i in range(0, n, 2)}
    gone = [f"item-{i:06d}" for i in range(1, n, 4)]
    new = {f"item-{i:06d}": "etag-new" for i in range(n, n + n // 4)}
    state = PollState("big", cursor="page-2", stats={"changed": len(changed)}, updated_at=T0)
    await store.update_poll_index("big", upsert={**changed, **new}, delete=gone, state=state)

    expected = {**first, **changed, **new}
    for item_id in gone:
        del expected[item_id]
    got = await store.poll_index("big")
    assert len(got) == n + n // 4 - len(gone)
    assert got == expected
    assert await store.get_poll_state("big") == state


async def test_polls_with_the_same_item_ids_keep_their_own_index(store: Store) -> None:
    await store.update_poll_index("a", upsert={"1": "a1", "2": "a2"}, delete=())
    await store.update_poll_index("b", upsert={"1": "b1", "2": "b2"}, delete=())
    await store.update_poll_index("a", upsert={"1": "a1-new"}, delete=["2"])

    assert await store.poll_index("a") == {"1": "a1-new"}
    assert await store.poll_index("b") == {"1": "b1", "2": "b2"}


async def test_forget_poll_deletes_the_state_and_index_of_that_poll_only(store: Store) -> None:
    for name in ("a", "b"):
        await store.update_poll_index(
            name, upsert={"1": name, "2": name}, delete=(), state=full_state(name)
        )
    await store.forget_poll("a")
    await store.forget_poll("never-polled")

    assert await store.get_poll_state("a") is None
    assert await store.poll_index("a") == {}
    assert await store.get_poll_state("b") == full_state("b")
    assert await store.poll_index("b") == {"1": "b", "2": "b"}
    assert [s.name for s in await store.list_poll_states()] == ["b"]

    # A forgotten poll starts from scratch.
    await store.update_poll_index("a", upsert={"3": "x"}, delete=())
    assert await store.poll_index("a") == {"3": "x"}


# -- durability and lifecycle -------------------------------------------------------------------


async def test_state_and_index_survive_closing_and_reopening(
    engine: str, make_store: StoreMaker
) -> None:
    state = full_state("issues")
    first = make_store()
    async with first:
        await first.update_poll_index("issues", upsert={"a": "1", "b": "2"}, delete=(), state=state)
    # The memory store keeps its data across close and open (and only within one object);
    # the others read it back from the file / the database through a new store.
    again = first if engine == "memory" else make_store()
    async with again:
        assert await again.get_poll_state("issues") == state
        assert await again.poll_index("issues") == {"a": "1", "b": "2"}
        assert await again.list_poll_states() == [state]


async def test_the_poll_methods_need_an_open_store(make_store: StoreMaker) -> None:
    store = make_store()
    with pytest.raises(StoreNotOpen):
        await store.get_poll_state("p")
    with pytest.raises(StoreNotOpen):
        await store.list_poll_states()
    with pytest.raises(StoreNotOpen):
        await store.save_poll_state(PollState("p"))
    with pytest.raises(StoreNotOpen):
        await store.poll_index("p")
    with pytest.raises(StoreNotOpen):
        await store.update_poll_index("p", upsert={"1": "v"}, delete=())
    with pytest.raises(StoreNotOpen):
        await store.forget_poll("p")


# -- the value object ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "needs the poll's name"),
        ({"failures": -1}, "can't be negative"),
        ({"next_due_at": float("nan")}, "next_due_at is NaN"),
        ({"stats": {"ratio": float("inf")}}, r"stats\['ratio'\] is inf"),
        ({"stats": {"seen": {"a", "b"}}}, r"stats\['seen'\] is a set"),
        ({"stats": {1: 2}}, "stats keys are strings"),
    ],
)
def test_a_poll_state_refuses_what_no_store_could_keep(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PollState(**{"name": "p", **changes})  # type: ignore[arg-type]
