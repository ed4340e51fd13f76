"""Handlers and which events reach them.

A handler is a named Python callable subscribed to a source (or ``"*"``) and to
event types by glob (``invoice.*``). Routing is decided once, at append time: the
event gets one delivery row per matching handler, and each delivery then succeeds,
retries or dead-letters on its own.
"""

from __future__ import annotations

import asyncio
import fnmatch
import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .backoff import RetryPolicy
from .errors import ConfigError
from .events import Event

__all__ = ["HandlerFunc", "HandlerRegistry", "HandlerSpec", "import_callable"]

HandlerFunc = Callable[[Event], Awaitable[None] | None]

DEFAULT_HANDLER_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """A registered handler: what it is called, what it receives, how it is retried."""

    name: str
    func: Callable[..., Any]
    source: str = "*"
    patterns: tuple[str, ...] = ("*",)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = DEFAULT_HANDLER_TIMEOUT
    transactional: bool | None = None
    """Whether the handler takes a transaction (``def handle(event, tx)``); ``None``:
    decided from the function's signature (two positional parameters)."""

    def __post_init__(self) -> None:
        if self.transactional is None:
            object.__setattr__(self, "transactional", takes_transaction(self.func))

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func) or inspect.iscoroutinefunction(
            getattr(self.func, "__call__", None)  # noqa: B004 - callable objects with async __call__
        )

    def matches(self, source: str, event_type: str) -> bool:
        if self.source not in ("*", source):
            return False
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.patterns)


class HandlerRegistry:
    """Named handlers, in registration order."""

    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}
        self._route_cache: dict[tuple[str, str], tuple[str, ...]] = {}

    def add(self, spec: HandlerSpec) -> None:
        if spec.name in self._specs:
            raise ConfigError(
                f"a handler named {spec.name!r} is already registered",
                key=f"handlers.{spec.name}",
                fix="give each handler a unique name (name= in @hw.handler or [[handlers]] name)",
            )
        self._specs[spec.name] = spec
        self._route_cache.clear()

    def get(self, name: str) -> HandlerSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return list(self._specs)

    def route(self, source: str, event_type: str) -> tuple[str, ...]:
        """Names of the handlers that must receive an event of this source and type."""
        key = (source, event_type)
        found = self._route_cache.get(key)
        if found is None:
            found = tuple(s.name for s in self._specs.values() if s.matches(source, event_type))
            if len(self._route_cache) < 4096:
                self._route_cache[key] = found
        return found

    def __iter__(self) -> Iterator[HandlerSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs


def import_callable(
    target: str, *, key: str = "call", file: str | None = None
) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (or ``package.module.function``).

    Raises :class:`ConfigError` naming what could not be found and how to fix it.
    """
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(
            f"{target!r} is not an importable callable",
            file=file,
            key=key,
            fix='write it as "package.module:function"',
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"can't import module {module_name!r} for {target!r}: {exc}",
            file=file,
            key=key,
            fix="check the module name, and run hookwise from the directory that holds it "
            "(or add that directory to PYTHONPATH)",
        ) from None
    except Exception as exc:  # the user's module raised while importing
        raise ConfigError(
            f"importing {module_name!r} for {target!r} raised {type(exc).__name__}: {exc}",
            file=file,
            key=key,
            fix="fix the error in that module",
        ) from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"module {module_name!r} has no attribute {attr!r}",
                file=file,
                key=key,
                fix=f"define {attr} in {module_name}, or correct the name",
            ) from None
    if not callable(obj):
        raise ConfigError(
            f"{target!r} is not callable", file=file, key=key, fix="point it at a function"
        )
    return obj  # type: ignore[no-any-return]


def takes_transaction(func: Callable[..., Any]) -> bool:
    """Whether ``func`` wants a transaction besides the event: it accepts a second
    positional argument (``def handle(event, tx)``).

    >>> takes_transaction(lambda event: None), takes_transaction(lambda event, tx: None)
    (False, True)
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # some builtins and C callables have none
        return False
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values()):
        return False
    return len(positional) >= 2 and all(p.default is p.empty for p in positional[:2])


def call_handler_sync(func: Callable[..., Any], event: Event, *args: Any) -> None:
    """Run a sync handler (in a worker thread); an accidental coroutine is awaited.
    ``args`` is the transaction, for a transactional handler."""
    result = func(event, *args)
    if inspect.isawaitable(result):
        asyncio.run(_await(result))


async def _await(awaitable: Awaitable[Any]) -> None:
    await awaitable
