import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.poller import (
    ETag,
    Validators,
    header_value,
    header_values,
    not_modified,
    parse_etag,
    parse_http_date,
    request_headers,
    strong_match,
    weak_match,
)

# RFC 9110 §5.6.7: the same instant in the three forms recipients must accept.
SUNDAY_1994 = 784111777.0


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT  ",
    ],
)
def test_http_date_in_every_form(text: str) -> None:
    assert parse_http_date(text) == SUNDAY_1994


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37",  # no zone
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "sun, 06 Nov 1994 08:49:37 GMT",  # names are case-sensitive
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",  # no such day
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:61:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",  # IMF-fixdate has two-digit days
        "Sun, 06-Nov-94 08:49:37 GMT",  # RFC 850 needs the long day name
        "1994-11-06T08:49:37Z",
        "784111777",
    ],
)
def test_not_an_http_date(text: str) -> None:
    assert parse_http_date(text) is None


def test_leap_second_is_accepted() -> None:
    assert parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT") == 1483228800.0


def test_rfc850_two_digit_year_follows_now() -> None:
    now_2024 = 1717200000.0  # 2024-06-01
    # 2074 is not more than 50 years ahead of 2024: taken as it is
    assert parse_http_date("Monday, 01-Jan-74 00:00:00 GMT", now=now_2024) == parse_http_date(
        "Mon, 01 Jan 2074 00:00:00 GMT"
    )
    # 2075 would be: the most recent past year ending in 75
    assert parse_http_date("Wednesday, 01-Jan-75 00:00:00 GMT", now=now_2024) == 157766400.0
    # without now: 70-99 are 19xx, 00-69 are 20xx
    assert parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT") == 0.0
    assert parse_http_date("Monday, 01-Jan-24 00:00:00 GMT") == 1704067200.0


@given(st.integers(min_value=0, max_value=253402300799))
def test_http_date_round_trips_through_imf_fixdate(epoch: int) -> None:
    from email.utils import formatdate

    text = formatdate(epoch, usegmt=True)
    assert parse_http_date(text) == float(epoch)


# --- ETags: RFC 9110 §8.8.3.2's table ---


@pytest.mark.parametrize(
    ("a", "b", "strong", "weak"),
    [
        ('W/"1"', 'W/"1"', False, True),
        ('W/"1"', 'W/"2"', False, False),
        ('W/"1"', '"1"', False, True),
        ('"1"', '"1"', True, True),
    ],
)
def test_etag_comparison_table(a: str, b: str, strong: bool, weak: bool) -> None:
    assert strong_match(a, b) is strong
    assert strong_match(b, a) is strong
    assert weak_match(a, b) is weak
    assert weak_match(b, a) is weak


def test_comparison_takes_parsed_tags() -> None:
    assert weak_match(ETag("1", weak=True), '"1"')
    assert not strong_match(ETag("1", weak=True), ETag("1"))
    assert strong_match(ETag("x"), '"x"')


def test_malformed_tags_match_nothing() -> None:
    assert not weak_match("abc", "abc")
    assert not strong_match('"abc', '"abc')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"xyzzy"', ETag("xyzzy", weak=False)),
        ('W/"xyzzy"', ETag("xyzzy", weak=True)),
        ('""', ETag("", weak=False)),
        ('W/""', ETag("", weak=True)),
        (' "a-b_c/d=" ', ETag("a-b_c/d=", weak=False)),
        ('"caf\xe9"', ETag("caf\xe9", weak=False)),  # obs-text
    ],
)
def test_parse_etag(text: str, expected: ETag) -> None:
    assert parse_etag(text) == expected


@pytest.mark.parametrize(
    "text",
    ["xyzzy", '"xyz', 'xyz"', 'w/"xyz"', 'W/ "xyz"', '"a b"', '"a"b"', '"a\x01"', "W/xyz", ""],
)
def test_malformed_etags_are_refused(text: str) -> None:
    assert parse_etag(text) is None


def test_etag_renders_back() -> None:
    assert str(ETag("abc", weak=True)) == 'W/"abc"'
    assert str(ETag("abc")) == '"abc"'


@given(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"')),
    st.booleans(),
)
def test_etag_parse_render_round_trip(tag: str, weak: bool) -> None:
    etag = ETag(tag, weak=weak)
    assert parse_etag(str(etag)) == etag


# --- headers ---


def test_header_lookup_is_case_insensitive_for_dicts_pairs_and_httpx() -> None:
    assert header_value({"ETag": '"a"'}, "etag") == '"a"'
    assert header_value([("etag", '"a"')], "ETag") == '"a"'
    assert header_value(httpx.Headers({"ETAG": '"a"'}), "etag") == '"a"'
    assert header_value({}, "etag") is None
    assert header_values([("Link", "1"), ("X", "2"), ("LINK", "3")], "link") == ["1", "3"]


def test_validators_keep_the_etag_as_sent() -> None:
    validators = Validators.from_headers(
        {"ETag": 'W/"abc"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    assert validators == Validators('W/"abc"', "Wed, 21 Oct 2015 07:28:00 GMT")
    assert not validators.empty


def test_validators_from_pairs_and_a_generator() -> None:
    pairs = [("etag", '"1"'), ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")]
    assert Validators.from_headers(pairs) == Validators('"1"', "Sun, 06 Nov 1994 08:49:37 GMT")
    assert Validators.from_headers(iter(pairs)) == Validators.from_headers(pairs)


def test_validators_drop_an_unparsable_last_modified() -> None:
    assert Validators.from_headers({"Last-Modified": "last tuesday"}) == Validators(None, None)
    assert Validators.from_headers({}).empty


def test_validators_keep_an_unquoted_etag_but_not_an_unsendable_one() -> None:
    assert Validators.from_headers({"ETag": "abc123"}).etag == "abc123"
    assert Validators.from_headers({"ETag": "  "}).etag is None
    assert Validators.from_headers({"ETag": "a\nb"}).etag is None


def test_request_headers() -> None:
    assert request_headers(Validators()) == {}
    assert request_headers(Validators(etag='W/"abc"')) == {"If-None-Match": 'W/"abc"'}
    assert request_headers(Validators(last_modified="Wed, 21 Oct 2015 07:28:00 GMT")) == {
        "If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT"
    }
    assert request_headers(Validators('"1"', "Wed, 21 Oct 2015 07:28:00 GMT")) == {
        "If-None-Match": '"1"',
        "If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT",
    }


def test_not_modified() -> None:
    stored = Validators(etag='"v1"')
    assert not_modified(stored, 304, {})
    assert not_modified(Validators(), 304, {})
    assert not_modified(stored, 200, {"ETag": '"v1"'})
    assert not_modified(stored, 200, {"etag": 'W/"v1"'})  # weak comparison
    assert not not_modified(stored, 200, {"ETag": '"v2"'})
    assert not not_modified(stored, 200, {})
    assert not not_modified(Validators(), 200, {"ETag": '"v1"'})
    assert not not_modified(stored, 206, {"ETag": '"v1"'})
    assert not not_modified(stored, 500, {"ETag": '"v1"'})


def test_not_modified_compares_malformed_tags_as_text() -> None:
    assert not_modified(Validators(etag="abc"), 200, {"ETag": "abc"})
    assert not not_modified(Validators(etag="abc"), 200, {"ETag": "abd"})
    assert not not_modified(Validators(etag="abc"), 200, {"ETag": '"abc"'})
