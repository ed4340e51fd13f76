"""How the worker turns the end of an attempt into an outcome (pure, no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hookwise.backoff import RetryPolicy
from hookwise.errors import Reject, Retry
from hookwise.events import Event
from hookwise.handlers import HandlerSpec
from hookwise.store._base import Claim
from hookwise.worker import (
    MAX_ERROR_CHARS,
    Decision,
    decide,
    decide_before_run,
    describe_exception,
)

NOW = 1_700_000_000.0
POLICY = RetryPolicy(max_attempts=5, max_age=3600, base_delay=2, max_delay=60)


def handler(event: Event) -> None:
    pass


SPEC = HandlerSpec(name="billing", func=handler, policy=POLICY)


def claim(attempt: int = 1, received_at: float = NOW - 10) -> Claim:
    event = Event(
        id="evt_1", source="stripe", type="invoice.paid", body=b"{}", received_at=received_at
    )
    return Claim(
        delivery_id=7,
        handler="billing",
        fence=attempt,
        attempt=attempt,
        lease_expires_at=NOW + 30,
        event=event,
    )


def half() -> float:
    return 0.5


def raised(exc: BaseException) -> BaseException:
    """The exception as the worker sees it: raised, so it carries a traceback."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_return_is_done() -> None:
    assert decide(SPEC, claim(), None, now=NOW, rand=half) == Decision("done")


def test_exception_retries_with_jittered_backoff() -> None:
    decision = decide(SPEC, claim(attempt=3), raised(ValueError("boom")), now=NOW, rand=half)
    assert decision.outcome == "retry"
    assert decision.next_attempt_at == NOW + 0.5 * POLICY.ceiling(3)
    assert decision.error is not None
    assert decision.error.splitlines()[0] == "ValueError: boom"
    assert "Traceback (most recent call last)" in decision.error
    assert "raise exc" in decision.error


@pytest.mark.parametrize("draw", [0.0, 0.3, 0.999])
def test_backoff_stays_within_the_ceiling(draw: float) -> None:
    decision = decide(SPEC, claim(attempt=2), raised(OSError()), now=NOW, rand=lambda: draw)
    assert decision.next_attempt_at is not None
    assert NOW <= decision.next_attempt_at <= NOW + POLICY.ceiling(2)


def test_exception_on_the_last_attempt_is_dead() -> None:
    decision = decide(SPEC, claim(attempt=5), raised(ValueError("boom")), now=NOW, rand=half)
    assert decision.outcome == "dead"
    assert decision.next_attempt_at is None
    assert decision.error is not None
    assert decision.error.startswith("ValueError: boom")
    assert "max_attempts=5" in decision.error


def test_exception_past_max_age_is_dead() -> None:
    old = claim(attempt=1, received_at=NOW - 3600)
    decision = decide(SPEC, old, raised(ValueError("boom")), now=NOW, rand=half)
    assert decision.outcome == "dead"
    assert decision.error is not None
    assert "max_age=1h" in decision.error


def test_retry_after_is_honoured_exactly() -> None:
    decision = decide(SPEC, claim(), raised(Retry("rate limited", after=30)), now=NOW, rand=half)
    assert decision == Decision("retry", next_attempt_at=NOW + 30, error="Retry: rate limited")


def test_retry_after_a_timedelta() -> None:
    exc = raised(Retry(after=timedelta(minutes=2)))
    decision = decide(SPEC, claim(), exc, now=NOW, rand=half)
    assert decision.next_attempt_at == NOW + 120


def test_retry_at_an_aware_datetime() -> None:
    at = datetime.fromtimestamp(NOW + 600, tz=UTC).astimezone(datetime.now().astimezone().tzinfo)
    decision = decide(SPEC, claim(), raised(Retry(at=at)), now=NOW, rand=half)
    assert decision.next_attempt_at == pytest.approx(NOW + 600)


def test_retry_at_a_naive_datetime_means_utc() -> None:
    at = datetime.fromtimestamp(NOW + 600, tz=UTC).replace(tzinfo=None)
    decision = decide(SPEC, claim(), raised(Retry(at=at)), now=NOW, rand=half)
    assert decision.next_attempt_at == pytest.approx(NOW + 600)


def test_retry_at_the_past_means_now() -> None:
    at = datetime.fromtimestamp(NOW - 5, tz=UTC)
    decision = decide(SPEC, claim(), raised(Retry(at=at)), now=NOW, rand=half)
    assert decision.next_attempt_at == NOW


def test_retry_without_a_time_uses_backoff() -> None:
    decision = decide(SPEC, claim(attempt=2), raised(Retry()), now=NOW, rand=half)
    assert decision.next_attempt_at == NOW + 0.5 * POLICY.ceiling(2)


def test_retry_still_obeys_max_attempts() -> None:
    decision = decide(SPEC, claim(attempt=5), raised(Retry(after=1)), now=NOW, rand=half)
    assert decision.outcome == "dead"


def test_retry_still_obeys_max_age() -> None:
    decision = decide(SPEC, claim(), raised(Retry(after=7200)), now=NOW, rand=half)
    assert decision.outcome == "dead"
    assert decision.error is not None
    assert decision.error.startswith("Retry: retry requested")


def test_reject_is_dead_at_once() -> None:
    decision = decide(SPEC, claim(), raised(Reject("unknown customer")), now=NOW, rand=half)
    assert decision == Decision("dead", error="Reject: unknown customer")


def test_claim_within_budget_runs() -> None:
    assert decide_before_run(SPEC, claim(attempt=5)) is None


def test_claim_past_budget_is_dead_without_running() -> None:
    decision = decide_before_run(SPEC, claim(attempt=6))
    assert decision is not None
    assert decision.outcome == "dead"
    assert decision.error is not None
    assert "gave up after 5 attempts that never settled" in decision.error


def test_error_text_without_a_message_is_the_type() -> None:
    assert describe_exception(raised(KeyError())).splitlines()[0] == "KeyError"


def test_error_text_is_trimmed_keeping_summary_and_innermost_frame() -> None:
    def deep(n: int) -> None:
        if n == 0:
            raise RuntimeError("at the bottom")
        deep(n - 1)

    try:
        deep(200)
    except RuntimeError as exc:
        text = describe_exception(exc)
    assert len(text) <= MAX_ERROR_CHARS
    assert text.splitlines()[0] == "RuntimeError: at the bottom"
    assert "trimmed" in text
    assert text.endswith("RuntimeError: at the bottom")
    assert 'raise RuntimeError("at the bottom")' in text


def test_a_huge_message_is_trimmed_too() -> None:
    text = describe_exception(raised(ValueError("x" * 50_000)))
    assert len(text) <= MAX_ERROR_CHARS
    assert text.startswith("ValueError: xxx")
