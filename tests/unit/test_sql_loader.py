"""The named-query loader and the SQL files it serves."""

from __future__ import annotations

import sqlite3

import pytest

from hookwise.store._sql import Queries, parse_queries, split_statements, sql_for
from hookwise.store.sqlite import ROW_WIDTHS, expand_rows


def test_parse_queries_splits_named_blocks() -> None:
    text = """
-- Queries for something.

-- name: first
-- What it does.
SELECT 1;

-- name: second
SELECT a
FROM t
WHERE b = :b;
"""
    queries = parse_queries(text)
    assert list(queries) == ["first", "second"]
    assert queries["first"] == "-- What it does.\nSELECT 1;"
    assert queries["second"] == "SELECT a\nFROM t\nWHERE b = :b;"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1;\n-- name: a\nSELECT 2;", "before the first"),
        ("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;", "defined twice"),
        ("-- name: a\n-- only a comment\n-- name: b\nSELECT 1;", "'a' is empty"),
        ("-- name: Bad-Name\nSELECT 1;", "not a valid query name"),
        ("-- name:\nSELECT 1;", "not a valid query name"),
    ],
)
def test_parse_queries_rejects_mistakes(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_queries(text, origin="q.sql")


def test_a_missing_query_names_the_known_ones() -> None:
    queries = Queries({"ping": "SELECT 1"}, origin="q.sql")
    with pytest.raises(KeyError, match=r"no query named 'pong' in q.sql \(known: ping\)"):
        queries["pong"]


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    script = """
CREATE TABLE t (x); -- trailing comment
CREATE TRIGGER tr AFTER INSERT ON t BEGIN
    UPDATE t SET x = 1;
    UPDATE t SET x = 2;
END;
-- a closing comment
"""
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


def test_split_statements_refuses_an_unfinished_statement() -> None:
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE t (x);\nCREATE TABLE u (")


def test_sqlite_migrations_are_ordered() -> None:
    versions = [m.version for m in sql_for("sqlite").migrations]
    assert versions[0] == "0001_initial"
    assert versions == sorted(versions)


class _AnyParams(dict[str, object]):
    """Bind NULL to every named parameter, so a query can be prepared unseen."""

    def __missing__(self, key: str) -> object:
        return None


def test_every_sqlite_query_prepares_against_the_schema() -> None:
    sql = sql_for("sqlite")
    conn = sqlite3.connect(":memory:")
    try:
        for statement in split_statements(sql.schema):
            conn.execute(statement)
        assert len(sql.queries) > 10
        for name, query in sql.queries.items():
            if "{rows}" in query:  # a multi-row template: prepare it for two rows
                query = expand_rows(name, 2)
                params: object = [None] * (2 * ROW_WIDTHS[name])
            else:
                params = _AnyParams()
            try:
                conn.execute("EXPLAIN " + query, params)  # type: ignore[arg-type]
            except sqlite3.Error as exc:  # pragma: no cover - the message is the point
                pytest.fail(f"query {name!r} does not prepare: {exc}")
    finally:
        conn.close()
