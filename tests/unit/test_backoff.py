import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.backoff import RetryPolicy


def test_ceiling_doubles_then_caps() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=60)
    assert [policy.ceiling(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_full_jitter_spans_zero_to_ceiling() -> None:
    policy = RetryPolicy(base_delay=2, max_delay=600)
    assert policy.delay(4, rand=lambda: 0.0) == 0.0
    assert policy.delay(4, rand=lambda: 0.5) == 8.0
    assert policy.delay(4, rand=lambda: 0.999) == pytest.approx(15.984)


def test_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    now = 1000.0
    assert policy.next_attempt_at(attempt=2, now=now, first_received_at=now) is not None
    assert policy.next_attempt_at(attempt=3, now=now, first_received_at=now) is None


def test_gives_up_past_max_age() -> None:
    policy = RetryPolicy(max_attempts=100, max_age="1h", base_delay=1, max_delay=60)
    first = 1000.0
    inside = policy.next_attempt_at(
        attempt=5, now=first + 3000, first_received_at=first, rand=lambda: 1.0
    )
    assert inside == first + 3016
    assert (
        policy.next_attempt_at(
            attempt=5, now=first + 3599, first_received_at=first, rand=lambda: 1.0
        )
        is None
    )


def test_requested_time_replaces_the_jitter_but_not_the_limits() -> None:
    policy = RetryPolicy(max_attempts=5, max_age="1h")
    assert (
        policy.next_attempt_at(attempt=1, now=100, first_received_at=100, requested_at=160) == 160
    )
    assert (
        policy.next_attempt_at(attempt=1, now=100, first_received_at=100, requested_at=100 + 7200)
        is None
    )
    # a requested time in the past means "now", never earlier
    assert policy.next_attempt_at(attempt=1, now=100, first_received_at=100, requested_at=50) == 100


def test_default_policy_covers_a_three_day_provider_window() -> None:
    policy = RetryPolicy()
    expected_span = sum(policy.ceiling(n) / 2 for n in range(1, policy.max_attempts))
    assert expected_span >= 3 * 86400
    assert policy.max_age == 3 * 86400


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_delay": 0}, {"base_delay": 10, "max_delay": 5}]
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@given(attempt=st.integers(1, 10_000), draw=st.floats(0, 1, exclude_max=True))
def test_delay_is_always_within_bounds(attempt: int, draw: float) -> None:
    policy = RetryPolicy(base_delay=2, max_delay=3600)
    assert 0 <= policy.delay(attempt, rand=lambda: draw) <= 3600
