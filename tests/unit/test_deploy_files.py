"""The deployment files (``deploy/``, ``docs/deploy.md``) agree with hookwise itself.

Nothing here builds an image or starts a service. The example config goes through
hookwise's own loader; every ``hookwise ...`` command line names a real command with
real options; the SQL in the docs runs against the SQLite schema; the compose file,
the systemd units and the Dockerfile have the shape the docs describe.
"""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml  # PyYAML comes with uvicorn[standard], a dependency of hookwise
from typer.testing import CliRunner

from hookwise.cli import app
from hookwise.config import STORE_URL_ENV, MissingSecretError, load_config, parse_config
from hookwise.durations import parse_duration
from hookwise.store._sql import split_statements, sql_for

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOC = ROOT / "docs" / "deploy.md"
EXAMPLE = DEPLOY / "hookwise.example.toml"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
UNITS = {"serve": DEPLOY / "hookwise.service", "worker": DEPLOY / "hookwise-worker@.service"}
TEXT_FILES = (DOC, EXAMPLE, COMPOSE, DOCKERFILE, *UNITS.values())

SECRETS = {
    "ACME_WEBHOOK_SECRET": "acme-test-secret",
    "SHOP_WEBHOOK_SECRET": "whsec_ZGVwbG95LWZpbGVzLXRlc3Qtc2VjcmV0LW5vdC1yZWFs",
}
SERVE_DRAIN = 10.0
"""Seconds `hookwise serve` lets requests in flight finish on SIGTERM (runtime.py)."""

CLI = typer.main.get_command(app)
runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


# -- reading the files ------------------------------------------------------------------


