"""The relay's durable memory: one SQLite file of channels and the requests captured for them.

Every write is one ``BEGIN IMMEDIATE`` transaction, fsynced (``synchronous = FULL``,
WAL), so a request the relay answered ``200`` survives a crash or a power cut. The
store is synchronous and single-threaded on purpose: ``relay serve`` gives it one
thread of its own, so the event loop never waits on a disk.

The history of a channel is bounded:

- at most ``max_requests`` (default :data:`DEFAULT_MAX_REQUESTS`) are kept, the newest;
  when a new request pushes out one that was never acknowledged, that is counted in the
  channel's ``dropped`` and the client is told (acknowledged ones go first, being older);
- acknowledged requests older than ``keep_acked`` (default :data:`DEFAULT_KEEP_ACKED`)
  are deleted by :meth:`RelayStore.prune`. Unacknowledged ones are never deleted for age.

>>> with RelayStore("relay.db") as store:
...     channel_id, token = store.create_channel(now=0.0)
...     store.append(channel_id, "POST", b"/hooks/x", (), b"{}", now=1.0).seq
1
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..errors import ConfigError, StoreNotOpen
from ..store._sql import Queries, parse_queries, split_statements
from .protocol import (
    Header,
    RelayedRequest,
    decode_headers,
    encode_headers,
    hash_token,
    new_channel_id,
    new_token,
)

__all__ = [
    "DEFAULT_KEEP_ACKED",
    "DEFAULT_MAX_REQUESTS",
    "Appended",
    "Channel",
    "DataFileInUse",
    "RelayStore",
    "Resumed",
]

DEFAULT_MAX_REQUESTS = 10_000
"""Requests kept per channel (the newest)."""

DEFAULT_KEEP_ACKED = 7 * 86400.0
"""Seconds an acknowledged request stays in the history (7 days)."""

BUSY_TIMEOUT_MS = 5000


class DataFileInUse(ConfigError):
    """Another ``relay serve`` holds the data file."""


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel as stored. ``cursor`` is the newest acknowledged seq; ``last_seq`` the
    newest stored one."""

    id: str
    created_at: float
    last_seq: int
    cursor: int
    dropped: int
    token_hash: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Appended:
    """A stored request's ``seq``, and how many unacknowledged requests it pushed out."""

    seq: int
    dropped: int


@dataclass(frozen=True, slots=True)
class Resumed:
    """Where a stream starts: after ``after``. ``ahead`` is set when the client claimed
    a seq the relay never stored (its data file was replaced): the stream then starts at
    the relay's own cursor instead."""

    after: int
    channel: Channel
    ahead: bool = False


@cache
def _sql() -> tuple[str, Queries]:
    root = resources.files(__package__).joinpath("sql")
    schema = root.joinpath("schema.sql").read_text(encoding="utf-8")
    origin = "relay/sql/queries.sql"
    text = root.joinpath("queries.sql").read_text(encoding="utf-8")
    return schema, Queries(parse_queries(text, origin=origin), origin=origin)


