"""The one place store engines get their SQL from.

Each engine keeps its SQL under ``store/sql/<engine>/``: ``schema.sql`` (the newest
schema, as a fresh database gets it), ``migrations/NNNN_name.sql`` (how an older
database gets there, applied in order) and ``queries.sql``, a file of named queries::

    -- name: claim_due
    -- Lease the oldest due deliveries.
    UPDATE deliveries SET ...;

A name block runs until the next ``-- name:`` line; comments inside it are kept
(the database ignores them).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = [
    "Migration",
    "SQLFiles",
    "missing_migrations",
    "parse_queries",
    "split_statements",
    "sql_for",
]

_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<name>\S*)\s*$")
_VALID_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_MIGRATION_FILE = re.compile(r"^(?P<number>\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step, e.g. ``Migration("0001_initial", "CREATE TABLE ...")``."""

    version: str
    sql: str


class Queries(Mapping[str, str]):
    """Named queries of one file; a missing name says which names exist.

    >>> Queries({"ping": "SELECT 1"}, origin="queries.sql")["ping"]
    'SELECT 1'
    """

    def __init__(self, queries: Mapping[str, str], *, origin: str) -> None:
        self._queries = dict(queries)
        self._origin = origin

    def __getitem__(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            known = ", ".join(sorted(self._queries)) or "none"
            raise KeyError(f"no query named {name!r} in {self._origin} (known: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._queries)

    def __len__(self) -> int:
        return len(self._queries)


def parse_queries(text: str, *, origin: str = "<sql>") -> dict[str, str]:
    """Split a file of ``-- name: NAME`` blocks into ``{NAME: SQL}``.

    >>> parse_queries("-- name: one\\nSELECT 1;\\n")
    {'one': 'SELECT 1;'}

    Raises ``ValueError`` on SQL before the first name, a bad or repeated name, or
    an empty block, so a typo in a ``.sql`` file fails at import, not at run time.
    """
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []

    def finish() -> None:
        if name is None:
            return
        body = "\n".join(lines).strip()
        if not _has_sql(body):
            raise ValueError(f"{origin}: query {name!r} is empty")
        queries[name] = body

    for number, line in enumerate(text.splitlines(), start=1):
        match = _NAME_LINE.match(line.strip())
        if match is None:
            if name is None and line.strip() and not line.lstrip().startswith("--"):
                raise ValueError(f"{origin}:{number}: SQL before the first '-- name:' line")
            lines.append(line.rstrip())
            continue
        finish()
        name = match["name"]
        if not _VALID_NAME.match(name):
            raise ValueError(f"{origin}:{number}: {name!r} is not a valid query name")
        if name in queries:
            raise ValueError(f"{origin}:{number}: query {name!r} is defined twice")
        lines = []
    finish()
    return queries


def split_statements(script: str) -> list[str]:
    """Cut a script into whole statements (triggers with ``BEGIN ... END`` included).

    >>> split_statements("CREATE TABLE a (x);\\nCREATE TABLE b (y);")
    ['CREATE TABLE a (x);', 'CREATE TABLE b (y);']
    """
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if _has_sql(pending):
                statements.append(pending.strip())
            pending = ""
    if _has_sql(pending):
        raise ValueError(f"incomplete SQL statement at the end of the script: {pending.strip()!r}")
    return statements


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


@dataclass(frozen=True, slots=True)
class SQLFiles:
    """Everything one engine needs: its schema, its migrations, its named queries.

    >>> sql = sql_for("sqlite")
    >>> sql.queries["claim_due"]  # doctest: +ELLIPSIS
    '...'
    """

    engine: str
    schema: str
    migrations: tuple[Migration, ...]
    queries: Queries


@cache
def sql_for(engine: str) -> SQLFiles:
    """Load (once) the SQL files of ``engine`` (``"sqlite"``, ``"postgresql"``)."""
    root = resources.files(__package__).joinpath("sql", engine)
    queries_text = root.joinpath("queries.sql").read_text(encoding="utf-8")
    origin = f"store/sql/{engine}/queries.sql"
    migrations = []
    for entry in root.joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            if not _MIGRATION_FILE.match(entry.name):
                raise ValueError(
                    f"store/sql/{engine}/migrations/{entry.name}: "
                    "migration files are named NNNN_lowercase_name.sql"
                )
            migrations.append(
                Migration(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
            )
    migrations.sort(key=lambda m: m.version)
    return SQLFiles(
        engine=engine,
        schema=root.joinpath("schema.sql").read_text(encoding="utf-8"),
        migrations=tuple(migrations),
        queries=Queries(parse_queries(queries_text, origin=origin), origin=origin),
    )


def missing_migrations(applied: Collection[str], known: Sequence[Migration]) -> list[str]:
    """The versions of ``known`` not in ``applied``, in order. Versions in ``applied``
    that this code does not know (a newer release migrated the database while this one
    still runs) are not missing: each migration keeps the schema usable by the release
    before it, so a rolling upgrade keeps old processes serving.

    >>> missing_migrations(["0001_a", "0003_c"], [Migration("0001_a", ""), Migration("0002_b", "")])
    ['0002_b']
    """
    done = set(applied)
    return [m.version for m in known if m.version not in done]
