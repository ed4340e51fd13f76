"""One poll's settings: a ``[polls.NAME]`` table turned into a validated :class:`PollSettings`.

>>> settings = parse_poll("issues", {"url": "https://api.example.com/issues", "every": "5m"})
>>> settings.min_every, settings.max_every, settings.pages.kind
(300.0, 300.0, 'link')

A poll either reports changes to a collection (``emit = "changes"``: created, updated,
deleted) or, with ``emit = "events"``, lists a provider's own webhook deliveries and
emits each new one as a delivery of its webhook source, with the same dedup key the
webhook has: whatever the webhooks missed, the poll brings, and nothing runs twice.
The presets (:data:`POLL_PRESETS`) configure that for Stripe's ``/v1/events`` and
GitHub's webhook deliveries:

>>> stripe = parse_poll("stripe-backfill", {"preset": "stripe-events", "source": "stripe"})
>>> stripe.emit, stripe.url
('events', 'https://api.stripe.com/v1/events?delivery_success=false')

Every mistake is a :class:`~hookwise.errors.ConfigError` that names the key and the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Formatter
from typing import Any, Literal, get_args
from urllib.parse import quote, urlsplit

from ..durations import parse_duration
from ..errors import ConfigError
from .manners import DEFAULT_RESERVE
from .pages import DEFAULT_MAX_PAGES, PageKind, PageSpec

__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_TIMEOUT",
    "DETAIL_URL_FIELDS",
    "POLL_KEYS",
    "POLL_PRESETS",
    "EmitMode",
    "PollSettings",
    "parse_poll",
]

EmitMode = Literal["changes", "events"]
"""What a poll's items become: changes to a collection, or webhook deliveries."""

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
    "occurred_at",
    "ordering",
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
    "preset",
    "emit",
    "body",
    "request_headers",
    "detail_url",
    "skip_delivered",
)
"""The keys a ``[polls.NAME]`` table may hold."""

DETAIL_URL_FIELDS = ("url", "id")
"""The placeholders of ``detail_url``: ``{url}`` is the poll's url without its query,
``{id}`` the item's id."""

_EVENTS_ONLY = ("body", "request_headers", "detail_url", "skip_delivered")

