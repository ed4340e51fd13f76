"""The poll runner: HTTP requests and the store around the poller's pure core.

One run of a poll fetches every page of its listing (the first one conditionally, with
the validators of the last run), finds what was created, updated or deleted, appends
one event per change and only then saves the new index and state, in one call. A crash
between the two re-emits the same dedup keys on the next run; the store drops the
duplicates, so nothing is missed and nothing is delivered twice.

>>> async def main(store, handlers, polls):  # doctest: +SKIP
...     async with Poller(store, handlers, polls) as poller:
...         await poller.run(stop=asyncio.Event())

Requests to one host share a :class:`~hookwise.poller.manners.HostBudget`: quota
headers, ``Retry-After`` and ``min_gap`` hold back every poll on that host. A failing
poll records its error in its state and backs off; it never stops the others.

A poll with ``emit = "events"`` reconciles a webhook source with the provider's own
list of its deliveries (Stripe's ``/v1/events``, GitHub's webhook deliveries): each
listed delivery not seen before is described by the source exactly as the receiver
describes a pushed one, so it gets the webhook's own dedup key, and the store keeps
one of the two copies. Whatever the webhooks missed, the poll brings; nothing runs
twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self, cast
from urllib.parse import urlsplit

import httpx

from ..clock import Clock, system_clock
from ..errors import ConfigError
from ..events import NewEvent
from ..handlers import HandlerRegistry
from ..headers import Redactor
from ..providers._extract import to_timestamp
from .changes import Change, PollShapeError, detect, extract_items, get_path, item_id, item_version
from .conditional import (
    Validators,
    header_value,
    not_modified,
    request_headers,
)
from .interval import AdaptiveInterval
from .manners import HostBudget, error_backoff, parse_retry_after, rate_limit_from_headers
from .pages import first_page_url, next_page_step, with_query_param
from .settings import PollSettings

if TYPE_CHECKING:
    from ..providers import Source
    from ..store import Ordering, PollState, Store

__all__ = [
    "ERROR_BACKOFF_CAP",
    "MAX_RATE_LIMIT_RETRIES",
    "MAX_REQUEST_WAIT",
    "PollRun",
    "Poller",
    "RunStatus",
]

log = logging.getLogger("hookwise.poller")

RunStatus = Literal["changed", "unchanged", "error"]

MAX_RATE_LIMIT_RETRIES = 3
"""How many times one page is asked again after a ``429``/``503`` with ``Retry-After``."""

MAX_REQUEST_WAIT = 300.0
"""The longest a run waits in place for a host's rate limit; a longer wait ends the run
with an error and the poll comes back when the host allows it."""

ERROR_BACKOFF_CAP = 900.0
"""The longest pause after failed runs (unless the poll's ``max_every`` is longer)."""

_COUNTERS = (
    "requests",
    "not_modified",
    "bytes",
    "rate_limit_waits",
    "changes",
    "created",
    "updated",
    "deleted",
    "errors",
    "emitted",
    "backfilled",
    "skipped_delivered",
    "detail_requests",
)

_EMITTED: Final = "emitted"
"""The version every id has in the index of a poll that emits events: listed once, done."""

_UNLISTED: Final = "unlisted"
"""... and the version of an id a complete listing missed once: forgotten if the next
one misses it too (a listing that shifted while it was paged can miss an entry)."""

_NOT_FOUND: Final = object()

_GENERATION: Final = "generation"
"""The stats key counting the runs whose changes were saved: part of each change's dedup
key, so that an item coming back to a state it had before is a new change, not a
duplicate of the old one."""

_DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding"})
"""Original headers not kept: they describe the pushed bytes, not the pulled ones."""


@dataclass(frozen=True, slots=True)
class PollRun:
    """What one run of a poll did.

    >>> PollRun(name="issues", status="unchanged", requests=1, not_modified=1)
    ... # doctest: +ELLIPSIS
    PollRun(name='issues', status='unchanged', requests=1, not_modified=1, bytes=0, ...)

    ``bytes`` counts response bodies; ``waited`` is the seconds spent waiting for the
    host's rate limit; ``changes`` are the changes found (their events appended);
    ``error`` is the one-line reason of a failed run. A poll that emits events has no
    changes: ``emitted`` counts the deliveries it appended, ``backfilled`` those of
    them the store did not hold yet (the ones the webhooks missed).
    """

    name: str
    status: RunStatus
    requests: int = 0
    not_modified: int = 0
    bytes: int = 0
    changes: list[Change] = field(default_factory=list)
    waited: float = 0.0
    error: str | None = None
    emitted: int = 0
    backfilled: int = 0


class PollFailed(Exception):
    """A run can't go on; the message says what happened and what to do."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


_EXCEPTIONS: Final = (httpx.HTTPError, httpx.InvalidURL, PollFailed, PollShapeError)
"""What a run records as its poll's error: the API's fault or the configuration's."""


@dataclass(slots=True)
class _Tally:
    """Counts of one run, kept even when the run fails half-way."""

    requests: int = 0
    not_modified: int = 0
    bytes: int = 0
    rate_limit_waits: int = 0
    waited: float = 0.0
    last_status: int | None = None
    started: float | None = None
    emitted: int = 0
    backfilled: int = 0
    skipped_delivered: int = 0
    detail_requests: int = 0


@dataclass(slots=True)
class _Listing:
    seen: list[tuple[str, str, Any]]
    complete: bool
    validators: Validators
    pages: int = 1
    marks: list[_PageMark] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _PageMark:
    """One page of a listing as last fetched: where, its validators, how many items."""

    url: str
    validators: Validators
    items: int


Sleep = Callable[[float], Awaitable[None]]


class Poller:
    """Runs polls: each at its due time, conditional, paged, polite, exactly once per change.

    >>> poller = Poller(store, handlers, [parse_poll("issues", {"url": url})])  # doctest: +SKIP
    >>> async with poller:  # doctest: +SKIP
    ...     run = await poller.run_once("issues")

    Without ``client`` the poller opens its own ``httpx.AsyncClient`` on entering and
    closes it on leaving; a given client is used as is and left open. ``clock`` tells
    the time stored in states and events; ``rand`` draws the jitter of error backoff;
    ``sleep`` waits (for rate limits and between runs). ``sources`` are the webhook
    sources (``Hookwise.sources``): a poll that emits events needs its ``source``
    among them, or the poller can't be built (:class:`~hookwise.errors.ConfigError`).
    """

    def __init__(
        self,
        store: Store,
        handlers: HandlerRegistry,
        polls: Sequence[PollSettings],
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock = system_clock,
        rand: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
        sources: Mapping[str, Source] | None = None,
    ) -> None:
        self._polls: dict[str, PollSettings] = {}
        self._sources: dict[str, Source] = dict(sources or {})
        for settings in polls:
            if settings.name in self._polls:
                raise ValueError(f"two polls are named {settings.name!r}; give each a unique name")
            if settings.emit == "events" and settings.source not in self._sources:
                known = ", ".join(sorted(self._sources)) or "none configured"
                raise ConfigError(
                    f"poll {settings.name!r} emits events of source {settings.source!r}, which "
                    "is not a configured webhook source",
                    key=f"polls.{settings.name}.source",
                    fix=f"add [sources.{settings.source}], or set source = the webhook source "
                    f"whose deliveries the poll lists (sources: {known})",
                )
            self._polls[settings.name] = settings
        self._redactors: dict[str, Redactor] = {}
        self._store = store
        self._handlers = handlers
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._rand = rand
        self._sleep = sleep
        self._budgets: dict[str, HostBudget] = {}
        self._intervals: dict[str, AdaptiveInterval] = {}
        self._due: dict[str, float] = {}

    async def __aenter__(self) -> Self:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def names(self) -> list[str]:
        """The polls' names, in the order given."""
        return list(self._polls)

    def budget(self, host: str) -> HostBudget:
        """The rate-limit budget of ``host`` (``host:port``), shared by its polls."""
        budget = self._budgets.get(host)
        if budget is None:
            settings = next((s for s in self._polls.values() if s.host == host), None)
            if settings is None:
                budget = HostBudget()
            else:
                budget = HostBudget(reserve=settings.reserve, min_gap=settings.min_gap)
            self._budgets[host] = budget
        return budget

    # -- the loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run every poll at its due time until ``stop`` is set.

        Due times come from the stored states, so a restart keeps each poll's cadence.
        Each poll runs in a task of its own: one that waits for its host's rate limit,
        or walks a long listing, holds up no other. A run that fails is recorded in its
        poll's state and retried after a backoff; the loop itself only ends when
        ``stop`` is set.
        """
        if not self._polls:
            await stop.wait()
            return
        for name in self._polls:
            state = await self._load_state(name)
            self._due[name] = state.next_due_at if state.next_due_at is not None else 0.0
        async with asyncio.TaskGroup() as group:
            for name in self._polls:
                group.create_task(self._loop(name, stop), name=f"hookwise-poll-{name}")

    async def _loop(self, name: str, stop: asyncio.Event) -> None:
        """Run the poll ``name`` each time it is due, until ``stop`` is set."""
        while not stop.is_set():
            now = self._clock.now()
            due = self._due.get(name, 0.0)
            if due > now:
                await self._pause(stop, min(due - now, 60.0))
                continue
            try:
                await self.run_once(name)
            except Exception as exc:  # the store itself failing: keep going, later
                settings = self._polls[name]
                self._due[name] = self._clock.now() + settings.min_every
                log.error("poll %s: run failed and could not be recorded: %s", name, exc)

    def _ordering(self, settings: PollSettings) -> Ordering | None:
        """The ordering policy of a poll's change events: its own, else its source's."""
        if settings.ordering is not None:
            if settings.ordering == "none":
                return None
            from ..store import Ordering
            from ..store._base import OrderingPolicy

            return Ordering(cast(OrderingPolicy, settings.ordering))
        source = self._sources.get(settings.source)
        return source.ordering if source is not None else None

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait ``seconds`` with the poller's ``sleep``, or less if ``stop`` is set."""
        if self._sleep is asyncio.sleep:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds)
            return
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeping, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, stopping):
                task.cancel()
            await asyncio.gather(sleeping, stopping, return_exceptions=True)

    # -- one run ---------------------------------------------------------------------------

    async def run_once(self, name: str) -> PollRun:
        """One full run of the poll ``name``: every page, the events, the new state.

        Errors of the API (HTTP errors, timeouts, responses of the wrong shape) are
        recorded in the poll's state and returned as ``status="error"``; an error of
        the store propagates. A poll that emits events appends the listed deliveries
        it had not seen before, oldest first.
        """
        settings = self._polls.get(name)
        if settings is None:
            known = ", ".join(self._polls) or "none"
            raise KeyError(f"no poll named {name!r} (known: {known})")
        client = self._client
        if client is None:
            raise RuntimeError(
                "the poller is not open; use `async with Poller(...) as poller:` or pass client="
            )
        state = await self._load_state(name)
        interval = self._interval(settings, state)
        tally = _Tally()
        try:
            listing = await self._fetch(client, settings, state, interval, tally)
        except _EXCEPTIONS as exc:
            return await self._failed(settings, state, interval, tally, _describe(exc, settings))

        now = self._clock.now()
        if listing is None:
            interval.observe(changed=False)
            new_state = self._state(settings, state, interval, tally, [], now, state.cursor)
            await self._store.save_poll_state(new_state)
            self._due[name] = new_state.next_due_at or now
            return self._result(settings, "unchanged", tally, [])

        if settings.emit == "events":
            return await self._reconcile(client, settings, state, interval, tally, listing, now)
        index = await self._store.poll_index(name)
        complete = listing.complete and settings.deletions and not settings.incremental
        changes = detect(index, listing.seen, complete=complete)
        if listing.pages > 1 and any(change.kind == "deleted" for change in changes):
            # An item that moved to a page already fetched (the listing shifted while it
            # was walked) looks deleted: a second walk, unconditional, must miss it too.
            try:
                again = await self._fetch(client, settings, state, interval, tally, fresh=True)
            except _EXCEPTIONS as exc:
                return await self._failed(
                    settings, state, interval, tally, _describe(exc, settings)
                )
            assert again is not None  # an unconditional request is never "not modified"
            complete = complete and again.complete
            listing = _Listing(
                seen=listing.seen + again.seen,
                complete=listing.complete and again.complete,
                validators=again.validators,
                pages=again.pages,
            )
            changes = detect(index, listing.seen, complete=complete)
        generation = _generation(state)
        suffix = f":{generation}" if generation else ""
        for change in changes:
            await self._store.append(
                NewEvent(
                    source=settings.source,
                    dedup_key=f"{name}:{change.dedup_key}{suffix}",
                    type=change.kind,
                    body=_body(change),
                    ordering_key=change.id,
                    occurred_at=_occurred_at(change, settings.occurred_at),
                    received_at=now,
                    intake="pull",
                ),
                self._handlers.route(settings.source, change.kind),
                ordering=self._ordering(settings),
            )
        interval.observe(changed=bool(changes))
        cursor = _since_cursor(settings, state.cursor, listing.seen, complete=listing.complete)
        new_state = self._state(
            settings, state, interval, tally, changes, now, cursor, generation=generation + 1
        )
        # A 304 for the first page says nothing of the others: a listing of several pages
        # keeps every page's validators, and is unchanged only when every page is.
        new_state = _with_page_marks(new_state, listing)
        await self._store.update_poll_index(
            name,
            upsert={c.id: c.version for c in changes if c.kind != "deleted"},
            delete=[c.id for c in changes if c.kind == "deleted"],
            state=new_state,
        )
        self._due[name] = new_state.next_due_at or now
        return self._result(settings, "changed" if changes else "unchanged", tally, changes)

    async def _reconcile(
        self,
        client: httpx.AsyncClient,
        settings: PollSettings,
        state: PollState,
        interval: AdaptiveInterval,
        tally: _Tally,
        listing: _Listing,
        now: float,
    ) -> PollRun:
        """Append each listed delivery the index does not hold, then save the index.

        Listings are newest first (as Stripe's and GitHub's are), so deliveries are
        appended oldest first. The index keeps the ids appended; an id that two complete
        listings in a row no longer show is forgotten, as the provider has forgotten it
        (or, with Stripe's ``delivery_success=false``, delivered it). A crash before the
        index is saved appends the same dedup keys again, which the store drops. A failure
        half way (the API failing, a detail of the wrong shape) keeps the ids already
        appended and records the error.
        """
        source = self._sources[settings.source]
        index = await self._store.poll_index(settings.name)
        listed: dict[str, Any] = {}
        for id_, _, item in listing.seen:
            listed.setdefault(id_, item)
        appended: list[str] = []
        try:
            for id_, item in reversed(listed.items()):
                if id_ in index:
                    continue
                if _delivered(item, settings.skip_delivered):
                    tally.skipped_delivered += 1
                    continue
                event = await self._delivery(
                    client, settings, source, id_, item, interval, tally, now
                )
                result = await self._store.append(
                    event, self._handlers.route(source.name, event.type), ordering=source.ordering
                )
                appended.append(id_)
                tally.emitted += 1
                if not result.duplicate:
                    tally.backfilled += 1
        except _EXCEPTIONS as exc:
            if appended:
                await self._store.update_poll_index(
                    settings.name, upsert=dict.fromkeys(appended, _EMITTED), delete=()
                )
            return await self._failed(settings, state, interval, tally, _describe(exc, settings))

        interval.observe(changed=bool(appended))
        upsert = dict.fromkeys(appended, _EMITTED)
        upsert.update((id_, _EMITTED) for id_ in listed if index.get(id_) == _UNLISTED)
        forget: list[str] = []
        if listing.complete and not settings.incremental:
            for id_, version in index.items():
                if id_ not in listed:
                    if version == _UNLISTED:
                        forget.append(id_)
                    else:
                        upsert[id_] = _UNLISTED
        cursor = _since_cursor(settings, state.cursor, listing.seen, complete=listing.complete)
        new_state = self._state(settings, state, interval, tally, [], now, cursor)
        new_state = _with_validators(new_state, listing.validators)
        await self._store.update_poll_index(
            settings.name, upsert=upsert, delete=forget, state=new_state
        )
        self._due[settings.name] = new_state.next_due_at or now
        return self._result(settings, "changed" if appended else "unchanged", tally, [])

    async def _delivery(
        self,
        client: httpx.AsyncClient,
        settings: PollSettings,
        source: Source,
        id_: str,
        item: Any,
        interval: AdaptiveInterval,
        tally: _Tally,
        now: float,
    ) -> NewEvent:
        """The listed delivery ``item`` as the receiver would have stored it.

        The body is the JSON of the payload (compact); its bytes differ from the pushed
        copy's, its JSON does not (a payload given as a string is used as it is). The
        original headers are kept (redacted as the receiver redacts them), except the
        ones that describe the pushed bytes; a signature among them covers those bytes,
        not these. Nothing is verified: the delivery came from the provider's API, asked
        with the poll's credentials.
        """
        document = item
        detail_url = settings.item_detail_url(id_)
        if detail_url is not None and (
            not settings.body or get_path(item, settings.body, default=_NOT_FOUND) is _NOT_FOUND
        ):
            document = await self._detail(client, settings, detail_url, id_, interval, tally)
        try:
            payload = get_path(document, settings.body)
            raw_headers: Any = {}
            if settings.request_headers:
                raw_headers = get_path(document, settings.request_headers, default={})
        except PollShapeError as exc:
            raise PollShapeError(f"delivery {id_}: {exc}") from None
        if not isinstance(raw_headers, Mapping):
            raise PollShapeError(
                f"delivery {id_}: request_headers {settings.request_headers!r} holds "
                f"{type(raw_headers).__name__}, not an object of headers; check the path"
            )
        body = _payload_bytes(payload)
        headers = _original_headers(raw_headers)
        described = source.describe(body, headers, now)
        self._check_dedup_key(settings, source, id_, body, described.dedup_key)
        return NewEvent(
            source.name,
            described.dedup_key,
            described.type,
            body,
            self._redactor(source)(headers),
            described.ordering_key,
            described.occurred_at,
            now,
            "pull",
        )

    async def _detail(
        self,
        client: httpx.AsyncClient,
        settings: PollSettings,
        url: str,
        id_: str,
        interval: AdaptiveInterval,
        tally: _Tally,
    ) -> Any:
        """The JSON document at ``url``: the detail of the delivery ``id_``."""
        tally.detail_requests += 1
        host = urlsplit(url).netloc.lower()
        response = await self._get(
            client, settings, url, dict(settings.headers), interval, tally, host=host
        )
        if not 200 <= response.status_code < 300:
            hint = (
                "check the poll's credentials in headers"
                if response.status_code in (401, 403)
                else "check detail_url (the item's id goes in {id})"
                if response.status_code in (404, 410)
                else "the poll backs off and tries again"
            )
            raise PollFailed(
                f"GET {url} (the detail of delivery {id_}) answered HTTP "
                f"{response.status_code}; {hint}",
                status=response.status_code,
            )
        try:
            return response.json()
        except (ValueError, RecursionError):
            raise PollFailed(
                f"GET {url} (the detail of delivery {id_}) answered a body that is not JSON; "
                "check detail_url"
            ) from None

    @staticmethod
    def _check_dedup_key(
        settings: PollSettings, source: Source, id_: str, body: bytes, key: str
    ) -> None:
        """Refuse a delivery whose dedup key is its body's digest: the pushed copy's bytes
        differ, so the two would never be told to be one and a handler would run twice."""
        from ..providers._base import body_digest

        if key == body_digest(body):
            raise PollFailed(
                f"delivery {id_}: source {source.name!r} found no delivery id in it (its "
                "dedup key fell back to a digest of the body, and the pushed copy's bytes "
                "differ), so it can't be matched with the webhook's copy; point body "
                f"({settings.body!r}) and request_headers ({settings.request_headers!r}) at "
                "the original delivery's body and headers"
            )

    def _redactor(self, source: Source) -> Redactor:
        redact = self._redactors.get(source.name)
        if redact is None:
            redact = self._redactors[source.name] = Redactor(
                secret_values=source.secret_values, secret_headers=source.secret_headers
            )
        return redact

    async def _fetch(
        self,
        client: httpx.AsyncClient,
        settings: PollSettings,
        state: PollState,
        interval: AdaptiveInterval,
        tally: _Tally,
        *,
        fresh: bool = False,
    ) -> _Listing | None:
        """Every page of the listing, or ``None`` when the first page is unchanged
        (``fresh``: the first request is unconditional)."""
        stored = Validators() if fresh else Validators(state.etag, state.last_modified)
        url = first_page_url(settings.pages, settings.url)
        if settings.since_param is not None and state.cursor is not None:
            url = with_query_param(url, settings.since_param, state.cursor)
        seen: list[tuple[str, str, Any]] = []
        marks: list[_PageMark] = []
        validators = stored
        page_number = 0
        while True:
            page_number += 1
            headers = dict(settings.headers)
            if page_number == 1:
                headers.update(request_headers(stored))
            response = await self._get(client, settings, url, headers, interval, tally)
            if page_number == 1:
                if not_modified(stored, response.status_code, response.headers):
                    tally.not_modified += 1
                    if settings.emit == "events" or _PAGE_MARKS not in state.stats:
                        return None  # a listing of one page, or a delivery log (newest first)
                    later = _stored_marks(state)
                    if later and await self._later_pages_unchanged(
                        client, settings, later, interval, tally
                    ):
                        return None
                    # a later page changed: walk the whole listing again, unconditionally
                    return await self._fetch(client, settings, state, interval, tally, fresh=True)
                validators = Validators.from_headers(response.headers)
            if not 200 <= response.status_code < 300:
                raise PollFailed(_status_message(response), status=response.status_code)
            try:
                document = response.json()
            except (ValueError, RecursionError):
                raise PollFailed(
                    f"GET {url} answered HTTP {response.status_code} with a body that is not "
                    "JSON; check the url points at the API, not a web page"
                ) from None
            items = extract_items(document, settings.items)
            marks.append(_PageMark(url, Validators.from_headers(response.headers), len(items)))
            offset = len(seen)
            for index, item in enumerate(items):
                seen.append(
                    (
                        item_id(item, settings.id, index=offset + index),
                        item_version(item, settings.version, index=offset + index),
                        item,
                    )
                )
            try:
                step = next_page_step(
                    settings.pages,
                    url=str(response.url),
                    headers=response.headers,
                    document=document,
                    items_on_page=len(items),
                    page_number=page_number,
                    last_item=items[-1] if items else None,
                )
            except ValueError as exc:  # a next link that is not a URL
                raise PollFailed(
                    f"GET {url} answered a next page that can't be followed ({exc}); "
                    "check the API's paging against the poll's pages setting"
                ) from None
            if step.url is None:
                if step.truncated:
                    log.warning(
                        "poll %s: the listing was cut at max_pages = %d; items past it are "
                        "not seen (raise max_pages, or filter the listing)",
                        settings.name,
                        settings.pages.max_pages,
                    )
                return _Listing(
                    seen=seen,
                    complete=not step.truncated,
                    validators=validators,
                    pages=page_number,
                    marks=marks,
                )
            _check_same_origin(settings, step.url)
            url = step.url

    async def _later_pages_unchanged(
        self,
        client: httpx.AsyncClient,
        settings: PollSettings,
        marks: Sequence[_PageMark],
        interval: AdaptiveInterval,
        tally: _Tally,
    ) -> bool:
        """Whether pages 2.. of a listing whose first page is unchanged are unchanged too,
        asked conditionally with each page's own validators.

        Every page must answer ``304``; and a new item past a *full* last page would
        make a page of its own that no validator covers, so then only a cursor listing
        (whose body says whether more follow) or a last page whose ``304`` names no next
        page counts as unchanged. Anything else: changed, and the caller walks it all.
        """
        first, later = marks[0], marks[1:]
        link = ""
        for mark in later:
            headers = dict(settings.headers)
            headers.update(request_headers(mark.validators))
            response = await self._get(client, settings, mark.url, headers, interval, tally)
            if not not_modified(mark.validators, response.status_code, response.headers):
                return False
            tally.not_modified += 1
            link = header_value(response.headers, "link") or ""
        if later[-1].items < first.items or settings.pages.kind == "cursor":
            return True
        if settings.pages.kind == "link":
            return bool(link) and not re.search(r'rel\s*=\s*"?[^";,]*\bnext\b', link)
        return False

    async def _get(
        self,
        client: httpx.AsyncClient,
        settings: PollSettings,
        url: str,
        headers: dict[str, str],
        interval: AdaptiveInterval,
        tally: _Tally,
        *,
        host: str | None = None,
    ) -> httpx.Response:
        """GET ``url`` when the budget of ``host`` (the poll's, by default) allows it,
        asking again after a throttle."""
        host = host or settings.host
        budget = self.budget(host)
        attempt = 0
        while True:
            now = self._clock.now()
            earliest = budget.earliest(now)
            while earliest > now:  # looked at again after the wait: polls share the host
                wait = earliest - now
                if wait > MAX_REQUEST_WAIT:
                    raise PollFailed(
                        f"{host} asks to wait {wait:.0f}s ({budget.wait_reason(now)}); "
                        "the poll resumes by itself once the host allows it"
                    )
                tally.rate_limit_waits += 1
                tally.waited += wait
                await self._sleep(wait)
                now = self._clock.now()
                earliest = budget.earliest(now)
            sent_at = self._clock.now()
            budget.sent(sent_at)
            if tally.started is None:
                tally.started = sent_at
            tally.requests += 1
            response = await client.get(url, headers=headers, timeout=settings.timeout)
            tally.bytes += len(response.content)
            tally.last_status = response.status_code
            now = self._clock.now()
            rate_limit = rate_limit_from_headers(response.headers, now)
            retry_text = header_value(response.headers, "retry-after")
            retry_after = parse_retry_after(retry_text, now) if retry_text is not None else None
            budget.observe(
                rate_limit, status=response.status_code, retry_after=retry_after, now=now
            )
            if rate_limit is not None and rate_limit.poll_interval is not None:
                interval.floor(rate_limit.poll_interval)
            throttled = response.status_code == 429 or (
                response.status_code == 503 and retry_after is not None
            )
            if not throttled or attempt >= MAX_RATE_LIMIT_RETRIES:
                return response
            attempt += 1

    # -- state -----------------------------------------------------------------------------

    async def _load_state(self, name: str) -> PollState:
        from ..store import PollState

        state = await self._store.get_poll_state(name)
        return state if state is not None else PollState(name=name)

    def _interval(self, settings: PollSettings, state: PollState) -> AdaptiveInterval:
        interval = self._intervals.get(settings.name)
        if interval is None:
            start = None
            if state.interval is not None and math.isfinite(state.interval):
                start = min(max(state.interval, settings.min_every), settings.max_every)
            interval = AdaptiveInterval(settings.min_every, settings.max_every, start=start)
            self._intervals[settings.name] = interval
        return interval

    def _state(
        self,
        settings: PollSettings,
        state: PollState,
        interval: AdaptiveInterval,
        tally: _Tally,
        changes: Sequence[Change],
        now: float,
        cursor: str | None,
        *,
        generation: int | None = None,
    ) -> PollState:
        from ..store import PollState

        stats = _add_stats(state, tally, changes, errors=0)
        if changes and generation is not None:
            stats[_GENERATION] = generation
        next_due = max(now + interval.current, self.budget(settings.host).earliest(now))
        stats["latency_bound"] = _latency_bound(tally, next_due, now)
        return PollState(
            name=settings.name,
            etag=state.etag,
            last_modified=state.last_modified,
            cursor=cursor,
            next_due_at=next_due,
            interval=interval.current,
            stats=stats,
            updated_at=now,
        )

    async def _failed(
        self,
        settings: PollSettings,
        state: PollState,
        interval: AdaptiveInterval,
        tally: _Tally,
        message: str,
    ) -> PollRun:
        from ..store import PollState

        now = self._clock.now()
        failures = state.failures + 1
        pause = error_backoff(
            failures,
            base=settings.min_every,
            cap=max(settings.max_every, ERROR_BACKOFF_CAP),
            rand=self._rand,
        )
        next_due = max(
            now + max(pause, settings.min_every), self.budget(settings.host).earliest(now)
        )
        stats = _add_stats(state, tally, [], errors=1)
        stats["latency_bound"] = _latency_bound(tally, next_due, now)
        new_state = PollState(
            name=settings.name,
            etag=state.etag,
            last_modified=state.last_modified,
            cursor=state.cursor,
            next_due_at=next_due,
            interval=interval.current,
            error=message,
            error_since=state.error_since if state.error_since is not None else now,
            failures=failures,
            stats=stats,
            updated_at=now,
        )
        await self._store.save_poll_state(new_state)
        self._due[settings.name] = next_due
        log.warning("poll %s failed (%d in a row): %s", settings.name, failures, message)
        return self._result(settings, "error", tally, [], error=message)

    @staticmethod
    def _result(
        settings: PollSettings,
        status: RunStatus,
        tally: _Tally,
        changes: list[Change],
        *,
        error: str | None = None,
    ) -> PollRun:
        return PollRun(
            name=settings.name,
            status=status,
            requests=tally.requests,
            not_modified=tally.not_modified,
            bytes=tally.bytes,
            changes=changes,
            waited=tally.waited,
            error=error,
            emitted=tally.emitted,
            backfilled=tally.backfilled,
        )


