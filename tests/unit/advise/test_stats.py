from __future__ import annotations

import math

import pytest

from hookwise.advise import GENERIC, ObservedPoll, advise_from_stats, provider_facts

DAY = 86400.0


def seen(**counters: object) -> ObservedPoll:
    stats = {"requests": 400, "not_modified": 390, "changes": 10, "bytes": 20_000}
    stats.update(counters)
    interval = counters.get("interval", 60.0)
    return ObservedPoll.from_stats(
        "issues",
        {k: v for k, v in stats.items() if k != "interval"},
        interval=float(interval),  # type: ignore[arg-type]
        min_every=15.0,
        max_every=60.0,
    )


def test_too_few_runs_is_said_with_the_count() -> None:
    result = advise_from_stats(seen(requests=3, not_modified=2, changes=1), GENERIC)
    assert result.verdict == "not_enough_data"
    assert "not enough data yet (3 runs)" in result.summary
    assert result.advice is None
    assert result.to_dict()["enough_data"] is False


def test_detail_requests_are_not_runs() -> None:
    result = advise_from_stats(seen(requests=25, detail_requests=10), GENERIC)
    assert result.runs == 15 and result.verdict == "not_enough_data"


def test_a_mostly_quiet_github_poll_should_become_a_hybrid() -> None:
    result = advise_from_stats(seen(), provider_facts("github"))
    assert result.verdict == "become_hybrid"
    assert result.advice is not None and result.advice.recommendation == "hybrid"
    assert result.observed["change_rate_per_day"] == pytest.approx(10 / (400 * 60) * DAY)
    assert result.observed["not_modified_share"] == pytest.approx(390 / 400)
    assert result.observed["bytes_per_full_answer"] == 2000
    assert any("no time of the first run" in text for text in result.assumptions)
    assert any("between" in text for text in result.assumptions)  # adaptive bounds


def test_without_webhooks_a_quiet_poll_should_relax_its_interval() -> None:
    result = advise_from_stats(seen(), GENERIC)
    assert result.verdict == "relax_interval"
    rate = 10 / (400 * 60)
    assert result.suggested_every == pytest.approx(round(math.log(2) / rate))
    assert "only if the data may be" in result.summary


def test_a_known_need_is_the_relaxed_interval() -> None:
    result = advise_from_stats(seen(), GENERIC, latency=3600)
    assert result.verdict == "relax_interval" and result.suggested_every == 3600
    assert not any("freshness need taken as" in text for text in result.assumptions)


def test_a_busy_poll_is_kept() -> None:
    result = advise_from_stats(seen(not_modified=10, changes=900), GENERIC)
    assert result.verdict == "keep"
    assert "keep it as it is" in result.summary


def test_the_observed_period_counts_rate_limit_waits() -> None:
    result = advise_from_stats(seen(wait_seconds=600.0), GENERIC)
    assert result.observed["observed_period_s"] == pytest.approx(400 * 60 + 600)


def test_a_reconciliation_poll_reports_what_it_brought_back() -> None:
    observed = ObservedPoll.from_stats(
        "github-backfill",
        {"requests": 60, "emitted": 40, "backfilled": 4},
        interval=300.0,
        emits_events=True,
    )
    result = advise_from_stats(observed, provider_facts("github"))
    assert result.verdict == "keep"
    assert "4 (10%) were missing" in result.summary
    assert result.observed["backfilled"] == 4


def test_overrides_reach_the_model() -> None:
    result = advise_from_stats(
        seen(), GENERIC, overrides={"webhooks": True, "retry_window": 3 * DAY}
    )
    assert result.verdict == "become_webhook"
