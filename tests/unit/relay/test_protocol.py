"""The relay's wire format and forwarding rules: pure functions of bytes."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.relay.protocol import (
    ANSWER_BODY_LIMIT,
    Ack,
    Dropped,
    Heartbeat,
    Hello,
    LocalAnswer,
    ProtocolError,
    RelayedRequest,
    Superseded,
    Unknown,
    decode_headers,
    decode_line,
    encode_headers,
    encode_line,
    forward_headers,
    hash_token,
    is_channel_id,
    is_final,
    local_path,
    new_channel_id,
    new_token,
    token_matches,
)

header_names = st.binary(min_size=1, max_size=20)
header_values = st.binary(max_size=40)
requests = st.builds(
    RelayedRequest,
    seq=st.integers(min_value=1, max_value=2**62),
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "PROPFIND"]),
    target=st.binary(max_size=60),
    headers=st.lists(st.tuples(header_names, header_values), max_size=8).map(tuple),
    body=st.binary(max_size=300),
    received_at=st.floats(min_value=0, max_value=4e9),
)


@given(requests)
def test_a_request_survives_the_wire_byte_for_byte(request: RelayedRequest) -> None:
    line = encode_line(request)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    line.decode("ascii")  # JSON escapes whatever is not ASCII
    assert decode_line(line) == request
    assert decode_line(line.decode("ascii")) == request


def test_every_message_type_round_trips() -> None:
    messages = [
        Hello(channel="abc", after=4, last_seq=9, dropped=1, heartbeat=15.0),
        Dropped(count=3, first=5, last=7),
        Heartbeat(),
        Superseded(),
    ]
    for message in messages:
        assert decode_line(encode_line(message)) == message


def test_an_unknown_type_is_kept_apart_so_clients_can_skip_it() -> None:
    assert decode_line(b'{"type": "resize", "rows": 3}') == Unknown("resize")


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"seq": 1}', "'type'"),
        (b'{"type": "request", "seq": "1"}', "'seq' must be an integer"),
        (b'{"type": "request", "seq": true}', "'seq' must be an integer"),
        (
            b'{"type": "request", "seq": 1, "method": "POST", "target": "/", "headers": [],'
            b' "body": "%%%", "received_at": 0}',
            "not valid base64",
        ),
        (
            b'{"type": "request", "seq": 1, "method": "POST", "target": "/", "headers": [["a"]],'
            b' "body": "", "received_at": 0}',
            "[name, value] pair",
        ),
        (
            b'{"type": "request", "seq": 1, "method": "POST", "target": "/\\u20ac",'
            b' "headers": [], "body": "", "received_at": 0}',
            "outside Latin-1",
        ),
    ],
)
def test_a_bad_line_says_what_is_wrong(line: bytes, complaint: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_line(line)
    assert complaint in str(caught.value)


@given(st.binary(max_size=200))
def test_garbage_only_ever_raises_a_protocol_error(raw: bytes) -> None:
    try:
        decode_line(raw)
    except ProtocolError:
        pass


def test_headers_are_stored_as_latin1_json_and_come_back_exactly() -> None:
    headers = ((b"X-Caf\xe9", b"\x00\xff value"), (b"x-dup", b"1"), (b"X-Dup", b"2"))
    text = encode_headers(headers)
    assert json.loads(text)[1] == ["x-dup", "1"]
    assert decode_headers(text) == headers
    with pytest.raises(ProtocolError, match="not JSON"):
        decode_headers("{")


def test_an_ack_round_trips_with_the_local_answer() -> None:
    answer = LocalAnswer(200, "text/plain", b"challenge-123")
    assert Ack.decode(Ack(12, 200, answer).encode()) == Ack(12, 200, answer)
    assert Ack.decode(b'{"seq": 3, "status": 404}') == Ack(3, 404)


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b'{"seq": 0, "status": 200}', "at least 1"),
        (b'{"seq": 9223372036854775808, "status": 200}', "at most 9223372036854775807"),
        (
            b'{"seq": 1, "status": 200, "answer": {"status": 200, "body": "", '
            b'"content_type": "text/plain\\r\\nSet-Cookie: a=b"}}',
            "without control characters",
        ),
        (
            b'{"seq": 1, "status": 200, "answer": {"status": 200, "body": "", '
            b'"content_type": "text/plain; x=\\u20ac"}}',
            "Latin-1",
        ),
        (b'{"seq": 1}', "'status' must be an integer"),
        (b'{"seq": 1, "status": 200, "answer": 5}', "must be an object"),
        (
            b'{"seq": 1, "status": 200, "answer": {"status": 999, "body": ""}}',
            "not an HTTP status",
        ),
    ],
)
def test_a_bad_ack_is_refused_with_a_reason(raw: bytes, complaint: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        Ack.decode(raw)
    assert complaint in str(caught.value)


def test_an_ack_never_carries_a_large_answer() -> None:
    body = base64.b64encode(b"x" * (ANSWER_BODY_LIMIT + 1)).decode()
    raw = json.dumps({"seq": 1, "status": 200, "answer": {"status": 200, "body": body}})
    with pytest.raises(ProtocolError, match="over"):
        Ack.decode(raw.encode())


def test_forwarding_keeps_order_case_and_repeats_and_replaces_only_host_and_hop_by_hop() -> None:
    sent = [
        (b"Host", b"relay.example.com"),
        (b"Stripe-Signature", b"t=1,v1=abc"),
        (b"X-Dup", b"1"),
        (b"connection", b"keep-alive, X-Trace"),
        (b"x-dup", b"2"),
        (b"X-Trace", b"hop"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Content-Length", b"7"),
        (b"Content-Type", b"application/json"),
        (b"Expect", b"100-continue"),
    ]
    assert forward_headers(sent, host=b"127.0.0.1:8000", body_length=7) == [
        (b"Host", b"127.0.0.1:8000"),
        (b"Stripe-Signature", b"t=1,v1=abc"),
        (b"X-Dup", b"1"),
        (b"x-dup", b"2"),
        (b"Content-Length", b"7"),
        (b"Content-Type", b"application/json"),
    ]


def test_a_chunked_body_is_forwarded_with_its_length() -> None:
    sent = [(b"host", b"r"), (b"transfer-encoding", b"chunked"), (b"x-a", b"1")]
    assert forward_headers(sent, host=b"l", body_length=0) == [
        (b"host", b"l"),
        (b"x-a", b"1"),
        (b"Content-Length", b"0"),
    ]
    assert forward_headers([], host=b"l", body_length=3) == [
        (b"Host", b"l"),
        (b"Content-Length", b"3"),
    ]
    assert forward_headers([(b"X-A", b"1")], host=b"l", body_length=0) == [
        (b"Host", b"l"),
        (b"X-A", b"1"),
    ]


@pytest.mark.parametrize(
    ("base", "target", "expected"),
    [
        (b"/", b"/hooks/stripe", b"/hooks/stripe"),
        (b"", b"/hooks/stripe?a=%2F&b", b"/hooks/stripe?a=%2F&b"),
        (b"/app/", b"/hooks/github", b"/app/hooks/github"),
        (b"/app", b"", b"/app"),
        (b"/", b"", b"/"),
        (b"/", b"?x=1", b"/?x=1"),
        (b"/app", b"?x=1", b"/app?x=1"),
        (b"/", b"/a b\xe9", b"/a%20b%E9"),
    ],
)
def test_the_local_path_is_the_base_then_the_senders_target(
    base: bytes, target: bytes, expected: bytes
) -> None:
    assert local_path(base, target) == expected


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (200, True),
        (204, True),
        (302, True),
        (400, True),
        (401, True),
        (404, True),
        (408, False),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
    ],
)
def test_only_a_decision_is_final(status: int, final: bool) -> None:
    assert is_final(status) is final


def test_channel_ids_and_tokens_are_unguessable_and_checked_in_constant_time() -> None:
    ids = {new_channel_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(is_channel_id(i) and len(i) >= 22 for i in ids)
    assert not is_channel_id("short")
    assert not is_channel_id("a" * 20 + "/x")
    token = new_token()
    assert token.startswith("hwr_") and len(token) > 40
    stored = hash_token(token)
    assert token not in stored.hex()
    assert token_matches(token, stored)
    assert not token_matches(token + "x", stored)
    assert not token_matches(None, stored)
    assert not token_matches("", stored)


def test_json_nested_too_deep_is_a_protocol_error_too() -> None:
    with pytest.raises(ProtocolError, match="not JSON"):
        decode_line(b"[" * 100_000)
    with pytest.raises(ProtocolError, match="not JSON"):
        Ack.decode(b"[" * 100_000)