def _latency_bound(tally: _Tally, next_due: float, now: float) -> float:
    """The longest a change can wait to be seen: from this run's first request (a change
    just after it is missed by this run) to the next run, which the interval, the host's
    rate limit or an error backoff may put off."""
    started = tally.started if tally.started is not None else now
    return max(next_due - started, 0.0)


def _add_stats(
    state: PollState, tally: _Tally, changes: Sequence[Change], *, errors: int
) -> dict[str, int | float | str | None]:
    stats: dict[str, int | float | str | None] = dict(state.stats)
    added: dict[str, int] = {
        "requests": tally.requests,
        "not_modified": tally.not_modified,
        "bytes": tally.bytes,
        "rate_limit_waits": tally.rate_limit_waits,
        "changes": len(changes),
        "created": sum(1 for c in changes if c.kind == "created"),
        "updated": sum(1 for c in changes if c.kind == "updated"),
        "deleted": sum(1 for c in changes if c.kind == "deleted"),
        "errors": errors,
        "emitted": tally.emitted,
        "backfilled": tally.backfilled,
        "skipped_delivered": tally.skipped_delivered,
        "detail_requests": tally.detail_requests,
    }
    for key in _COUNTERS:
        before = stats.get(key)
        stats[key] = (before if isinstance(before, int) else 0) + added[key]
    waited = stats.get("wait_seconds")
    stats["wait_seconds"] = (waited if isinstance(waited, int | float) else 0.0) + tally.waited
    if tally.last_status is not None:
        stats["last_status"] = tally.last_status
    return stats


