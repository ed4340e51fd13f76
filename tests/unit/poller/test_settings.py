from __future__ import annotations

import doctest
from typing import Any

import pytest

from hookwise.errors import ConfigError
from hookwise.poller import settings as settings_module
from hookwise.poller.settings import POLL_KEYS, POLL_PRESETS, PollSettings, parse_poll

URL = "https://api.example.com/v1/items"


def parse(**table: Any) -> PollSettings:
    return parse_poll("acme", {"url": URL, **table}, file="hookwise.toml", env={"TOKEN": "s3"})


def test_defaults() -> None:
    settings = parse()
    assert (settings.min_every, settings.max_every, settings.timeout) == (60.0, 60.0, 30.0)
    assert (settings.items, settings.id, settings.version) == ("", "id", None)
    assert settings.pages.kind == "link" and settings.source == "acme"
    assert settings.deletions is True and settings.incremental is False
    assert settings.host == "api.example.com"


def test_every_key_is_read() -> None:
    settings = parse(
        headers={"Authorization": "env:TOKEN", "Accept": "application/json"},
        min_every="10s",
        max_every="5m",
        items="data",
        id="uid",
        version="updated_at",
        pages="cursor",
        cursor_field="last_item:uid",
        cursor_param="starting_after",
        has_more_field="has_more",
        page_size_param="limit",
        page_size=100,
        max_pages=7,
        since_param="updated_since",
        since_field="updated_at",
        source="acme-orders",
        deletions=False,
        timeout="5s",
        reserve=0.25,
        min_gap="250ms",
    )
    assert settings.headers == (("Authorization", "s3"), ("Accept", "application/json"))
    assert (settings.min_every, settings.max_every) == (10.0, 300.0)
    assert (settings.items, settings.id, settings.version) == ("data", "uid", "updated_at")
    spec = settings.pages
    assert (spec.kind, spec.cursor_field, spec.cursor_param) == (
        "cursor",
        "last_item:uid",
        "starting_after",
    )
    assert (spec.has_more_field, spec.size_param, spec.size, spec.max_pages) == (
        "has_more",
        "limit",
        100,
        7,
    )
    assert settings.incremental and settings.since_field == "updated_at"
    assert (settings.source, settings.deletions, settings.timeout) == ("acme-orders", False, 5.0)
    assert (settings.reserve, settings.min_gap) == (0.25, 0.25)


