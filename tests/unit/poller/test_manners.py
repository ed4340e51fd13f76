import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.poller import (
    MAX_RETRY_AFTER,
    HostBudget,
    RateLimit,
    error_backoff,
    parse_retry_after,
    rate_limit_from_headers,
)

# Wed, 21 Oct 2015 07:28:00 GMT (RFC 9110's Retry-After example)
OCT_21_2015 = 1445412480.0


# --- Retry-After ---


def test_retry_after_delta_seconds() -> None:
    assert parse_retry_after("120", now=OCT_21_2015) == 120.0
    assert parse_retry_after(" 0 ", now=OCT_21_2015) == 0.0
    assert parse_retry_after("1.5", now=OCT_21_2015) == 1.5


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=OCT_21_2015 - 90) == 90.0
    assert parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now=OCT_21_2015 - 5) == 5.0
    assert parse_retry_after("Wed Oct 21 07:28:00 2015", now=OCT_21_2015 - 5) == 5.0


def test_retry_after_in_the_past_or_negative_is_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=OCT_21_2015 + 60) == 0.0
    assert parse_retry_after("-5", now=OCT_21_2015) == 0.0


def test_retry_after_is_capped() -> None:
    assert parse_retry_after("99999999", now=0) == MAX_RETRY_AFTER
    assert parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now=OCT_21_2015) == MAX_RETRY_AFTER


@pytest.mark.parametrize("text", ["", "soon", "12s", "1e3", "Wed, 21 Oct 2015", "0x10", "--1"])
def test_retry_after_garbage(text: str) -> None:
    assert parse_retry_after(text, now=OCT_21_2015) is None


# --- rate-limit headers ---


def test_github_headers() -> None:
    headers = httpx.Headers(
        {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4987",
            "x-ratelimit-reset": "1700003600",
            "x-ratelimit-used": "13",
            "x-poll-interval": "60",
        }
    )
    assert rate_limit_from_headers(headers, now=1700000000.0) == RateLimit(
        limit=5000, remaining=4987, reset_at=1700003600.0, poll_interval=60.0
    )


def test_small_x_ratelimit_reset_is_seconds_from_now() -> None:
    limits = rate_limit_from_headers({"X-RateLimit-Reset": "30"}, now=1700000000.0)
    assert limits is not None and limits.reset_at == 1700000030.0


def test_x_ratelimit_reset_in_milliseconds() -> None:
    limits = rate_limit_from_headers({"X-RateLimit-Reset": "1700000030500"}, now=1700000000.0)
    assert limits is not None and limits.reset_at == 1700000030.5


def test_ietf_draft_headers_are_deltas() -> None:
    headers = [("RateLimit-Limit", "100"), ("RateLimit-Remaining", "7"), ("RateLimit-Reset", "50")]
    assert rate_limit_from_headers(headers, now=1000.0) == RateLimit(100, 7, 1050.0)


def test_ietf_draft_wins_and_x_headers_fill_the_gaps() -> None:
    headers = {
        "RateLimit-Remaining": "7",
        "X-RateLimit-Remaining": "9",
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Reset": "1700000100",
    }
    assert rate_limit_from_headers(headers, now=1700000000.0) == RateLimit(
        limit=100, remaining=7, reset_at=1700000100.0
    )


def test_quota_policy_lists_count_by_their_first_number() -> None:
    headers = {"RateLimit-Limit": "10, 10;w=1, 1000;w=3600", "RateLimit-Remaining": "3;w=1"}
    limits = rate_limit_from_headers(headers, now=0.0)
    assert limits == RateLimit(limit=10, remaining=3)


def test_no_rate_limit_headers() -> None:
    assert rate_limit_from_headers({"Content-Type": "application/json"}, now=0.0) is None
    assert rate_limit_from_headers({"X-RateLimit-Remaining": "lots"}, now=0.0) is None


def test_a_far_reset_is_clamped() -> None:
    limits = rate_limit_from_headers({"RateLimit-Reset": "9999999"}, now=0.0)
    assert limits is not None and limits.reset_at == MAX_RETRY_AFTER


# --- error backoff ---


def test_error_backoff_doubles_and_caps() -> None:
    top = [error_backoff(n, base=1, cap=60, rand=lambda: 1.0) for n in range(1, 9)]
    assert top == [1, 2, 4, 8, 16, 32, 60, 60]
    assert error_backoff(4, base=2, cap=600, rand=lambda: 0.5) == 8.0
    assert error_backoff(4, base=2, cap=600, rand=lambda: 0.0) == 0.0


def test_error_backoff_survives_huge_failure_counts() -> None:
    assert error_backoff(10**6, base=1, cap=300, rand=lambda: 0.5) == 150.0


@pytest.mark.parametrize("kwargs", [{"failures": 0}, {"base": 0}, {"base": -1}, {"cap": -1}])
def test_error_backoff_refuses_bad_arguments(kwargs: dict[str, float]) -> None:
    arguments: dict[str, float] = {"failures": 1, "base": 1, "cap": 10} | kwargs
    with pytest.raises(ValueError):
        error_backoff(
            int(arguments["failures"]),
            base=arguments["base"],
            cap=arguments["cap"],
            rand=lambda: 0.5,
        )


