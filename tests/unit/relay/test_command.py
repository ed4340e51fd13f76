"""``hookwise relay ...`` explains itself, and bad arguments get a clear error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

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
        (
            ["relay", "connect", "https://r.example.com/c/AbCdEfGhIjKlMnOpQrStUv", "-t", "hwr_é"],
            "--token",
        ),
        (
            ["relay", "connect", "https://r.example.com:99999/c/AbCdEfGhIjKlMnOpQrStUv",
             "-t", "x"],
            "Port out of range",
        ),
        (["relay", "serve", "--keep-acked", "a week"], "not a duration"),
        (["relay", "serve", "--tls-cert", "pyproject.toml"], "--tls-key"),
    ],
)  # fmt: skip
def test_bad_arguments_say_what_is_wrong(args: list[str], complaint: str) -> None:
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 2, result.output
    assert complaint in " ".join(result.output.split())


def test_a_relay_url_that_is_not_one_is_an_error_not_a_traceback() -> None:
    result = runner.invoke(app, ["relay", "channel", "create", "--server", "http://[::1"], env=WIDE)
    assert result.exit_code == 1, result.output
    assert "can't reach the relay" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def not_a_relay() -> Iterator[str]:
    """An HTTP server that answers everything ``201`` with a page, as a wrong URL might."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(201)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_an_answer_that_is_not_the_relays_is_an_error_not_a_traceback(not_a_relay: str) -> None:
    result = runner.invoke(app, ["relay", "channel", "create", "--server", not_a_relay], env=WIDE)
    assert result.exit_code == 1, result.output
    assert "not as a hookwise relay does" in " ".join(result.output.split())