class RelayStore:
    """Channels and their captured requests in one SQLite file (see the module docstring).

    Use it from one thread; open it with ``with`` or :meth:`open`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        keep_acked: float = DEFAULT_KEEP_ACKED,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1 (got {max_requests})")
        if keep_acked < 0:
            raise ValueError(f"keep_acked can't be negative (got {keep_acked})")
        self.path = Path(path)
        self.max_requests = max_requests
        self.keep_acked = keep_acked
        self._conn: sqlite3.Connection | None = None
        self._lock: IO[bytes] | None = None
        self._queries = _sql()[1]

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Create or open the file, take its lock, and make sure the schema is there."""
        if self._conn is not None:
            return
        if self.path.parent and not self.path.parent.exists():
            raise ConfigError(
                f"the relay data file's directory {self.path.parent} does not exist",
                fix="create it, or pass --data with a path in an existing directory",
            )
        self._lock = _take_lock(self.path)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            self._release_lock()
            raise ConfigError(
                f"can't open the relay data file {self.path}: {exc}",
                fix="check the path and its permissions",
            ) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            _check_is_relay_file(conn, self.path)
            conn.execute("BEGIN IMMEDIATE")
            for statement in split_statements(_sql()[0]):
                conn.execute(statement)
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.close()
            self._release_lock()
            read_only = "readonly" in str(exc) or "read-only" in str(exc)
            raise ConfigError(
                f"{self.path} can't be used as the relay data file: {exc}",
                fix="make the file and its directory writable by the relay's user"
                if read_only
                else "pass --data with a new file name (the relay creates it)",
            ) from None
        except BaseException:
            conn.close()
            self._release_lock()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._release_lock()

    def __enter__(self) -> RelayStore:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- channels -------------------------------------------------------------------------

    def create_channel(self, *, now: float) -> tuple[str, str]:
        """A new channel: its id and its token (shown once; only its hash is stored)."""
        token = new_token()
        channel_id = new_channel_id()
        with self._transaction() as conn:
            conn.execute(
                self._queries["create_channel"],
                {"id": channel_id, "token_hash": hash_token(token), "now": now},
            )
        return channel_id, token

    def channel(self, channel_id: str) -> Channel | None:
        row = self._connection().execute(self._queries["get_channel"], {"id": channel_id})
        found = row.fetchone()
        return _channel(found) if found else None

    def counts(self, channel: Channel) -> tuple[int, int]:
        """``(held, pending)``: requests the channel holds, and those not yet acknowledged."""
        row = (
            self._connection()
            .execute(self._queries["count_requests"], {"id": channel.id, "cursor": channel.cursor})
            .fetchone()
        )
        return int(row[0]), int(row[1])

    def channel_count(self) -> int:
        row = self._connection().execute(self._queries["count_channels"]).fetchone()
        return int(row[0])

    # -- requests -------------------------------------------------------------------------

    def append(
        self,
        channel_id: str,
        method: str,
        target: bytes,
        headers: Sequence[Header],
        body: bytes,
        *,
        now: float,
    ) -> Appended | None:
        """Store one request, committed (fsynced) on return; ``None`` for an unknown channel."""
        with self._transaction() as conn:
            row = conn.execute(self._queries["next_seq"], {"id": channel_id}).fetchone()
            if row is None:
                return None
            seq, cursor = int(row[0]), int(row[1])
            conn.execute(
                self._queries["insert_request"],
                {
                    "id": channel_id,
                    "seq": seq,
                    "method": method,
                    "target": target,
                    "headers": encode_headers(headers),
                    "body": body,
                    "now": now,
                },
            )
            dropped = 0
            over = seq - self.max_requests
            if over > 0:
                drop = self._queries["drop_up_to"]
                conn.execute(drop, {"id": channel_id, "above": 0, "upto": min(over, cursor)})
                if over > cursor:
                    dropped = conn.execute(
                        drop, {"id": channel_id, "above": cursor, "upto": over}
                    ).rowcount
                    if dropped:
                        conn.execute(
                            self._queries["count_dropped"], {"id": channel_id, "count": dropped}
                        )
        return Appended(seq, dropped)

    def fetch(self, channel_id: str, *, after: int, limit: int = 100) -> list[RelayedRequest]:
        """The stored requests with a seq above ``after``, oldest first, at most ``limit``."""
        rows = self._connection().execute(
            self._queries["fetch_after"], {"id": channel_id, "after": after, "limit": limit}
        )
        return [
            RelayedRequest(
                seq=int(seq),
                method=str(method),
                target=bytes(target),
                headers=decode_headers(headers),
                body=bytes(body),
                received_at=float(received_at),
            )
            for seq, method, target, headers, body, received_at in rows
        ]

    def ack(self, channel_id: str, seq: int) -> int | None:
        """Record that everything up to ``seq`` was handled; the channel's cursor after it,
        or ``None`` when there is no such channel or ``seq`` was never stored."""
        with self._transaction() as conn:
            row = conn.execute(
                self._queries["advance_cursor"], {"id": channel_id, "seq": seq}
            ).fetchone()
        return int(row[0]) if row else None

    def resume(self, channel_id: str, after: int | None) -> Resumed | None:
        """Where a stream for a client that last handled ``after`` starts (``None``: it
        remembers nothing). Its ``after`` counts as an ack: the client says it has
        everything up to there. ``None`` for an unknown channel."""
        with self._transaction() as conn:
            found = conn.execute(self._queries["get_channel"], {"id": channel_id}).fetchone()
            if found is None:
                return None
            channel = _channel(found)
            if after is None or after <= channel.cursor:
                return Resumed(channel.cursor, channel)
            if after > channel.last_seq:
                return Resumed(channel.cursor, channel, ahead=True)
            conn.execute(self._queries["advance_cursor"], {"id": channel_id, "seq": after})
        moved = Channel(
            channel.id,
            channel.created_at,
            channel.last_seq,
            after,
            channel.dropped,
            channel.token_hash,
        )
        return Resumed(after, moved)

    def prune(self, *, now: float) -> int:
        """Delete acknowledged requests older than ``keep_acked``; how many went."""
        with self._transaction() as conn:
            return conn.execute(
                self._queries["prune_acked"], {"before": now - self.keep_acked}
            ).rowcount

    # -- plumbing -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreNotOpen("relay store")
        return self._conn

    def _transaction(self) -> _Transaction:
        return _Transaction(self._connection())


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on any error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()  # a failed COMMIT may leave the transaction open
                raise
        else:
            self._rollback()

    def _rollback(self) -> None:
        # SQLite rolls back by itself after some errors (a full disk, for one); a second
        # ROLLBACK would fail and hide the error that says what went wrong.
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def _channel(row: Any) -> Channel:
    channel_id, token_hash, created_at, last_seq, cursor, dropped = row
    return Channel(
        id=str(channel_id),
        created_at=float(created_at),
        last_seq=int(last_seq),
        cursor=int(cursor),
        dropped=int(dropped),
        token_hash=bytes(token_hash),
    )


def _check_is_relay_file(conn: sqlite3.Connection, path: Path) -> None:
    tables = {
        str(name)
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if tables and "relay_channels" not in tables:
        raise ConfigError(
            f"{path} is a database of something else (it has tables "
            f"{', '.join(sorted(tables)[:5])}), not a relay data file",
            fix="pass --data with a new file name; the relay keeps its own file",
        )


def _take_lock(path: Path) -> IO[bytes] | None:
    """An exclusive lock beside the data file, so two relays never share one file (their
    streams would not see each other's requests). Released when the process exits."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        return None
    real = path.resolve()  # a symlink or another spelling of the path shares the lock
    lock_path = real.with_name(real.name + ".lock")
    try:
        handle = open(lock_path, "ab")  # noqa: SIM115 - kept open while the store is
    except OSError as exc:
        raise ConfigError(
            f"can't open the relay's lock file {lock_path}: {exc.strerror or exc}",
            fix="run the relay as a user who may write in that directory, or pass --data "
            "with a file in a writable directory",
        ) from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataFileInUse(
            f"another `hookwise relay serve` is using {path}",
            fix="stop it first, or pass --data with another file",
        ) from None
    return handle
