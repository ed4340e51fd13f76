from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.advise.rates import format_rate, parse_rate, per_day


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("10/day", 10 / 86400),
        ("10/days", 10 / 86400),
        ("10/d", 10 / 86400),
        ("2/min", 2 / 60),
        ("2/m", 2 / 60),
        ("2 / minute", 2 / 60),
        ("5000/h", 5000 / 3600),
        ("5000/hour", 5000 / 3600),
        ("5000 per hour", 5000 / 3600),
        ("1.5/s", 1.5),
        ("3/sec", 3.0),
        ("7/week", 1 / 86400),
        ("900/15m", 1.0),
        ("60/1h30m", 60 / 5400),
        (".5/s", 0.5),
        ("0/day", 0.0),
        ("10/DAY", 10 / 86400),
    ],
)
def test_rates_people_write(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("10", "has no period; write it like 10/day"),
        ("10/fortnight", "'fortnight' is not a period"),
        ("ten/day", "is not a rate"),
        ("", "is not a rate"),
        ("-5/h", "is not a rate"),
        ("5/0s", "longer than zero"),
        ("5/", "is not a rate"),
    ],
)
def test_bad_rates_say_what_is_wrong_and_how_to_write_them(text: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_rate(text)
    assert says in str(caught.value)
    assert "/" in str(caught.value)  # an example of the right form


def test_per_day() -> None:
    assert per_day("2/min") == 2880
    assert per_day("5000/h") == 120_000


@pytest.mark.parametrize(
    ("per_second", "text"),
    [(1.5, "1.5/s"), (2 / 60, "2/min"), (5000 / 3600, "1.39/s"), (10 / 86400, "10/day")],
)
def test_format_rate_picks_a_readable_unit(per_second: float, text: str) -> None:
    assert format_rate(per_second) == text


@given(st.floats(min_value=0.001, max_value=1e6, allow_nan=False))
def test_format_rate_reads_back_close(per_second: float) -> None:
    assert parse_rate(format_rate(per_second)) == pytest.approx(per_second, rel=0.01)


def test_format_rate_refuses_what_is_not_a_rate() -> None:
    with pytest.raises(ValueError, match="finite"):
        format_rate(float("inf"))
