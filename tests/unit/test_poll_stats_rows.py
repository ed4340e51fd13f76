"""What ``hookwise poll --stats`` and ``/metrics`` say of a reconciliation poll."""

from __future__ import annotations

from hookwise.cli import _poll_stats_row
from hookwise.poller.settings import parse_poll
from hookwise.receiver import poll_metrics_text
from hookwise.store import PollState

COUNTS = {
    "requests": 4,
    "emitted": 5,
    "backfilled": 2,
    "skipped_delivered": 7,
    "detail_requests": 3,
}


def test_a_reconciliation_poll_shows_what_it_backfilled() -> None:
    settings = parse_poll("stripe-backfill", {"preset": "stripe-events", "source": "stripe"})
    row = _poll_stats_row(
        "stripe-backfill", settings, PollState("stripe-backfill", stats=COUNTS), 0
    )
    assert (row["emitted"], row["backfilled"]) == (5, 2)
    assert (row["skipped_delivered"], row["detail_requests"]) == (7, 3)


def test_a_change_poll_has_no_reconciliation_counters() -> None:
    settings = parse_poll("issues", {"url": "https://api.example.com/issues"})
    row = _poll_stats_row("issues", settings, PollState("issues", stats=COUNTS), 0)
    assert "backfilled" not in row and "emitted" not in row
    assert row["requests"] == 4


def test_metrics_count_backfilled_deliveries() -> None:
    text = poll_metrics_text([PollState("stripe-backfill", stats=COUNTS)], 0.0)
    assert 'hookwise_poll_emitted_total{poll="stripe-backfill"} 5' in text.splitlines()
    assert 'hookwise_poll_backfilled_total{poll="stripe-backfill"} 2' in text.splitlines()
    assert "# TYPE hookwise_poll_backfilled_total counter" in text
