"""The poller's sans-I/O core: conditional requests, rate-limit manners, adaptive
intervals, pagination and change detection, as pure functions of headers, JSON and ``now``.

The runner (HTTP, store, configuration) is built on these; nothing here does I/O, sleeps
or reads the clock, so every decision can be tested with plain values.

>>> from hookwise.poller import Validators, request_headers
>>> request_headers(Validators.from_headers({"ETag": '"v7"'}))
{'If-None-Match': '"v7"'}
"""

from __future__ import annotations

from .changes import (
    MAX_DEDUP_KEY_LENGTH,
    Change,
    ChangeKind,
    PollShapeError,
    apply_changes,
    dedup_key,
    detect,
    extract_items,
    get_path,
    item_id,
    item_version,
)
from .conditional import (
    ETag,
    HeadersInput,
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
from .interval import DEFAULT_SLOW_FACTOR, AdaptiveInterval
from .manners import (
    DEFAULT_PACE_BELOW,
    DEFAULT_RESERVE,
    DEFAULT_THROTTLE_WAIT,
    MAX_RETRY_AFTER,
    HostBudget,
    RateLimit,
    error_backoff,
    parse_retry_after,
    rate_limit_from_headers,
)
from .pages import (
    DEFAULT_MAX_PAGES,
    LAST_ITEM_PREFIX,
    PageKind,
    PageSpec,
    PageStep,
    StopReason,
    first_page_url,
    next_page,
    next_page_step,
    parse_link_header,
    query_param,
    with_query_param,
)
from .settings import (
    DEFAULT_EVERY,
    DEFAULT_TIMEOUT,
    DETAIL_URL_FIELDS,
    POLL_KEYS,
    POLL_PRESETS,
    EmitMode,
    PollSettings,
    parse_poll,
)

__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_PACE_BELOW",
    "DEFAULT_RESERVE",
    "DEFAULT_SLOW_FACTOR",
    "DEFAULT_THROTTLE_WAIT",
    "DEFAULT_TIMEOUT",
    "DETAIL_URL_FIELDS",
    "LAST_ITEM_PREFIX",
    "MAX_DEDUP_KEY_LENGTH",
    "MAX_RETRY_AFTER",
    "POLL_KEYS",
    "POLL_PRESETS",
    "AdaptiveInterval",
    "Change",
    "ChangeKind",
    "ETag",
    "EmitMode",
    "HeadersInput",
    "HostBudget",
    "PageKind",
    "PageSpec",
    "PageStep",
    "PollSettings",
    "PollShapeError",
    "RateLimit",
    "StopReason",
    "Validators",
    "apply_changes",
    "dedup_key",
    "detect",
    "error_backoff",
    "extract_items",
    "first_page_url",
    "get_path",
    "header_value",
    "header_values",
    "item_id",
    "item_version",
    "next_page",
    "next_page_step",
    "not_modified",
    "parse_etag",
    "parse_http_date",
    "parse_link_header",
    "parse_poll",
    "parse_retry_after",
    "query_param",
    "rate_limit_from_headers",
    "request_headers",
    "strong_match",
    "weak_match",
    "with_query_param",
]
