from __future__ import annotations

import doctest
from typing import Any

import pytest

from hookwise.errors import ConfigError
from hookwise.poller import settings as settings_module
from hookwise.poller.settings import POLL_KEYS, PollSettings, parse_poll

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