@given(
    failures=st.integers(1, 100_000),
    base=st.floats(0.001, 1000),
    cap=st.floats(0, 86400),
    draw=st.floats(0, 1, exclude_max=True),
)
def test_error_backoff_always_within_zero_and_cap(
    failures: int, base: float, cap: float, draw: float
) -> None:
    delay = error_backoff(failures, base=base, cap=cap, rand=lambda: draw)
    assert 0 <= delay <= cap
    assert delay <= base * 2.0 ** min(failures - 1, 1023)


# --- host budget ---

NOW = 43200.0  # 12:00:00 UTC on day 0


def test_fresh_budget_never_waits() -> None:
    budget = HostBudget()
    assert budget.earliest(NOW) == NOW
    assert budget.wait_reason(NOW) is None
    assert budget.remaining is None


def test_retry_after_on_429_and_503_blocks_the_host() -> None:
    for status in (429, 503, 403):
        budget = HostBudget()
        budget.observe(None, status=status, retry_after=30, now=NOW)
        assert budget.earliest(NOW) == NOW + 30
        assert budget.earliest(NOW + 31) == NOW + 31
        assert budget.wait_reason(NOW) == f"Retry-After 30s after HTTP {status}, until 12:00:30 UTC"
        assert budget.wait_reason(NOW + 30) is None


def test_retry_after_on_other_statuses_is_ignored() -> None:
    budget = HostBudget()
    budget.observe(None, status=301, retry_after=30, now=NOW)
    budget.observe(None, status=200, retry_after=30, now=NOW)
    assert budget.earliest(NOW) == NOW


def test_a_shorter_retry_after_never_shortens_a_longer_one() -> None:
    budget = HostBudget()
    budget.observe(None, status=429, retry_after=120, now=NOW)
    budget.observe(None, status=503, retry_after=5, now=NOW + 1)
    assert budget.earliest(NOW + 1) == NOW + 120
    assert budget.wait_reason(NOW + 1) == "Retry-After 120s after HTTP 429, until 12:02:00 UTC"


def test_retry_after_is_capped_by_the_budget_too() -> None:
    budget = HostBudget()
    budget.observe(None, status=429, retry_after=10 * MAX_RETRY_AFTER, now=NOW)
    assert budget.earliest(NOW) == NOW + MAX_RETRY_AFTER


def test_429_without_retry_after_waits_a_minute() -> None:
    budget = HostBudget()
    budget.observe(RateLimit(limit=100, remaining=50), status=429, retry_after=None, now=NOW)
    assert budget.earliest(NOW) == NOW + 60
    assert budget.wait_reason(NOW) == (
        "HTTP 429 without Retry-After: waiting 60s, until 12:01:00 UTC"
    )
    quick = HostBudget(throttle_wait=5)
    quick.observe(None, status=429, retry_after=None, now=NOW)
    assert quick.earliest(NOW) == NOW + 5


def test_exhausted_quota_waits_for_the_reset() -> None:
    budget = HostBudget()
    budget.observe(
        RateLimit(limit=5000, remaining=0, reset_at=NOW + 5),
        status=403,
        retry_after=None,
        now=NOW,
    )
    assert budget.earliest(NOW) == NOW + 5
    assert budget.wait_reason(NOW) == "rate limit exhausted until 12:00:05 UTC"
    # once the window has reset, the quota is assumed full again
    assert budget.earliest(NOW + 5) == NOW + 5
    assert budget.earliest(NOW + 6) == NOW + 6
    assert budget.wait_reason(NOW + 6) is None


def test_exhausted_quota_with_429_and_no_retry_after_waits_for_the_reset_only() -> None:
    budget = HostBudget()
    budget.observe(
        RateLimit(limit=60, remaining=0, reset_at=NOW + 10), status=429, retry_after=None, now=NOW
    )
    assert budget.earliest(NOW) == NOW + 10


def test_exhausted_quota_without_a_reset_time_waits_the_throttle_wait() -> None:
    budget = HostBudget(throttle_wait=20)
    budget.observe(RateLimit(remaining=0), status=200, retry_after=None, now=NOW)
    assert budget.earliest(NOW) == NOW + 20
    assert "no reset time given" in (budget.wait_reason(NOW) or "")


def test_the_reserve_is_left_for_others() -> None:
    budget = HostBudget(reserve=0.1)
    budget.observe(
        RateLimit(limit=100, remaining=10, reset_at=NOW + 600),
        status=200,
        retry_after=None,
        now=NOW,
    )
    assert budget.earliest(NOW) == NOW + 600
    assert budget.wait_reason(NOW) == (
        "rate limit down to its reserve (10 of 100 left for others) until 12:10:00 UTC"
    )
    no_reserve = HostBudget(reserve=0)
    no_reserve.observe(
        RateLimit(limit=100, remaining=10, reset_at=NOW + 600),
        status=200,
        retry_after=None,
        now=NOW,
    )
    assert no_reserve.earliest(NOW) == NOW


