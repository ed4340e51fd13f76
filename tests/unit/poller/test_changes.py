import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.poller import (
    MAX_DEDUP_KEY_LENGTH,
    Change,
    PollShapeError,
    apply_changes,
    dedup_key,
    detect,
    extract_items,
    get_path,
    item_id,
    item_version,
)

DOC = {"meta": {"next": "c2", "count": 0}, "data": [{"id": 7, "tags": ["a", "b"]}]}


# --- paths ---


def test_get_path() -> None:
    assert get_path(DOC, "meta.next") == "c2"
    assert get_path(DOC, "meta.count") == 0
    assert get_path(DOC, "data.0.id") == 7
    assert get_path(DOC, "data.0.tags.-1") == "b"
    assert get_path(DOC, "") is DOC
    assert get_path(DOC, None) is DOC


def test_get_path_missing_raises_or_defaults() -> None:
    with pytest.raises(PollShapeError, match=r"path 'meta\.prev': no 'prev' under meta"):
        get_path(DOC, "meta.prev")
    with pytest.raises(PollShapeError, match="no '1' under data"):
        get_path(DOC, "data.1.id")
    with pytest.raises(PollShapeError, match="under the top level"):
        get_path([1], "x")
    with pytest.raises(PollShapeError, match="found str"):
        get_path(DOC, "meta.next.deeper")
    assert get_path(DOC, "meta.prev", default=None) is None
    assert get_path(DOC, "data.x", default="d") == "d"


def test_poll_shape_error_is_a_value_error() -> None:
    assert issubclass(PollShapeError, ValueError)


def test_extract_items() -> None:
    assert extract_items({"data": [1, 2]}, "data") == [1, 2]
    assert extract_items([{"id": 1}], "") == [{"id": 1}]
    assert extract_items([{"id": 1}], None) == [{"id": 1}]
    assert extract_items({"id": 1}, "") == [{"id": 1}]
    assert extract_items({"data": {"id": 1}}, "data") == [{"id": 1}]
    assert extract_items({"data": None}, "data") == []


def test_extract_items_names_what_it_found() -> None:
    with pytest.raises(PollShapeError, match=r"at 'data', found str 'oops'"):
        extract_items({"data": "oops"}, "data")
    with pytest.raises(PollShapeError, match="at the top level, found int 3"):
        extract_items(3, "")
    with pytest.raises(PollShapeError, match="no 'items' under the top level"):
        extract_items({"data": [], "meta": {}}, "items")


# --- ids and versions ---


def test_item_id() -> None:
    assert item_id({"id": "cus_1"}, "id") == "cus_1"
    assert item_id({"id": 42}, "id") == "42"
    assert item_id({"node": {"id": -3}}, "node.id") == "-3"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "x"}, "item 4 has no id at 'id'"),
        ({"id": None}, "item 4 has no id"),
        ({"id": ""}, "item 4 has no id"),
        ({"id": True}, "item 4 has id bool True"),
        ({"id": 1.5}, "item 4 has id float 1.5"),
        ({"id": {"a": 1}}, "item 4 has id an object"),
        ("plain", "item 4 has no id"),
    ],
)
def test_item_id_errors_name_the_item(item: Any, message: str) -> None:
    with pytest.raises(PollShapeError, match=message):
        item_id(item, "id", index=4)


def test_item_version_from_a_field() -> None:
    assert item_version({"updated_at": "2024-05-01T10:00:00Z"}, "updated_at") == (
        "2024-05-01T10:00:00Z"
    )
    assert item_version({"v": 5}, "v") == "5"
    assert item_version({"v": None}, "v") == "null"
    assert item_version({"v": {"b": 1, "a": [1, 2]}}, "v") == '{"a":[1,2],"b":1}'
    with pytest.raises(PollShapeError, match="item 2 has no version at 'updated_at'"):
        item_version({"id": 1}, "updated_at", index=2)