def _fenced(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return re.findall(r"^```([\w-]*)\n(.*?)^```", text, flags=re.S | re.M)


def _unfenced(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


SHELL_LIKE = {"sh", "shell", "bash", "console", "ini", ""}
"""Fenced blocks scanned line by line for command lines ("" is plain text)."""
_OPERATORS = re.compile(r"[;&|()<>]+")


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _is_hookwise(token: str) -> bool:
    return token == "hookwise" or token.endswith("/bin/hookwise")


def _invocations(line: str) -> list[list[str]]:
    """The arguments of each ``hookwise`` run on a shell line (or an ExecStart= line).

    ``sudo -u hookwise ...`` and ``createdb --owner hookwise hookwise`` name the user,
    not the command: a ``hookwise`` right after an option, or with nothing after it,
    is an argument.
    """
    found = []
    segment: list[str] = []
    for token in [*_tokens(line), ";"]:
        if not _OPERATORS.fullmatch(token):
            segment.append(token)
            continue
        for index, word in enumerate(segment):
            after_option = index > 0 and segment[index - 1].startswith("-")
            if _is_hookwise(word) and not after_option and index + 1 < len(segment):
                found.append(segment[index + 1 :])
                break
        segment = []
    return found


def _command_lines(path: Path) -> list[list[str]]:
    """Every ``hookwise`` invocation a file shows: in code blocks and `inline code`."""
    text = path.read_text("utf-8")
    lines: list[str] = []
    if path.suffix == ".md":
        for language, body in _fenced(text):
            if language in SHELL_LIKE:
                lines.extend(body.replace("\\\n", " ").splitlines())
        text = _unfenced(text)
    elif path.suffix == ".service":
        lines.extend(line for line in text.splitlines() if line.startswith("Exec"))
    lines.extend(" ".join(span.split()) for span in re.findall(r"`(hookwise [^`]+)`", text))
    return [args for line in lines for args in _invocations(line.removeprefix("$ "))]


def _unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {raw!r} is neither a [Section] nor Key=Value"
        current.append((key, value))
    return sections


def _one(pairs: list[tuple[str, str]], key: str) -> str:
    values = [value for name, value in pairs if name == key]
    assert len(values) == 1, f"expected one {key}=, found {values}"
    return values[0]


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return document


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:?message} and ${VAR:-default}, enough for this file."""

    def value(match: re.Match[str]) -> str:
        name, _, default = match[1], match[2], match[3] or ""
        return env.get(name) or default

    return re.sub(r"\$\{(\w+)(?:(:\?|:-)([^}]*))?\}", value, text)


def _example_env(**extra: str) -> dict[str, str]:
    return {**SECRETS, **extra}


# -- command lines -------------------------------------------------------------------


def _subcommands(command: Any) -> dict[str, Any] | None:
    """A group's commands by name; None for a command (duck-typed: Typer ships its own
    copy of click, so ``click.Group`` is not the class to check)."""
    commands: dict[str, Any] | None = getattr(command, "commands", None)
    return commands


def _resolve(args: list[str]) -> tuple[list[str], Any, str | None]:
    """Walk ``args`` down the command tree: (command path, leaf, problem)."""
    command: Any = CLI
    path: list[str] = []
    rest = list(args)
    while _subcommands(command) is not None and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            known = ", ".join(sorted(command.commands))
            return path, None, f"{name!r} is not a command of `hookwise {' '.join(path)}` ({known})"
        path.append(name)
        command = sub
    if _subcommands(command) is not None and "--help" not in rest:
        return path, None, f"`hookwise {' '.join(path)}` is a group: it needs a command"
    options = {"-h", "--help"}
    for param in command.params:
        options.update(param.opts)
        options.update(param.secondary_opts)
    for token in rest:
        if token.startswith("-") and len(token) > 1 and not token[1:2].isdigit():
            name = token.partition("=")[0]
            if name not in options:
                return path, None, f"`hookwise {' '.join(path)}` has no option {name}"
    return path, command, None


def _all_command_lines() -> dict[str, list[list[str]]]:
    return {path.name: _command_lines(path) for path in TEXT_FILES}


def test_every_command_line_names_a_real_command_with_real_options() -> None:
    problems = []
    paths: set[tuple[str, ...]] = set()
    for name, lines in _all_command_lines().items():
        for args in lines:
            path, _, problem = _resolve(args)
            if problem:
                problems.append(f"{name}: hookwise {' '.join(args)}: {problem}")
            else:
                paths.add(tuple(path))
    assert not problems, "\n".join(problems)
    for command in sorted(paths):
        result = runner.invoke(app, [*command, "--help"], env=WIDE)
        assert result.exit_code == 0, (command, result.output)
        assert f"Usage: hookwise {' '.join(command)}" in " ".join(result.output.split())


def test_the_docs_show_the_commands_an_operator_needs() -> None:
    shown = {" ".join(_resolve(args)[0]) for args in _command_lines(DOC)}
    needed = {"serve", "worker", "migrate", "doctor", "events list", "dlq list", "dlq retry"}
    assert needed <= shown, f"docs/deploy.md never shows: {sorted(needed - shown)}"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hookwise serve --no-worker", [["serve", "--no-worker"]]),
        ("sudo -u hookwise sqlite3 hookwise.db", []),
        ("sudo -u hookwise hookwise doctor", [["doctor"]]),
        ("createdb --owner hookwise hookwise", []),
        ("ExecStart=/opt/hookwise/venv/bin/hookwise worker -c x", [["worker", "-c", "x"]]),
        ("hookwise events list --json | jq length && hookwise dlq list", [
            ["events", "list", "--json"], ["dlq", "list"],
        ]),
    ],
)  # fmt: skip
def test_command_lines_are_found_where_they_are(line: str, expected: list[list[str]]) -> None:
    assert _invocations(line) == expected


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["serve", "--no-workers"], "no option --no-workers"),
        (["dlq", "purge"], "'purge' is not a command"),
        (["events"], "is a group"),
        (["severe"], "'severe' is not a command"),
    ],
)
def test_a_wrong_command_line_is_caught(args: list[str], problem: str) -> None:
    assert problem in (_resolve(args)[2] or "")


# -- the example config --------------------------------------------------------------------


def test_the_example_config_is_valid_for_hookwise() -> None:
    settings = load_config(EXAMPLE, env=_example_env())
    assert settings.store.url.startswith("postgresql://")
    assert ":" not in settings.store.url.split("://", 1)[1].split("@", 1)[0], "password in URL"
    assert settings.store.durability == "full"
    assert settings.store.retention == parse_duration("30d")
    assert settings.warnings == ()  # no literal secret, no unverified source
    assert {s.provider for s in settings.sources.values()} <= {"hmac", "standard"}
    assert {h.source for h in settings.handlers} == set(settings.sources)


def test_the_example_config_reads_every_secret_from_the_environment() -> None:
    raw = tomllib.loads(EXAMPLE.read_text("utf-8"))
    secrets = [s for source in raw["sources"].values() for s in source.get("secrets", [])]
    assert all(secret.startswith("env:") for secret in secrets)
    names = {secret.removeprefix("env:") for secret in secrets}
    assert names == set(SECRETS)
    with pytest.raises(MissingSecretError) as info:
        load_config(EXAMPLE, env={})
    assert {variable for _, variable in info.value.missing} == names
    for path in (DOC, COMPOSE):
        text = path.read_text("utf-8")
        for name in names:
            assert f"{name}=" in text, f"{path.name} does not say to set {name}"


def test_compose_gives_the_example_config_its_store_url() -> None:
    template = _compose()["x-hookwise"]["environment"][STORE_URL_ENV]
    url = _interpolate(template, {"POSTGRES_PASSWORD": "pw0123"})
    assert url == "postgresql://hookwise:pw0123@postgres:5432/hookwise"
    settings = load_config(EXAMPLE, env=_example_env(**{STORE_URL_ENV: url}))
    assert settings.store.url == url


def test_every_toml_snippet_in_the_docs_is_valid_config() -> None:
    snippets = [body for language, body in _fenced(DOC.read_text("utf-8")) if language == "toml"]
    assert snippets
    for body in snippets:
        parse_config(tomllib.loads(body), file="docs/deploy.md", env={})


# -- SQL in the docs -------------------------------------------------------------------------


def _sql_blocks() -> list[str]:
    return [body for language, body in _fenced(DOC.read_text("utf-8")) if language == "sql"]


@pytest.fixture
def sqlite_store() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(sql_for("sqlite").schema)
    yield conn
    conn.close()


def test_the_sql_for_sqlite_runs_against_the_schema(sqlite_store: sqlite3.Connection) -> None:
    statements = [
        statement
        for block in _sql_blocks()
        if not block.startswith("-- PostgreSQL")
        for statement in split_statements(block)
    ]
    assert len(statements) >= 3
    for statement in statements:
        sqlite_store.execute(statement).fetchall()


def test_every_sql_block_says_which_engine(sqlite_store: sqlite3.Connection) -> None:
    for block in _sql_blocks():
        assert block.startswith(("-- PostgreSQL", "-- SQLite", "-- Either engine")), block


def test_the_sqlite_backlog_query_measures_the_wait(sqlite_store: sqlite3.Connection) -> None:
    now = time.time()
    sqlite_store.execute(
        "INSERT INTO events (seq, source, dedup_key, type, received_at, intake, body) "
        "VALUES (1, 'acme', 'd1', 'invoice.paid', ?, 'push', x'7b7d')",
        (now - 60,),
    )
    for handler, due_at in (("billing", now - 60), ("later", now + 3600)):
        sqlite_store.execute(
            "INSERT INTO deliveries (event_seq, handler, status, next_attempt_at, created_at, "
            "updated_at) VALUES (1, ?, 'pending', ?, ?, ?)",
            (handler, due_at, now - 60, now - 60),
        )
    (query,) = [
        statement
        for block in _sql_blocks()
        for statement in split_statements(block)
        if statement.startswith("-- SQLite: due backlog")
    ]
    due, oldest_wait = sqlite_store.execute(query).fetchone()
    assert due == 1
    assert 55 < oldest_wait < 120


# -- compose ------------------------------------------------------------------------------


def test_compose_runs_the_scale_out_shape() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "migrate", "receiver", "worker"} <= set(services)
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"

    postgres = services["postgres"]
    assert postgres["healthcheck"]["test"]
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "postgres keeps its data in a named volume"

    migrate = services["migrate"]
    assert migrate["command"] == ["hookwise", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"

    for name in ("receiver", "worker"):
        service = services[name]
        assert service["deploy"]["replicas"] == 2
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "ports" not in service, f"{name} replicas can't share a published port"
        assert service["env_file"], "the secrets come from an env file"
    assert services["worker"]["command"] == ["hookwise", "worker"]
    assert "--no-worker" in services["receiver"]["command"]
    for name, service in services.items():
        command = service.get("command")
        if command and command[0] == "hookwise":
            assert _resolve(command[1:])[2] is None, (name, command)


def test_compose_services_without_http_turn_the_image_healthcheck_off() -> None:
    services = _compose()["services"]
    for name in ("migrate", "worker"):
        assert services[name]["healthcheck"] == {"disable": True}, name
    assert "healthcheck" not in services["receiver"], "receivers keep the /healthz check"


def test_compose_gives_handlers_their_grace_before_killing() -> None:
    grace = load_config(EXAMPLE, env=_example_env()).worker.grace
    services = _compose()["services"]
    for name in ("receiver", "worker"):
        assert parse_duration(services[name]["stop_grace_period"]) > grace + SERVE_DRAIN


def test_the_proxy_spreads_requests_over_the_receivers() -> None:
    compose = _compose()
    proxy = compose["services"]["proxy"]
    config = compose["configs"][proxy["configs"][0]["source"]]["content"]
    assert re.search(r"dynamic a receiver 8000\b", config)
    published = {port.split(":")[-1] for port in proxy["ports"]}
    assert re.search(rf"^:({'|'.join(published)}) \{{", config, flags=re.M)


# -- systemd units ------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(UNITS))
def test_the_unit_runs_hookwise_as_its_own_user(role: str) -> None:
    unit = _unit(UNITS[role])
    assert {"Unit", "Service", "Install"} <= set(unit)
    service = unit["Service"]
    assert _one(service, "User") == "hookwise"
    assert _one(service, "Restart") == "always"
    (args,) = _invocations(_one(service, "ExecStart"))
    assert args[0] == role
    config = Path(args[args.index("-c") + 1])
    assert Path(_one(service, "EnvironmentFile")).parent == config.parent
    grace = load_config(EXAMPLE, env=_example_env()).worker.grace
    drain = SERVE_DRAIN if role == "serve" else 0.0
    assert parse_duration(_one(service, "TimeoutStopSec") + "s") > grace + drain
    assert _one(unit["Install"], "WantedBy") == "multi-user.target"


def test_the_sqlite_store_of_the_docs_lives_in_the_units_state_directory() -> None:
    state = "/var/lib/" + _one(_unit(UNITS["serve"])["Service"], "StateDirectory")
    urls = re.findall(r'url = "sqlite:///(/[^"]+)"', DOC.read_text("utf-8"))
    assert urls
    for path in urls:
        assert Path(path).parent == Path(state), path


# -- Dockerfile ---------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text("utf-8").replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_the_dockerfile_builds_a_non_root_receiver_image() -> None:
    steps = _instructions()
    keywords = [keyword for keyword, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    user = [rest for keyword, rest in steps if keyword == "USER"]
    assert user and user[-1] not in ("root", "0")
    last_run = max(i for i, keyword in enumerate(keywords) if keyword == "RUN")
    assert keywords.index("USER") > last_run, "USER comes after the last RUN"
    assert any(keyword == "RUN" and "[postgres]" in rest for keyword, rest in steps)
    port = load_config(EXAMPLE, env=_example_env()).server.port
    assert ("EXPOSE", str(port)) in steps
    (healthcheck,) = [rest for keyword, rest in steps if keyword == "HEALTHCHECK"]
    assert f"127.0.0.1:{port}/healthz" in healthcheck and '"python"' in healthcheck
    (command,) = [json.loads(rest) for keyword, rest in steps if keyword == "CMD"]
    assert command == ["hookwise", "serve", "--host", "0.0.0.0", "--no-worker"]
    assert _resolve(command[1:])[2] is None
