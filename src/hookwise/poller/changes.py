"""Change detection: what a listing says happened since the last poll.

A poll lists a collection (``GET /v1/customers``) and compares it with what it saw last
time: an index of ``id -> version`` kept in the store. A new id was created, a known id
with another version was updated, and, when the listing covered the whole collection, a
known id that is gone was deleted. Each change becomes one event whose dedup key
(:func:`dedup_key`) is derived from the change alone, so a poll that crashes after
appending its events and before saving its index appends nothing twice when it runs
again.

Documents are parsed JSON (``dict``, ``list``, ``str``, numbers, ``bool``, ``None``);
paths into them are dotted (``"data.items"``, ``"meta.next_cursor"``), and a segment
that is an integer indexes a list (``"data.0.id"``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "MAX_DEDUP_KEY_LENGTH",
    "Change",
    "ChangeKind",
    "PollShapeError",
    "apply_changes",
    "dedup_key",
    "detect",
    "extract_items",
    "get_path",
    "item_id",
    "item_version",
]

ChangeKind = Literal["created", "updated", "deleted"]
_KINDS: Final = frozenset({"created", "updated", "deleted"})

MAX_DEDUP_KEY_LENGTH = 200


class PollShapeError(ValueError):
    """A response does not have the shape the poll's configuration expects.

    The message names the path and what was found there, so the configuration (or the
    API's documentation) can be checked against the actual response.
    """


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Final = _Missing()
_ABSENT: Final = _Missing()  # a default for get_path that callers can tell from any value


def get_path(document: Any, path: str | None, default: Any = _MISSING) -> Any:
    """The value at a dotted ``path`` in ``document``; ``""`` or ``None`` is the document.

    >>> get_path({"meta": {"next": "c2"}, "data": [{"id": 7}]}, "data.0.id")
    7

    A path that leads nowhere returns ``default`` when one is given, and raises
    :class:`PollShapeError` otherwise. Segments are dict keys; on a list, a segment must
    be an integer index (negative ones count from the end).
    """
    if not path:
        return document
    current = document
    walked: list[str] = []
    for segment in path.split("."):
        if isinstance(current, Mapping) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and _is_index(segment, len(current)):
            current = current[int(segment)]
        else:
            if default is not _MISSING:
                return default
            where = ".".join(walked) or "the top level"
            raise PollShapeError(
                f"path {path!r}: no {segment!r} under {where} "
                f"(found {_describe(current)}); check the path against a real response"
            )
        walked.append(segment)
    return current


def _is_index(segment: str, length: int) -> bool:
    try:
        index = int(segment)
    except ValueError:
        return False
    return -length <= index < length


def extract_items(document: Any, path: str | None) -> list[Any]:
    """The items of a listing: the list at ``path`` (the document itself when empty).

    >>> extract_items({"data": [{"id": "a"}, {"id": "b"}]}, "data")
    [{'id': 'a'}, {'id': 'b'}]
    >>> extract_items({"id": "a"}, "")
    [{'id': 'a'}]

    A single object is one item; ``null`` is an empty listing (APIs written in Go send
    it for an empty array). Anything else raises :class:`PollShapeError`.
    """
    found = get_path(document, path)
    if isinstance(found, list):
        return found
    if isinstance(found, Mapping):
        return [found]
    if found is None:
        return []
    where = f"at {path!r}" if path else "at the top level"
    raise PollShapeError(
        f"expected a list of items (or one object) {where}, found {_describe(found)}; "
        "set the items path to where the list is"
    )


def item_id(item: Any, path: str, *, index: int | None = None) -> str:
    """The id of an item, as text: strings as they are, integers in decimal.

    >>> item_id({"id": 42}, "id")
    '42'

    ``index`` (the item's position in the listing) makes the error message point at the
    item. A missing or empty id, or one that is neither a string nor an integer, raises
    :class:`PollShapeError`.
    """
    value = get_path(item, path, default=None)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    which = "an item" if index is None else f"item {index}"
    problem = "has no id" if value is None or value == "" else f"has id {_describe(value)}"
    raise PollShapeError(
        f"{which} {problem} at {path!r}; ids must be non-empty strings or integers "
        "(set the id path to a field every item has)"
    )


def item_version(item: Any, path: str | None, *, index: int | None = None) -> str:
    """What tells one version of an item from another, as text.

    >>> item_version({"id": 1, "updated_at": "2024-05-01T10:00:00Z"}, "updated_at")
    '2024-05-01T10:00:00Z'
    >>> item_version({"id": 1, "name": "a"}, None)
    '7f0fc1050a42a0cb28309f997dc4e388'

    With a ``path``, the field there: a string as it is, anything else as canonical
    JSON (``5`` -> ``"5"``, ``null`` -> ``"null"``); a missing field raises
    :class:`PollShapeError`. Without one, a fingerprint of the whole item: the first 32
    hex digits of the SHA-256 of its canonical JSON (sorted keys, no spaces, non-ASCII
    escaped), so any change in any field is a new version.
    """
    if not path:
        return hashlib.sha256(_canonical(item).encode("ascii")).hexdigest()[:32]
    value = get_path(item, path, default=_ABSENT)
    if value is _ABSENT:
        which = "an item" if index is None else f"item {index}"
        raise PollShapeError(
            f"{which} has no version at {path!r}; set the version path to a field every "
            "item has, or leave it out to compare whole items"
        )
    return value if isinstance(value, str) else _canonical(value)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        keys = ", ".join(repr(key) for key in list(value)[:5])
        more = ", ..." if len(value) > 5 else ""
        return f"an object with keys [{keys}{more}]"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


@dataclass(frozen=True, slots=True)
class Change:
    """One change found by :func:`detect`.

    >>> Change(kind="created", id="cus_1", version="v1", item={"id": "cus_1"}).dedup_key
    'created:cus_1:v1'

    ``item`` is the item as listed (``None`` for a deletion); a deletion's ``version``
    is the last version stored for it.
    """

    kind: ChangeKind
    id: str
    version: str
    item: Any | None = None

    @property
    def dedup_key(self) -> str:
        """This change's :func:`dedup_key`."""
        return dedup_key(self.kind, self.id, self.version)


def detect(
    index: Mapping[str, str],
    seen: Sequence[tuple[str, str, Any]],
    *,
    complete: bool,
) -> list[Change]:
    """The changes between the stored ``index`` (id -> version) and a listing.

    >>> detect({"a": "1", "b": "1", "c": "1"},
    ...        [("a", "1", {}), ("b", "2", {}), ("d", "1", {})], complete=True)
    ... # doctest: +NORMALIZE_WHITESPACE
    [Change(kind='updated', id='b', version='2', item={}),
     Change(kind='created', id='d', version='1', item={}),
     Change(kind='deleted', id='c', version='1', item=None)]

    ``seen`` holds ``(id, version, item)`` in listing order. Deletions are reported only
    when ``complete`` is true: the listing covered the whole collection (not an
    incremental ``since`` fetch, no page limit hit). An id listed twice (an item that
    moved between pages while they were fetched) counts once, with its last occurrence.
    Changes come in listing order, then deletions sorted by id.
    """
    latest: dict[str, tuple[str, Any]] = {}
    for id_, version, item in seen:
        latest.pop(id_, None)  # re-inserted, so it takes its last position
        latest[id_] = (version, item)
    changes: list[Change] = []
    for id_, (version, item) in latest.items():
        stored = index.get(id_)
        if stored is None:
            changes.append(Change(kind="created", id=id_, version=version, item=item))
        elif stored != version:
            changes.append(Change(kind="updated", id=id_, version=version, item=item))
    if complete:
        for id_ in sorted(id_ for id_ in index if id_ not in latest):
            changes.append(Change(kind="deleted", id=id_, version=index[id_], item=None))
    return changes


def apply_changes(index: Mapping[str, str], changes: Sequence[Change]) -> dict[str, str]:
    """The index after ``changes``: what to store once their events are appended.

    >>> apply_changes({"a": "1", "c": "1"}, [Change("created", "b", "1"),
    ...                                      Change("deleted", "c", "1")])
    {'a': '1', 'b': '1'}
    """
    updated = dict(index)
    for change in changes:
        if change.kind == "deleted":
            updated.pop(change.id, None)
        else:
            updated[change.id] = change.version
    return updated


def dedup_key(kind: ChangeKind, item_id: str, version: str) -> str:
    """The event dedup key of a change: the same change always gets the same key.

    >>> dedup_key("updated", "cus_1", "2024-05-01T10:00:00Z")
    'updated:cus_1:2024-05-01T10%3A00%3A00Z'

    ``kind:id:version``, with ``%``, ``:`` and ``~`` in the id and version written as
    ``%25``, ``%3A`` and ``%7E`` so that different changes never share a key. When the
    key would be longer than :data:`MAX_DEDUP_KEY_LENGTH` (200) characters, the version
    and then the id are replaced by ``~`` and 48 hex digits of their SHA-256.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of created, updated, deleted (got {kind!r})")
    id_part, version_part = _escape(item_id), _escape(version)
    if len(kind) + len(id_part) + len(version_part) + 2 > MAX_DEDUP_KEY_LENGTH:
        version_part = _digest(version)
        if len(kind) + len(id_part) + len(version_part) + 2 > MAX_DEDUP_KEY_LENGTH:
            id_part = _digest(item_id)
    return f"{kind}:{id_part}:{version_part}"


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace(":", "%3A").replace("~", "%7E")


def _digest(text: str) -> str:
    return "~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:48]
