"""One poll's settings: a ``[polls.NAME]`` table turned into a validated :class:`PollSettings`.

>>> settings = parse_poll("issues", {"url": "https://api.example.com/issues", "every": "5m"})
>>> settings.min_every, settings.max_every, settings.pages.kind
(300.0, 300.0, 'link')

Every mistake is a :class:`~hookwise.errors.ConfigError` that names the key and the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args
from urllib.parse import urlsplit

from ..durations import parse_duration
from ..errors import ConfigError
from .manners import DEFAULT_RESERVE
from .pages import DEFAULT_MAX_PAGES, PageKind, PageSpec

__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_TIMEOUT",
    "POLL_KEYS",
    "PollSettings",
    "parse_poll",
]

DEFAULT_EVERY = 60.0
"""How often a poll runs when neither ``every`` nor ``min_every``/``max_every`` is given."""

DEFAULT_TIMEOUT = 30.0
"""How long one request of a poll may take."""

POLL_KEYS = (
    "url",
    "headers",
    "every",
    "min_every",
    "max_every",
    "items",
    "id",
    "version",
    "pages",
    "cursor_field",
    "cursor_param",
    "has_more_field",
    "page_param",
    "page_start",
    "page_size_param",
    "page_size",
    "max_pages",
    "since_param",
    "since_field",
    "source",
    "deletions",
    "timeout",
    "reserve",
    "min_gap",
)
"""The keys a ``[polls.NAME]`` table may hold."""


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How one REST listing is polled.

    >>> PollSettings(name="issues", url="https://api.example.com/issues").source
    'issues'

    ``headers`` are sent with every request (secrets already resolved); the interval
    adapts between ``min_every`` and ``max_every`` (seconds); ``items`` is the dotted
    path to the list in a response (``""``: the response itself), ``id`` and
    ``version`` the paths inside an item (no ``version``: the whole item is compared).
    With ``since_param`` and ``since_field``, each run asks only for items whose
    ``since_field`` is at least the largest value seen so far: cheaper, but such a
    listing can't show deletions. ``source`` is the events' source (default: the
    poll's name); ``deletions=False`` never reports deletions.
    """

    name: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    min_every: float = DEFAULT_EVERY
    max_every: float = DEFAULT_EVERY
    items: str = ""
    id: str = "id"
    version: str | None = None
    pages: PageSpec = field(default_factory=lambda: PageSpec(kind="link"))
    since_param: str | None = None
    since_field: str | None = None
    source: str = ""
    deletions: bool = True
    timeout: float = DEFAULT_TIMEOUT
    reserve: float = DEFAULT_RESERVE
    min_gap: float = 0.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a poll needs a name")
        if not self.source:
            object.__setattr__(self, "source", self.name)
        if urlsplit(self.url).scheme not in ("http", "https") or not urlsplit(self.url).netloc:
            raise ValueError(
                f"poll {self.name!r}: url must be http(s)://host/... (got {self.url!r})"
            )
        if not 0 < self.min_every <= self.max_every:
            raise ValueError(
                f"poll {self.name!r}: need 0 < min_every <= max_every "
                f"(got {self.min_every:g}s and {self.max_every:g}s)"
            )
        if (self.since_param is None) != (self.since_field is None):
            raise ValueError(
                f"poll {self.name!r}: since_param and since_field go together "
                '(e.g. "since" and "updated_at")'
            )

    @property
    def incremental(self) -> bool:
        """True when runs ask only for items changed since the last one."""
        return self.since_param is not None

    @property
    def host(self) -> str:
        """The API host (``host:port``) whose rate limit this poll shares with others."""
        return urlsplit(self.url).netloc.lower()


_PAGE_KINDS: tuple[str, ...] = get_args(PageKind)


class _Reader:
    def __init__(self, name: str, table: Mapping[str, Any], file: str | None) -> None:
        self.name = name
        self.table = table
        self.file = file

    def error(self, key: str | None, problem: str, fix: str) -> ConfigError:
        where = f"polls.{self.name}" + (f".{key}" if key else "")
        return ConfigError(problem, file=self.file, key=where, fix=fix)

    def string(self, key: str, default: str | None = None, *, empty: bool = False) -> str | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise self.error(
                key, f"expected a non-empty string, got {value!r}", f'write {key} = "..."'
            )
        return value

    def duration(self, key: str, default: float) -> float:
        value = self.table.get(key, default)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc), f'write {key} = "30s" (or "5m", "1h")') from None
        if not math.isfinite(seconds):
            raise self.error(key, f"{value!r} is not a finite duration", f'write {key} = "30s"')
        return seconds

    def integer(self, key: str, default: int | None, *, minimum: int) -> int | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(
                key,
                f"expected a whole number >= {minimum}, got {value!r}",
                f"write {key} = {minimum}",
            )
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}", f"write {key} = true")
        return value


