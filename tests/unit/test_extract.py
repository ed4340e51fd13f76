"""Extraction specs: parsed at build time, read from headers and JSON on the request path."""

from __future__ import annotations

import pytest

from hookwise.errors import ConfigError
from hookwise.providers._base import Extraction
from hookwise.providers._extract import (
    NOT_JSON,
    Spec,
    extract,
    parse_body,
    parse_body_fast,
    parse_spec,
    to_timestamp,
)

KEY = "sources.acme.dedup_key"


class TestParseSpec:
    def test_header_names_are_lowercased(self) -> None:
        assert parse_spec("header:X-Acme-Delivery", key=KEY) == Spec("header", "x-acme-delivery")

    def test_body_path(self) -> None:
        spec = parse_spec("body:data.items.0.id", key=KEY)
        assert spec == Spec("body", "data.items.0.id", ("data", "items", "0", "id"))
        assert str(spec) == "body:data.items.0.id"

    def test_bare_path_is_a_body_path(self) -> None:
        assert parse_spec("data.object.id", key=KEY) == parse_spec("body:data.object.id", key=KEY)

    def test_const_only_where_allowed(self) -> None:
        assert parse_spec("const:order", key=KEY, allow_const=True) == Spec("const", "order")
        with pytest.raises(ConfigError, match=r"header:NAME, body:dotted\.path"):
            parse_spec("const:order", key=KEY)

    @pytest.mark.parametrize(
        "text", ["header:", "header:X Acme", "body:", "body:a..b", ".a", "a.", "", "query:x"]
    )
    def test_bad_specs_name_the_key_and_a_fix(self, text: str) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_spec(text, key=KEY)
        assert caught.value.key == KEY
        assert caught.value.fix

    def test_empty_const_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="no value"):
            parse_spec("const:", key=KEY, allow_const=True)


DOCUMENT = {
    "id": "evt_1",
    "count": 7,
    "ratio": 1.5,
    "live": False,
    "empty": "",
    "nothing": None,
    "object": {"id": "in_1", "0": "zero"},
    "items": [{"id": 10}, {"id": 11}],
}


class TestExtract:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("id", "evt_1"),
            ("count", "7"),
            ("ratio", "1.5"),
            ("live", "false"),
            ("object.id", "in_1"),
            ("object.0", "zero"),
            ("items.1.id", "11"),
            ("items.2.id", None),
            ("items.x", None),
            ("items.-1.id", None),
            ("empty", None),
            ("nothing", None),
            ("object", None),
            ("items", None),
            ("id.deeper", None),
            ("absent", None),
        ],
    )
    def test_body_paths(self, path: str, expected: str | None) -> None:
        assert extract(parse_spec(path, key=KEY), {}, DOCUMENT) == expected

    def test_body_path_on_a_body_that_is_not_json(self) -> None:
        assert extract(parse_spec("id", key=KEY), {}, NOT_JSON) is None

    def test_header(self) -> None:
        spec = parse_spec("header:X-Id", key=KEY)
        assert extract(spec, {"x-id": " d-1 "}, NOT_JSON) == "d-1"
        assert extract(spec, {"x-id": "  "}, NOT_JSON) is None
        assert extract(spec, {}, NOT_JSON) is None

    def test_const(self) -> None:
        assert extract(parse_spec("const:ping", key=KEY, allow_const=True), {}, None) == "ping"


class TestParseBody:
    def test_json(self) -> None:
        assert parse_body(b'{"a": [1]}') == {"a": [1]}

    def test_null_is_json(self) -> None:
        assert parse_body(b"null") is None

    @pytest.mark.parametrize(
        "body", [b"", b"{", b"\xff\xfe\x00", b"a=1&b=2", b"[" * 100_000, b"9" * 5000]
    )
    def test_anything_else_is_not_json(self, body: bytes) -> None:
        assert parse_body(body) is NOT_JSON


class TestToTimestamp:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("1700000000", 1700000000.0),
            ("1700000000.25", 1700000000.25),
            ("2024-01-01T00:00:00Z", 1704067200.0),
            ("2024-01-01T01:00:00+01:00", 1704067200.0),
            ("2024-01-01T00:00:00", 1704067200.0),
            ("yesterday", None),
            ("nan", None),
            ("inf", None),
        ],
    )
    def test_values(self, value: str, expected: float | None) -> None:
        assert to_timestamp(value) == expected


class TestParseBodyFast:
    @pytest.mark.parametrize(
        "body",
        [b'{"a": [1, 2.5, "x", null, true]}', b"NaN", b'"\\ud800"', b"\xef\xbb\xbf{}", b"{", b""],
    )
    def test_reads_what_parse_body_reads(self, body: bytes) -> None:
        document, _ = parse_body_fast(body)
        expected = parse_body(body)
        assert document == expected or (document != document and expected != expected)  # NaN

    def test_integers_past_64_bits_stay_exact_in_a_description(self) -> None:
        big = 123456789012345678901234567890
        rules = Extraction(
            dedup=parse_spec("body:id", key=KEY), type=parse_spec("body:type", key=KEY)
        )
        body = b'{"id": %d, "type": -9223372036854775809}' % big
        described = rules.describe(body, {})
        assert described.dedup_key == str(big)
        assert described.type == "-9223372036854775809"
