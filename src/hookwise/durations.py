"""Durations as people write them: ``"5m"``, ``"300s"``, ``"1h30m"``, ``"3d"``, ``250ms``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: str | float | int | timedelta) -> float:
    """Return seconds for a duration given as text, a number of seconds or a timedelta.

    >>> parse_duration("1h30m")
    5400.0

    Raises ``ValueError`` with a message that shows the accepted forms.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f'{value!r} is not a duration; write it like "30s", "5m" or "3d"')
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if not text:
            raise ValueError('an empty string is not a duration; write it like "30s", "5m"')
        pos = 0
        seconds = 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text):
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(
                    f'{value!r} is not a duration; write it like "250ms", "30s", "5m", '
                    '"1h30m" or "3d"'
                ) from None
    else:
        raise ValueError(f'{value!r} is not a duration; write it like "30s", "5m" or "3d"')
    if seconds < 0:
        raise ValueError(f"{value!r}: a duration can't be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds compactly: ``format_duration(5400) == "1h30m"``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out = []
    remaining = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out) or "0s"
