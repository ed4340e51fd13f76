"""The test PostgreSQL: each test gets a schema of its own in database ``test``.

Set ``HOOKWISE_TEST_PG_URL`` to use another server. A server that does not answer
fails the tests that need it (never a skip): start it, or deselect them with
``-k "not postgres"``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest

PG_URL = os.environ.get("HOOKWISE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def admin_connect() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {PG_URL} does not answer ({exc}). Start it "
            "(pg_ctlcluster 15 main start), point HOOKWISE_TEST_PG_URL at one, "
            'or deselect these tests with -k "not postgres"',
            pytrace=False,
        )


def schema_url(schema: str, base: str = PG_URL) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """Create a fresh schema, yield a store URL whose search_path is it, drop it after."""
    schema = f"hw_{uuid.uuid4().hex[:12]}"
    with admin_connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(schema)
    finally:
        with admin_connect() as conn:
            # A connection a test left inside a transaction on this schema would block
            # the drop; only those are cut, never another test's.
            conn.execute(
                "SELECT pg_terminate_backend(holders.pid) FROM ("
                " SELECT DISTINCT l.pid FROM pg_locks AS l"
                " JOIN pg_class AS c ON c.oid = l.relation"
                " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND l.pid <> pg_backend_pid()) AS holders",
                (schema,),
            )
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
