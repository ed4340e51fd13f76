"""Where events and deliveries live: the :class:`Store` contract and its engines.

>>> async with open_store("sqlite:///hookwise.db") as store:
...     result = await store.append(new_event, handlers=["billing"])
"""

from __future__ import annotations

from dataclasses import replace

from ..config import StoreSettings
from ..errors import ConfigError
from ._base import (
    AppendResult,
    AttemptRecord,
    Claim,
    DeliveryRecord,
    DeliveryStatus,
    EventFilter,
    EventRecord,
    Ordering,
    OrderingCounts,
    OrderingState,
    Outcome,
    PollState,
    RejectionRecord,
    Settlement,
    Store,
)
from .memory import MemoryStore
from .sqlite import SQLiteStore, WriterStats

__all__ = [
    "AppendResult",
    "AttemptRecord",
    "Claim",
    "DeliveryRecord",
    "DeliveryStatus",
    "EventFilter",
    "EventRecord",
    "MemoryStore",
    "Ordering",
    "OrderingCounts",
    "OrderingState",
    "Outcome",
    "PollState",
    "RejectionRecord",
    "SQLiteStore",
    "Settlement",
    "Store",
    "WriterStats",
    "open_store",
]

_URL_FORMS = (
    '"sqlite:///relative/path.db", "sqlite:////absolute/path.db", "memory://" '
    'or "postgresql://user@host/db"'
)


def open_store(url: str | StoreSettings, *, settings: StoreSettings | None = None) -> Store:
    """Build the store a URL names, not yet opened: use it with ``async with``.

    >>> async with open_store("sqlite:///hookwise.db") as store:
    ...     await store.ping()

    ``url`` may be a :class:`StoreSettings` (its ``url`` is used). ``settings``
    tunes the engine (durability, busy timeout, group commit, queue size); when both
    are given, ``url`` wins over ``settings.url``.
    """
    if isinstance(url, StoreSettings):
        settings = settings or url
        url = url.url
    settings = replace(settings, url=url) if settings is not None else StoreSettings(url=url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"store url {url!r} has no scheme", key="store.url", fix=f"write it like {_URL_FORMS}"
        )
    scheme = scheme.lower()
    if scheme == "memory":
        return MemoryStore(url, settings=settings)
    if scheme == "sqlite":
        return SQLiteStore(_sqlite_path(url, rest), settings=settings, url=url)
    if scheme in ("postgresql", "postgres"):
        return _open_postgres(url, settings)
    raise ConfigError(
        f"store url {url!r}: unknown scheme {scheme!r}",
        key="store.url",
        fix=f"use {_URL_FORMS}",
    )


def _sqlite_path(url: str, rest: str) -> str:
    # "sqlite:///a.db" -> "a.db"; "sqlite:////var/a.db" -> "/var/a.db"
    if not rest.startswith("/"):
        raise ConfigError(
            f"store url {url!r}: a SQLite url has three slashes before a relative path",
            key="store.url",
            fix='write "sqlite:///hookwise.db" (relative) or "sqlite:////var/lib/hookwise.db"',
        )
    path = rest[1:]
    if path in ("", ":memory:") or path.startswith(("file:", ":memory:")):
        raise ConfigError(
            f"store url {url!r}: an in-memory SQLite database would be private to one "
            "connection and lost at exit",
            key="store.url",
            fix='use "memory://" for a throwaway store, or a file path like "sqlite:///hookwise.db"',
        )
    if "?" in path:
        raise ConfigError(
            f"store url {url!r}: options in the url are not supported",
            key="store.url",
            fix="set durability, busy_timeout and the rest as keys of [store]",
        )
    return path


def _open_postgres(url: str, settings: StoreSettings) -> Store:
    # The one dispatch point for the PostgreSQL engine: psycopg is imported only here,
    # so SQLite users don't need it installed.
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        raise ConfigError(
            f"store url {url!r}: PostgreSQL needs psycopg 3, which is not installed ({exc})",
            key="store.url",
            fix="pip install 'hookwise[postgres]'",
        ) from None
    return PostgresStore(url, settings=settings)
