from datetime import timedelta

import pytest

from hookwise.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("3d", 259200.0),
        ("1w", 604800.0),
        ("2.5s", 2.5),
        (" 5 m ", 300.0),
        ("45", 45.0),
        (12, 12.0),
        (1.5, 1.5),
        (timedelta(minutes=2), 120.0),
    ],
)
def test_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "5 mins", "m5", "5x", "-5s", True, None, [], "1h-"])
def test_parse_rejects_with_a_hint(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (5400, "1h30m"), (259200, "3d"), (61, "1m1s"), (0, "0ms")],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
