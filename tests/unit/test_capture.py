"""Captured requests: reading raw HTTP and JSON captures, and checking them offline."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookwise.capture import (
    Capture,
    captured_at,
    check,
    inbound,
    load_capture,
    parse_capture,
    parse_http,
    parse_json,
    source_name,
    verify_capture,
)
from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Handshake, Inbound, Source, build_source
from hookwise.providers._base import Extraction

NOW = 1_700_000_000.0
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type":"order.created","id":"evt_1","data":{"id":"ord_1"}}'
BINARY = bytes(range(256)) + b"\r\n\r\n\x00"


def source(**kwargs: Any) -> Source:
    kwargs.setdefault("secrets", (WHSEC,))
    return build_source(SourceSettings(name="orders", provider="standard", **kwargs))


def http(headers: dict[str, str], body: bytes, *, eol: str = "\r\n", target: str = "") -> bytes:
    line = f"POST {target or '/hooks/orders'} HTTP/1.1{eol}"
    head = line + "".join(f"{name}: {value}{eol}" for name, value in headers.items()) + eol
    return head.encode("latin-1") + body


def signed(body: bytes = BODY, *, now: float = NOW) -> dict[str, str]:
    return {"Host": "hooks.example.com", **source().sign_headers(body, now=now, delivery_id="m1")}


def config_error(data: bytes) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_capture(data, name="capture.http")
    assert caught.value.file == "capture.http"
    assert caught.value.fix
    return caught.value


class TestRawHttp:
    @pytest.mark.parametrize("eol", ["\r\n", "\n"])
    def test_head_with_crlf_or_lf_and_the_body_exactly(self, eol: str) -> None:
        body = b'{"a": 1}\r\n\r\nnot a header: still body\n'
        capture = parse_capture(http({"Host": "h", "X-Id": "7"}, body, eol=eol))
        assert capture.method == "POST"
        assert capture.target == "/hooks/orders"
        assert capture.headers == (("Host", "h"), ("X-Id", "7"))
        assert capture.body == body
        assert capture.notes == ()

    def test_binary_body_is_kept_byte_for_byte(self) -> None:
        assert parse_http(http({"Host": "h"}, BINARY)).body == BINARY

    def test_no_line_break_is_added_or_removed(self) -> None:
        assert parse_http(b"POST /hooks/a HTTP/1.1\nHost: h\n\n{}").body == b"{}"
        assert parse_http(b"POST /hooks/a HTTP/1.1\nHost: h\n\n{}\n").body == b"{}\n"

    def test_no_blank_line_means_no_body(self) -> None:
        capture = parse_http(b"POST /hooks/a HTTP/1.1\r\nHost: h\r\n")
        assert (capture.body, capture.headers) == (b"", (("Host", "h"),))

    def test_full_url_without_version_and_comments_first(self) -> None:
        data = b"### saved by an editor\n// a comment\n\npost https://h.example/hooks/a?x=1\n\nhi"
        capture = parse_http(data)
        assert (capture.method, capture.target, capture.query) == (
            "POST",
            "https://h.example/hooks/a?x=1",
            "x=1",
        )
        assert capture.body == b"hi"

    def test_header_values_are_latin1_text_as_the_receiver_decodes_them(self) -> None:
        capture = parse_http(b"POST /hooks/a HTTP/1.1\nX-Name: caf\xc3\xa9\n\n")
        assert capture.header("x-name") == "caf\xc3\xa9"

    def test_repeated_and_folded_headers(self) -> None:
        data = b"POST /hooks/a HTTP/1.1\nAccept: a\nX-Long: one\n  two\naccept: b\n\n"
        capture = parse_http(data)
        assert capture.header_map() == {"accept": "a, b", "x-long": "one two"}

    def test_content_length_trims_an_editors_final_line_break(self) -> None:
        capture = parse_http(b"POST /hooks/a HTTP/1.1\nContent-Length: 2\n\n{}\n")
        assert capture.body == b"{}"
        assert "final line break" in capture.notes[0]

    def test_content_length_mismatch_is_noted_not_fatal(self) -> None:
        capture = parse_http(b"POST /hooks/a HTTP/1.1\nContent-Length: 10\n\n{}")
        assert capture.body == b"{}"
        assert "cut short or edited" in capture.notes[0]

    def test_chunked_body_is_decoded(self) -> None:
        head = b"POST /hooks/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        data = head + b'4\r\n{"a"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n'
        assert parse_http(data).body == b'{"a":1}'

    def test_http2_authority_becomes_the_host(self) -> None:
        capture = parse_http(b"POST /hooks/a HTTP/2\n:authority: h.example\n\n")
        assert capture.header("host") == "h.example"

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            (b"", "empty"),
            (b"\n\n  \n", "empty"),
            (b"# only a comment\n", "no request line"),
            (b"hello\n\nbody", "line 1 is not a request line"),
            (b"POST\n\n", "line 1 is not a request line"),
            (b"P0ST /hooks/a HTTP/1.1\n\n", "does not start with an HTTP method"),
            (b"POST /hooks/a HTTP/one\n\n", "not an HTTP version"),
            (b"POST hooks/a HTTP/1.1\n\n", "a path (/hooks/NAME) or a full URL"),
            (b"POST /hooks/a HTTP/1.1\nHost h\n\n", "line 2 is not a header"),
            (b"POST /hooks/a HTTP/1.1\n bad fold\n\n", "follows no header"),
            (b"POST /hooks/a HTTP/1.1\nTransfer-Encoding: chunked\n\nzz\n", "chunked"),
            (b"POST /hooks/a HTTP/1.1\nTransfer-Encoding: chunked\n\nff\nab", "middle of a chunk"),
        ],
    )
    def test_malformed_captures_are_clear_errors(self, data: bytes, problem: str) -> None:
        error = config_error(data)
        assert problem in error.problem
        assert "Traceback" not in str(error)


class TestJson:
    def test_headers_as_an_object_and_a_text_body(self) -> None:
        document = {"method": "post", "url": "/hooks/a", "headers": {"X-Id": "1"}, "body": "{}"}
        capture = parse_capture(json.dumps(document).encode())
        assert (capture.method, capture.target, capture.headers, capture.body) == (
            "POST",
            "/hooks/a",
            (("X-Id", "1"),),
            b"{}",
        )

    def test_headers_as_pairs_and_a_base64_body(self) -> None:
        document = {
            "url": "https://h.example/hooks/a",
            "headers": [["X-Id", "1"], ["X-Id", "2"]],
            "body_base64": base64.b64encode(BINARY).decode(),
        }
        capture = parse_json(json.dumps(document).encode())
        assert capture.body == BINARY
        assert capture.method == "POST"
        assert capture.header("x-id") == "1, 2"

    def test_a_text_body_is_sent_as_utf8(self) -> None:
        capture = parse_json('{"headers": {}, "body": "café"}'.encode())
        assert capture.body == "café".encode()

    def test_header_lists_and_numbers(self) -> None:
        capture = parse_json(b'{"headers": {"Accept": ["a", "b"], "Content-Length": 2}}')
        assert capture.header_map() == {"accept": "a, b", "content-length": "2"}
        assert capture.notes == ("the capture has no body; checked with an empty one",)

    def test_a_rejection_record_document(self) -> None:
        document = {
            "id": 3,
            "received_at": "2023-11-14T22:13:20.000Z",
            "source": "orders",
            "status": 401,
            "reason": "no_matching_signature",
            "method": "POST",
            "url": "https://hooks.example.com/hooks/orders",
            "client": "203.0.113.9",
            "body_size": 40000,
            "headers": [["webhook-id", "m1"], ["authorization", "[redacted]"]],
            "body": base64.b64encode(b"\xff\x00").decode(),
            "body_encoding": "base64",
            "body_kept": 2,
        }
        capture = parse_capture(json.dumps(document, indent=2).encode())
        assert capture.source == "orders"
        assert capture.received_at == NOW
        assert capture.client == "203.0.113.9"
        assert capture.body == b"\xff\x00"
        assert capture.body_size == 40000

    def test_an_events_show_document(self) -> None:
        document = {
            "seq": 1,
            "source": "orders",
            "received_at": NOW,
            "headers": [["webhook-id", "m1"]],
            "body": BODY.decode(),
            "body_encoding": "utf-8",
            "json": json.loads(BODY),
        }
        capture = parse_capture(json.dumps(document).encode())
        assert capture.body == BODY
        assert capture.body_size is None
        assert captured_at(capture) == NOW

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ('{"headers": {}', "not valid JSON"),
            ('{"headers": {}}}', "not valid JSON"),
            ("{}", 'no "headers"'),
            ('{"headers": "x: y"}', "neither an object nor a list"),
            ('{"headers": [["a"]]}', "[name, value] pairs"),
            ('{"headers": {"bad name": "x"}}', "is not a header name"),
            ('{"headers": {"x": null}}', "is not a string"),
            ('{"headers": {}, "body": {"a": 1}}', '"body" is not a string'),
            ('{"headers": {}, "body_base64": "%%%"}', "not valid base64"),
            ('{"headers": {}, "body": "", "body_base64": ""}', "both"),
            ('{"headers": {}, "method": 5}', '"method" is not a string'),
            ('{"headers": {}, "method": "P O"}', "not an HTTP method"),
        ],
    )
    def test_malformed_captures_are_clear_errors(self, text: str, problem: str) -> None:
        assert problem in config_error(text.encode()).problem

    @pytest.mark.parametrize("value", [1e300, -5, "not a time", True, "99999-01-01"])
    def test_an_implausible_received_at_is_ignored_with_a_note(self, value: object) -> None:
        capture = parse_json(json.dumps({"headers": {}, "body": "", "received_at": value}).encode())
        assert capture.received_at is None
        assert "is not a time; ignored" in capture.notes[0]

    def test_not_an_object(self) -> None:
        with pytest.raises(ConfigError, match="not an object"):
            parse_json(b"[1, 2]", name="c.json")

    def test_not_utf8(self) -> None:
        with pytest.raises(ConfigError, match="not UTF-8"):
            parse_json(b'{"headers": {}, "body": "\xff"}')


class TestFiles:
    def test_load_capture_reads_bytes(self, tmp_path: Path) -> None:
        path = tmp_path / "c.http"
        path.write_bytes(http({"Host": "h"}, BINARY))
        assert load_capture(path).body == BINARY

    def test_missing_file_and_directory(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="no such file") as caught:
            load_capture(tmp_path / "nope.http")
        assert caught.value.file == str(tmp_path / "nope.http")
        with pytest.raises(ConfigError, match="is a directory"):
            load_capture(tmp_path)


class TestWhatTheCaptureSays:
    @pytest.mark.parametrize(
        ("target", "name"),
        [
            ("/hooks/orders", "orders"),
            ("/hooks/orders/", "orders"),
            ("/app/hooks/orders?x=1", "orders"),
            ("https://h.example/hooks/stripe_live", "stripe_live"),
            ("/webhooks", None),
            ("/hooks/", None),
            ("/hooks/a/b", None),
        ],
    )
    def test_source_name_from_the_path(self, target: str, name: str | None) -> None:
        assert source_name(Capture("POST", target, (), b"")) == name

    def test_a_stored_record_names_its_source(self) -> None:
        assert source_name(Capture("POST", "/x", (), b"", source="orders")) == "orders"

    def test_captured_at_from_the_date_header(self) -> None:
        capture = Capture("POST", "/", (("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),), b"")
        assert captured_at(capture) == NOW
        assert captured_at(Capture("POST", "/", (("Date", "yesterday"),), b"")) is None
        assert captured_at(Capture("POST", "/", (), b"")) is None

    def test_the_url_verification_sees(self) -> None:
        capture = Capture("POST", "/hooks/orders?a=1", (("Host", "h.example"),), b"")
        assert inbound(capture, source()).url == "http://h.example/hooks/orders?a=1"
        assert inbound(capture, source(public_url="https://p.example/hooks/orders")).url == (
            "https://p.example/hooks/orders?a=1"
        )
        given = inbound(capture, source(), url="https://x.example/h?b=2")
        assert (given.url, given.query) == ("https://x.example/h?b=2", "b=2")
        forwarded = Capture(
            "POST",
            "/hooks/orders",
            (("Host", "internal:8000"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "f")),
            b"",
        )
        assert inbound(forwarded, source()).url == "https://f/hooks/orders"


class TestCheck:
    def test_valid_delivery_is_described(self) -> None:
        verdict = check(parse_capture(http(signed(), BODY)), source(), now=NOW)
        assert verdict.valid and verdict.status == 200 and verdict.reason is None
        assert verdict.description is not None
        assert (verdict.description.dedup_key, verdict.description.type) == ("m1", "order.created")
        document = verdict.to_json()
        assert document["verdict"] == "VALID"
        assert document["event"] == {
            "dedup_key": "m1",
            "type": "order.created",
            "ordering_key": None,
            "occurred_at": None,
        }

    def test_tampered_body(self) -> None:
        capture = parse_capture(http(signed(), BODY.replace(b"ord_1", b"ord_2")))
        verdict = check(capture, source(), now=NOW)
        assert not verdict.valid and verdict.status == 401
        assert verdict.reason == "no_matching_signature"
        assert verdict.to_json()["verdict"] == "REJECTED"

    def test_stale_request_says_the_signature_itself_is_right(self) -> None:
        verdict = check(parse_capture(http(signed(), BODY)), source(), now=NOW + 7200)
        assert verdict.reason == "timestamp_too_old"
        assert verdict.offset == 7200
        assert any("NTP" in hint for hint in verdict.hints)
        assert any("the signature is right, only its age" in note for note in verdict.notes)

    def test_stale_and_forged(self) -> None:
        capture = parse_capture(http(signed(), b"{}"))
        verdict = check(capture, source(), now=NOW - 7200)
        assert verdict.reason == "timestamp_too_new"
        assert any("wrong as well as its age" in note for note in verdict.notes)

    def test_reserialized_body(self) -> None:
        pretty = json.dumps(json.loads(BODY), indent=2).encode()
        verdict = check(parse_capture(http(signed(), pretty)), source(), now=NOW)
        assert verdict.reason == "no_matching_signature"
        assert any("encoded it again" in hint for hint in verdict.hints)

    def test_a_final_line_break_added_by_an_editor(self) -> None:
        verdict = check(parse_capture(http(signed(), BODY + b"\n")), source(), now=NOW)
        assert not verdict.valid
        assert any("without the line break at the end" in note for note in verdict.notes)

    def test_redacted_headers_and_a_cut_body_are_noted(self) -> None:
        capture = Capture(
            "POST",
            "/hooks/orders",
            (("authorization", "[redacted]"),),
            b"{}",
            body_size=20000,
        )
        verdict = check(capture, source(), now=NOW)
        assert any("authorization was redacted" in note for note in verdict.notes)
        assert any("first 2 of 20000 body bytes" in note for note in verdict.notes)

    def test_allow_ips(self) -> None:
        allowed = source(allow_ips=("203.0.113.0/24",))
        capture = parse_capture(http(signed(), BODY))
        outside = Capture(capture.method, capture.target, capture.headers, BODY, client="8.8.8.8")
        verdict = check(outside, allowed, now=NOW)
        assert (verdict.valid, verdict.status, verdict.reason) == (False, 403, "ip_not_allowed")
        inside = Capture(
            capture.method, capture.target, capture.headers, BODY, client="203.0.113.7"
        )
        assert check(inside, allowed, now=NOW).valid
        unknown = check(capture, allowed, now=NOW)
        assert unknown.valid
        assert any("allow_ips was not checked" in note for note in unknown.notes)

    def test_a_method_the_source_does_not_answer(self) -> None:
        capture = Capture("GET", "/hooks/orders", (), b"")
        verdict = check(capture, source(), now=NOW)
        assert (verdict.valid, verdict.status, verdict.reason) == (False, 405, "method_not_allowed")

    def test_an_unverified_source_is_noted(self) -> None:
        none = build_source(SourceSettings(name="local", provider="none"))
        verdict = check(Capture("POST", "/hooks/local", (), b"{}"), none, now=NOW)
        assert verdict.valid
        assert any("nothing is verified" in note for note in verdict.notes)

    async def test_verify_capture_is_check_for_sources_without_io(self) -> None:
        capture = parse_capture(http(signed(), BODY))
        verdict = await verify_capture(capture, source(), now=NOW)
        assert verdict.valid
        assert verdict == check(capture, source(), now=NOW)


class ChallengeSource(Source):
    """A provider with both kinds of handshake: a signed POST challenge, an unsigned GET."""

    provider = "challenge"
    handshake_methods = frozenset({"GET"})

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        if headers.get("x-token") != "t0ken":
            raise VerificationError("bad_token", "wrong token")

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        if request.method == "GET":
            if request.params.get("verify") != "yes":
                raise VerificationError("bad_token", "wrong verify token")
            return Handshake(body=request.params.get("challenge", "").encode())
        if request.body.startswith(b'{"challenge"'):
            return Handshake.json({"challenge": json.loads(request.body)["challenge"]})
        return None

    def sign_headers(
        self, body: bytes, *, now: float, secret_index: int = 0, delivery_id: str | None = None
    ) -> dict[str, str]:
        return {"x-token": "t0ken"}


class TestHandshakes:
    source = ChallengeSource("hs", Extraction())

    def test_a_signed_post_challenge_gets_its_answer(self) -> None:
        capture = Capture("POST", "/hooks/hs", (("X-Token", "t0ken"),), b'{"challenge":"c-1"}')
        verdict = check(capture, self.source, now=NOW)
        assert verdict.valid and verdict.description is None
        assert verdict.handshake == Handshake(200, b'{"challenge":"c-1"}', "application/json")
        assert verdict.to_json()["handshake"] == {
            "status": 200,
            "content_type": "application/json",
            "body": '{"challenge":"c-1"}',
            "headers": [],
        }

    def test_an_unsigned_post_challenge_is_rejected(self) -> None:
        capture = Capture("POST", "/hooks/hs", (), b'{"challenge":"c-1"}')
        verdict = check(capture, self.source, now=NOW)
        assert (verdict.valid, verdict.reason, verdict.handshake) == (False, "bad_token", None)

    def test_a_get_handshake_is_answered_without_verification(self) -> None:
        capture = Capture("GET", "/hooks/hs?verify=yes&challenge=abc", (), b"")
        verdict = check(capture, self.source, now=NOW)
        assert verdict.valid and verdict.handshake == Handshake(body=b"abc")
        refused = check(Capture("GET", "/hooks/hs?verify=no", (), b""), self.source, now=NOW)
        assert (refused.valid, refused.status, refused.reason) == (False, 401, "bad_token")


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda head, body: head.encode("latin-1", "replace") + b"\n\n" + body,
            st.text(max_size=120),
            st.binary(max_size=40),
        ),
        st.builds(lambda text: ("{" + text).encode("utf-8", "replace"), st.text(max_size=120)),
    )
)
def test_any_bytes_parse_or_give_a_clear_error(data: bytes) -> None:
    try:
        capture = parse_capture(data, name="fuzz.http")
    except ConfigError as exc:
        assert exc.file == "fuzz.http" and exc.fix
        return
    check(capture, source(), now=NOW)
