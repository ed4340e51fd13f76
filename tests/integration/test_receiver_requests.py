"""What the receiver does around verification: handshakes, allow-lists, the URL and
client address it hands to sources (trusted proxies only), and rejection records."""

from __future__ import annotations

import ipaddress
import logging

import httpx
import pytest

from hookwise.errors import VerificationError
from hookwise.events import NewEvent
from hookwise.handlers import HandlerRegistry
from hookwise.providers import Handshake, Inbound, Source
from hookwise.providers._base import Extraction
from hookwise.receiver import LogThrottle, Receiver, RejectionRecorder
from hookwise.store import EventFilter, MemoryStore, Ordering, RejectionRecord, Settlement

TOKEN = "let-me-in-please"


class TokenSource(Source):
    """A test provider: header ``x-token`` must equal the secret; GET ``?echo=`` is a
    handshake; a POST body ``handshake`` is a POST handshake; it remembers what it saw."""

    provider = "token"
    handshake_methods = frozenset({"GET"})

    def __init__(self, name: str = "tok") -> None:
        super().__init__(name, Extraction(), secret_values=(TOKEN,))
        self.seen: list[Inbound] = []

    def verify_request(self, request: Inbound, now: float) -> None:
        self.seen.append(request)
        if request.headers.get("x-token") != TOKEN:
            raise VerificationError("bad_token", "x-token does not match")

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        if request.method == "GET":
            echo = request.params.get("echo")
            if echo is None:
                return None
            if echo == "forbidden":
                return Handshake(403, b"no")
            return Handshake(body=echo.encode(), headers=(("X-Content-Type-Options", "nosniff"),))
        if request.body == b"handshake":
            return Handshake.json({"ok": True})
        return None

    def sign_headers(
        self, body: bytes, *, now: float, secret_index: int = 0, delivery_id: str | None = None
    ) -> dict[str, str]:
        return {"x-token": TOKEN}


def receiver(
    source: Source, *, trusted: tuple[str, ...] = (), store: MemoryStore | None = None
) -> Receiver:
    return Receiver(
        sources={source.name: source},
        handlers=HandlerRegistry(),
        store=store or MemoryStore(),
        max_body_bytes=1 << 20,
        trusted_proxies=trusted,
    )


def client(app: Receiver, peer: str = "203.0.113.9") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, client=(peer, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="https://hooks.example.com")


async def open_(app: Receiver) -> None:
    await app.store.open()


async def test_get_handshakes_are_answered_and_not_stored() -> None:
    source = TokenSource()
    app = receiver(source)
    await open_(app)
    async with client(app) as http:
        answer = await http.get("/hooks/tok", params={"echo": "abc 123"})
        assert answer.status_code == 200
        assert answer.text == "abc 123"
        assert answer.headers["content-type"].startswith("text/plain")
        assert answer.headers["x-content-type-options"] == "nosniff"
        refused = await http.get("/hooks/tok", params={"echo": "forbidden"})
        assert refused.status_code == 403
        not_one = await http.get("/hooks/tok")
        assert not_one.status_code == 405
        assert not_one.headers["allow"] == "POST, GET"
        put = await http.put("/hooks/tok", content=b"x")
        assert put.status_code == 405
    assert (await app.store.counts())["pending"] == 0
    assert await app.store.list_events(_all()) == []


async def test_post_handshakes_answer_after_verification_and_store_nothing() -> None:
    source = TokenSource()
    app = receiver(source)
    await open_(app)
    async with client(app) as http:
        unsigned = await http.post("/hooks/tok", content=b"handshake")
        assert unsigned.status_code == 401
        answer = await http.post("/hooks/tok", content=b"handshake", headers={"x-token": TOKEN})
        assert answer.status_code == 200
        assert answer.json() == {"ok": True}
        assert answer.headers["content-type"] == "application/json"
        event = await http.post("/hooks/tok", content=b"{}", headers={"x-token": TOKEN})
        assert event.json()["status"] == "accepted"
    assert len(await app.store.list_events(_all())) == 1


async def test_the_source_sees_the_public_or_rebuilt_url_and_the_query() -> None:
    source = TokenSource()
    app = receiver(source)
    await open_(app)
    async with client(app) as http:
        await http.post("/hooks/tok?a=1&b=two", content=b"{}", headers={"x-token": TOKEN})
        source.public_url = "https://public.example.org/in/tok"
        await http.post("/hooks/tok?a=1", content=b"{}", headers={"x-token": TOKEN})
    rebuilt, public = source.seen
    assert rebuilt.url == "https://hooks.example.com/hooks/tok?a=1&b=two"
    assert rebuilt.params == {"a": "1", "b": "two"}
    assert rebuilt.method == "POST"
    assert rebuilt.client == "203.0.113.9"
    assert public.url == "https://public.example.org/in/tok?a=1"


