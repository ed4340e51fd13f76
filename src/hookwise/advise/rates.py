"""Rates as people write them: ``"10/day"``, ``"2/min"``, ``"5000/h"``, ``"900/15m"``.

>>> parse_rate("5000/h") * 86400
120000.0
>>> format_rate(parse_rate("2/min"))
'2/min'

A rate is a count over a period; the model works in events per second, the command
shows them per day, hour, minute or second, whichever reads best.
"""

from __future__ import annotations

import math
import re

from ..durations import parse_duration

__all__ = ["PERIODS", "format_rate", "parse_rate", "per_day"]

PERIODS: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "w": 604800.0,
    "wk": 604800.0,
    "week": 604800.0,
}
"""The period names a rate may end with (a trailing ``s`` is allowed: ``10/days``)."""

_RATE = re.compile(r"^\s*(?P<count>\d+(?:\.\d+)?|\.\d+)\s*(?:/|per)\s*(?P<period>.+?)\s*$")
_EXAMPLES = '"10/day", "2/min", "5000/h" or "900/15m"'


def parse_rate(text: str) -> float:
    """Events per second of a rate written ``COUNT/PERIOD``.

    >>> parse_rate("10/day") == 10 / 86400
    True
    >>> parse_rate("900/15m")
    1.0

    The period is a unit (``s``, ``min``, ``h``, ``day``, ``week``, singular or plural)
    or a duration (``15m``, ``1h30m``). Raises ``ValueError`` saying what is wrong and
    how to write it.
    """
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a rate; write it like {_EXAMPLES}")
    match = _RATE.match(text.lower())
    if match is None:
        if text.strip() and _looks_like_number(text):
            raise ValueError(
                f"{text!r} has no period; write it like {text.strip()}/day or {text.strip()}/h"
            )
        raise ValueError(f"{text!r} is not a rate; write it like {_EXAMPLES}")
    count = float(match.group("count"))
    period_text = match.group("period")
    seconds = _period(period_text)
    if seconds is None:
        raise ValueError(
            f"{text!r}: {period_text!r} is not a period; use s, min, h, day or week "
            f"(or a duration like 15m), e.g. {_EXAMPLES}"
        )
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"{text!r}: the period must be longer than zero")
    return count / seconds


def _period(text: str) -> float | None:
    name = text.strip()
    if name in PERIODS:
        return PERIODS[name]
    if name.endswith("s") and name[:-1] in PERIODS and len(name) > 2:
        return PERIODS[name[:-1]]
    try:
        return parse_duration(name)
    except ValueError:
        return None


def _looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def per_day(text: str) -> float:
    """The rate ``text`` in events per day.

    >>> per_day("2/min")
    2880.0
    """
    return parse_rate(text) * 86400.0


def format_rate(per_second: float) -> str:
    """A rate in the unit that gives a count of at least one, when there is one.

    >>> format_rate(10 / 86400), format_rate(1.5), format_rate(0)
    ('10/day', '1.5/s', '0/day')
    """
    if per_second < 0 or not math.isfinite(per_second):
        raise ValueError(f"a rate is a finite count >= 0 (got {per_second!r})")
    for unit, seconds in (("s", 1.0), ("min", 60.0), ("h", 3600.0), ("day", 86400.0)):
        count = per_second * seconds
        if count >= 1:
            return f"{_number(count)}/{unit}"
    return f"{_number(per_second * 86400.0)}/day"


def _number(value: float) -> str:
    if value >= 100 or value == round(value):
        return f"{round(value):,}".replace(",", "")
    return f"{value:.3g}"
