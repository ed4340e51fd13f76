"""``Hookwise``: sources, handlers and a store, put together.

>>> hw = Hookwise.from_config("hookwise.toml")
>>> @hw.handler("stripe", "invoice.*")
... async def on_invoice(event: Event) -> None: ...
>>> app = hw.asgi()        # mount it, or run `hookwise serve`
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from .backoff import RetryPolicy
from .clock import Clock, system_clock
from .config import HandlerSettings, Settings, SourceSettings, StoreSettings
from .errors import ConfigError
from .handlers import DEFAULT_HANDLER_TIMEOUT, HandlerRegistry, HandlerSpec, import_callable

if TYPE_CHECKING:
    from .poller.runner import Poller
    from .poller.settings import PollSettings
    from .providers import Source
    from .receiver import Receiver
    from .store import Store
    from .worker import Worker

__all__ = ["Hookwise"]

F = TypeVar("F", bound=Callable[..., Any])


class Hookwise:
    """The application: where events come from, who handles them, where they are kept.

    >>> hw = Hookwise(store="sqlite:///hookwise.db")
    >>> hw.source("acme", provider="hmac", header="X-Acme-Signature", secrets=["s3cret"])
    >>> @hw.handler("acme", "order.*")
    ... def on_order(event: Event) -> None:
    ...     print(event.json())
    """

    def __init__(
        self,
        store: str | StoreSettings | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock = system_clock,
    ) -> None:
        settings = settings or Settings()
        if isinstance(store, str):
            settings = replace(settings, store=replace(settings.store, url=store))
        elif isinstance(store, StoreSettings):
            settings = replace(settings, store=store)
        self.settings = settings
        self.clock = clock
        self.sources: dict[str, Source] = {}
        self.handlers = HandlerRegistry()
        self._append_listeners: list[Callable[[], None]] = []
        self._explicit_poll_sources: set[str] = set()
        """Polls whose ``source`` was given in code (a backfill may not change it)."""
        for source in settings.sources.values():
            self._build_source(source)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, *, clock: Clock = system_clock
    ) -> Hookwise:
        """Load ``hookwise.toml`` (or ``path``), build the sources and import the handlers.

        Any mistake is a :class:`~hookwise.ConfigError` naming the file, key and fix.
        """
        from .config import load_config

        settings = load_config(path)
        hw = cls(settings=settings, clock=clock)
        for index, handler in enumerate(settings.handlers):
            func = import_callable(handler.call, key=f"handlers[{index}].call", file=settings.path)
            hw._add_handler(handler, func)
        return hw

    def source(self, name: str, provider: str, **options: Any) -> None:
        """Add a source in code: ``hw.source("gh", provider="hmac", header=..., secrets=[...])``.

        Options are the same keys as a ``[sources.NAME]`` table; durations may be
        given as seconds or text (``tolerance="5m"``, ``reorder_window="10s"``).
        """
        from .durations import parse_duration

        known = set(SourceSettings.__dataclass_fields__) - {"name", "provider", "options"}
        fields: dict[str, Any] = {}
        extra: dict[str, object] = {}
        for key, value in options.items():
            if key == "secrets":
                fields[key] = tuple([value] if isinstance(value, str) else value)
            elif key in ("tolerance", "reorder_window"):
                fields[key] = parse_duration(value)
            elif key in known:
                fields[key] = value
            else:
                extra[key] = value
        settings = SourceSettings(name=name, provider=provider, options=extra, **fields)
        polls = self.settings.polls
        if settings.backfill is not None and settings.backfill in polls:
            polls = {**polls, settings.backfill: self._backfilled(polls[settings.backfill], name)}
        self._build_source(settings)
        self.settings = replace(
            self.settings, sources={**self.settings.sources, name: settings}, polls=polls
        )

    def _build_source(self, settings: SourceSettings) -> None:
        from .providers import build_source

        if settings.name in self.sources:
            raise ConfigError(
                f"a source named {settings.name!r} already exists",
                key=f"sources.{settings.name}",
                fix="give each source a unique name",
            )
        self.sources[settings.name] = build_source(settings)

    @property
    def polls(self) -> Mapping[str, PollSettings]:
        """The polls, by name, in the order they were added (``[polls.NAME]`` first)."""
        return self.settings.polls

    def poll(self, name: str, url: str, **keys: Any) -> PollSettings:
        """Poll a REST listing in code; each change becomes an event of the poll's source.

        >>> issues = hw.poll("issues", "https://api.example.com/issues", every="5m",
        ...                  headers={"Authorization": "Bearer " + token})
        >>> @hw.handler("issues", "created", "updated")
        ... async def on_issue(event: Event) -> None: ...

        ``keys`` are the keys of a ``[polls.NAME]`` table (``every``, ``items``, ``id``,
        ``version``, ``pages``, ``source``...; durations as seconds or text). The events'
        source is the poll's name unless ``source`` names another (a webhook source's,
        to fill in what its webhooks missed). Raises :class:`~hookwise.ConfigError`.
        """
        from .poller.settings import parse_poll

        if name in self.settings.polls:
            raise ConfigError(
                f"a poll named {name!r} already exists",
                key=f"polls.{name}",
                fix="give each poll a unique name",
            )
        settings = parse_poll(name, {"url": url, **keys})
        explicit = "source" in keys
        for source in self.settings.sources.values():
            if source.backfill == name:
                settings = self._backfilled(settings, source.name, explicit=explicit)
        self.settings = replace(self.settings, polls={**self.settings.polls, name: settings})
        if explicit:
            self._explicit_poll_sources.add(name)
        return settings

    def _backfilled(
        self, poll: PollSettings, source: str, *, explicit: bool | None = None
    ) -> PollSettings:
        """``poll`` sending its events to ``source``, whose ``backfill`` names it."""
        if poll.source == source:
            return poll
        if explicit is None:
            explicit = poll.name in self._explicit_poll_sources
        if explicit or poll.source != poll.name:
            raise ConfigError(
                f"poll {poll.name!r} sends its events to source {poll.source!r}, but source "
                f"{source!r} names it as its backfill",
                key=f"sources.{source}.backfill",
                fix=f"drop source= from hw.poll({poll.name!r}, ...), or drop backfill from "
                "the source",
            )
        return replace(poll, source=source)

    def _check_backfills(self) -> None:
        for source in self.settings.sources.values():
            name = source.backfill
            if name is not None and name not in self.settings.polls:
                raise ConfigError(
                    f"source {source.name!r} names {name!r} as its backfill, but no poll has "
                    "that name",
                    file=self.settings.path,
                    key=f"sources.{source.name}.backfill",
                    fix=f'add it with hw.poll({name!r}, "https://...") or a [polls.{name}] section',
                )

    def _event_sources(self) -> set[str]:
        """Every source events can come from: webhook sources and the polls' sources."""
        return {*self.sources, *(poll.source for poll in self.settings.polls.values())}

    def handler(
        self,
        source: str = "*",
        *events: str,
        name: str | None = None,
        max_attempts: int | None = None,
        max_age: float | str | None = None,
        timeout: float | None = None,
    ) -> Callable[[F], F]:
        """Register a handler for ``source`` (or ``"*"``) and event-type globs.

        >>> @hw.handler("stripe", "invoice.*", "customer.subscription.*")
        ... async def billing(event: Event) -> None: ...

        The function takes the :class:`~hookwise.Event`; sync functions run in a thread
        pool. Return to succeed; raise :class:`~hookwise.Retry` or
        :class:`~hookwise.Reject` to steer; any other exception retries with backoff.
        """
        from .durations import parse_duration

        def register(func: F) -> F:
            defaults = HandlerSettings(name="", call="")
            handler = HandlerSettings(
                name=name or f"{func.__module__}.{func.__qualname__}",
                call=f"{func.__module__}:{func.__qualname__}",
                source=source,
                events=tuple(events) or ("*",),
                max_attempts=max_attempts if max_attempts is not None else defaults.max_attempts,
                max_age=parse_duration(max_age) if max_age is not None else defaults.max_age,
                timeout=timeout if timeout is not None else DEFAULT_HANDLER_TIMEOUT,
            )
            self._add_handler(handler, func)
            return func

        return register

    def _add_handler(self, handler: HandlerSettings, func: Callable[..., Any]) -> None:
        if handler.source != "*" and handler.source not in self._event_sources():
            raise ConfigError(
                f"handler {handler.name!r} subscribes to source {handler.source!r}, "
                "which is not configured",
                key=f"handlers.{handler.name}.source",
                fix=f"add [sources.{handler.source}] or [polls.{handler.source}] (in code: "
                "hw.source or hw.poll, before the handler), or use one of: "
                + ", ".join(["*", *sorted(self._event_sources())]),
            )
        policy = RetryPolicy(
            max_attempts=handler.max_attempts,
            max_age=handler.max_age,
            base_delay=handler.base_delay,
            max_delay=handler.max_delay,
        )
        self.handlers.add(
            HandlerSpec(
                name=handler.name,
                func=func,
                source=handler.source,
                patterns=handler.events,
                policy=policy,
                timeout=handler.timeout,
            )
        )

    # -- running ------------------------------------------------------------------------------

    def open_store(self) -> Store:
        """A new, unopened store for this app's settings (``async with hw.open_store() as s``)."""
        from .store import open_store

        return open_store(self.settings.store)

    def add_append_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each newly stored event taken by this app's receivers."""
        self._append_listeners.append(listener)

    def _notify_append(self) -> None:
        for listener in self._append_listeners:
            listener()

    def asgi(self, store: Store | None = None) -> Receiver:
        """The ASGI intake for this app's sources.

        Without ``store``, the receiver opens its own on first use and closes it at
        lifespan shutdown.
        """
        from .receiver import Receiver

        owns = store is None
        return Receiver(
            sources=self.sources,
            handlers=self.handlers,
            store=store if store is not None else self.open_store(),
            max_body_bytes=self.settings.server.max_body_bytes,
            clock=self.clock,
            on_append=self._notify_append,
            owns_store=owns,
            trusted_proxies=self.settings.server.trusted_proxies,
        )

    def worker(self, store: Store, **options: Any) -> Worker:
        """A :class:`~hookwise.worker.Worker` running this app's handlers on ``store``."""
        from .worker import Worker

        settings = self.settings.worker
        if options:
            settings = replace(settings, **options)
        # Worker.run subscribes to the store, which wakes it after each commit of new work.
        return Worker(store, self.handlers, settings=settings, clock=self.clock)

    def poller(self, store: Store, *, names: Sequence[str] | None = None, **options: Any) -> Poller:
        """A :class:`~hookwise.poller.runner.Poller` running this app's polls on ``store``.

        >>> async with hw.open_store() as store, hw.poller(store) as poller:  # doctest: +SKIP
        ...     await poller.run(stop)

        ``names`` picks some of the polls (default: all). ``options`` go to the poller
        (``client``, ``clock``, ``rand``, ``sleep``). An unknown name is a
        :class:`~hookwise.ConfigError` that lists the polls there are.
        """
        from .poller.runner import Poller

        self._check_backfills()
        polls = self.settings.polls
        if names is None:
            chosen = list(polls.values())
        else:
            for name in names:
                if name not in polls:
                    raise unknown_poll(name, polls, file=self.settings.path)
            chosen = [polls[name] for name in dict.fromkeys(names)]
        options.setdefault("clock", self.clock)
        return Poller(store, self.handlers, chosen, sources=self.sources, **options)


def unknown_poll(name: str, known: Iterable[str], *, file: str | None = None) -> ConfigError:
    """The error for a poll name that is not among ``known``: it lists those (or says
    how to add a poll when there is none)."""
    names = list(known)
    if not names:
        return ConfigError(
            f"no poll named {name!r}: no polls are configured",
            file=file,
            fix='add a [polls.NAME] section with url = "https://..." to the config',
        )
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(
        f"no poll named {name!r}",
        file=file,
        key=f"polls.{name}",
        fix=f"{hint}configured polls: {', '.join(names)}",
    )
