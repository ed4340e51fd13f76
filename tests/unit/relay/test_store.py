"""The relay's store: durable, ordered per channel, bounded, honest about what it drops.

Real SQLite files in tmp_path; each test runs in milliseconds.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hookwise.errors import ConfigError, StoreNotOpen
from hookwise.relay.protocol import token_matches
from hookwise.relay.store import DataFileInUse, RelayStore

DAY = 86400.0


def add(store: RelayStore, channel: str, n: int, *, now: float = 0.0) -> list[int]:
    return [
        store.append(
            channel,
            "POST",
            f"/hooks/x?n={i}".encode(),
            [(b"X-N", str(i).encode())],
            f"body {i}".encode(),
            now=now,
        ).seq  # type: ignore[union-attr]
        for i in range(n)
    ]


def seqs(store: RelayStore, channel: str, after: int = 0) -> list[int]:
    return [r.seq for r in store.fetch(channel, after=after, limit=100_000)]


def test_requests_are_numbered_per_channel_and_kept_byte_for_byte(tmp_path: Path) -> None:
    with RelayStore(tmp_path / "relay.db") as store:
        a, token = store.create_channel(now=1.0)
        b, _ = store.create_channel(now=1.0)
        headers = [(b"Stripe-Signature", b"t=1,v1=x"), (b"x-dup", b"1"), (b"X-Dup", b"\xff")]
        body = bytes(range(256))
        first = store.append(a, "POST", b"/hooks/s%2F?q=%20", headers, body, now=5.0)
        assert first is not None and (first.seq, first.dropped) == (1, 0)
        assert add(store, b, 2) == [1, 2]
        assert add(store, a, 1) == [2]
        (stored, _) = store.fetch(a, after=0)
        assert (stored.seq, stored.method, stored.target) == (1, "POST", b"/hooks/s%2F?q=%20")
        assert stored.headers == tuple(headers)
        assert stored.body == body and stored.received_at == 5.0
        channel = store.channel(a)
        assert channel is not None and channel.last_seq == 2 and channel.cursor == 0
        assert token_matches(token, channel.token_hash)
        assert token not in repr(channel)


def test_an_unknown_channel_stores_nothing(tmp_path: Path) -> None:
    with RelayStore(tmp_path / "relay.db") as store:
        assert store.append("nope" * 6, "POST", b"/", [], b"", now=0.0) is None
        assert store.channel("nope" * 6) is None


def test_everything_committed_is_there_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    with RelayStore(path) as store:
        channel, _ = store.create_channel(now=0.0)
        add(store, channel, 5)
        assert store.ack(channel, 3) == 3
    with RelayStore(path) as store:
        assert seqs(store, channel) == [1, 2, 3, 4, 5]
        reopened = store.channel(channel)
        assert reopened is not None and reopened.cursor == 3
        assert store.counts(reopened) == (5, 2)
        assert add(store, channel, 1) == [6]


def test_the_cursor_only_moves_forward_and_never_past_what_was_stored(tmp_path: Path) -> None:
    with RelayStore(tmp_path / "relay.db") as store:
        channel, _ = store.create_channel(now=0.0)
        add(store, channel, 4)
        assert store.ack(channel, 3) == 3
        assert store.ack(channel, 1) == 3
        assert store.ack(channel, 9) is None
        assert store.channel(channel).cursor == 3  # type: ignore[union-attr]


def test_resuming_counts_as_an_ack_and_never_goes_back(tmp_path: Path) -> None:
    with RelayStore(tmp_path / "relay.db") as store:
        channel, _ = store.create_channel(now=0.0)
        add(store, channel, 6)
        fresh = store.resume(channel, None)
        assert fresh is not None and fresh.after == 0 and not fresh.ahead
        told = store.resume(channel, 4)
        assert told is not None and told.after == 4 and told.channel.cursor == 4
        assert store.channel(channel).cursor == 4  # type: ignore[union-attr]
        behind = store.resume(channel, 2)
        assert behind is not None and behind.after == 4
        ahead = store.resume(channel, 50)
        assert ahead is not None and ahead.after == 4 and ahead.ahead
        assert store.resume("x" * 22, 0) is None


def test_the_history_keeps_the_newest_and_drops_acked_ones_first(tmp_path: Path) -> None:
    with RelayStore(tmp_path / "relay.db", max_requests=5) as store:
        channel, _ = store.create_channel(now=0.0)
        add(store, channel, 5)
        store.ack(channel, 3)
        appended = [store.append(channel, "POST", b"/", [], b"", now=0.0) for _ in range(3)]
        assert [a.dropped for a in appended if a] == [0, 0, 0]  # 1..3 were acked
        assert seqs(store, channel) == [4, 5, 6, 7, 8]
        assert store.channel(channel).dropped == 0  # type: ignore[union-attr]


def test_unacked_requests_go_only_over_the_cap_and_are_counted(tmp_path: Path) -> None:
    with RelayStore(tmp_path / "relay.db", max_requests=3) as store:
        channel, _ = store.create_channel(now=0.0)
        add(store, channel, 3)
        pushed = store.append(channel, "POST", b"/", [], b"", now=0.0)
        assert pushed is not None and (pushed.seq, pushed.dropped) == (4, 1)
        add(store, channel, 2)
        assert seqs(store, channel) == [4, 5, 6]
        state = store.channel(channel)
        assert state is not None and state.dropped == 3 and state.cursor == 0
        assert store.counts(state) == (3, 3)


def test_acked_requests_age_out_and_unacked_ones_never_do(tmp_path: Path) -> None:
    with RelayStore(tmp_path / "relay.db", keep_acked=7 * DAY) as store:
        channel, _ = store.create_channel(now=0.0)
        other, _ = store.create_channel(now=0.0)
        add(store, channel, 4, now=0.0)
        add(store, channel, 2, now=6 * DAY)
        add(store, other, 2, now=0.0)
        store.ack(channel, 5)
        assert store.prune(now=6 * DAY) == 0
        assert store.prune(now=7 * DAY + 1) == 4  # 1..4: acked and old
        assert seqs(store, channel) == [5, 6]
        assert seqs(store, other) == [1, 2]  # never acked: kept however old
        assert store.prune(now=100 * DAY) == 1  # 5: acked; 6 waits for its client
        assert seqs(store, channel) == [6]


def test_two_relays_never_share_a_data_file(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    with RelayStore(path):
        with pytest.raises(DataFileInUse) as caught:
            RelayStore(path).open()
        assert "another `hookwise relay serve`" in str(caught.value)
    with RelayStore(path) as again:  # the lock went with the first store
        assert again.channel_count() == 0


def test_a_file_of_something_else_is_refused_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "hookwise.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (id INTEGER)")
    conn.close()
    with pytest.raises(ConfigError) as caught:
        RelayStore(path).open()
    assert "not a relay data file" in str(caught.value)
    assert "--data" in str(caught.value)


def test_a_missing_directory_and_a_closed_store_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        RelayStore(tmp_path / "missing" / "relay.db").open()
    store = RelayStore(tmp_path / "relay.db")
    with pytest.raises(StoreNotOpen, match="open"):
        store.channel("x" * 22)


def test_the_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="max_requests"):
        RelayStore("x.db", max_requests=0)
    with pytest.raises(ValueError, match="keep_acked"):
        RelayStore("x.db", keep_acked=-1)


def test_the_file_is_durable_by_configuration(tmp_path: Path) -> None:
    with RelayStore(tmp_path / "relay.db") as store:
        conn = store._connection()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_symlink_to_a_data_file_in_use_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    link = tmp_path / "other-name.db"
    link.symlink_to(path)
    with RelayStore(path), pytest.raises(DataFileInUse):
        RelayStore(link).open()


def test_a_lock_file_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "relay.db.lock").mkdir()  # stands for any lock file that can't be opened
    with pytest.raises(ConfigError) as caught:
        RelayStore(tmp_path / "relay.db").open()
    assert "lock file" in str(caught.value)
    assert "--data" in str(caught.value)


def test_a_full_disk_fails_with_its_own_error_and_the_store_recovers(tmp_path: Path) -> None:
    with RelayStore(tmp_path / "relay.db") as store:
        channel, _ = store.create_channel(now=0.0)
        conn = store._connection()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # the file can't grow: a full disk
        with pytest.raises(sqlite3.OperationalError, match="full"):
            store.append(channel, "POST", b"/h", [], b"x" * 100_000, now=0.0)
        assert not conn.in_transaction
        conn.execute("PRAGMA max_page_count = 1073741823")
        assert add(store, channel, 1) == [1]  # the failed request took no seq
        assert seqs(store, channel) == [1]