_PAGE_MARKS: Final = "page_validators"
"""The stats key of a multi-page listing's per-page validators (a JSON list)."""


def _with_page_marks(state: PollState, listing: _Listing) -> PollState:
    """``state`` with the validators a listing's next run can use: the first page's
    alone for a listing of one page; every page's for a complete listing of several in
    which each page had some; none otherwise (its next run walks it all)."""
    from dataclasses import replace

    stats = dict(state.stats)
    stats.pop(_PAGE_MARKS, None)
    marks = listing.marks
    validators = listing.validators
    if listing.pages > 1:
        if listing.complete and len(marks) > 1 and not any(m.validators.empty for m in marks):
            stats[_PAGE_MARKS] = json.dumps(
                [[m.url, m.validators.etag, m.validators.last_modified, m.items] for m in marks],
                separators=(",", ":"),
            )
        else:
            validators = Validators()
    return replace(state, etag=validators.etag, last_modified=validators.last_modified, stats=stats)


def _stored_marks(state: PollState) -> list[_PageMark]:
    """The per-page validators a previous run kept; empty when they can't be used (not
    readable, or not those of the first page's validators): the listing is then walked
    whole."""
    raw = state.stats.get(_PAGE_MARKS)
    if not isinstance(raw, str):
        return []
    try:
        rows = json.loads(raw)
        marks = [
            _PageMark(str(url), Validators(etag, last_modified), int(items))
            for url, etag, last_modified, items in rows
        ]
    except (ValueError, TypeError):
        return []
    first = marks[0] if marks else None
    if first is None or first.validators != Validators(state.etag, state.last_modified):
        return []
    return marks if len(marks) > 1 else []


