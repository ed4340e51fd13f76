"""Conditional requests (RFC 9110 §8.8 and §13): ask "has it changed?" instead of "send it all".

A poll keeps the validators of the last full answer (``ETag``, ``Last-Modified``) and sends
them back as ``If-None-Match`` / ``If-Modified-Since``. An unchanged resource then costs
the provider a ``304 Not Modified`` with no body, and many APIs (GitHub among them) do not
count a ``304`` against the rate limit.

Everything here is pure: headers in, headers or decisions out. Headers are accepted as a
mapping (``httpx.Headers``, a ``dict``) or as ``(name, value)`` pairs; names are matched
case-insensitively either way.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ETag",
    "HeadersInput",
    "Validators",
    "header_value",
    "header_values",
    "not_modified",
    "parse_etag",
    "parse_http_date",
    "request_headers",
    "strong_match",
    "weak_match",
]

HeadersInput = Mapping[str, str] | Iterable[tuple[str, str]]
"""Response or request headers: a mapping or ``(name, value)`` pairs, names in any case."""


def header_values(headers: HeadersInput, name: str) -> list[str]:
    """Every value of the header ``name`` (case-insensitive), in the order received.

    >>> header_values([("Link", "<a>; rel=next"), ("link", "<b>; rel=last")], "LINK")
    ['<a>; rel=next', '<b>; rel=last']

    A mapping gives at most one value per name; ``httpx.Headers`` has already joined the
    repeats with ``", "``, as HTTP allows for list-valued fields.
    """
    wanted = name.lower()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [value for key, value in pairs if key.lower() == wanted]


def _reusable(headers: HeadersInput) -> HeadersInput:
    """``headers`` in a form that can be read more than once (a generator becomes a list)."""
    if isinstance(headers, Mapping | list | tuple):
        return headers
    return list(headers)


def header_value(headers: HeadersInput, name: str) -> str | None:
    """The first value of the header ``name`` (case-insensitive), or ``None``.

    >>> header_value({"ETag": '"abc"'}, "etag")
    '"abc"'
    """
    values = header_values(headers, name)
    return values[0] if values else None


# --- HTTP-date (RFC 9110 §5.6.7) -----------------------------------------------------

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LONG_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_TIME = r"(\d{2}):(\d{2}):(\d{2})"
_IMF_FIXDATE = re.compile(rf"([A-Za-z]{{3}}), (\d{{2}}) ([A-Za-z]{{3}}) (\d{{4}}) {_TIME} GMT")
_RFC850_DATE = re.compile(rf"([A-Za-z]{{6,9}}), (\d{{2}})-([A-Za-z]{{3}})-(\d{{2}}) {_TIME} GMT")
_ASCTIME_DATE = re.compile(rf"([A-Za-z]{{3}}) ([A-Za-z]{{3}}) ([ \d]\d) {_TIME} (\d{{4}})")


def parse_http_date(value: str, *, now: float | None = None) -> float | None:
    """An HTTP-date as UNIX seconds, or ``None`` when ``value`` is not one.

    >>> parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT")
    784111777.0

    All three forms RFC 9110 makes recipients accept: IMF-fixdate (above), the obsolete
    RFC 850 form (``Sunday, 06-Nov-94 08:49:37 GMT``) and C's asctime form
    (``Sun Nov  6 08:49:37 1994``). An RFC 850 two-digit year that would lie more than
    50 years after ``now`` means the most recent past year with those digits; without
    ``now``, ``70``-``99`` are 1970-1999 and ``00``-``69`` are 2000-2069. Names of days
    and months are matched exactly as the grammar spells them; the day name is not
    checked against the date.
    """
    text = value.strip()
    match = _IMF_FIXDATE.fullmatch(text)
    if match:
        day_name, day, month, year, hour, minute, second = match.groups()
        if day_name not in _DAY_NAMES:
            return None
        return _to_epoch(int(year), month, day, hour, minute, second)
    match = _RFC850_DATE.fullmatch(text)
    if match:
        day_name, day, month, short_year, hour, minute, second = match.groups()
        if day_name not in _LONG_DAY_NAMES:
            return None
        return _to_epoch(_full_year(int(short_year), now), month, day, hour, minute, second)
    match = _ASCTIME_DATE.fullmatch(text)
    if match:
        day_name, month, day, hour, minute, second, year = match.groups()
        if day_name not in _DAY_NAMES or day.startswith(" 0"):
            return None
        return _to_epoch(int(year), month, day.strip(), hour, minute, second)
    return None


def _full_year(short_year: int, now: float | None) -> int:
    if now is None:
        return short_year + (1900 if short_year >= 70 else 2000)
    this_year = time.gmtime(now).tm_year
    year = this_year - this_year % 100 + short_year
    if year > this_year + 50:
        year -= 100
    return year


def _to_epoch(year: int, month: str, day: str, hour: str, minute: str, second: str) -> float | None:
    month_number = _MONTHS.get(month)
    moment = (year, month_number or 0, int(day), int(hour), int(minute), int(second))
    if month_number is None or moment[5] > 60:
        return None
    try:
        # datetime validates the calendar; the grammar allows a leap second (60).
        datetime(*moment[:5], min(moment[5], 59))
    except ValueError:
        return None
    return float(calendar.timegm(moment))


# --- entity tags (RFC 9110 §8.8.3) ---------------------------------------------------

# etagc = %x21 / %x23-7E / obs-text: any visible character but the double quote.
_ETAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


@dataclass(frozen=True, slots=True)
class ETag:
    """A parsed entity tag: its opaque tag (without the quotes) and whether it is weak.

    >>> ETag(tag="abc", weak=True)
    ETag(tag='abc', weak=True)
    >>> str(ETag(tag="abc", weak=True))
    'W/"abc"'
    """

    tag: str
    weak: bool = False

    def __str__(self) -> str:
        return f'{"W/" if self.weak else ""}"{self.tag}"'


def parse_etag(value: str) -> ETag | None:
    """An entity tag as RFC 9110 writes it, or ``None`` when it is malformed.

    >>> parse_etag('W/"v2"')
    ETag(tag='v2', weak=True)
    >>> parse_etag("v2") is None
    True

    The weak prefix is case-sensitive (``w/"x"`` is malformed) and the opaque tag is
    double-quoted, without spaces, quotes or control characters inside.
    """
    match = _ETAG.fullmatch(value.strip())
    if match is None:
        return None
    return ETag(tag=match.group(2), weak=match.group(1) is not None)


def weak_match(a: ETag | str, b: ETag | str) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2): the opaque tags are equal, weak or not.

    >>> weak_match('W/"1"', '"1"')
    True

    A malformed tag given as text matches nothing.
    """
    first, second = _as_etag(a), _as_etag(b)
    return first is not None and second is not None and first.tag == second.tag


