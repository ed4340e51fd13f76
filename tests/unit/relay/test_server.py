"""The relay's ASGI app, request by request (``httpx.ASGITransport``, a real SQLite file).
Streams need a real server: ``tests/acceptance/test_relay.py`` runs them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path

import httpx
import pytest

from hookwise.relay.protocol import (
    Dropped,
    Heartbeat,
    Hello,
    Message,
    RelayedRequest,
    Superseded,
    decode_line,
)
from hookwise.relay.server import RelayApp, RelaySettings, StoreThread, original_headers
from hookwise.relay.store import RelayStore, Resumed

ADMIN = "admin-token-0123456789"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StoreThread]:
    thread = StoreThread(RelayStore(tmp_path / "relay.db", max_requests=100))
    await thread.open()
    yield thread
    await thread.close()


def client_for(app: RelayApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay.test")


async def new_channel(http: httpx.AsyncClient, **headers: str) -> dict[str, str]:
    created = await http.post("/channels", headers=headers)
    assert created.status_code == 201, created.text
    document: dict[str, str] = created.json()
    return document


async def test_a_request_is_committed_before_it_is_answered(store: StoreThread) -> None:
    app = RelayApp(store, RelaySettings(answer_wait=0))
    async with client_for(app) as http:
        channel = await new_channel(http)
        assert channel["url"] == f"http://relay.test/c/{channel['id']}"
        sent = await http.put(
            f"/c/{channel['id']}/hooks/stripe%2Fx?b=2&a=1",
            content=b"\x00body\xff",
            headers={"X-Signature": "abc"},
        )
        assert sent.status_code == 200
        assert sent.json() == {"status": "relayed", "seq": 1}
        (stored,) = await store.call(store.store.fetch, channel["id"], after=0)
        assert (stored.method, stored.target, stored.body) == (
            "PUT",
            b"/hooks/stripe%2Fx?b=2&a=1",
            b"\x00body\xff",
        )
        assert (b"x-signature", b"abc") in stored.headers
        bare = await http.post(f"/c/{channel['id']}", content=b"x")
        assert bare.json()["seq"] == 2
        assert (await store.call(store.store.fetch, channel["id"], after=1))[0].target == b""


async def test_unknown_channels_big_bodies_and_unknown_paths_are_refused(
    store: StoreThread,
) -> None:
    app = RelayApp(store, RelaySettings(max_body_bytes=10, answer_wait=0))
    async with client_for(app) as http:
        channel = await new_channel(http)
        assert (await http.post("/c/" + "x" * 22 + "/hooks/a", content=b"{}")).status_code == 404
        assert (await http.post("/c/../etc", content=b"{}")).status_code == 404
        too_big = await http.post(f"/c/{channel['id']}/hooks/a", content=b"x" * 11)
        assert too_big.status_code == 413
        assert await store.call(store.store.fetch, channel["id"], after=0) == []
        assert (await http.get("/elsewhere")).status_code == 404
        assert (await http.get("/channels")).status_code == 405
        assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_an_admin_token_guards_channel_creation(store: StoreThread) -> None:
    app = RelayApp(store, RelaySettings(admin_token=ADMIN, public_url="https://relay.example.com/"))
    async with client_for(app) as http:
        refused = await http.post("/channels")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = await http.post("/channels", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        channel = await new_channel(http, authorization=f"Bearer {ADMIN}")
        assert channel["url"] == f"https://relay.example.com/c/{channel['id']}"
        assert channel["token"].startswith("hwr_")
    assert await store.call(store.store.channel_count) == 1


async def test_control_endpoints_want_the_channel_token(store: StoreThread) -> None:
    app = RelayApp(store, RelaySettings(answer_wait=0))
    async with client_for(app) as http:
        channel = await new_channel(http)
        other = await new_channel(http)
        base = f"/channels/{channel['id']}"
        await http.post(f"/c/{channel['id']}/hooks/a", content=b"1")
        for token in (None, "hwr_wrong", other["token"]):
            headers = {"authorization": f"Bearer {token}"} if token else {}
            assert (await http.get(f"{base}/stream", headers=headers)).status_code == 401
            ack = await http.post(f"{base}/ack", json={"seq": 1, "status": 200}, headers=headers)
            assert ack.status_code == 401
            assert (await http.get(base, headers=headers)).status_code == 401
        stored = await store.call(store.store.channel, channel["id"])
        assert stored is not None and stored.cursor == 0
        missing = await http.get("/channels/" + "x" * 22, headers={"authorization": "Bearer x"})
        assert missing.status_code == 404


async def test_acks_move_the_durable_cursor(store: StoreThread) -> None:
    app = RelayApp(store, RelaySettings(answer_wait=0))
    async with client_for(app) as http:
        channel = await new_channel(http)
        auth = {"authorization": f"Bearer {channel['token']}"}
        base = f"/channels/{channel['id']}"
        for n in range(3):
            await http.post(f"/c/{channel['id']}/hooks/a", content=str(n).encode())
        acked = await http.post(f"{base}/ack", json={"seq": 2, "status": 200}, headers=auth)
        assert acked.json() == {"status": "acked", "cursor": 2}
        never = await http.post(f"{base}/ack", json={"seq": 9, "status": 200}, headers=auth)
        assert never.status_code == 409
        assert "never stored" in never.json()["error"]
        bad = await http.post(f"{base}/ack", content=b"{", headers=auth)
        assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
        assert (await http.get(f"{base}/ack", headers=auth)).status_code == 405
        info = (await http.get(base, headers=auth)).json()
        assert {k: info[k] for k in ("last_seq", "cursor", "held", "pending", "dropped")} == {
            "last_seq": 3,
            "cursor": 2,
            "held": 3,
            "pending": 1,
            "dropped": 0,
        }
        assert info["connected"] is False
        bad_after = await http.get(f"{base}/stream?after=abc", headers=auth)
        assert bad_after.status_code == 400 and "after" in bad_after.json()["error"]


def test_header_names_keep_their_case_when_the_server_recorded_it() -> None:
    scope = {
        "headers": [(b"x-a", b"1"), (b"x-a", b"2")],
        "extensions": {"hookwise.header_names": [b"X-A", b"x-A"]},
    }
    assert original_headers(scope) == ((b"X-A", b"1"), (b"x-A", b"2"))
    mismatched = {"headers": [(b"x-a", b"1")], "extensions": {"hookwise.header_names": [b"Y"]}}
    assert original_headers(mismatched) == ((b"x-a", b"1"),)


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"max_requests": 0}, "max_requests"),
        ({"answer_wait": 31}, "answer_wait"),
        ({"admin_token": "short"}, "at least 16"),
        ({"public_url": "relay.example.com"}, "http://"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
    ],
)
def test_settings_are_checked(settings: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        RelaySettings(**settings)  # type: ignore[arg-type]


def test_settings_never_show_the_admin_token() -> None:
    assert ADMIN not in repr(RelaySettings(admin_token=ADMIN))


class Stream:
    """One ``GET /channels/{id}/stream`` driven through the ASGI interface."""

    def __init__(self, app: RelayApp, channel: str, token: str, query: bytes) -> None:
        self.status: int | None = None
        self.messages: list[Message] = []
        self.arrived = asyncio.Event()
        self.hang_up = asyncio.Event()
        self._asked = False
        self._buffer = b""
        scope = {
            "type": "http",
            "method": "GET",
            "path": f"/channels/{channel}/stream",
            "raw_path": f"/channels/{channel}/stream".encode(),
            "query_string": query,
            "headers": [(b"authorization", f"Bearer {token}".encode())],
        }
        self.task = asyncio.create_task(app(scope, self.receive, self.send))

    async def receive(self) -> dict[str, object]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, object]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]  # type: ignore[assignment]
            return
        self._buffer += message.get("body", b"")  # type: ignore[operator]
        *lines, self._buffer = self._buffer.split(b"\n")
        self.messages.extend(decode_line(line) for line in lines if line)
        self.arrived.set()

    async def until(self, count: int) -> list[Message]:
        async with asyncio.timeout(10):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.messages


async def test_the_stream_resumes_reports_gaps_follows_new_requests_and_hands_over(
    tmp_path: Path,
) -> None:
    thread = StoreThread(RelayStore(tmp_path / "relay.db", max_requests=3))
    await thread.open()
    try:
        app = RelayApp(thread, RelaySettings(answer_wait=0))
        channel, token = await thread.call(thread.store.create_channel, now=0.0)
        for n in range(1, 6):  # 1 and 2 are pushed out unacknowledged
            await thread.call(thread.store.append, channel, "POST", b"/h", [], b"%d" % n, now=0.0)
        first = Stream(app, channel, token, b"heartbeat=1")
        hello, gap, *requests = await first.until(5)
        assert first.status == 200
        assert hello == Hello(channel, after=0, last_seq=5, dropped=2, heartbeat=1.0)
        assert gap == Dropped(count=2, first=1, last=2)
        assert [(r.seq, r.body) for r in requests] == [(3, b"3"), (4, b"4"), (5, b"5")]  # type: ignore[union-attr]

        async with client_for(app) as http:
            sent = await http.post(f"/c/{channel}/hooks/new", content=b"6")
            assert sent.json() == {"status": "relayed", "seq": 6}
        new, beat = (await first.until(7))[5:]
        assert isinstance(new, RelayedRequest) and new.target == b"/hooks/new"
        assert beat == Heartbeat()

        second = Stream(app, channel, token, b"after=5")  # this client handled up to 5
        (hello_again, again) = await second.until(2)
        assert isinstance(hello_again, Hello) and hello_again.after == 5
        assert isinstance(again, RelayedRequest) and again.seq == 6
        await asyncio.wait_for(first.task, 10)
        assert first.messages[-1] == Superseded()
        stored = await thread.call(thread.store.channel, channel)
        assert stored is not None and stored.cursor == 5  # the resume point counts as an ack

        second.hang_up.set()
        await asyncio.wait_for(second.task, 10)
    finally:
        await thread.close()


async def test_an_ack_past_any_possible_seq_or_with_a_bad_answer_is_a_400(
    store: StoreThread,
) -> None:
    app = RelayApp(store, RelaySettings(answer_wait=0))
    async with client_for(app) as http:
        channel = await new_channel(http)
        auth = {"authorization": f"Bearer {channel['token']}"}
        base = f"/channels/{channel['id']}"
        await http.post(f"/c/{channel['id']}/hooks/a", content=b"1")
        huge = await http.post(f"{base}/ack", json={"seq": 2**64, "status": 200}, headers=auth)
        assert huge.status_code == 400 and "at most" in huge.json()["error"]
        euro = {"status": 200, "content_type": "text/plain; x=\u20ac", "body": ""}
        bad = await http.post(
            f"{base}/ack", json={"seq": 1, "status": 200, "answer": euro}, headers=auth
        )
        assert bad.status_code == 400 and "content_type" in bad.json()["error"]
        bad_beat = await http.get(f"{base}/stream?heartbeat=nan", headers=auth)
        assert bad_beat.status_code == 400 and "heartbeat" in bad_beat.json()["error"]
        bad_after = await http.get(f"{base}/stream?after=%C2%B2", headers=auth)
        assert bad_after.status_code == 400 and "whole number" in bad_after.json()["error"]


class BrokenDisk(RelayStore):
    """A data file that can still be read but no longer written (a full or failing disk)."""

    def ack(self, channel_id: str, seq: int) -> int | None:
        raise sqlite3.OperationalError("disk I/O error")

    def resume(self, channel_id: str, after: int | None) -> Resumed | None:
        raise sqlite3.OperationalError("disk I/O error")

    def create_channel(self, *, now: float) -> tuple[str, str]:
        raise sqlite3.OperationalError("disk I/O error")


async def test_a_failing_data_file_is_a_503_everywhere_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    with RelayStore(path) as healthy:
        channel, token = healthy.create_channel(now=0.0)
    thread = StoreThread(BrokenDisk(path))
    await thread.open()
    try:
        app = RelayApp(thread, RelaySettings(answer_wait=0))
        auth = {"authorization": f"Bearer {token}"}
        async with client_for(app) as http:
            answers = [
                await http.post(f"/channels/{channel}/ack", json={"seq": 1}, headers=auth),
                await http.post(
                    f"/channels/{channel}/ack", json={"seq": 1, "status": 200}, headers=auth
                ),
                await http.get(f"/channels/{channel}/stream", headers=auth),
                await http.post("/channels"),
            ]
        assert [a.status_code for a in answers] == [400, 503, 503, 503]
        for answer in answers[1:]:
            assert answer.headers["retry-after"] == "5"
            assert answer.json()["status"] == "unavailable"
    finally:
        await thread.close()


async def test_stopping_answers_senders_that_wait_for_a_local_answer_at_once(
    store: StoreThread,
) -> None:
    app = RelayApp(store, RelaySettings(answer_wait=20))
    channel, token = await store.call(store.store.create_channel, now=0.0)
    stream = Stream(app, channel, token, b"")
    await stream.until(1)  # hello: a client is connected
    async with client_for(app) as http:
        sending = asyncio.create_task(http.post(f"/c/{channel}/hooks/a", content=b"1"))
        await stream.until(2)  # the client has the request; its answer never comes
        app.close_streams()  # the relay is stopping
        async with asyncio.timeout(5):  # well before answer_wait
            sent = await sending
    assert sent.status_code == 200
    assert sent.json() == {"status": "relayed", "seq": 1}
    await asyncio.wait_for(stream.task, 5)
