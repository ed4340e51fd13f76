"""``hookwise send``'s pieces without a network: the plan (duplicates, pairs, shuffle
with a seed, shares of bad and stale events), the forger (bad signatures and stale
timestamps, checked per provider against the provider's own verification), the
runner over ``httpx.MockTransport`` and the report."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import KNOWN_PROVIDERS, Source, build_source
from hookwise.sending import (
    STALE_MARGIN,
    Chaos,
    EventContent,
    EventMaker,
    Forger,
    Outcome,
    Plan,
    PlannedEvent,
    PlannedRequest,
    Report,
    corrupt,
    make_plan,
    percentile,
    print_report,
    resolve_source,
    run_plan,
)

URL = "http://127.0.0.1:8000/hooks/example"
NOW = 1_700_000_000.0
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def content(number: int, stale: bool) -> EventContent:
    return EventContent(
        "stale.event" if stale else "ping", f'{{"n":{number}}}'.encode(), f"m{number}"
    )


def plan_of(**chaos: Any) -> Plan:
    return make_plan(Chaos(**chaos), content, new_seed=lambda: 4242)


def order(plan: Plan) -> list[tuple[int, int]]:
    return [(r.event.number, r.copy) for r in plan.requests]


# -- the plan --------------------------------------------------------------------------------


def test_a_plain_plan_sends_each_event_once_in_order() -> None:
    plan = plan_of(count=3)
    assert order(plan) == [(1, 1), (2, 1), (3, 1)]
    assert [r.number for r in plan.requests] == [1, 2, 3]
    assert [len(step) for step in plan.steps] == [1, 1, 1]
    assert plan.seed is None
    assert all(e.kind == "good" and e.expected == "2xx" for e in plan.events)


def test_duplicates_repeat_each_event_with_the_same_body_and_id() -> None:
    plan = plan_of(count=4, duplicates=3)
    assert order(plan) == [(e, c) for e in range(1, 5) for c in (1, 2, 3)]
    for event in plan.events:
        copies = [r for r in plan.requests if r.event.number == event.number]
        assert {(r.event.body, r.event.delivery_id) for r in copies} == {
            (event.body, event.delivery_id)
        }
    assert len({e.delivery_id for e in plan.events}) == 4


def test_with_concurrency_the_first_two_copies_of_every_other_event_go_together() -> None:
    plan = plan_of(count=5, duplicates=3, concurrency=4)
    pairs = [tuple((r.event.number, r.copy) for r in step) for step in plan.steps if len(step) > 1]
    assert pairs == [((1, 1), (1, 2)), ((3, 1), (3, 2)), ((5, 1), (5, 2))]
    assert max(len(step) for step in plan.steps) == 2
    assert len(plan.requests) == 15
    # One at a time, or one copy each: nothing goes together.
    assert {len(s) for s in plan_of(count=5, duplicates=3, concurrency=1).steps} == {1}
    assert {len(s) for s in plan_of(count=5, duplicates=1, concurrency=8).steps} == {1}


def test_shuffle_is_reproducible_with_its_seed() -> None:
    first = plan_of(count=20, duplicates=3, shuffle=True, seed=7, concurrency=8)
    again = plan_of(count=20, duplicates=3, shuffle=True, seed=7, concurrency=8)
    other = plan_of(count=20, duplicates=3, shuffle=True, seed=8, concurrency=8)
    assert order(first) == order(again)
    assert order(first) != order(other)
    assert order(first) != sorted(order(first))
    assert sorted(order(first)) == [(e, c) for e in range(1, 21) for c in (1, 2, 3)]
    assert first.seed == 7
    # A shuffled step keeps its pair together, and steps are numbered in sending order.
    for step in first.steps:
        if len(step) == 2:
            number = step[0].event.number
            assert [(r.event.number, r.copy) for r in step] == [(number, 1), (number, 2)]
    assert [r.step for r in first.requests] == sorted(r.step for r in first.requests)


def test_a_shuffle_without_a_seed_draws_one_and_reports_it() -> None:
    plan = plan_of(count=10, shuffle=True)
    assert plan.seed == 4242
    assert order(plan) == order(plan_of(count=10, shuffle=True, seed=4242))


@pytest.mark.parametrize(
    ("count", "rate", "expected"),
    [(20, 0.25, 5), (20, 0.0, 0), (20, 1.0, 20), (20, 0.01, 1), (3, 0.5, 2), (10, 0.33, 3)],
)
def test_a_bad_signature_share_breaks_that_many_events(
    count: int, rate: float, expected: int
) -> None:
    plan = plan_of(count=count, duplicates=2, bad_signature_rate=rate, seed=1)
    bad = [e for e in plan.events if e.bad_signature]
    assert len(bad) == expected
    assert all(e.expected == "4xx" and e.kind == "bad signature" for e in bad)
    # Every copy of a forged event is forged.
    assert Counter(r.event.bad_signature for r in plan.requests)[True] == 2 * expected


def test_which_events_break_depends_on_the_seed_only() -> None:
    def bad(seed: int) -> list[int]:
        plan = plan_of(count=40, bad_signature_rate=0.25, seed=seed)
        return [e.number for e in plan.events if e.bad_signature]

    assert bad(3) == bad(3)
    assert bad(3) != bad(4)


def test_stale_events_are_made_as_stale_and_expected_to_be_refused() -> None:
    plan = plan_of(count=8, stale_rate=0.5, bad_signature_rate=0.5, seed=11)
    stale = [e for e in plan.events if e.stale]
    assert len(stale) == 4
    assert all(e.type == "stale.event" for e in stale)
    assert all(e.type == "ping" for e in plan.events if not e.stale)
    assert all(e.expected == "4xx" for e in plan.events if e.stale or e.bad_signature)
    kinds = {e.kind for e in plan.events}
    assert kinds <= {"good", "stale", "bad signature", "bad signature, stale"}


@pytest.mark.parametrize(
    ("chaos", "message"),
    [
        ({"count": 0}, "count 0 must be at least 1"),
        ({"duplicates": 0}, "duplicates 0 must be at least 1"),
        ({"bad_signature_rate": 1.5}, "bad_signature_rate 1.5 must be between 0 and 1"),
        ({"stale_rate": -0.1}, "stale_rate -0.1 must be between 0 and 1"),
        ({"concurrency": 0}, "concurrency 0 must be between 1 and 256"),
        ({"count": 100_000, "duplicates": 2}, "at most 100000"),
    ],
)
def test_chaos_out_of_range_says_what_is_wrong(chaos: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Chaos(**chaos)


# -- breaking requests, per provider --------------------------------------------------------


def example(provider: str) -> tuple[SourceSettings, Source]:
    module = importlib.import_module(f"hookwise.providers.{provider}")
    settings = SourceSettings(name="example", provider=provider, **dict(module.EXAMPLE_SETTINGS))
    return settings, build_source(settings)


def checked_by_a_fresh_source(
    provider: str, forger: Forger, event: PlannedEvent, now: float
) -> None:
    """Verify the request for ``event`` with a source of the provider's own, as a
    receiver would (the forger's source is not the judge of its own requests)."""
    _, judge = example(provider)
    judge.public_url = forger.source.public_url
    request = forger.inbound(forger.sign(event, now=now))
    if judge.needs_prepare:
        asyncio.run(judge.prepare(request))
    judge.verify_request(request, now)


def prepared(
    provider: str, *, bad_signature: bool = False, stale: bool = False
) -> tuple[Forger, EventMaker]:
    settings, source = example(provider)
    forger = Forger(settings, source, URL, clock=lambda: NOW)
    maker = EventMaker(source, stale_by=forger.stale_by, clock=lambda: NOW)
    asyncio.run(forger.prepare(maker, bad_signature=bad_signature, stale=stale))
    return forger, maker


def event_from(
    maker: EventMaker, *, bad_signature: bool = False, stale: bool = False
) -> PlannedEvent:
    made = maker(1, stale)
    return PlannedEvent(1, made.type, made.body, made.delivery_id, bad_signature, stale)


SIGNING = [p for p in KNOWN_PROVIDERS if p != "none"]


@pytest.mark.parametrize("provider", SIGNING)
def test_a_bad_signature_fails_the_providers_own_verification(provider: str) -> None:
    forger, maker = prepared(provider, bad_signature=True)
    assert forger.bad_signature is not None
    assert forger.bad_signature.reason not in ("timestamp_too_old", "timestamp_too_new")
    now = NOW
    checked_by_a_fresh_source(provider, forger, event_from(maker), now)
    with pytest.raises(VerificationError) as refused:
        checked_by_a_fresh_source(provider, forger, event_from(maker, bad_signature=True), now)
    assert refused.value.reason == forger.bad_signature.reason


@pytest.mark.parametrize("provider", SIGNING)
def test_stale_is_either_refused_by_the_provider_or_refused_for_the_provider(
    provider: str,
) -> None:
    settings, source = example(provider)
    forger = Forger(settings, source, URL, clock=lambda: NOW)
    maker = EventMaker(source, stale_by=forger.stale_by, clock=lambda: NOW)
    assert forger.stale_by == settings.tolerance + STALE_MARGIN
    now = NOW
    stale = event_from(maker, stale=True)
    try:
        asyncio.run(forger.prepare(maker, bad_signature=False, stale=True))
    except ConfigError as exc:
        assert "signs no timestamp" in exc.problem and "--stale" in exc.problem
        # The claim holds: a request signed that long ago verifies like a fresh one.
        checked_by_a_fresh_source(provider, forger, stale, now)
        return
    assert forger.stale is not None and forger.stale.reason == "timestamp_too_old"
    with pytest.raises(VerificationError) as refused:
        checked_by_a_fresh_source(provider, forger, stale, now)
    assert refused.value.reason == "timestamp_too_old"
    checked_by_a_fresh_source(provider, forger, event_from(maker), now)


def no_timestamp_providers() -> set[str]:
    found = set()
    for provider in SIGNING:
        try:
            prepared(provider, stale=True)
        except ConfigError:
            found.add(provider)
    return found


def test_the_docs_name_the_providers_that_refuse_stale() -> None:
    text = " ".join(DOCS.read_text().split())
    match = re.search(r"Providers that sign no timestamp \(([^)]*)\)", text)
    assert match, "docs/cli.md lists the providers that refuse --stale"
    named = {name.strip(" `") for name in match.group(1).replace(" and ", ", ").split(",")}
    assert named == no_timestamp_providers()


def test_the_none_provider_has_nothing_to_break() -> None:
    for flags in ({"bad_signature": True}, {"stale": True}):
        with pytest.raises(ConfigError, match="verifies nothing"):
            prepared("none", **flags)


def test_bad_signatures_change_the_signature_header_or_the_secret() -> None:
    stripe, maker = prepared("stripe", bad_signature=True)
    assert stripe.bad_signature is not None
    assert stripe.bad_signature.how == "one character of stripe-signature changed"
    good = stripe.sign(event_from(maker), now=NOW)
    forged = stripe.sign(PlannedEvent(1, "x", good.body, "msg_1", bad_signature=True), now=NOW)
    assert forged.body == good.body
    changed = [name for name in good.headers if good.headers[name] != forged.headers.get(name)]
    assert changed == ["stripe-signature"]
    mailgun, _ = prepared("mailgun", bad_signature=True)
    assert mailgun.bad_signature is not None
    assert mailgun.bad_signature.how == "signed with a wrong secret"


def test_a_stale_request_is_signed_tolerance_plus_the_margin_ago() -> None:
    settings, source = resolve_source("stripe", secret="whsec_test", options={"tolerance": "2m"})
    forger = Forger(settings, source, URL)
    assert forger.stale_by == 120 + STALE_MARGIN
    now = NOW
    maker = EventMaker(source, stale_by=forger.stale_by, clock=lambda: now)
    event = event_from(maker, stale=True)
    header = forger.sign(event, now=now).headers["stripe-signature"]
    assert header.startswith(f"t={int(now - 420)},")
    assert json.loads(event.body)["created"] == int(now - 420)


HEX_SIGNATURE = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("sha256=" + HEX_SIGNATURE, HEX_SIGNATURE),
        ("t=1700000000,v1=" + HEX_SIGNATURE, HEX_SIGNATURE),
        ("Bearer tok_live_9f3c2a71d04e4b6f8a5e", "tok_live_9f3c2a71d04e4b6f8a5e"),
        ("short", "short"),
    ],
)
def test_corrupt_changes_one_character_of_the_long_token(value: str, token: str) -> None:
    changed = corrupt(value)
    assert len(changed) == len(value)
    differing = [i for i, (a, b) in enumerate(zip(value, changed, strict=True)) if a != b]
    assert len(differing) == 1
    position = differing[0]
    start = value.index(token)
    assert start <= position < start + len(token)
    before, after = value[position], changed[position]
    if all(c in string.hexdigits.lower() for c in token):
        assert after in string.hexdigits.lower()
    else:
        assert (before.isdigit(), before.islower(), before.isupper()) == (
            after.isdigit(),
            after.islower(),
            after.isupper(),
        )


