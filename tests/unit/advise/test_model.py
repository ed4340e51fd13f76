"""The decision model over a table of scenarios, and properties its figures must keep."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hookwise.advise import GENERIC, Advice, Inputs, advise, compute_figures, provider_facts
from hookwise.advise.model import DAY, MIN_POLL_INTERVAL, REASON_CODES

STRIPE = provider_facts("stripe")
GITHUB = provider_facts("github")
SHOPIFY = provider_facts("shopify")
SLACK = provider_facts("slack")
DAYS_3 = 3 * DAY

# (id, inputs, expected recommendation, a reason code that must be named)
SCENARIOS: list[tuple[str, Inputs, str, str]] = [
    # The worked examples of docs/choosing.md.
    ("payments", STRIPE.inputs(latency=5, changes_per_day=2000), "webhook", "polls_mostly_wasted"),
    (
        "payments retries cover a day down",
        STRIPE.inputs(latency=5, changes_per_day=2000),
        "webhook",
        "retries_cover_downtime",
    ),
    (
        "ci",
        GITHUB.inputs(latency=30, changes_per_day=200, resources=20),
        "hybrid",
        "provider_never_retries",
    ),
    ("chat", SLACK.inputs(latency=2, changes_per_day=5000), "hybrid", "short_retry_window"),
    (
        "nightly catalogue, webhooks offered",
        SHOPIFY.inputs(latency=3600, changes_per_day=1),
        "poll",
        "polling_is_cheap",
    ),
    (
        "nightly catalogue, no webhooks",
        provider_facts("rss").inputs(latency=3600, changes_per_day=1),
        "poll",
        "no_webhooks",
    ),
    # Edge cases the command must answer sensibly.
    (
        "no public endpoint, polling meets the need",
        STRIPE.inputs(latency=5, changes_per_day=2000, public_endpoint=False),
        "poll",
        "no_public_endpoint",
    ),
    (
        "no public endpoint, polling can't: relay",
        Inputs(
            latency=2,
            changes_per_day=100,
            resources=100,
            rate_limit_per_day=120_000,
            retry_window=DAYS_3,
            public_endpoint=False,
        ),
        "webhook",
        "relay_needed",
    ),
    (
        "sub-second with webhooks",
        STRIPE.inputs(latency=0.5, changes_per_day=2000),
        "webhook",
        "sub_second_latency",
    ),
    (
        "sub-second without webhooks",
        GENERIC.inputs(latency=0.5, changes_per_day=2000),
        "poll",
        "sub_second_latency",
    ),
    (
        "very high change rate, one listing",
        Inputs(latency=10, changes_per_day=1_000_000, list_endpoint=True, retry_window=DAYS_3),
        "poll",
        "high_change_rate",
    ),
    (
        "very high change rate, one resource",
        Inputs(latency=10, changes_per_day=100_000, retry_window=DAYS_3),
        "poll",
        "high_change_rate",
    ),
    (
        "github never retries",
        GITHUB.inputs(latency=60, changes_per_day=50),
        "hybrid",
        "provider_never_retries",
    ),
    (
        "unknown retries of a third party",
        Inputs(latency=10, changes_per_day=100),
        "hybrid",
        "retry_policy_unknown",
    ),
    (
        "own both, no webhooks yet",
        GENERIC.inputs(latency=5, changes_per_day=500, own_both=True),
        "webhook",
        "own_both_can_push",
    ),
    (
        "own both sets the retries",
        Inputs(latency=5, changes_per_day=500, own_both=True, retry_window=None),
        "webhook",
        "own_both_sets_retries",
    ),
    (
        "rate limit exceeded",
        Inputs(
            latency=10,
            changes_per_day=100,
            resources=50,
            rate_limit_per_day=120_000,
            retry_window=DAYS_3,
        ),
        "webhook",
        "rate_limit_exceeded",
    ),
    (
        "rate limit tight",
        Inputs(
            latency=60,
            changes_per_day=20_000,
            resources=100,
            rate_limit_per_day=200_000,
            retry_window=DAYS_3,
        ),
        "webhook",
        "rate_limit_tight",
    ),
    (
        "no webhooks, rate limit exceeded",
        GENERIC.inputs(latency=1, changes_per_day=100, resources=10, rate_limit_per_day=10_000),
        "poll",
        "rate_limit_exceeded",
    ),
    (
        "shopify retries 4h, a day down",
        SHOPIFY.inputs(latency=60, changes_per_day=500),
        "hybrid",
        "short_retry_window",
    ),
    (
        "shopify retries 4h, an hour down",
        SHOPIFY.inputs(latency=60, changes_per_day=500, downtime=3600),
        "webhook",
        "retries_cover_downtime",
    ),
    (
        "github without a public endpoint",
        GITHUB.inputs(latency=30, changes_per_day=200, public_endpoint=False),
        "poll",
        "no_public_endpoint",
    ),
    (
        "payments that may be an hour old",
        STRIPE.inputs(latency=3600, changes_per_day=1000),
        "poll",
        "polling_is_cheap",
    ),
]


@pytest.mark.parametrize(
    ("inputs", "expected", "code"),
    [case[1:] for case in SCENARIOS],
    ids=[case[0] for case in SCENARIOS],
)
def test_scenario(inputs: Inputs, expected: str, code: str) -> None:
    advice = advise(inputs)
    assert advice.recommendation == expected, advice.codes
    assert code in advice.codes, advice.codes
    reason = advice.reasons[advice.codes.index(code)]
    assert len(reason.text) > 30 and reason.weight > 0


def test_the_decisive_reason_comes_first() -> None:
    assert advise(GITHUB.inputs(latency=30, changes_per_day=200)).codes[0] == (
        "provider_never_retries"
    )
    assert advise(GENERIC.inputs(latency=60, changes_per_day=5)).codes[0] == "no_webhooks"
    no_endpoint = STRIPE.inputs(latency=5, changes_per_day=2000, public_endpoint=False)
    assert advise(no_endpoint).codes[0] == "no_public_endpoint"


def test_relay_is_flagged_only_when_webhooks_must_come_through_one() -> None:
    relayed = advise(
        Inputs(latency=0.5, changes_per_day=10, retry_window=DAYS_3, public_endpoint=False)
    )
    assert relayed.relay and relayed.recommendation == "webhook"
    assert relayed.codes[0] == "relay_needed"
    assert not advise(STRIPE.inputs(latency=5, changes_per_day=2000)).relay


def test_github_hybrid_names_the_deliveries_api_and_its_interval() -> None:
    advice = advise(GITHUB.inputs(latency=30, changes_per_day=200))
    text = advice.reasons[0].text
    assert "deliveries" in text and "every 5m" in text
    assert advice.poll_every == advice.figures.reconcile_interval_s == 300


def test_poll_every_respects_the_rate_limit() -> None:
    advice = advise(
        GENERIC.inputs(latency=1, changes_per_day=100, resources=10, rate_limit_per_day=10_000)
    )
    fastest = advice.figures.fastest_poll_interval_in_budget_s
    assert fastest is not None and advice.poll_every == pytest.approx(fastest)
    assert 10 * DAY / fastest == pytest.approx(10_000, rel=1e-6)


def test_figures_of_a_known_case() -> None:
    figures = compute_figures(
        Inputs(latency=60, changes_per_day=1440, payload_bytes=1000, rate_limit_per_day=2880)
    )
    assert figures.polls_per_day == 1440
    assert figures.poll_requests_per_day == 1440
    assert figures.wasted_poll_share == pytest.approx(math.exp(-1))
    assert figures.rate_limit_budget_share == pytest.approx(0.5)
    assert figures.poll_bytes_per_day_unconditional == 1_440_000
    expected = 1440 * (math.exp(-1) * 300 + (1 - math.exp(-1)) * 1000)
    assert figures.poll_bytes_per_day_conditional == pytest.approx(expected)
    assert figures.poll_detection_latency_expected_s == pytest.approx(30.3)
    assert figures.poll_detection_latency_worst_s == pytest.approx(60.3)
    assert figures.webhook_requests_per_day == 1440
    assert figures.lost_if_down_webhook is None  # retries unknown
    assert figures.lost_if_down_poll == 0


def test_free_304s_only_count_the_polls_that_change() -> None:
    base = Inputs(latency=60, changes_per_day=1440, rate_limit_per_day=10_000)
    counted = compute_figures(base).rate_limit_counted_requests_per_day
    free = compute_figures(replace(base, counts_304=False)).rate_limit_counted_requests_per_day
    assert counted == pytest.approx(1440)
    assert free == pytest.approx(1440 * (1 - math.exp(-1)))


def test_loss_if_down_longer_than_the_retries() -> None:
    inputs = SHOPIFY.inputs(latency=60, changes_per_day=480, downtime=DAY)
    figures = compute_figures(inputs)
    assert figures.lost_if_down_webhook == pytest.approx(480 * 20 / 24)
    assert figures.lost_if_down_hybrid == 0  # reconciles by reading the resources
    github = compute_figures(GITHUB.inputs(latency=60, changes_per_day=96, downtime=4 * DAY))
    assert github.lost_if_down_webhook == pytest.approx(96 * 4)
    assert github.lost_if_down_hybrid == pytest.approx(96)  # the deliveries list keeps 3 days


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("latency", 0.0, "latency"),
        ("latency", math.inf, "latency"),
        ("changes_per_day", -1.0, "changes_per_day"),
        ("resources", 0, "resources"),
        ("retry_window", -5.0, "retry_window"),
        ("rate_limit_per_day", 0.0, "rate_limit_per_day"),
        ("payload_bytes", -1, "payload_bytes"),
    ],
)
def test_impossible_inputs_say_which(field: str, value: object, message: str) -> None:
    kwargs: dict[str, object] = {"latency": 60.0, "changes_per_day": 10.0, field: value}
    with pytest.raises(ValueError, match=message):
        Inputs(**kwargs)  # type: ignore[arg-type]


def test_the_json_form_has_what_the_command_promises() -> None:
    document = advise(GITHUB.inputs(latency=30, changes_per_day=200)).to_dict()
    encoded = json.loads(json.dumps(document, allow_nan=False))
    assert encoded["recommendation"] == "hybrid"
    assert all(isinstance(text, str) for text in encoded["reasons"])
    assert encoded["reason_codes"][0] == "provider_never_retries"
    assert len(encoded["reasons"]) == len(encoded["reason_codes"])
    for key in (
        "polls_per_day",
        "wasted_poll_share",
        "rate_limit_budget_share",
        "poll_bytes_per_day_conditional",
        "poll_bytes_per_day_unconditional",
        "poll_detection_latency_expected_s",
        "webhook_detection_latency_s",
        "lost_if_down_webhook",
    ):
        assert key in encoded["figures"], key


# -- properties --------------------------------------------------------------------------

latencies = st.floats(min_value=0.05, max_value=7 * DAY, allow_nan=False)
rates = st.floats(min_value=0.0, max_value=5_000_000, allow_nan=False)
windows = st.one_of(st.none(), st.floats(min_value=0, max_value=10 * DAY, allow_nan=False))
limits = st.one_of(st.none(), st.floats(min_value=10, max_value=10_000_000, allow_nan=False))


@st.composite
def inputs(draw: st.DrawFn) -> Inputs:
    return Inputs(
        latency=draw(latencies),
        changes_per_day=draw(rates),
        resources=draw(st.integers(min_value=1, max_value=500)),
        webhooks=draw(st.booleans()),
        public_endpoint=draw(st.booleans()),
        own_both=draw(st.booleans()),
        retry_window=draw(windows),
        reconcile=draw(st.sampled_from([None, "the events list"])),
        reconcile_retention=draw(st.one_of(st.none(), st.just(3 * DAY))),
        list_endpoint=draw(st.booleans()),
        page_size=draw(st.integers(min_value=1, max_value=250)),
        rate_limit_per_day=draw(limits),
        counts_304=draw(st.booleans()),
        conditional=draw(st.booleans()),
        payload_bytes=draw(st.integers(min_value=300, max_value=1_000_000)),
        downtime=draw(st.floats(min_value=0, max_value=7 * DAY, allow_nan=False)),
    )


@settings(max_examples=300, deadline=None)
@given(inputs())
def test_figures_are_consistent(case: Inputs) -> None:
    f = compute_figures(case)
    assert f.polls_per_day * f.poll_interval_s == pytest.approx(DAY)
    assert f.poll_interval_s == case.latency
    assert 0.0 <= f.wasted_poll_share <= 1.0
    assert f.poll_requests_per_day >= f.polls_per_day * f.poll_targets
    assert f.poll_bytes_per_day_conditional <= f.poll_bytes_per_day_unconditional * (1 + 1e-12)
    assert f.poll_detection_latency_expected_s <= f.poll_detection_latency_worst_s
    assert f.poll_detection_latency_worst_s == pytest.approx(case.latency + case.response_time)
    assert f.rate_limit_counted_requests_per_day <= f.poll_requests_per_day * (1 + 1e-12)
    if f.rate_limit_per_day is not None:
        assert f.rate_limit_budget_share == pytest.approx(
            f.rate_limit_counted_requests_per_day / f.rate_limit_per_day
        )
        fastest = f.fastest_poll_interval_in_budget_s
        if fastest is not None:
            assert fastest >= MIN_POLL_INTERVAL
            at_fastest = compute_figures(replace(case, latency=fastest))
            assert at_fastest.rate_limit_budget_share is not None
            assert at_fastest.rate_limit_budget_share <= 1 + 1e-6
    if case.retry_window is not None and case.downtime <= case.retry_window:
        assert f.lost_if_down_webhook == 0
    if f.lost_if_down_webhook is not None and f.lost_if_down_hybrid is not None:
        assert f.lost_if_down_hybrid <= f.lost_if_down_webhook + 1e-9
    assert json.dumps(f.to_dict(), allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(inputs(), st.floats(min_value=1.0001, max_value=1000, allow_nan=False))
def test_more_frequent_change_never_makes_polling_dearer_per_change(
    case: Inputs, factor: float
) -> None:
    """Polls cost the same whatever the change rate, so each detected change costs less
    the more often things change: fewer wasted polls, fewer requests per change, while
    webhooks cost one request per change and lose more in an outage."""
    assume(case.changes_per_day >= 1e-6)  # a change a million days apart is none
    slow = compute_figures(case)
    fast = compute_figures(replace(case, changes_per_day=case.changes_per_day * factor))
    assert fast.wasted_poll_share <= slow.wasted_poll_share
    assert slow.poll_requests_per_change is not None and fast.poll_requests_per_change is not None
    assert fast.poll_requests_per_change <= slow.poll_requests_per_change * (1 + 1e-12)
    assert fast.polls_per_day == slow.polls_per_day
    assert fast.webhook_requests_per_day > slow.webhook_requests_per_day
    if slow.lost_if_down_webhook is not None and fast.lost_if_down_webhook is not None:
        assert fast.lost_if_down_webhook >= slow.lost_if_down_webhook


@settings(max_examples=300, deadline=None)
@given(inputs(), st.floats(min_value=1.0001, max_value=100, allow_nan=False))
def test_a_looser_need_never_makes_polling_dearer(case: Inputs, factor: float) -> None:
    tight = compute_figures(case)
    loose = compute_figures(replace(case, latency=case.latency * factor))
    assert loose.poll_requests_per_day <= tight.poll_requests_per_day * (1 + 1e-12)
    assert loose.wasted_poll_share <= tight.wasted_poll_share
    assert loose.rate_limit_counted_requests_per_day <= (
        tight.rate_limit_counted_requests_per_day * (1 + 1e-12)
    )


def _agrees(advice: Advice) -> bool:
    first = advice.reasons[0].favours
    return first == advice.recommendation or (
        advice.recommendation == "hybrid" and first == "webhook"
    )


@settings(max_examples=500, deadline=None)
@given(inputs())
def test_every_advice_is_explained_and_respects_the_hard_constraints(case: Inputs) -> None:
    advice = advise(case)
    assert advice.recommendation in ("webhook", "poll", "hybrid")
    assert advice.reasons and _agrees(advice), advice.codes
    assert len(set(advice.codes)) == len(advice.codes)
    assert set(advice.codes) <= set(REASON_CODES)
    if not case.webhooks and not case.own_both:
        assert advice.recommendation == "poll"
        assert advice.codes[0] == "no_webhooks"
    if advice.recommendation != "poll" and not case.public_endpoint:
        assert advice.relay and "relay_needed" in advice.codes
    if advice.recommendation == "hybrid":
        assert not case.own_both or case.retry_window is not None
    if advice.relay:
        assert not case.public_endpoint
    assert advice.poll_every >= MIN_POLL_INTERVAL
    assert json.dumps(advice.to_dict(), allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(inputs(), st.floats(min_value=1.0001, max_value=100, allow_nan=False))
def test_longer_retries_never_turn_a_webhook_into_a_hybrid(case: Inputs, factor: float) -> None:
    assume(case.retry_window is not None and case.retry_window > 0)
    assert case.retry_window is not None
    before = advise(case).recommendation
    after = advise(replace(case, retry_window=case.retry_window * factor)).recommendation
    if before == "webhook":
        assert after == "webhook"


def test_the_scenarios_name_most_reason_codes() -> None:
    named = {code for case in SCENARIOS for code in advise(case[1]).codes}
    assert set(REASON_CODES) - named <= {"webhook_not_fresher", "no_conditional_requests"}
