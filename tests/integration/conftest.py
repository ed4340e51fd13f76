"""Store fixtures: one behavioural suite runs against every engine.

``store`` is an open store of each engine in ``STORE_ENGINES``; ``make_store``
builds an unopened one of the same engine (with custom settings). A new engine
is one more entry in ``_BUILDERS`` and ``STORE_ENGINES``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from hookwise.config import StoreSettings
from hookwise.store import MemoryStore, SQLiteStore, Store
from hookwise.store.postgres import PostgresStore

from ._postgres import pg_schema

STORE_ENGINES = ["memory", "sqlite", "postgres"]

StoreMaker = Callable[..., Store]


def _memory(tmp_path: Path, settings: StoreSettings) -> Store:
    return MemoryStore(settings=settings)


def _sqlite(tmp_path: Path, settings: StoreSettings) -> Store:
    return SQLiteStore(str(tmp_path / "hookwise.db"), settings=settings)


_BUILDERS: dict[str, Callable[[Path, StoreSettings], Store]] = {
    "memory": _memory,
    "sqlite": _sqlite,
}


@pytest.fixture(params=STORE_ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A store URL on the test PostgreSQL, in a fresh schema of its own (dropped after)."""
    with pg_schema() as url:
        yield url


@pytest.fixture
def make_store(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreMaker:
    """Build an unopened store of the current engine: ``make_store(busy_timeout=0.2)``."""
    if engine == "postgres":
        url: str = request.getfixturevalue("pg_url")

        def make_pg(**settings: object) -> Store:
            return PostgresStore(url, settings=StoreSettings(url=url, **settings))  # type: ignore[arg-type]

        return make_pg

    def make(**settings: object) -> Store:
        return _BUILDERS[engine](tmp_path, StoreSettings(**settings))  # type: ignore[arg-type]

    return make


@pytest.fixture
async def store(make_store: StoreMaker) -> AsyncIterator[Store]:
    async with make_store() as opened:
        yield opened