def test_corrupt_keeps_base64_decodable_and_different() -> None:
    signature = base64.b64encode(bytes(range(32))).decode()
    changed = corrupt("v1," + signature).removeprefix("v1,")
    assert base64.b64decode(changed) != bytes(range(32))
    assert len(base64.b64decode(changed)) == 32


def test_event_maker_cycles_the_samples_or_sends_what_it_is_given() -> None:
    _, source = resolve_source("stripe", secret="whsec_test")
    maker = EventMaker(source)
    types = [maker(n, False).type for n in range(1, 9)]
    assert types == list(maker.sample_types) * 2
    one = EventMaker(source, event_type="invoice.paid", delivery_id="msg_fixed")
    made = [one(n, False) for n in (1, 2)]
    assert {m.type for m in made} == {"invoice.paid"} and {m.delivery_id for m in made} == {
        "msg_fixed"
    }
    assert made[0].body != made[1].body  # fresh ids
    fixed = EventMaker(source, body=b'{"type":"order.created","id":"o1"}')
    made_fixed = fixed(1, False)
    assert (made_fixed.type, made_fixed.body) == (
        "order.created",
        b'{"type":"order.created","id":"o1"}',
    )
    generic = EventMaker(source, event_type="custom.thing")(3, False)
    assert json.loads(generic.body)["type"] == "custom.thing"


