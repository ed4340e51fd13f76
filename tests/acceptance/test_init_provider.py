"""``hookwise init --provider NAME``: every starter writes a config that loads and
handlers that take the provider's own sample events; two of them end to end with
``hookwise serve`` and ``hookwise send``."""

from __future__ import annotations

import asyncio
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookwise import Hookwise
from hookwise.providers import build_source
from hookwise.starters import STARTERS
from hookwise.store import EventFilter

from .conftest import Process, Result, Shell

PROCESS_TIMEOUT = 20.0


def exports(result: Result) -> dict[str, str]:
    """The variables ``init`` tells the user to export, with their values."""
    found = {}
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = value
    return found


@pytest.fixture
def fresh_handlers() -> Iterator[None]:
    """The project's ``handlers`` module is imported anew, and forgotten afterwards."""
    sys.modules.pop("handlers", None)
    yield
    sys.modules.pop("handlers", None)


@pytest.mark.parametrize("provider", sorted(STARTERS))
@pytest.mark.usefixtures("fresh_handlers")
def test_each_starter_loads_and_its_handlers_take_the_samples(
    provider: str, hookwise: Shell, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = hookwise("init", "--provider", provider)
    assert result.code == 0, result
    values = exports(result)
    starter = STARTERS[provider]
    assert set(values) == set(starter.variables), result
    assert f"hookwise send {provider} http://127.0.0.1:8000/hooks/{provider}" in result.stdout
    config = tomllib.loads((project / "hookwise.toml").read_text())
    source = config["sources"][provider]
    assert source["provider"] == provider
    assert source["secrets"] == [f"env:{starter.secret_env}"]
    assert "ordering" in source
    subscribed = {kind for handler in config["handlers"] for kind in handler["events"]}
    assert 2 <= len(config["handlers"]) <= 3
    assert all(handler["call"].startswith("handlers:") for handler in config["handlers"])
    compile((project / "handlers.py").read_text(), "handlers.py", "exec")

    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(project))
    hw = Hookwise.from_config(project / "hookwise.toml")
    assert hw.settings.warnings == ()
    signer = build_source(hw.settings.sources[provider])
    signer.public_url = f"http://hookwise.test/hooks/{provider}"
    samples = signer.samples(time.time())
    assert subscribed <= set(samples), "every subscribed type is one of the provider's samples"

    async def deliver() -> dict[str, list[str]]:
        statuses: dict[str, list[str]] = {}
        async with hw.open_store() as store:
            transport = httpx.ASGITransport(app=hw.asgi(store))
            async with httpx.AsyncClient(transport=transport, base_url="http://hookwise.test") as c:
                for body in samples.values():
                    signed = signer.sign_request(body, now=time.time())
                    path = f"/hooks/{provider}" + (f"?{signed.query}" if signed.query else "")
                    answer = await c.post(path, content=signed.body, headers=signed.headers)
                    assert answer.status_code == 200, answer.text
            await hw.worker(store).drain(timeout=20)
            for record in await store.list_events(EventFilter(limit=100)):
                deliveries = await store.deliveries(record.seq)
                statuses[record.type] = [
                    f"{d.handler}:{d.status}:{d.last_error or ''}" for d in deliveries
                ]
        return statuses

    statuses = asyncio.run(deliver())
    for kind in subscribed:
        assert len(statuses[kind]) == 1 and ":done:" in statuses[kind][0], (kind, statuses)


def test_an_unknown_provider_lists_the_starters(hookwise: Shell, project: Path) -> None:
    result = hookwise("init", "--provider", "stripes")
    assert result.code == 2, result
    assert "stripe" in result.stderr and "github" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "hookwise.toml").exists()
    supported = hookwise("init", "--provider", "discord")
    assert supported.code == 2, supported
    assert "no starter" in supported.stderr and "docs/providers.md" in supported.stderr


def events(shell: Shell, *args: str) -> list[dict[str, Any]]:
    result = shell("events", "list", "--json", *args)
    assert result.code == 0, result
    found: list[dict[str, Any]] = result.json()
    return found


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["stripe", "twilio"])
def test_the_printed_next_steps_work(
    provider: str, hookwise: Shell, project: Path, running: list[Process], free_port: int
) -> None:
    result = hookwise("init", "--provider", provider)
    assert result.code == 0, result
    hookwise.env.update(exports(result))
    server = hookwise.start("serve", "--port", str(free_port))
    running.append(server)
    server.wait_for_http(f"http://127.0.0.1:{free_port}/healthz")
    doctor = hookwise("doctor")
    assert doctor.code == 0, doctor
    url = f"http://127.0.0.1:{free_port}/hooks/{provider}"
    sent = hookwise("send", provider, url, "-c", "hookwise.toml", "-n", "3", "--json")
    assert sent.code == 0, sent

    config = tomllib.loads((project / "hookwise.toml").read_text())
    subscribed = {kind for handler in config["handlers"] for kind in handler["events"]}
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while True:
        listed = events(hookwise)
        handled = {e["type"] for e in listed if e["status"] == "done"}
        if len(listed) == 3 and subscribed & {e["type"] for e in listed} <= handled:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.1)
    assert subscribed & handled, listed
    assert server.terminate() == 0
    assert "Traceback" not in server.stderr


def test_init_into_a_place_that_cannot_be_written_says_so(hookwise: Shell, project: Path) -> None:
    (project / "taken").write_text("a file, not a directory")
    for args in (("--dir", "taken/app"), ("--dir", "taken/app", "--provider", "github")):
        result = hookwise("init", *args)
        assert result.code == 2, result
        assert "can't write the project into taken" in result.stderr
        assert "Traceback" not in result.output


def test_the_next_steps_name_a_config_that_is_not_hookwise_toml(
    hookwise: Shell, project: Path
) -> None:
    result = hookwise("init", "-c", "dev.toml", "--provider", "github")
    assert result.code == 0, result
    assert "hookwise serve -c dev.toml" in result.stdout
    assert "hookwise tail -c dev.toml" in result.stdout
    again = hookwise("init", "-c", "demo.toml")
    assert again.code == 2, again
    assert "handlers.py already exists" in again.stderr and "-c DIR/FILE.toml" in again.stderr
    demo = hookwise("init", "-c", "elsewhere/demo.toml")
    assert demo.code == 0, demo
    assert "cd elsewhere" in demo.stdout
    assert "hookwise serve -c demo.toml" in demo.stdout
    assert "hookwise events list -c demo.toml" in demo.stdout
