"""``hookwise relay ...`` explains itself, and bad arguments get a clear error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hookwise.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}

COMMANDS = {
    "relay serve": ["--host", "--port", "--data", "--admin-token", "--public-url",
                    "--max-requests", "--keep-acked", "--answer-wait", "--tls-cert", "Example"],
    "relay connect": ["CHANNEL_URL", "--token", "--to", "--heartbeat", "HOOKWISE_RELAY_TOKEN",
                      "-> 200", "resumes", "Example"],
    "relay channel create": ["--server", "--admin-token", "token", "Example"],
    "relay channel show": ["CHANNEL_URL", "--token", "--json"],
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_relay_command_explains_itself(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert f"Usage: hookwise {command}" in flat
    for phrase in COMMANDS[command]:
        assert phrase.lower() in flat.lower(), phrase


def test_the_relay_group_lists_its_commands() -> None:
    result = runner.invoke(app, ["relay", "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for name in ("serve", "connect", "channel"):
        assert name in result.output
    assert "relay" in runner.invoke(app, ["--help"], env=WIDE).output


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["relay", "connect", "https://relay.example.com/hooks/x", "--token", "t"], "/c/ID"),
        (["relay", "connect", "https://r.example.com/c/AbCdEfGhIjKlMnOpQrStUv"], "--token"),
        (
            ["relay", "connect", "https://r.example.com/c/AbCdEfGhIjKlMnOpQrStUv", "-t", "x",
             "--to", "localhost:8000"],
            "http",
        ),
        (["relay", "serve", "--keep-acked", "a week"], "not a duration"),
        (["relay", "serve", "--tls-cert", "pyproject.toml"], "--tls-key"),
    ],
)  # fmt: skip
def test_bad_arguments_say_what_is_wrong(args: list[str], complaint: str) -> None:
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 2, result.output
    assert complaint in " ".join(result.output.split())