_PRESETS: dict[str, dict[str, Any]] = {
    # GET /v1/events: {"object": "list", "data": [event, ...], "has_more": bool}, newest
    # first, paged with starting_after=<last id> and limit (1 to 100). An event object is
    # what a webhook endpoint receives as its body. delivery_success=false keeps the
    # events still pending or failed at some endpoint.
    "stripe-events": {
        "url": "https://api.stripe.com/v1/events?delivery_success=false",
        "items": "data",
        "id": "id",
        "pages": "cursor",
        "cursor_field": "last_item:id",
        "cursor_param": "starting_after",
        "has_more_field": "has_more",
        "page_size_param": "limit",
        "page_size": 100,
        "emit": "events",
        "body": "",
    },
    # GET .../hooks/HOOK_ID/deliveries: a top-level list of deliveries (id, guid,
    # delivered_at, redelivery, status, status_code, event, action, ...), newest first,
    # paged by Link headers with per_page up to 100. GET .../deliveries/ID adds
    # request.headers (X-GitHub-Delivery = guid, the webhook's dedup key) and
    # request.payload (the body).
    "github-deliveries": {
        "items": "",
        "id": "id",
        "pages": "link",
        "page_size_param": "per_page",
        "page_size": 100,
        "emit": "events",
        "detail_url": "{url}/{id}",
        "body": "request.payload",
        "request_headers": "request.headers",
        "skip_delivered": "status_code",
        # Without a status filter the listing holds every recent delivery: a busy hook's
        # runs cost many pages, so the preset polls less often than the default.
        "every": "5m",
        "headers": {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    },
}

POLL_PRESETS: tuple[str, ...] = tuple(_PRESETS)
"""The names ``preset`` takes: ready-made polls of a provider's webhook deliveries."""


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
    poll's name); ``deletions=False`` never reports deletions. ``occurred_at`` is the
    path to an item's time (ISO-8601 or UNIX seconds, e.g. ``updated_at``): the
    ``occurred_at`` of its ``created``/``updated`` events, which ordering policies
    sequence by. ``ordering`` (``none``, ``serial``, ``latest``, ``coalesce``) orders
    the events per item id, as a webhook source's ``ordering`` does; without it, a poll
    whose ``source`` is a webhook source takes that source's policy.

    With ``emit="events"`` each item not seen before is one webhook delivery of
    ``source`` (a configured webhook source), described by that source as the receiver
    describes a pushed one; ``version`` is not allowed and deletions are off. ``body``
    is the path to the delivery's JSON body (``""``: the whole item), ``request_headers``
    the path to an object of its original headers; both are read from the item, or,
    when the item lacks the body, from the document at ``detail_url`` (a template with
    ``{url}`` and ``{id}``). With ``skip_delivered``, the path to the HTTP status the
    delivery got: a 2xx one was received by webhook, so it is neither fetched nor
    emitted. ``preset`` names the preset these settings came from, if any.
    """

    name: str
    url: str
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    min_every: float = DEFAULT_EVERY
    max_every: float = DEFAULT_EVERY
    items: str = ""
    id: str = "id"
    version: str | None = None
    occurred_at: str | None = None
    ordering: str | None = None
    pages: PageSpec = field(default_factory=lambda: PageSpec(kind="link"))
    since_param: str | None = None
    since_field: str | None = None
    source: str = ""
    deletions: bool = True
    timeout: float = DEFAULT_TIMEOUT
    reserve: float = DEFAULT_RESERVE
    min_gap: float = 0.0
    emit: EmitMode = "changes"
    body: str = ""
    request_headers: str | None = None
    detail_url: str | None = None
    skip_delivered: str | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a poll needs a name")
        if not self.source:
            object.__setattr__(self, "source", self.name)
        if self.emit not in ("changes", "events"):
            raise ValueError(
                f'poll {self.name!r}: emit must be "changes" or "events" (got {self.emit!r})'
            )
        if self.emit == "events":
            if self.version is not None:
                raise ValueError(
                    f"poll {self.name!r}: a poll that emits events emits each item once, by "
                    "its id; remove version"
                )
            object.__setattr__(self, "deletions", False)
            if self.detail_url is not None:
                problem = _detail_url_problem(self.detail_url)
                if problem is not None:
                    raise ValueError(f"poll {self.name!r}: detail_url {problem}")
        else:
            for key in _EVENTS_ONLY:
                if getattr(self, key) not in (None, ""):
                    raise ValueError(f'poll {self.name!r}: {key} applies only with emit="events"')
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

    def item_detail_url(self, item_id: str) -> str | None:
        """The URL of one item's detail document, or ``None`` without ``detail_url``.

        >>> PollSettings(name="gh", url="https://api.github.com/repos/o/r/hooks/1/deliveries",
        ...              emit="events", detail_url="{url}/{id}").item_detail_url("42")
        'https://api.github.com/repos/o/r/hooks/1/deliveries/42'
        """
        if self.detail_url is None:
            return None
        parts = urlsplit(self.url)
        base = parts._replace(query="", fragment="").geturl().rstrip("/")
        return self.detail_url.format(url=base, id=quote(item_id, safe=""))


def _detail_url_problem(template: str) -> str | None:
    """What is wrong with a ``detail_url`` template, or ``None`` when it is usable.

    >>> _detail_url_problem("{url}/{id}") is None
    True
    >>> _detail_url_problem("{url}/{delivery}")
    "has the placeholder {delivery}; use {url} (the poll's url) and {id} (the item's id)"
    """
    try:
        names = [field for _, field, _, _ in Formatter().parse(template) if field is not None]
    except ValueError as exc:
        return f'is not a valid template ({exc}); write it like "{{url}}/{{id}}"'
    for name in names:
        if name not in DETAIL_URL_FIELDS:
            return (
                f"has the placeholder {{{name}}}; use {{url}} (the poll's url) and {{id}} "
                "(the item's id)"
            )
    if "id" not in names:
        return 'needs {id}, where the item\'s id goes, e.g. "{url}/{id}"'
    sample = template.format(url="https://api.example.com/items", id="1")
    parts = urlsplit(sample)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{template!r} does not make an http(s) URL; start it with {{url}} or https://host/"
    return None


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
    preset = _preset(read)
    if preset is not None:
        table = _with_preset(read, preset)
        read = _Reader(name, table, file)
    url = read.string("url")
    if url is None:
        if preset == "github-deliveries":
            raise read.error(
                "url",
                "preset github-deliveries needs the url of the webhook's deliveries",
                'write url = "https://api.github.com/repos/OWNER/REPO/hooks/HOOK_ID/deliveries"'
                ' (or ".../orgs/ORG/hooks/HOOK_ID/deliveries", or '
                '"https://api.github.com/app/hook/deliveries" for a GitHub App)',
            )
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
    emit = _emit(read, preset)
    return PollSettings(
        name=name,
        url=url,
        headers=headers,
        min_every=min_every,
        max_every=max_every,
        items=read.string("items", "", empty=True) or "",
        id=read.string("id", "id") or "id",
        version=read.string("version"),
        occurred_at=read.string("occurred_at"),
        ordering=_ordering(read),
        pages=pages,
        since_param=since_param,
        since_field=since_field,
        source=read.string("source", name) or name,
        deletions=read.boolean("deletions", emit == "changes"),
        timeout=timeout,
        reserve=float(reserve),
        min_gap=read.duration("min_gap", 0.0),
        emit=emit,
        body=read.string("body", "", empty=True) or "",
        request_headers=read.string("request_headers"),
        detail_url=read.string("detail_url"),
        skip_delivered=read.string("skip_delivered"),
        preset=preset,
    )


def _preset(read: _Reader) -> str | None:
    preset = read.table.get("preset")
    if preset is None:
        return None
    if preset not in _PRESETS:
        raise read.error(
            "preset",
            f"unknown preset {preset!r}",
            f"write preset = one of {', '.join(repr(known) for known in POLL_PRESETS)}, "
            "or leave it out and give the keys yourself",
        )
    if read.table.get("emit", "events") != "events":
        raise read.error(
            "emit",
            f"preset {preset!r} lists webhook deliveries, so it emits events",
            'remove emit (or write emit = "events"), or leave out the preset',
        )
    return str(preset)


def _with_preset(read: _Reader, preset: str) -> dict[str, Any]:
    """The table with the preset's defaults under the keys it does not give itself."""
    defaults = _PRESETS[preset]
    merged = {**defaults, **read.table}
    adaptive = "min_every" in read.table or "max_every" in read.table
    if adaptive and "every" not in read.table:
        merged.pop("every", None)
    given_headers = read.table.get("headers")
    if "headers" in defaults and isinstance(given_headers, Mapping):
        given = {str(header).lower() for header in given_headers}
        merged["headers"] = {
            **{h: v for h, v in defaults["headers"].items() if h.lower() not in given},
            **given_headers,
        }
    return merged


def _emit(read: _Reader, preset: str | None) -> EmitMode:
    emit = read.table.get("emit", "changes")
    if emit not in ("changes", "events"):
        raise read.error(
            "emit",
            f'expected "changes" or "events", got {emit!r}',
            'write emit = "changes" (created/updated/deleted items) or emit = "events" '
            "(each item is a webhook delivery of the poll's source)",
        )
    if emit == "changes":
        for key in _EVENTS_ONLY:
            if key in read.table:
                raise read.error(
                    key,
                    f'{key} applies only to polls with emit = "events"',
                    f'add emit = "events" (the items are webhook deliveries), or remove {key}',
                )
        return "changes"
    what = f"preset {preset!r}" if preset else 'emit = "events"'
    if "occurred_at" in read.table:
        raise read.error(
            "occurred_at",
            f"a poll with {what} takes each delivery's time from its source's own rules",
            "remove occurred_at (set occurred_at on the webhook source instead)",
        )
    if "version" in read.table:
        raise read.error(
            "version",
            f"a poll with {what} emits each item once, by its id: there is no version to compare",
            'remove version, or write emit = "changes" to report changed items',
        )
    if read.table.get("deletions") is True:
        raise read.error(
            "deletions",
            f"a poll with {what} emits webhook deliveries, and a delivery is never deleted",
            "remove deletions",
        )
    detail_url = read.string("detail_url")
    if detail_url is not None:
        problem = _detail_url_problem(detail_url)
        if problem is not None:
            raise read.error(
                "detail_url", f"detail_url {problem}", 'write detail_url = "{url}/{id}"'
            )
    return "events"


_ORDERINGS = ("none", "serial", "latest", "coalesce")


def _ordering(read: _Reader) -> str | None:
    value = read.table.get("ordering")
    if value is None:
        return None
    if value not in _ORDERINGS:
        raise read.error(
            "ordering",
            f"unknown ordering {value!r}",
            f"write ordering = one of {', '.join(_ORDERINGS)} (see docs/ordering.md)",
        )
    if read.table.get("emit") == "events" or "preset" in read.table:
        raise read.error(
            "ordering",
            "a poll that emits webhook deliveries orders them as their source does",
            "remove ordering here and set ordering on the webhook source",
        )
    return str(value)


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