async def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    forwarded = {
        "x-token": TOKEN,
        "x-forwarded-for": "198.51.100.7, 10.0.0.5",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "public.example.org",
    }
    source = TokenSource()
    app = receiver(source, trusted=("10.0.0.0/8",))
    await open_(app)
    async with client(app, peer="10.0.0.2") as http:
        await http.post("/hooks/tok", content=b"{}", headers=forwarded)
    async with client(app, peer="192.0.2.66") as http:
        await http.post("/hooks/tok", content=b"{}", headers=forwarded)
    via_proxy, direct = source.seen
    assert via_proxy.client == "198.51.100.7"
    assert via_proxy.url == "https://public.example.org/hooks/tok"
    assert direct.client == "192.0.2.66"
    assert direct.url == "https://hooks.example.com/hooks/tok"


async def test_allow_ips_refuse_other_senders_with_403_and_a_record() -> None:
    source = TokenSource()
    source.allow_ips = (ipaddress.ip_network("203.0.113.0/24"),)
    store = MemoryStore()
    app = receiver(source, store=store)
    await open_(app)
    async with client(app, peer="203.0.113.77") as http:
        ok = await http.post("/hooks/tok", content=b"{}", headers={"x-token": TOKEN})
    async with client(app, peer="198.51.100.1") as http:
        refused = await http.post("/hooks/tok", content=b"{}", headers={"x-token": TOKEN})
        handshake = await http.get("/hooks/tok", params={"echo": "x"})
    assert ok.status_code == 200
    assert refused.status_code == 403
    assert handshake.status_code == 403
    assert app.rejections[("tok", "ip_not_allowed")] == 2
    await app.recorder.flush()
    records = await store.list_rejections(source="tok")
    assert [r.reason for r in records] == ["ip_not_allowed", "ip_not_allowed"]
    assert records[0].status == 403
    assert records[0].client == "198.51.100.1"