def test_page_numbers() -> None:
    spec = parse(pages="page", page_start=0, page_size_param="per_page", page_size=50).pages
    assert (spec.kind, spec.page_param, spec.start, spec.size) == ("page", "page", 0, 50)


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"colour": "red"}, "polls.acme.colour", "unknown key"),
        ({"url": "ftp://x/items"}, "polls.acme.url", "http(s)"),
        ({"url": 5}, "polls.acme.url", "non-empty string"),
        (
            {"headers": {"Authorization": "env:MISSING"}},
            "polls.acme.headers.Authorization",
            "MISSING",
        ),
        ({"headers": {"X-N": 5}}, "polls.acme.headers.X-N", "string"),
        ({"headers": "x"}, "polls.acme.headers", "table"),
        ({"every": "soon"}, "polls.acme.every", "not a duration"),
        ({"every": "0s"}, "polls.acme.every", "longer than zero"),
        ({"every": "1m", "min_every": "1s"}, "polls.acme.every", "both"),
        ({"min_every": "1s"}, "polls.acme.max_every", "missing"),
        ({"min_every": "5m", "max_every": "1m"}, "polls.acme.min_every", "longer"),
        ({"pages": "scroll"}, "polls.acme.pages", "unknown pagination"),
        ({"pages": "cursor"}, "polls.acme.pages", "cursor_field"),
        ({"page_size": 0}, "polls.acme.page_size", ">= 1"),
        ({"max_pages": True}, "polls.acme.max_pages", "whole number"),
        ({"since_param": "since"}, "polls.acme.since_field", "go together"),
        ({"deletions": "yes"}, "polls.acme.deletions", "true or false"),
        ({"reserve": 1.5}, "polls.acme.reserve", "[0, 1)"),
        ({"timeout": "0s"}, "polls.acme.timeout", "longer than zero"),
    ],
)
def test_bad_input_is_a_config_error_naming_the_key(
    table: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(**table)
    assert caught.value.key == key
    assert caught.value.file == "hookwise.toml"
    assert words in caught.value.problem
    assert caught.value.fix


def test_unknown_keys_list_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(interval="5m")
    assert caught.value.fix is not None
    assert all(key in caught.value.fix for key in POLL_KEYS)


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKWISE_TEST_POLL_TOKEN", "abc")
    settings = parse_poll(
        "acme", {"url": URL, "headers": {"Authorization": "env:HOOKWISE_TEST_POLL_TOKEN"}}
    )
    assert settings.headers == (("Authorization", "abc"),)


def test_docstring_examples_hold() -> None:
    result = doctest.testmod(settings_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- emit = "events": webhook deliveries --------------------------------------------------


def test_events_keys_are_read() -> None:
    settings = parse(
        emit="events",
        source="shop",
        body="delivery.body",
        request_headers="delivery.headers",
        detail_url="{url}/{id}/attempt",
        skip_delivered="last_status",
    )
    assert (settings.emit, settings.source, settings.deletions) == ("events", "shop", False)
    assert (settings.body, settings.request_headers) == ("delivery.body", "delivery.headers")
    assert (settings.detail_url, settings.skip_delivered) == ("{url}/{id}/attempt", "last_status")
    assert settings.item_detail_url("d/7") == f"{URL}/d%2F7/attempt"
    assert settings.preset is None


def test_changes_is_the_default_and_keeps_deletions() -> None:
    settings = parse()
    assert (settings.emit, settings.body, settings.detail_url) == ("changes", "", None)
    assert settings.deletions is True and settings.item_detail_url("1") is None


def test_stripe_events_preset() -> None:
    settings = parse_poll("backfill", {"preset": "stripe-events", "source": "stripe"})
    assert settings.url == "https://api.stripe.com/v1/events?delivery_success=false"
    assert (settings.emit, settings.source, settings.preset) == (
        "events",
        "stripe",
        "stripe-events",
    )
    assert (settings.items, settings.id, settings.body) == ("data", "id", "")
    assert settings.request_headers is None and settings.detail_url is None
    spec = settings.pages
    assert (spec.kind, spec.cursor_field, spec.cursor_param, spec.has_more_field) == (
        "cursor",
        "last_item:id",
        "starting_after",
        "has_more",
    )
    assert (spec.size_param, spec.size) == ("limit", 100)
    assert settings.deletions is False and settings.min_every == 60.0


def test_github_deliveries_preset() -> None:
    url = "https://api.github.com/repos/octo-org/hello-world/hooks/7/deliveries"
    settings = parse_poll(
        "backfill",
        {
            "preset": "github-deliveries",
            "url": url + "?redelivery=false",
            "source": "github",
            "headers": {"Authorization": "env:TOKEN"},
        },
        env={"TOKEN": "Bearer ghp_x"},
    )
    assert (settings.emit, settings.items, settings.id) == ("events", "", "id")
    assert (settings.body, settings.request_headers) == ("request.payload", "request.headers")
    assert (settings.detail_url, settings.skip_delivered) == ("{url}/{id}", "status_code")
    assert (settings.pages.kind, settings.pages.size_param, settings.pages.size) == (
        "link",
        "per_page",
        100,
    )
    assert settings.item_detail_url("12345678") == url + "/12345678"
    assert dict(settings.headers) == {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "Authorization": "Bearer ghp_x",
    }
    assert (settings.min_every, settings.max_every) == (300.0, 300.0)


def test_explicit_keys_win_over_a_preset() -> None:
    settings = parse_poll(
        "backfill",
        {
            "preset": "github-deliveries",
            "url": "https://ghe.example.com/api/v3/app/hook/deliveries",
            "page_size": 25,
            "min_every": "1m",
            "max_every": "10m",
            "headers": {"accept": "application/json"},
            "skip_delivered": "response.status",
        },
    )
    assert settings.pages.size == 25 and settings.skip_delivered == "response.status"
    assert (settings.min_every, settings.max_every) == (60.0, 600.0)
    assert dict(settings.headers) == {
        "X-GitHub-Api-Version": "2022-11-28",
        "accept": "application/json",
    }
    stripe = parse_poll(
        "backfill", {"preset": "stripe-events", "url": "https://api.stripe.com/v1/events"}
    )
    assert stripe.url == "https://api.stripe.com/v1/events" and stripe.emit == "events"


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"emit": "both"}, "polls.acme.emit", '"changes" or "events"'),
        ({"body": "payload"}, "polls.acme.body", 'only to polls with emit = "events"'),
        ({"detail_url": "{url}/{id}"}, "polls.acme.detail_url", "only to polls"),
        ({"skip_delivered": "status"}, "polls.acme.skip_delivered", "only to polls"),
        ({"request_headers": "headers"}, "polls.acme.request_headers", "only to polls"),
        ({"emit": "events", "version": "updated"}, "polls.acme.version", "once, by its id"),
        ({"emit": "events", "deletions": True}, "polls.acme.deletions", "never deleted"),
        ({"emit": "events", "detail_url": "{url}/x"}, "polls.acme.detail_url", "needs {id}"),
        (
            {"emit": "events", "detail_url": "{url}/{delivery}"},
            "polls.acme.detail_url",
            "{delivery}",
        ),
        ({"emit": "events", "detail_url": "{url}/{id"}, "polls.acme.detail_url", "not a valid"),
        ({"emit": "events", "detail_url": "/x/{id}"}, "polls.acme.detail_url", "http(s)"),
        ({"emit": "events", "body": 5}, "polls.acme.body", "string"),
        ({"preset": "stripe"}, "polls.acme.preset", "unknown preset"),
        ({"preset": "stripe-events", "emit": "changes"}, "polls.acme.emit", "emits events"),
        ({"preset": "stripe-events", "version": "created"}, "polls.acme.version", "once"),
    ],
)
def test_bad_events_input_is_a_config_error_naming_the_key(
    table: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(**table)
    assert caught.value.key == key
    assert words in caught.value.problem
    assert caught.value.fix


def test_the_github_preset_needs_a_url() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_poll("backfill", {"preset": "github-deliveries"}, file="hookwise.toml")
    assert caught.value.key == "polls.backfill.url"
    assert "github-deliveries" in caught.value.problem
    assert caught.value.fix is not None and "/hooks/HOOK_ID/deliveries" in caught.value.fix


def test_presets_fill_only_known_keys() -> None:
    assert set(POLL_PRESETS) == {"stripe-events", "github-deliveries"}
    for name in POLL_PRESETS:
        assert set(settings_module._PRESETS[name]) <= set(POLL_KEYS)


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="remove version"):
        PollSettings(name="p", url=URL, emit="events", version="updated")
    with pytest.raises(ValueError, match='detail_url applies only with emit="events"'):
        PollSettings(name="p", url=URL, detail_url="{url}/{id}")
    with pytest.raises(ValueError, match=r"needs \{id\}"):
        PollSettings(name="p", url=URL, emit="events", detail_url="{url}")
    with pytest.raises(ValueError, match="emit must be"):
        PollSettings(name="p", url=URL, emit="all")  # type: ignore[arg-type]
    assert PollSettings(name="p", url=URL, emit="events").deletions is False


def test_occurred_at_and_ordering_are_read() -> None:
    settings = parse_poll(
        "items", {"url": URL, "occurred_at": "meta.updated_at", "ordering": "latest"}
    )
    assert (settings.occurred_at, settings.ordering) == ("meta.updated_at", "latest")
    plain = parse_poll("items", {"url": URL})
    assert (plain.occurred_at, plain.ordering) == (None, None)


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"ordering": "newest"}, "polls.items.ordering", "unknown ordering"),
        (
            {"ordering": "latest", "preset": "stripe-events"},
            "polls.items.ordering",
            "as their source does",
        ),
        ({"occurred_at": "created", "emit": "events"}, "polls.items.occurred_at", "source"),
    ],
)
def test_ordering_and_time_errors_name_the_key(table: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_poll("items", {"url": URL, **table})
    assert caught.value.key == key and words in caught.value.problem