def _with_validators(state: PollState, validators: Validators) -> PollState:
    from dataclasses import replace

    return replace(state, etag=validators.etag, last_modified=validators.last_modified)


def _occurred_at(change: Change, path: str | None) -> float | None:
    """The time at ``path`` in a created or updated item, as UNIX seconds, if it has one."""
    if path is None or change.kind == "deleted":
        return None
    value = get_path(change.item, path, default=None)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    return to_timestamp(value) if isinstance(value, str) else None


def _body(change: Change) -> bytes:
    item = change.item if change.kind != "deleted" else {"id": change.id}
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _delivered(item: Any, path: str | None) -> bool:
    """Whether the HTTP status at ``path`` in ``item`` says the receiver took it (2xx)."""
    if path is None:
        return False
    status = get_path(item, path, default=None)
    if isinstance(status, str) and status.strip().isdigit():
        status = int(status)
    return isinstance(status, int) and not isinstance(status, bool) and 200 <= status < 300


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _original_headers(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A delivery's recorded headers as the receiver sees headers: lowercase names."""
    headers: dict[str, str] = {}
    for name, value in raw.items():
        key = str(name).lower()
        if value is None or key in _DROPPED_HEADERS:
            continue
        if isinstance(value, list):
            text = ", ".join(str(part) for part in value)
        else:
            text = value if isinstance(value, str) else json.dumps(value)
        headers[key] = text
    return headers


def _since_cursor(
    settings: PollSettings,
    previous: str | None,
    seen: Sequence[tuple[str, str, Any]],
    *,
    complete: bool,
) -> str | None:
    """The largest ``since_field`` seen so far (numbers compared as numbers).

    A listing cut short at ``max_pages`` moves the cursor only when it came oldest
    first (the unfetched pages hold larger values); otherwise items on those pages
    would be skipped for good, so the cursor stays where it was.
    """
    if settings.since_field is None:
        return previous
    listed: list[str] = []
    for _, _, item in seen:
        value = get_path(item, settings.since_field, default=None)
        if isinstance(value, str) and value:
            listed.append(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            listed.append(json.dumps(value))
    if not complete:
        order = [_cursor_order(value) for value in listed]
        if any(later < earlier for earlier, later in pairwise(order)):
            return previous
    values = listed if previous is None else [previous, *listed]
    return max(values, key=_cursor_order) if values else None


def _generation(state: PollState) -> int:
    value = state.stats.get(_GENERATION)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _check_same_origin(settings: PollSettings, url: str) -> None:
    """Refuse a next page on another origin than the poll's url: the poll's headers
    (its credentials) go to the host they were configured for, nowhere else."""
    target, own = httpx.URL(url), httpx.URL(settings.url)
    if (target.scheme, target.host, target.port) != (own.scheme, own.host, own.port):
        origin = urlsplit(settings.url)
        raise PollFailed(
            f"the next page {url} is not on {origin.scheme}://{origin.netloc} (the poll's url), "
            "so the poll's headers are not sent there; if the API moved, set url to its "
            "new address"
        )


def _cursor_order(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _status_message(response: httpx.Response) -> str:
    status = response.status_code
    where = f"GET {response.request.url}"
    if status in (401, 403):
        hint = "check the poll's credentials in headers (an expired or missing token?)"
    elif status == 404:
        hint = "check the poll's url"
    elif status == 429:
        hint = "the host kept throttling; the poll backs off and tries again"
    elif status >= 500:
        hint = "the API is failing; the poll backs off and tries again"
    else:
        hint = "check the poll's url and headers against the API's documentation"
    return f"{where} answered HTTP {status}; {hint}"


def _describe(exc: Exception, settings: PollSettings) -> str:
    if isinstance(exc, PollFailed):
        text = str(exc)
    elif isinstance(exc, PollShapeError):
        text = f"unexpected response shape: {exc}"
    elif isinstance(exc, httpx.TimeoutException):
        text = (
            f"GET {settings.url} timed out after {settings.timeout:g}s; the poll tries again "
            "(raise timeout if the API is slow)"
        )
    else:
        text = (
            f"GET {settings.url} failed: {type(exc).__name__}: {exc}; check that the host is "
            "reachable"
        )
    return " ".join(text.split())