def test_requests_sent_since_the_last_answer_count() -> None:
    budget = HostBudget(reserve=0, pace_below=0)
    budget.observe(
        RateLimit(limit=100, remaining=2, reset_at=NOW + 60), status=200, retry_after=None, now=NOW
    )
    budget.sent(NOW)
    assert budget.remaining == 1
    assert budget.earliest(NOW) == NOW
    budget.sent(NOW)
    assert budget.remaining == 0
    assert budget.earliest(NOW) == NOW + 60
    # an answer brings the server's count back
    budget.observe(
        RateLimit(limit=100, remaining=50, reset_at=NOW + 60), status=200, retry_after=None, now=NOW
    )
    assert budget.remaining == 50
    assert budget.earliest(NOW) == NOW


def test_low_quota_is_paced_until_the_reset() -> None:
    budget = HostBudget(reserve=0.1, pace_below=0.5)
    budget.observe(
        RateLimit(limit=100, remaining=31, reset_at=NOW + 200),
        status=200,
        retry_after=None,
        now=NOW,
    )
    budget.sent(NOW)  # 30 left, 10 kept: 20 usable over 200 s, one every 10 s
    assert budget.remaining == 30
    assert budget.earliest(NOW) == NOW + 10
    assert budget.wait_reason(NOW) == (
        "pacing 20 requests until the reset at 12:03:20 UTC: one every 10s"
    )
    assert budget.wait_reason(NOW + 10) is None


def test_no_pacing_above_pace_below() -> None:
    budget = HostBudget(reserve=0.1, pace_below=0.5)
    budget.observe(
        RateLimit(limit=100, remaining=80, reset_at=NOW + 200),
        status=200,
        retry_after=None,
        now=NOW,
    )
    budget.sent(NOW)
    assert budget.earliest(NOW) == NOW


def test_no_pacing_or_reserve_without_a_known_limit() -> None:
    budget = HostBudget()
    budget.observe(
        RateLimit(remaining=3, reset_at=NOW + 200), status=200, retry_after=None, now=NOW
    )
    budget.sent(NOW)
    assert budget.earliest(NOW) == NOW


def test_min_gap_and_max_per_second() -> None:
    budget = HostBudget(min_gap=2)
    assert budget.earliest(NOW) == NOW
    budget.sent(NOW)
    assert budget.earliest(NOW) == NOW + 2
    assert budget.wait_reason(NOW + 1) == "2s between requests"
    assert budget.earliest(NOW + 3) == NOW + 3
    per_second = HostBudget(max_per_second=4)
    per_second.sent(NOW)
    assert per_second.earliest(NOW) == NOW + 0.25
    both = HostBudget(min_gap=1, max_per_second=4)
    both.sent(NOW)
    assert both.earliest(NOW) == NOW + 1


def test_the_latest_limit_wins_and_names_itself() -> None:
    budget = HostBudget(min_gap=5)
    budget.sent(NOW)
    budget.observe(
        RateLimit(limit=10, remaining=0, reset_at=NOW + 100),
        status=429,
        retry_after=30,
        now=NOW,
    )
    assert budget.earliest(NOW) == NOW + 100
    assert budget.wait_reason(NOW).startswith("rate limit exhausted")  # type: ignore[union-attr]
    assert budget.earliest(NOW + 50) == NOW + 100


def test_limit_is_remembered_when_a_later_answer_omits_it() -> None:
    budget = HostBudget()
    budget.observe(RateLimit(limit=100, remaining=90), status=200, retry_after=None, now=NOW)
    budget.observe(RateLimit(remaining=80), status=200, retry_after=None, now=NOW)
    assert budget.limit == 100
    assert budget.remaining == 80


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reserve": -0.1},
        {"reserve": 1},
        {"pace_below": 1.5},
        {"min_gap": -1},
        {"max_per_second": 0},
        {"throttle_wait": -1},
    ],
)
def test_host_budget_refuses_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HostBudget(**kwargs)


@given(
    remaining=st.integers(0, 5000),
    limit=st.integers(1, 5000),
    reset_in=st.floats(0, 7200),
    sends=st.integers(0, 50),
    step=st.floats(0, 100),
)
def test_earliest_is_never_before_now_and_never_past_the_reset_for_quota(
    remaining: int, limit: int, reset_in: float, sends: int, step: float
) -> None:
    budget = HostBudget()
    budget.observe(
        RateLimit(limit=limit, remaining=remaining, reset_at=NOW + reset_in),
        status=200,
        retry_after=None,
        now=NOW,
    )
    for _ in range(sends):
        budget.sent(NOW)
    at = NOW + step
    earliest = budget.earliest(at)
    assert earliest >= at
    assert earliest <= max(at, NOW + reset_in)
    assert (budget.wait_reason(at) is None) == (earliest == at)