def strong_match(a: ETag | str, b: ETag | str) -> bool:
    """Strong comparison (RFC 9110 §8.8.3.2): both strong and their opaque tags equal.

    >>> strong_match('"1"', '"1"'), strong_match('W/"1"', 'W/"1"')
    (True, False)
    """
    first, second = _as_etag(a), _as_etag(b)
    return (
        first is not None
        and second is not None
        and not first.weak
        and not second.weak
        and first.tag == second.tag
    )


def _as_etag(value: ETag | str) -> ETag | None:
    return value if isinstance(value, ETag) else parse_etag(value)


# --- validators ----------------------------------------------------------------------

_UNSENDABLE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Validators:
    """What a poll remembers of the last full answer to send it back next time.

    >>> Validators.from_headers({"ETag": 'W/"abc"', "Last-Modified": "not a date"})
    Validators(etag='W/"abc"', last_modified=None)

    Both are kept as the server sent them: servers compare what comes back against their
    own spelling, so the text is echoed exactly.
    """

    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def from_headers(cls, headers: HeadersInput) -> Validators:
        """The validators of a response.

        The ``ETag`` is kept as sent even when it does not follow RFC 9110's grammar
        (some servers send unquoted tags and expect them back verbatim); only an empty
        value or one with control characters, which can't be sent back, is dropped.
        ``Last-Modified`` is kept only if it parses as an HTTP-date.
        """
        headers = _reusable(headers)
        etag = header_value(headers, "etag")
        if etag is not None:
            etag = etag.strip()
            if not etag or _UNSENDABLE.search(etag):
                etag = None
        last_modified = header_value(headers, "last-modified")
        if last_modified is not None:
            last_modified = last_modified.strip()
            if parse_http_date(last_modified) is None:
                last_modified = None
        return cls(etag=etag, last_modified=last_modified)

    @property
    def empty(self) -> bool:
        """True when there is nothing to send back (the request is unconditional)."""
        return self.etag is None and self.last_modified is None


def request_headers(validators: Validators) -> dict[str, str]:
    """The conditional headers for the next request: nothing for a missing validator.

    >>> request_headers(Validators(etag='W/"abc"', last_modified=None))
    {'If-None-Match': 'W/"abc"'}

    Both are sent when both are known; a server that understands ``If-None-Match``
    ignores ``If-Modified-Since`` (RFC 9110 §13.1.3).
    """
    headers: dict[str, str] = {}
    if validators.etag is not None:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified is not None:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def not_modified(validators: Validators, status: int, response_headers: HeadersInput) -> bool:
    """Whether the response says "unchanged", so its body need not be parsed.

    >>> not_modified(Validators(etag='"v1"'), 200, {"ETag": 'W/"v1"'})
    True

    True for ``304``, and for a ``200`` whose ``ETag`` weak-matches the stored one: some
    servers ignore ``If-None-Match`` but still send the same tag for the same content.
    Weak comparison is what RFC 9110 prescribes for ``If-None-Match``. When either tag
    is not well-formed, the two are compared as exact text.
    """
    if status == 304:
        return True
    if status != 200 or validators.etag is None:
        return False
    sent = header_value(response_headers, "etag")
    if sent is None:
        return False
    sent = sent.strip()
    stored = validators.etag
    if parse_etag(sent) is None or parse_etag(stored) is None:
        return sent == stored
    return weak_match(sent, stored)