def parse_poll(
    name: str,
    table: Mapping[str, Any],
    *,
    file: str | None = None,
    env: Mapping[str, str] | None = None,
) -> PollSettings:
    """The :class:`PollSettings` of the table ``[polls.NAME]``.

    >>> parse_poll("acme", {"url": "https://api.acme.test/v1/orders", "items": "data",
    ...                     "min_every": "10s", "max_every": "10m", "pages": "cursor",
    ...                     "cursor_field": "meta.next", "cursor_param": "cursor"}).max_every
    600.0

    Header values written ``"env:NAME"`` are read from ``env`` (``os.environ`` by
    default). Raises :class:`~hookwise.errors.ConfigError` for an unknown key, a
    missing environment variable, or any value that is not what the key takes.
    """
    read = _Reader(name, table, file)
    if not isinstance(table, Mapping):
        raise read.error(
            None, f"expected a table, got {table!r}", f"write [polls.{name}] url = ..."
        )
    unknown = sorted(key for key in table if key not in POLL_KEYS)
    if unknown:
        raise read.error(
            unknown[0],
            f"unknown key{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            f"the keys a poll takes are: {', '.join(POLL_KEYS)}",
        )
    url = read.string("url")
    if url is None:
        raise read.error("url", "a poll needs a url", 'write url = "https://api.example.com/items"')
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise read.error("url", f"{url!r} is not an http(s) URL", 'write url = "https://host/path"')

    headers = _headers(read, env if env is not None else os.environ)

    has_every = "every" in table
    has_range = "min_every" in table or "max_every" in table
    if has_every and has_range:
        raise read.error(
            "every",
            "every and min_every/max_every can't both be given",
            "use every for a fixed interval, or min_every and max_every for an adaptive one",
        )
    if has_range:
        if "min_every" not in table or "max_every" not in table:
            missing = "max_every" if "min_every" in table else "min_every"
            raise read.error(missing, f"{missing} is missing", "give both min_every and max_every")
        min_every = read.duration("min_every", DEFAULT_EVERY)
        max_every = read.duration("max_every", DEFAULT_EVERY)
    else:
        min_every = max_every = read.duration("every", DEFAULT_EVERY)
    for key, seconds in (
        ("every" if has_every else "min_every", min_every),
        ("max_every", max_every),
    ):
        if seconds <= 0:
            raise read.error(key, "the interval must be longer than zero", f'write {key} = "1m"')
    if min_every > max_every:
        raise read.error(
            "min_every",
            f"min_every ({min_every:g}s) is longer than max_every ({max_every:g}s)",
            "swap them, or use every for a fixed interval",
        )

    pages = _pages(read)
    since_param = read.string("since_param")
    since_field = read.string("since_field")
    if (since_param is None) != (since_field is None):
        missing = "since_field" if since_field is None else "since_param"
        raise read.error(
            missing,
            "since_param and since_field go together",
            'write since_param = "since" and since_field = "updated_at" (or neither)',
        )
    reserve = table.get("reserve", DEFAULT_RESERVE)
    if isinstance(reserve, bool) or not isinstance(reserve, int | float) or not 0 <= reserve < 1:
        raise read.error(
            "reserve",
            f"expected a share of the rate limit in [0, 1), got {reserve!r}",
            "write reserve = 0.1 to leave 10% of the limit to others",
        )
    timeout = read.duration("timeout", DEFAULT_TIMEOUT)
    if timeout <= 0:
        raise read.error("timeout", "the timeout must be longer than zero", 'write timeout = "30s"')
    return PollSettings(
        name=name,
        url=url,
        headers=headers,
        min_every=min_every,
        max_every=max_every,
        items=read.string("items", "", empty=True) or "",
        id=read.string("id", "id") or "id",
        version=read.string("version"),
        pages=pages,
        since_param=since_param,
        since_field=since_field,
        source=read.string("source", name) or name,
        deletions=read.boolean("deletions", True),
        timeout=timeout,
        reserve=float(reserve),
        min_gap=read.duration("min_gap", 0.0),
    )


def _headers(read: _Reader, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    raw = read.table.get("headers", {})
    if not isinstance(raw, Mapping):
        raise read.error(
            "headers",
            f"expected a table, got {raw!r}",
            'write headers = { Accept = "application/json" }',
        )
    resolved: list[tuple[str, str]] = []
    for header, value in raw.items():
        key = f"headers.{header}"
        if not isinstance(value, str):
            raise read.error(key, f"expected a string, got {value!r}", f'write "{header}" = "..."')
        if value.startswith("env:"):
            variable = value[4:]
            found = env.get(variable)
            if not found:
                raise read.error(
                    key,
                    f"environment variable {variable} is not set",
                    f"export {variable}=... before starting hookwise",
                )
            value = found
        resolved.append((str(header), value))
    return tuple(resolved)


def _pages(read: _Reader) -> PageSpec:
    kind = read.table.get("pages", "link")
    if kind not in _PAGE_KINDS:
        raise read.error(
            "pages",
            f"unknown pagination {kind!r}",
            f"write pages = one of {', '.join(_PAGE_KINDS)}",
        )
    try:
        return PageSpec(
            kind=kind,
            cursor_field=read.string("cursor_field"),
            cursor_param=read.string("cursor_param"),
            has_more_field=read.string("has_more_field"),
            page_param=read.string("page_param", "page" if kind == "page" else None),
            start=read.integer("page_start", 1, minimum=0) or 0,
            size_param=read.string("page_size_param"),
            size=read.integer("page_size", None, minimum=1),
            max_pages=read.integer("max_pages", DEFAULT_MAX_PAGES, minimum=1) or DEFAULT_MAX_PAGES,
        )
    except ValueError as exc:
        raise read.error("pages", str(exc), "add the keys this pagination needs") from None
