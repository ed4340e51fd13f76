"""The receiver over real HTTP on loopback, with a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import pytest

from hookwise import Event, Hookwise, Settings, SourceSettings, StoreSettings
from hookwise.testing import signed_request

from ._live import live

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def make_app(db: Path, *, max_body: int = 1_048_576, busy_timeout: float = 5.0) -> Hookwise:
    from hookwise.config import ServerSettings

    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{db}", busy_timeout=busy_timeout),
        server=ServerSettings(max_body_bytes=max_body),
        sources={
            "demo": SourceSettings(name="demo", provider="standard", secrets=(SECRET,)),
            "acme": SourceSettings(
                name="acme",
                provider="hmac",
                secrets=("acme-secret",),
                header="X-Acme-Signature",
                prefix="sha256=",
                dedup_key="body:id",
                type="body:kind",
            ),
        },
    )
    return Hookwise(settings=settings)


def count_events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from events").fetchone()[0])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "hooks.db"


def test_accepted_then_duplicate(db: Path) -> None:
    hw = make_app(db)
    calls: list[str] = []

    @hw.handler("demo", "order.*")
    def on_order(event: Event) -> None:
        calls.append(event.id)

    request = signed_request(hw, "demo", {"type": "order.paid", "n": 1}, delivery_id="msg_1")
    with live(hw.asgi()) as server:
        first = httpx.post(server.url + request.path, content=request.body, headers=request.headers)
        second = httpx.post(
            server.url + request.path, content=request.body, headers=request.headers
        )
    assert first.status_code == 200
    assert first.json()["status"] == "accepted"
    assert first.json()["id"] == "msg_1"
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "id": "msg_1", "seq": first.json()["seq"]}
    assert count_events(db) == 1


def test_concurrent_duplicates_run_the_handler_once(db: Path) -> None:
    hw = make_app(db)
    calls: Counter[str] = Counter()

    @hw.handler("demo", "*")
    async def on_any(event: Event) -> None:
        calls[event.id] += 1

    requests = [
        signed_request(hw, "demo", {"type": "t", "i": i}, delivery_id=f"msg_{i}") for i in range(20)
    ]

    async def blast(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url) as client:
            # each of the 20 events sent 5 times, all at once
            sends = [
                client.post(r.path, content=r.body, headers=r.headers)
                for r in requests
                for _ in range(5)
            ]
            return await asyncio.gather(*sends)

    with live(hw.asgi()) as server:
        responses = asyncio.run(blast(server.url))
    assert all(r.status_code == 200 for r in responses)
    statuses = Counter(r.json()["status"] for r in responses)
    assert statuses == {"accepted": 20, "duplicate": 80}

    async def work() -> None:
        async with hw.open_store() as store:
            worker = hw.worker(store)
            await worker.drain()

    asyncio.run(work())
    assert calls == {f"msg_{i}": 1 for i in range(20)}


@pytest.mark.parametrize("case", ["forged", "tampered", "stale", "future", "missing", "garbage"])
def test_bad_requests_are_401_and_store_nothing(db: Path, case: str) -> None:
    hw = make_app(db)
    good = signed_request(hw, "demo", {"type": "t"}, delivery_id="msg_x")
    headers = dict(good.headers)
    body = good.body
    if case == "forged":
        other = Hookwise(
            settings=Settings(
                sources={
                    "demo": SourceSettings(
                        name="demo",
                        provider="standard",
                        secrets=("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY",),
                    )
                }
            )
        )
        forged = signed_request(other, "demo", {"type": "t"}, delivery_id="msg_x")
        headers, body = dict(forged.headers), forged.body
    elif case == "tampered":
        body = body.replace(b'"t"', b'"u"')
    elif case == "stale":
        stale = signed_request(hw, "demo", {"type": "t"}, now=hw.clock.now() - 3600)
        headers, body = dict(stale.headers), stale.body
    elif case == "future":
        future = signed_request(hw, "demo", {"type": "t"}, now=hw.clock.now() + 3600)
        headers, body = dict(future.headers), future.body
    elif case == "missing":
        headers.pop("webhook-signature")
    elif case == "garbage":
        headers["webhook-signature"] = "v1,not-base64!!! v2 ,,, v1,===="
    with live(hw.asgi()) as server:
        response = httpx.post(server.url + "/hooks/demo", content=body, headers=headers)
        receiver_rejections = server.config.app.rejections  # type: ignore[attr-defined]
    assert response.status_code == 401
    assert "signature" in response.json()["error"]
    assert count_events(db) == 0
    assert sum(receiver_rejections.values()) == 1


def test_routing_answers(db: Path) -> None:
    hw = make_app(db)
    with live(hw.asgi()) as server:
        assert httpx.post(server.url + "/hooks/nope", content=b"{}").status_code == 404
        wrong_method = httpx.get(server.url + "/hooks/demo")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "POST"
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
        assert httpx.get(server.url + "/readyz").status_code == 200
        assert httpx.get(server.url + "/elsewhere").status_code == 404


def test_body_over_the_cap_is_413_from_content_length(db: Path) -> None:
    hw = make_app(db, max_body=1000)
    request = signed_request(hw, "demo", {"type": "t", "pad": "x" * 2000})
    with live(hw.asgi()) as server:
        response = httpx.post(
            server.url + request.path, content=request.body, headers=request.headers
        )
    assert response.status_code == 413
    assert count_events(db) == 0


def test_body_over_the_cap_is_413_while_streaming(db: Path) -> None:
    """A chunked body with no Content-Length is cut off once it passes the cap."""
    hw = make_app(db, max_body=1000)
    with live(hw.asgi()) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        head = (
            b"POST /hooks/demo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\n\r\n"
        )
        sock.sendall(head)
        chunk = b"x" * 600
        for _ in range(3):  # 1800 bytes, over the cap after the second chunk
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = sock.recv(4096)
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413")
    assert count_events(db) == 0


def test_locked_store_answers_503_then_recovers(db: Path) -> None:
    hw = make_app(db, busy_timeout=0.2)
    with live(hw.asgi()) as server:
        first = signed_request(hw, "demo", {"type": "t"}, delivery_id="msg_before")
        ok = httpx.post(server.url + first.path, content=first.body, headers=first.headers)
        assert ok.status_code == 200
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            blocked = signed_request(hw, "demo", {"type": "t"}, delivery_id="msg_blocked")
            response = httpx.post(
                server.url + blocked.path, content=blocked.body, headers=blocked.headers
            )
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        again = httpx.post(server.url + blocked.path, content=blocked.body, headers=blocked.headers)
        assert again.status_code == 200
        assert again.json()["status"] == "accepted"
    assert count_events(db) == 2


def test_read_only_store_answers_503_then_recovers(db: Path) -> None:
    """The database file is made immutable (``chattr +i``: even root can't write it), so
    the store opens read-only. Every webhook is refused with 503; once the file is
    writable again the receiver takes events without a restart."""

    async def create() -> None:
        async with make_app(db).open_store():
            pass

    asyncio.run(create())
    subprocess.run(["chattr", "+i", str(db)], check=True)
    try:
        hw = make_app(db)
        with live(hw.asgi()) as server:
            blocked = signed_request(hw, "demo", {"type": "t"}, delivery_id="msg_ro")
            response = httpx.post(
                server.url + blocked.path, content=blocked.body, headers=blocked.headers
            )
            assert response.status_code == 503
            assert "retry-after" in response.headers
            subprocess.run(["chattr", "-i", str(db)], check=True)
            again = httpx.post(
                server.url + blocked.path, content=blocked.body, headers=blocked.headers
            )
            assert again.status_code == 200
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=False)
    assert count_events(db) == 1


def test_accepted_body_is_stored_byte_exact(db: Path) -> None:
    hw = make_app(db)
    raw = b'{"type":"t",  "x": "\xc3\xa9",\n"y":[1,2]}  '
    request = signed_request(hw, "demo", raw, delivery_id="msg_exact")
    with live(hw.asgi()) as server:
        response = httpx.post(
            server.url + request.path,
            content=request.body,
            headers={**request.headers, "Authorization": "Bearer top", "Cookie": "a=b"},
        )
    assert response.status_code == 200
    with sqlite3.connect(db) as conn:
        body, headers = conn.execute("select body, headers from events").fetchone()
    assert bytes(body) == raw
    stored = dict(json.loads(headers))
    assert stored["authorization"] == "[redacted]"
    assert stored["cookie"] == "[redacted]"
    assert stored["webhook-id"] == "msg_exact"
