"""``relay connect``'s delivery loop against a scripted relay and receiver
(``httpx.MockTransport``): order, exact forwarding, acks, retries, resumption."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from hookwise.relay.client import ChannelAddress, Delivery, RelayClient, RelayRefused
from hookwise.relay.protocol import (
    Dropped,
    Heartbeat,
    Hello,
    Message,
    RelayedRequest,
    Superseded,
    Unknown,
    encode_line,
)

CHANNEL = "AbCdEfGhIjKlMnOpQrStUv"
ADDRESS = ChannelAddress.parse(f"https://relay.test/c/{CHANNEL}")
TOKEN = "hwr_the-right-token"


def request(seq: int, target: bytes = b"/hooks/stripe", body: bytes = b"{}") -> RelayedRequest:
    return RelayedRequest(
        seq=seq,
        method="POST",
        target=target,
        headers=((b"Host", b"relay.test"), (b"X-Seq", str(seq).encode()), (b"x-seq", b"dup")),
        body=body,
        received_at=0.0,
    )


@dataclass
class FakeRelay:
    """Holds requests like the relay does; each stream sends what is after the resume
    point and then ends (as a dropped connection would), until ``stop`` is set."""

    stored: list[RelayedRequest]
    stop: asyncio.Event
    cursor: int = 0
    streams: list[dict[str, str]] = field(default_factory=list)
    acks: list[dict[str, object]] = field(default_factory=list)
    ack_status: Callable[[int], int] = lambda seq: 200
    extra: list[Message] = field(default_factory=list)
    max_streams: int = 6
    stop_when_idle: bool = True

    async def handle(self, req: httpx.Request) -> httpx.Response:
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "wrong token"})
        if req.url.path == f"/channels/{CHANNEL}/ack":
            document = json.loads(req.content)
            status = self.ack_status(document["seq"])
            if status == 200:
                self.acks.append(document)
                self.cursor = max(self.cursor, document["seq"])
            return httpx.Response(status, json={"cursor": self.cursor})
        assert req.url.path == f"/channels/{CHANNEL}/stream"
        params = dict(req.url.params)
        self.streams.append(params)
        if "after" in params:
            self.cursor = max(self.cursor, int(params["after"]))
        after = self.cursor
        pending = [r for r in self.stored if r.seq > after]
        if (not pending and self.stop_when_idle) or len(self.streams) >= self.max_streams:
            self.stop.set()
        hello = Hello(CHANNEL, after, max((r.seq for r in self.stored), default=0), 0, 15.0)
        lines = [encode_line(hello), *(encode_line(m) for m in self.extra)]
        lines += [encode_line(r) for r in pending]

        async def body() -> AsyncIterator[bytes]:
            for line in lines:
                yield line

        return httpx.Response(200, content=body())


@dataclass
class FakeReceiver:
    answers: list[int | Exception]
    seen: list[httpx.Request] = field(default_factory=list)

    async def handle(self, req: httpx.Request) -> httpx.Response:
        await req.aread()
        self.seen.append(req)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, text=f"local {answer}", headers={"retry-after": "0"})


async def run(
    relay: FakeRelay, receiver: FakeReceiver, *, to: str = "http://127.0.0.1:8000"
) -> tuple[RelayClient, list[Delivery], list[str]]:
    deliveries: list[Delivery] = []
    notices: list[str] = []
    client = RelayClient(
        ADDRESS,
        token=TOKEN,
        to=to,
        on_delivery=deliveries.append,
        on_notice=notices.append,
        relay_transport=httpx.MockTransport(relay.handle),
        local_transport=httpx.MockTransport(receiver.handle),
        rand=lambda: 0.0,
    )
    await asyncio.wait_for(client.run(relay.stop), timeout=10)
    return client, deliveries, notices


async def test_each_request_is_forwarded_exactly_in_order_and_acked() -> None:
    stored = [request(1, b"/hooks/stripe?x=%2F", b"\x00\xffbody"), request(2, b"/hooks/github")]
    relay = FakeRelay(stored, asyncio.Event())
    receiver = FakeReceiver([200, 404])
    client, deliveries, notices = await run(relay, receiver, to="http://127.0.0.1:8000/app")
    first, second = receiver.seen
    assert first.method == "POST"
    assert first.url.raw_path == b"/app/hooks/stripe?x=%2F"
    assert second.url.raw_path == b"/app/hooks/github"
    assert first.content == b"\x00\xffbody"
    assert first.headers.raw == [
        (b"Host", b"127.0.0.1:8000"),
        (b"X-Seq", b"1"),
        (b"x-seq", b"dup"),
        (b"Content-Length", b"6"),
    ]
    assert [a["seq"] for a in relay.acks] == [1, 2]
    assert [a["status"] for a in relay.acks] == [200, 404]  # a 4xx is a final answer
    assert relay.acks[0]["answer"]["body"] == "bG9jYWwgMjAw"  # type: ignore[index]
    assert [(d.seq, d.status, d.acked) for d in deliveries] == [(1, 200, True), (2, 404, True)]
    assert client.after == 2
    assert "resuming after seq 0 (2 waiting)" in notices[0]
    assert relay.streams[0] == {"heartbeat": "15"}
    assert relay.streams[-1]["after"] == "2"


async def test_a_receiver_that_fails_is_retried_and_nothing_is_acked_until_it_answers() -> None:
    relay = FakeRelay([request(1), request(2)], asyncio.Event())
    down = httpx.ConnectError("connection refused")
    receiver = FakeReceiver([down, 503, 429, 200, 200])
    _, deliveries, _ = await run(relay, receiver)
    assert [(d.seq, d.status, d.acked) for d in deliveries] == [
        (1, None, False),
        (1, 503, False),
        (1, 429, False),
        (1, 200, True),
        (2, 200, True),
    ]
    assert "ConnectError: connection refused" in (deliveries[0].error or "")
    assert "not acked: retrying in" in deliveries[1].line()
    assert "unreachable (ConnectError" in deliveries[0].line()
    assert [a["seq"] for a in relay.acks] == [1, 2]
    assert [r.headers["x-seq"] for r in receiver.seen] == ["1, dup"] * 4 + ["2, dup"]


async def test_after_a_disconnect_it_resumes_after_the_last_request_it_handled() -> None:
    relay = FakeRelay([request(1), request(2), request(3)], asyncio.Event())

    class Stopping(FakeReceiver):
        async def handle(self, req: httpx.Request) -> httpx.Response:
            response = await super().handle(req)
            if len(self.seen) == 1:
                relay.stored.append(request(4))  # arrives while the first stream is open
            return response

    receiver = Stopping([])
    client, deliveries, _ = await run(relay, receiver)
    assert [d.seq for d in deliveries] == [1, 2, 3, 4]
    assert [r.headers["x-seq"].split(",")[0] for r in receiver.seen] == ["1", "2", "3", "4"]
    assert [s.get("after") for s in relay.streams] == [None, "3", "4"]
    assert client.after == 4


async def test_a_failed_ack_reconnects_and_the_next_stream_acks_instead() -> None:
    relay = FakeRelay(
        [request(1), request(2)], asyncio.Event(), ack_status=lambda seq: 503 if seq == 1 else 200
    )
    receiver = FakeReceiver([])
    client, deliveries, notices = await run(relay, receiver)
    assert [d.seq for d in deliveries] == [1, 2]  # 1 was not delivered twice
    assert relay.streams[1]["after"] == "1"
    assert any("could not acknowledge seq 1" in n for n in notices)
    assert client.after == 2


async def test_a_seq_already_handled_is_never_delivered_again() -> None:
    relay = FakeRelay([request(1)], asyncio.Event())
    relay.extra = [request(1), Heartbeat(), Unknown("future"), Dropped(2, 5, 6)]
    receiver = FakeReceiver([])
    _, deliveries, notices = await run(relay, receiver)
    # the stream repeats seq 1 (extra) before the real one: delivered once, then skipped
    assert [d.seq for d in deliveries] == [1]
    assert len(receiver.seen) == 1
    assert any("dropped 2 request(s)" in n and "seq 5..6" in n for n in notices)


@pytest.mark.parametrize(
    ("token", "extra", "complaint"),
    [
        ("hwr_wrong", [], "refused the token"),
        (TOKEN, [Superseded()], "took this channel's stream over"),
    ],
)
async def test_a_refusal_ends_the_client_with_the_reason(
    token: str, extra: list[Message], complaint: str
) -> None:
    relay = FakeRelay([], asyncio.Event(), extra=extra, stop_when_idle=False, max_streams=99)
    receiver = FakeReceiver([])
    client = RelayClient(
        ADDRESS,
        token=token,
        relay_transport=httpx.MockTransport(relay.handle),
        local_transport=httpx.MockTransport(receiver.handle),
        rand=lambda: 0.0,
    )
    with pytest.raises(RelayRefused, match=complaint):
        await asyncio.wait_for(client.run(relay.stop), timeout=10)  # only a refusal ends it
    assert receiver.seen == []


async def test_an_unknown_channel_is_a_refusal() -> None:
    client = RelayClient(
        ADDRESS,
        token=TOKEN,
        relay_transport=httpx.MockTransport(lambda req: httpx.Response(404)),
        rand=lambda: 0.0,
    )
    with pytest.raises(RelayRefused, match="no channel"):
        await asyncio.wait_for(client.run(asyncio.Event()), timeout=10)


async def test_stopping_while_the_receiver_is_down_leaves_the_request_unacked() -> None:
    stop = asyncio.Event()
    relay = FakeRelay([request(1)], stop, max_streams=99)
    relay_handle = relay.handle

    async def never_stop(req: httpx.Request) -> httpx.Response:
        response = await relay_handle(req)
        stop.clear()
        return response

    async def down(req: httpx.Request) -> httpx.Response:
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return httpx.Response(503)

    client = RelayClient(
        ADDRESS,
        token=TOKEN,
        relay_transport=httpx.MockTransport(never_stop),
        local_transport=httpx.MockTransport(down),
        rand=lambda: 1.0,
        retry_cap=30.0,
    )
    await asyncio.wait_for(client.run(stop), timeout=5)
    assert relay.acks == []
    assert client.after == 0


def test_a_channel_url_is_read_or_refused_with_the_expected_shape() -> None:
    address = ChannelAddress.parse(f"https://relay.example.com/relay/c/{CHANNEL}/hooks/x")
    assert address.base == "https://relay.example.com/relay"
    assert address.url == f"https://relay.example.com/relay/c/{CHANNEL}"
    assert address.stream_url.endswith(f"/relay/channels/{CHANNEL}/stream")
    for bad in (
        "relay.example.com/c/x",
        f"ftp://h/c/{CHANNEL}",
        "https://h/hooks/x",
        "https://h/c/a",
    ):
        with pytest.raises(ValueError, match="channel"):
            ChannelAddress.parse(bad)


def test_the_local_url_must_be_a_plain_base() -> None:
    with pytest.raises(ValueError, match="without"):
        RelayClient(ADDRESS, token=TOKEN, to="http://127.0.0.1:8000/?x=1")
    with pytest.raises(ValueError, match="http"):
        RelayClient(ADDRESS, token=TOKEN, to="ftp://127.0.0.1")
    with pytest.raises(ValueError, match="token"):
        RelayClient(ADDRESS, token="")


def test_a_delivery_line_has_time_seq_method_path_status_and_duration() -> None:
    line = Delivery(17, "POST", b"/hooks/stripe", 0.0, 0.0123, 200).line()
    assert line.split(" ", 1)[1] == "17 POST /hooks/stripe -> 200 12ms"
    assert Delivery(1, "GET", b"", 0.0, 0.0, 200).as_json()["acked"] is True


async def test_the_local_content_type_goes_back_to_the_relay_as_its_bytes() -> None:
    relay = FakeRelay([request(1)], asyncio.Event())
    raw_type = "text/plain; name=€".encode()  # UTF-8 bytes in a header value

    async def answer(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=[(b"Content-Type", raw_type)], content=b"ok")

    client = RelayClient(
        ADDRESS,
        token=TOKEN,
        relay_transport=httpx.MockTransport(relay.handle),
        local_transport=httpx.MockTransport(answer),
        rand=lambda: 0.0,
    )
    await asyncio.wait_for(client.run(relay.stop), timeout=10)
    (ack,) = relay.acks
    sent_type = ack["answer"]["content_type"]  # type: ignore[index]
    assert sent_type.encode("latin-1") == raw_type  # what the relay sends back, exactly


def test_bad_urls_and_tokens_are_refused_before_connecting() -> None:
    for bad in (f"https://h:x/c/{CHANNEL}", f"https://h:99999/c/{CHANNEL}"):
        with pytest.raises(ValueError, match="not a valid URL"):
            ChannelAddress.parse(bad)
    with pytest.raises(ValueError, match="--to"):
        RelayClient(ADDRESS, token=TOKEN, to="http://[::1")
    for token in ("hwr_é", "hwr_x\n", "hwr x"):
        with pytest.raises(ValueError, match="--token"):
            RelayClient(ADDRESS, token=token)