async def test_rejections_are_recorded_redacted_and_logged_with_hints(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = TokenSource()
    store = MemoryStore()
    app = receiver(source, store=store)
    await open_(app)
    with caplog.at_level(logging.WARNING, logger="hookwise.receiver"):
        async with client(app) as http:
            answer = await http.post(
                "/hooks/tok",
                content=b'{"n": 1}',
                headers={"x-token": "wrong", "authorization": "Bearer abc", "x-echo": TOKEN},
            )
    assert answer.status_code == 401
    assert answer.json() == {"status": "rejected", "error": "signature verification failed"}
    assert "bad_token" in caplog.text
    await app.recorder.flush()
    [record] = await store.list_rejections()
    assert record.reason == "bad_token"
    assert record.body == b'{"n": 1}'
    assert record.url == "https://hooks.example.com/hooks/tok"
    headers = dict(record.headers)
    assert headers["authorization"] == "[redacted]"
    assert headers["x-echo"] == "[redacted]"  # it repeats the secret
    assert TOKEN not in repr(record)


async def test_the_recorder_keeps_a_few_per_second_and_counts_the_rest() -> None:
    moments = iter([0.0] * 10 + [1.5] * 3)
    recorder = RejectionRecorder(MemoryStore(), clock=lambda: next(moments))
    wanted = [recorder.wants("tok") for _ in range(10)]
    assert wanted == [True] * RejectionRecorder.PER_SECOND + [False] * (
        10 - RejectionRecorder.PER_SECOND
    )
    assert recorder.dropped == 10 - RejectionRecorder.PER_SECOND
    assert recorder.wants("tok")  # a new second
    assert recorder.wants("other")


async def test_a_store_that_fails_to_record_loses_only_the_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(MemoryStore):
        async def record_rejections(self, records: list[RejectionRecord]) -> None:  # type: ignore[override]
            raise RuntimeError("disk on fire")

    recorder = RejectionRecorder(Broken())
    recorder.add(_record())
    with caplog.at_level(logging.WARNING):
        await recorder.flush()
    assert recorder.dropped == 1
    assert "disk on fire" in caplog.text


def _record() -> RejectionRecord:
    return RejectionRecord(
        source="tok", received_at=0.0, reason="bad_token", detail="", hints=(), status=401,
        method="POST", url="", client=None, headers=(), body=b"", body_size=0,
    )  # fmt: skip


def _all() -> EventFilter:
    return EventFilter(limit=100)


def test_a_repeating_failure_is_logged_once_per_interval() -> None:
    moments = iter([0.0, 1.0, 2.0, 4.9, 5.0, 5.1, 10.5])
    throttle = LogThrottle(seconds=5.0, clock=lambda: next(moments))
    allowed = [throttle.allow() for _ in range(7)]
    assert allowed == [True, False, False, False, True, False, True]
    # Counted since the last note was taken: 3 before 5.0 s and 1 after it.
    assert throttle.suppressed_note() == " (and 4 more like it in the last 5s)"
    assert throttle.suppressed_note() == ""


async def test_metrics_count_outcomes_and_rejection_reasons() -> None:
    source = TokenSource()
    app = receiver(source)
    await open_(app)
    async with client(app) as http:
        await http.post("/hooks/tok", content=b'{"a": 1}', headers={"x-token": TOKEN})
        await http.post("/hooks/tok", content=b'{"a": 1}', headers={"x-token": TOKEN})
        await http.post("/hooks/tok", content=b"{}", headers={"x-token": "nope"})
        await http.get("/hooks/tok", params={"echo": "hi"})
        answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(answer.text.splitlines())
    assert 'hookwise_requests_total{source="tok",outcome="accepted"} 1' in lines
    assert 'hookwise_requests_total{source="tok",outcome="duplicate"} 1' in lines
    assert 'hookwise_requests_total{source="tok",outcome="handshake"} 1' in lines
    assert 'hookwise_rejections_total{source="tok",reason="bad_token"} 1' in lines
    assert "hookwise_rejection_records_dropped_total 0" in lines
    assert "# TYPE hookwise_rejections_total counter" in lines


async def test_metrics_show_waiting_and_skipped_deliveries_from_the_store() -> None:
    store = MemoryStore()
    app = receiver(TokenSource(), store=store)
    await open_(app)
    coalesce = Ordering("coalesce")
    for n, at in enumerate([10.0, 30.0, 20.0, 40.0]):
        new_event = NewEvent(
            source="tok", dedup_key=f"e{n}", type="t", body=b"{}", ordering_key="obj",
            occurred_at=at, received_at=100.0,
        )  # fmt: skip
        await store.append(new_event, ["h"], ordering=coalesce)
    async with client(app) as http:
        before = set((await http.get("/metrics")).text.splitlines())
    assert "# TYPE hookwise_deliveries_waiting gauge" in before
    assert "hookwise_deliveries_waiting 3" in before
    [head] = await store.claim("w", limit=5, lease=30, now=101.0)
    await store.settle([Settlement(head.delivery_id, head.fence, "w", "done", 101.0, 101.0)])
    app._store_metrics = None  # the TTL passed
    async with client(app) as http:
        lines = set((await http.get("/metrics")).text.splitlines())
    assert "hookwise_deliveries_waiting 0" in lines  # the newest runs; the other two skipped
    assert 'hookwise_deliveries_skipped{reason="superseded"} 2' in lines
    assert 'hookwise_deliveries_skipped{reason="stale"} 0' in lines
    # Cached: a second scrape within the TTL does not ask the store again.
    await store.append(
        NewEvent(source="tok", dedup_key="late", type="t", body=b"{}", ordering_key="obj",
                 occurred_at=1.0, received_at=102.0),
        ["h"], ordering=coalesce,
    )  # fmt: skip
    async with client(app) as http:
        again = set((await http.get("/metrics")).text.splitlines())
    assert 'hookwise_deliveries_skipped{reason="stale"} 0' in again
    app._store_metrics = None  # the TTL passed
    async with client(app) as http:
        fresh = set((await http.get("/metrics")).text.splitlines())
    assert 'hookwise_deliveries_skipped{reason="stale"} 1' in fresh


async def test_the_rebuilt_url_keeps_the_path_as_sent() -> None:
    source = TokenSource("tok")
    app = receiver(source)
    await open_(app)
    async with client(app) as http:
        await http.post("/hooks/tok?x=%2Fy", content=b"{}", headers={"x-token": TOKEN})
    assert source.seen[0].url == "https://hooks.example.com/hooks/tok?x=%2Fy"