def test_resolving_a_source_says_what_is_missing() -> None:
    with pytest.raises(ConfigError) as missing:
        resolve_source("stripe")
    assert "--secret" in str(missing.value) and "HOOKWISE_SEND_SECRET" in str(missing.value)
    with pytest.raises(ConfigError, match="unknown provider"):
        resolve_source("strype", secret="x")
    with pytest.raises(ConfigError, match="--option tolerance"):
        resolve_source("stripe", secret="x", options={"tolerance": "soon"})
    settings, source = resolve_source("none")
    assert source.insecure and settings.secrets == ()


def test_a_configured_source_signs_with_its_own_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "hookwise.toml"
    config.write_text(
        '[sources.billing]\nprovider = "stripe"\nsecrets = ["env:BILLING"]\ntolerance = "1m"\n'
    )
    monkeypatch.setenv("BILLING", "whsec_configured")
    settings, source = resolve_source("billing", config=config)
    assert source.provider == "stripe"
    assert settings.secrets == ("whsec_configured",) and settings.tolerance == 60
    overridden, _ = resolve_source("billing", config=config, secret="whsec_flag")
    assert overridden.secrets == ("whsec_flag",)


# -- the runner ------------------------------------------------------------------------------


class Receiver:
    """A scripted receiver: answers after ``pause`` seconds, remembers what was in
    flight together."""

    def __init__(self, pause: float = 0.01, status: int = 200) -> None:
        self.pause = pause
        self.status = status
        self.in_flight: set[str] = set()
        self.most = 0
        self.together: list[set[str]] = []
        self.seen: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.headers["x-key"]
        self.seen.append(request)
        self.in_flight.add(key)
        self.most = max(self.most, len(self.in_flight))
        self.together.append(set(self.in_flight))
        await asyncio.sleep(self.pause)
        self.in_flight.discard(key)
        return httpx.Response(self.status, json={"status": "accepted", "id": key})