def test_item_version_without_a_path_is_a_stable_fingerprint() -> None:
    item = {"name": "é", "id": 1, "nested": {"z": 1, "a": None}}
    expected = hashlib.sha256(
        json.dumps(item, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:32]
    assert item_version(item, None) == expected
    assert item_version(item, "") == expected
    reordered = {"nested": {"a": None, "z": 1}, "id": 1, "name": "é"}
    assert item_version(reordered, None) == expected
    assert item_version(item | {"name": "e"}, None) != expected
    assert len(expected) == 32


# --- detect ---


def test_detect_created_updated_deleted() -> None:
    index = {"a": "1", "b": "1", "c": "1", "e": "1"}
    seen = [("b", "2", {"id": "b"}), ("a", "1", {"id": "a"}), ("d", "1", {"id": "d"})]
    assert detect(index, seen, complete=True) == [
        Change("updated", "b", "2", {"id": "b"}),
        Change("created", "d", "1", {"id": "d"}),
        Change("deleted", "c", "1", None),
        Change("deleted", "e", "1", None),
    ]


def test_no_deletions_from_an_incomplete_listing() -> None:
    assert detect({"a": "1", "gone": "3"}, [("a", "2", None)], complete=False) == [
        Change("updated", "a", "2", None)
    ]


def test_nothing_changed() -> None:
    assert detect({"a": "1"}, [("a", "1", {})], complete=True) == []
    assert detect({}, [], complete=True) == []


def test_everything_deleted_sorted_by_id() -> None:
    assert [c.id for c in detect({"b": "1", "a": "2", "c": "3"}, [], complete=True)] == [
        "a",
        "b",
        "c",
    ]


def test_a_repeated_id_counts_once_with_its_last_occurrence() -> None:
    seen = [("a", "1", "first"), ("b", "1", "b"), ("a", "2", "second")]
    assert detect({}, seen, complete=True) == [
        Change("created", "b", "1", "b"),
        Change("created", "a", "2", "second"),
    ]
    # the last occurrence matches the index: no change at all
    assert detect({"a": "2"}, [("a", "1", None), ("a", "2", None)], complete=True) == []


def test_dedup_key_of_a_change() -> None:
    change = Change("deleted", "c", "7")
    assert change.dedup_key == "deleted:c:7"
    assert change.item is None


ids = st.text(min_size=1, max_size=8)
versions = st.text(max_size=8)


@given(
    index=st.dictionaries(ids, versions, max_size=20),
    seen=st.lists(st.tuples(ids, versions), max_size=30),
)
def test_applying_detected_changes_gives_exactly_the_listing(
    index: dict[str, str], seen: list[tuple[str, str]]
) -> None:
    listing = [(id_, version, {"id": id_}) for id_, version in seen]
    changes = detect(index, listing, complete=True)
    assert apply_changes(index, changes) == dict(seen)  # dict(): the last occurrence wins
    keys = [change.dedup_key for change in changes]
    assert len(keys) == len(set(keys))
    assert len({change.id for change in changes}) == len(changes)


@given(
    index=st.dictionaries(ids, versions, max_size=20),
    seen=st.lists(st.tuples(ids, versions), max_size=30),
)
def test_incomplete_listings_never_delete_and_keep_the_rest(
    index: dict[str, str], seen: list[tuple[str, str]]
) -> None:
    changes = detect(index, [(i, v, None) for i, v in seen], complete=False)
    assert all(change.kind != "deleted" for change in changes)
    assert apply_changes(index, changes) == index | dict(seen)


@given(
    index=st.dictionaries(ids, versions, max_size=20),
    seen=st.lists(st.tuples(ids, versions), max_size=30),
)
def test_detect_is_deterministic_and_idempotent(
    index: dict[str, str], seen: list[tuple[str, str]]
) -> None:
    listing = [(i, v, None) for i, v in seen]
    first = detect(index, listing, complete=True)
    assert detect(index, listing, complete=True) == first
    assert detect(apply_changes(index, first), listing, complete=True) == []


# --- dedup keys ---


def test_dedup_key_is_readable_when_short() -> None:
    assert dedup_key("created", "cus_1", "v1") == "created:cus_1:v1"
    assert dedup_key("updated", "42", "2024-05-01T10:00:00Z") == (
        "updated:42:2024-05-01T10%3A00%3A00Z"
    )


def test_dedup_key_never_confuses_ids_and_versions() -> None:
    assert dedup_key("updated", "a:b", "c") != dedup_key("updated", "a", "b:c")
    assert dedup_key("updated", "a%3Ab", "c") != dedup_key("updated", "a:b", "c")


def test_long_dedup_keys_are_hashed_and_bounded() -> None:
    long_version = "v" * 300
    key = dedup_key("updated", "cus_1", long_version)
    assert key.startswith("updated:cus_1:~")
    assert len(key) <= MAX_DEDUP_KEY_LENGTH
    long_id = "i" * 300
    key = dedup_key("deleted", long_id, long_version)
    assert key.count("~") == 2
    assert len(key) <= MAX_DEDUP_KEY_LENGTH
    assert dedup_key("deleted", long_id, long_version) == key
    assert dedup_key("deleted", long_id, long_version + "x") != key


def test_dedup_key_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="kind"):
        dedup_key("moved", "a", "1")  # type: ignore[arg-type]


@given(
    kind=st.sampled_from(["created", "updated", "deleted"]),
    first=st.tuples(st.text(max_size=250), st.text(max_size=250)),
    second=st.tuples(st.text(max_size=250), st.text(max_size=250)),
)
def test_dedup_keys_are_bounded_and_distinct(
    kind: Any, first: tuple[str, str], second: tuple[str, str]
) -> None:
    key = dedup_key(kind, *first)
    assert len(key) <= MAX_DEDUP_KEY_LENGTH
    assert key == dedup_key(kind, *first)
    if first != second:
        assert key != dedup_key(kind, *second)
