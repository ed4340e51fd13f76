"""Running a provider's own diagnosis checks after the shared ones, safely."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hookwise.providers._base import Inbound, Source

__all__ = ["with_own_hints"]

log = logging.getLogger("hookwise.diagnose")


def with_own_hints(
    source: Source,
    request: Inbound,
    now: float,
    error: Exception,
    own: Callable[[Inbound, float, Exception], list[str]],
) -> tuple[str, ...]:
    """The shared hints, then ``own``'s; a failing check is logged and skipped."""
    from hookwise.providers._diagnose import common_hints

    hints = list(common_hints(source, request, now, error))
    try:
        hints += own(request, now, error)
    except Exception:  # a diagnosis must never turn into a second failure
        log.debug("diagnosing a %s rejection failed", source.provider, exc_info=True)
    return tuple(hints)