def signer(request: PlannedRequest, now: float) -> Any:
    from hookwise.providers import SignedRequest

    key = f"{request.event.number}.{request.copy}"
    return SignedRequest(request.event.body, {"x-key": key}, query="v=1")


async def run(plan: Plan, receiver: Any, **kwargs: Any) -> list[Outcome]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        return await run_plan(plan, URL, sign=signer, client=client, **kwargs)


async def test_the_runner_keeps_to_the_concurrency_limit() -> None:
    receiver = Receiver()
    outcomes = await run(plan_of(count=12, concurrency=3), receiver)
    assert receiver.most == 3
    assert [o.request.number for o in outcomes] == list(range(1, 13))
    assert all(o.status == 200 and o.answer == "accepted" and o.as_expected for o in outcomes)
    assert all(str(r.url) == URL + "?v=1" for r in receiver.seen)
    assert {r.headers["user-agent"] for r in receiver.seen} == {"hookwise-send"}


async def test_paired_copies_are_in_flight_together() -> None:
    # Each step starts 0.1 s after the last; an answer takes 0.05 s: only the copies
    # of one step can meet.
    receiver = Receiver(pause=0.05)
    await run(plan_of(count=2, duplicates=2, concurrency=2), receiver, delay=0.1)
    assert {"1.1", "1.2"} in receiver.together
    assert {"2.1", "2.2"} not in receiver.together


