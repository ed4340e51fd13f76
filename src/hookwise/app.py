"""``Hookwise``: sources, handlers and a store, put together.

>>> hw = Hookwise.from_config("hookwise.toml")
>>> @hw.handler("stripe", "invoice.*")
... async def on_invoice(event: Event) -> None: ...
>>> app = hw.asgi()        # mount it, or run `hookwise serve`
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from .backoff import RetryPolicy
from .clock import Clock, system_clock
from .config import HandlerSettings, Settings, SourceSettings, StoreSettings
from .errors import ConfigError
from .handlers import DEFAULT_HANDLER_TIMEOUT, HandlerRegistry, HandlerSpec, import_callable

if TYPE_CHECKING:
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
        self.settings = replace(self.settings, sources={**self.settings.sources, name: settings})
        self._build_source(settings)

    def _build_source(self, settings: SourceSettings) -> None:
        from .providers import build_source

        if settings.name in self.sources:
            raise ConfigError(
                f"a source named {settings.name!r} already exists",
                key=f"sources.{settings.name}",
                fix="give each source a unique name",
            )
        self.sources[settings.name] = build_source(settings)

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
        if handler.source != "*" and handler.source not in self.sources:
            raise ConfigError(
                f"handler {handler.name!r} subscribes to source {handler.source!r}, "
                "which is not configured",
                key=f"handlers.{handler.name}.source",
                fix=f"add [sources.{handler.source}], or use one of: "
                + ", ".join(["*", *sorted(self.sources)]),
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
