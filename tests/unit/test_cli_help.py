"""Every ``hookwise`` command explains itself with ``--help``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hookwise.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}

COMMANDS = {
    "init": ["hookwise.toml", "--force", "--dir"],
    "serve": [
        "POST /hooks/{source}",
        "--host",
        "--port",
        "--no-worker",
        "--workers",
        "--no-poll",
        "--demo",
    ],
    "worker": ["--concurrency", "lease"],
    "migrate": ["schema"],
    "poll": ["[polls.NAME]", "no receiver", "--once", "--stats", "NAME"],
    "events list": ["newest first", "--source", "--type", "--status", "--since", "--limit"],
    "events show": ["headers, body, deliveries", "SEQ"],
    "replay": ["again", "--source", "--type", "--since", "--handler", "--yes"],
    "dlq list": ["Dead letters", "--source", "--handler"],
    "dlq retry": ["pending again", "--all", "--source"],
    "dlq discard": ["Give up on dead letters", "--all", "--source"],
    "rejections list": ["refused", "--source", "--limit"],
    "rejections show": ["refused", "ID"],
    "verify": ["captured request", "--source", "--now", "--json"],
    "purge": ["Delete old finished events", "--older-than", "store.retention"],
    "doctor": ["config, secrets, handlers, store and clock"],
    "send": ["Sign sample events", "--secret", "--event", "--body", "--count", "--header"],
    "version": ["version"],
}
LISTINGS = ("events list", "events show", "dlq list", "doctor", "poll")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_explains_itself(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert f"Usage: hookwise {command}" in " ".join(result.output.split())
    for phrase in COMMANDS[command]:
        assert phrase.lower() in result.output.lower(), phrase


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"version"}))
def test_each_command_takes_a_config_file(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"], env=WIDE)
    assert "--config" in result.output and "-c" in result.output


@pytest.mark.parametrize("command", LISTINGS)
def test_each_listing_offers_json(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"], env=WIDE)
    assert "--json" in result.output


@pytest.mark.parametrize("group", ["", "events", "dlq"])
def test_groups_list_their_commands(group: str) -> None:
    result = runner.invoke(app, [*group.split(), "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    expected = {
        "": [
            "init",
            "serve",
            "worker",
            "poll",
            "migrate",
            "events",
            "replay",
            "dlq",
            "doctor",
            "send",
        ],
        "events": ["list", "show"],
        "dlq": ["list", "retry"],
    }[group]
    for name in expected:
        assert f" {name} " in result.output, name


def test_a_bare_group_prints_its_help_instead_of_failing_silently() -> None:
    result = runner.invoke(app, ["events"], env=WIDE)
    assert "list" in result.output and "show" in result.output