async def test_the_runner_waits_the_delay_between_steps() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    await run(plan_of(count=5), Receiver(pause=0), delay=0.2, sleep=sleep)
    assert slept == [0.2] * 4


async def test_extra_headers_override_the_signed_ones() -> None:
    receiver = Receiver(pause=0)
    await run(plan_of(count=1), receiver, headers={"x-key": "mine", "x-extra": "1"})
    assert receiver.seen[0].headers["x-key"] == "mine"
    assert receiver.seen[0].headers["x-extra"] == "1"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectError("nobody there"), "connection error"),
        (httpx.RemoteProtocolError("hung up"), "connection closed"),
    ],
)
async def test_failures_are_outcomes_not_exceptions(error: Exception, kind: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    outcomes = await run(plan_of(count=2), fail)
    assert [o.error for o in outcomes] == [kind, kind]
    assert all(o.status is None and not o.as_expected for o in outcomes)


async def test_a_refused_connection_is_named_so() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except ConnectionRefusedError as exc:
            raise httpx.ConnectError("All connection attempts failed") from exc

    (outcome,) = await run(plan_of(count=1), refuse)
    assert outcome.error == "connection refused"
    assert outcome.error_detail is not None and "Connect call failed" in outcome.error_detail


async def test_a_timeout_says_how_long_it_waited() -> None:
    # What httpx raises on a real read timeout: its cause is the cancelled wait.
    def slow(request: httpx.Request) -> httpx.Response:
        try:
            raise RuntimeError("Cancelled via cancel scope 7f2a; reason: deadline exceeded")
        except RuntimeError as exc:
            raise httpx.ReadTimeout("") from exc

    transport = httpx.MockTransport(slow)
    async with httpx.AsyncClient(transport=transport, timeout=2.5) as client:
        (outcome,) = await run_plan(plan_of(count=1), URL, sign=signer, client=client)
    assert outcome.error == "timeout"
    assert outcome.error_detail == "no answer within 2.5 s (the timeout)"


async def test_an_error_while_reporting_an_outcome_stops_the_run() -> None:
    receiver = Receiver(pause=0.01)
    told: list[int] = []

    def report(outcome: Outcome) -> None:
        told.append(outcome.request.number)
        raise BrokenPipeError("the reader went away")

    before = asyncio.all_tasks()
    with pytest.raises(BrokenPipeError):
        await run(plan_of(count=50, concurrency=2), receiver, on_outcome=report)
    assert told == [1]
    assert len(receiver.seen) < 10
    assert asyncio.all_tasks() == before


async def test_bad_events_are_expected_to_be_refused() -> None:
    plan = plan_of(count=4, bad_signature_rate=0.5, seed=2)
    accepting = await run(plan, Receiver(pause=0))
    assert [o.as_expected for o in accepting] == [not e.bad_signature for e in plan.events]
    refusing = await run(plan, Receiver(pause=0, status=401))
    assert [o.as_expected for o in refusing] == [e.bad_signature for e in plan.events]


# -- the report ------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 50) is None


def outcome(
    request: PlannedRequest,
    status: int | None,
    answer: str | None = None,
    latency: float = 0.01,
    error: str | None = None,
) -> Outcome:
    return Outcome(
        request, 0.0, status=status, latency=latency if status else None, answer=answer, error=error
    )


def test_the_report_adds_up_the_outcomes() -> None:
    plan = plan_of(count=4, duplicates=2, bad_signature_rate=0.25, seed=5)
    outcomes = []
    for request in plan.requests:
        if request.event.bad_signature:
            outcomes.append(outcome(request, 401, "rejected", latency=0.002))
        elif request.event.number == 4 and request.copy == 2:
            outcomes.append(outcome(request, None, error="timeout"))
        else:
            answer = "accepted" if request.copy == 1 else "duplicate"
            outcomes.append(outcome(request, 200, answer, latency=0.004 * request.number))
    report = Report(
        plan, tuple(outcomes), url=URL, provider="stripe", source="send", elapsed=0.5, delay=0.0
    )
    assert report.by_status == {"200": 5, "401": 2}
    assert report.errors == {"timeout": 1}
    assert report.expected == {"2xx": 6, "4xx": 2}
    assert report.as_expected == 7 and not report.ok
    assert report.answers == {"accepted": 3, "duplicate": 2, "rejected": 2}
    assert report.latency_ms()["max"] == max(o.latency or 0 for o in outcomes) * 1000
    document = report.document()
    assert document["sent"] == 8 and document["unexpected"] == 1 and document["seed"] == 5
    assert len(document["requests"]) == 8
    assert json.loads(json.dumps(document)) == document
    kinds = {k.kind: (k.requests, k.as_expected, dict(k.answered)) for k in report.kinds()}
    assert kinds["bad signature"] == (2, 2, {"401": 2})
    assert kinds["good"] == (6, 5, {"200": 5, "timeout": 1})

    console = Console(record=True, width=160)
    print_report(report, console)
    text = console.export_text()
    assert "seed 5 (--seed 5 repeats this plan)" in text
    assert "1 of 8 answers was not what a correct receiver says" in text
    assert "errors: timeout x1" in text


def test_a_single_unexpected_answer_is_told_in_the_singular() -> None:
    plan = plan_of(count=1)
    report = Report(
        plan,
        (outcome(plan.requests[0], 500),),
        url=URL,
        provider="stripe",
        source="send",
        elapsed=0.1,
        delay=0.0,
    )
    console = Console(record=True, width=160)
    print_report(report, console)
    assert "1 of 1 answer was not what a correct receiver says" in console.export_text()
