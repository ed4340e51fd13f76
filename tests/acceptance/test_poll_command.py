"""``hookwise poll`` and the polls of ``hookwise serve`` as a user runs them, against a
REST API on loopback (``tests/integration/_api_server.py``) that the test changes."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..integration._api_server import ItemsAPI, serve
from ._poll_handler import RECORD_ENV
from .conftest import SRC, Process, Shell
from .test_serve import eventually

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
QUIET = 1.5
"""Seconds a process that must not poll is watched (its poll is due every 0.2 s)."""


@pytest.fixture
def api() -> Iterator[ItemsAPI]:
    with serve(ItemsAPI(page_size=2)) as running:
        yield running


def configure(shell: Shell, text: str) -> Path:
    record = shell.cwd / "handled.txt"
    (shell.cwd / "hookwise.toml").write_text(text, "utf-8")
    shell.env.update(PYTHONPATH=os.pathsep.join((str(SRC), str(HERE))), **{RECORD_ENV: str(record)})
    return record


def polling(api: ItemsAPI, every: str = "1m") -> str:
    return f"""
[store]
url = "sqlite:///hookwise.db"

[worker]
poll_interval = "100ms"

[polls.items]
url = "{api.url}/items"
every = "{every}"

[[handlers]]
name = "recorder"
call = "_poll_handler:record"
source = "items"
events = ["created", "updated"]
"""


def json_of(shell: Shell, *args: str) -> Any:
    result = shell(*args, "--json")
    assert result.code == 0, result
    return result.json()


def handled(record: Path) -> list[str]:
    return sorted(record.read_text().splitlines()) if record.exists() else []


def test_poll_once_stores_each_change_as_an_event_then_costs_only_a_304(
    hookwise: Shell, api: ItemsAPI
) -> None:
    api.page_size = 3  # one page: a 304 for it stands for the whole listing
    for key in "abc":
        api.put(key, name=key.upper())
    configure(hookwise, polling(api))

    first = hookwise("poll", "--once")
    assert first.code == 0, first
    assert "items: changed, 1 request (0 answered 304)" in first.stdout
    assert "3 changes (3 created)" in first.stdout
    assert "stored 3 events" in first.stdout
    events = json_of(hookwise, "events", "list")
    assert (
        sorted((e["source"], e["type"], e["intake"]) for e in events)
        == [("items", "created", "pull")] * 3
    )
    assert {e["id"].split(":")[2] for e in events} == {"a", "b", "c"}
    assert {e["status"] for e in events} == {"pending"}, "no worker ran"

    (second,) = json_of(hookwise, "poll", "--once")
    assert {k: second[k] for k in ("status", "requests", "not_modified", "bytes", "changes")} == {
        "status": "unchanged",
        "requests": 1,
        "not_modified": 1,
        "bytes": 0,
        "changes": 0,
    }
    assert (api.requests, api.not_modified) == (2, 1)
    assert len(json_of(hookwise, "events", "list")) == 3

    (stats,) = json_of(hookwise, "poll", "--stats")
    assert stats["name"] == "items" and stats["configured"] is True
    counters = ("requests", "not_modified", "changes", "created", "errors", "rate_limit_waits")
    assert {k: stats[k] for k in counters} == {
        "requests": 2,
        "not_modified": 1,
        "changes": 3,
        "created": 3,
        "errors": 0,
        "rate_limit_waits": 0,
    }
    assert stats["not_modified_share"] == pytest.approx(1 / 2, abs=0.001)
    assert stats["bytes"] == api.body_bytes > 0
    assert (stats["interval"], stats["error"]) == (60.0, None)
    # the interval plus the run's own time, from its first request
    assert 60.0 <= stats["latency_bound"] < 62.0
    assert 0 < stats["next_due_in"] <= 60

    table = hookwise("poll", "--stats", env={"COLUMNS": "160"})
    assert table.code == 0, table
    row = next(line for line in table.stdout.splitlines() if line.strip().startswith("items"))
    assert re.search(r"\b2\s+1 \(50%\)", row), row
    assert "in " in row and "1m" in row

    narrow = hookwise("poll", "--stats", env={"COLUMNS": "80"})  # one block per poll
    assert narrow.code == 0, narrow
    lines = [line.strip() for line in narrow.stdout.splitlines()]
    assert lines[0] == "items"
    assert re.fullmatch(r"requests\s+2", lines[1]) and re.fullmatch(r"304s\s+1 \(50%\)", lines[2])
    assert all(len(line) <= 80 for line in narrow.stdout.splitlines())


def test_an_unreachable_api_fails_the_run_with_exit_code_1(
    hookwise: Shell, api: ItemsAPI, free_port: int
) -> None:
    api.put("a", name="A")
    configure(
        hookwise,
        polling(api)
        + f"""
[polls.down]
url = "http://127.0.0.1:{free_port}/items"
every = "1m"
timeout = "5s"
""",
    )
    result = hookwise("poll", "--once")
    assert result.code == 1, result
    assert "items: changed" in result.stdout
    assert "down: error" in result.stdout
    assert f"127.0.0.1:{free_port}" in result.stdout and "reachable" in result.stdout
    assert "Traceback" not in result.output

    only = hookwise("poll", "--once", "--json", "down")
    assert only.code == 1, only
    (run,) = only.json()
    assert run["status"] == "error" and f"127.0.0.1:{free_port}" in run["error"]

    stats = {row["name"]: row for row in json_of(hookwise, "poll", "--stats")}
    down = stats["down"]
    assert (down["errors"], down["failures"], down["requests"]) == (2, 2, 2)
    assert f"127.0.0.1:{free_port}" in down["error"] and down["error_since"] is not None
    assert stats["items"]["errors"] == 0
    table = hookwise("poll", "--stats", "down")
    assert table.code == 0, table
    assert "failing since" in table.stdout
    rows = [line.split()[0] for line in table.stdout.splitlines()[1:] if line[:2].strip()]
    assert rows == ["down"], table


def test_poll_names_and_flags_are_checked(hookwise: Shell, api: ItemsAPI) -> None:
    configure(hookwise, polling(api))
    for args in (("poll", "--once", "itemz"), ("poll", "--stats", "itemz"), ("poll", "itemz")):
        result = hookwise(*args)
        assert result.code == 2, result
        assert "no poll named 'itemz'" in result.stderr
        assert "did you mean 'items'?" in result.stderr
    assert api.requests == 0
    for args in (("poll", "--json"), ("poll", "--once", "--stats")):
        result = hookwise(*args)
        assert result.code == 2, result
        assert "Traceback" not in result.output

    (hookwise.cwd / "hookwise.toml").write_text('[store]\nurl = "sqlite:///hookwise.db"\n')
    none = hookwise("poll", "--once")
    assert none.code == 2, none
    assert "no polls are configured" in none.stderr and "[polls.NAME]" in none.stderr
    empty = hookwise("poll", "--stats")
    assert empty.code == 0, empty
    assert "no polls" in empty.stdout


def _series(text: str, name: str) -> dict[str, float]:
    return {
        match[1]: float(match[2])
        for match in re.finditer(rf'^{name}\{{poll="([^"]+)"\}} (\S+)$', text, re.MULTILINE)
    }


def test_serve_polls_beside_the_receiver_and_its_handlers_get_the_changes(
    hookwise: Shell, api: ItemsAPI, running: list[Process], free_port: int
) -> None:
    api.put("a", name="A")
    record = configure(hookwise, polling(api, every="200ms"))
    process = hookwise.start("serve", "--port", str(free_port))
    running.append(process)
    base = f"http://127.0.0.1:{free_port}"
    process.wait_for_http(f"{base}/healthz")
    eventually(lambda: handled(record) == ["created a A"], what="the first item handled")

    api.put("a", name="A2")
    api.put("b", name="B")
    eventually(
        lambda: handled(record) == ["created a A", "created b B", "updated a A2"],
        what="the changes handled",
    )
    metrics = httpx.get(f"{base}/metrics").text
    assert _series(metrics, "hookwise_poll_requests_total")["items"] >= 2
    assert _series(metrics, "hookwise_poll_changes_total")["items"] >= 1
    assert _series(metrics, "hookwise_poll_failing") == {"items": 0.0}
    assert _series(metrics, "hookwise_poll_interval_seconds") == {"items": 0.2}
    assert "items" in _series(metrics, "hookwise_poll_next_due_seconds")
    for name in ("not_modified", "bytes", "rate_limit_waits", "errors"):
        assert "items" in _series(metrics, f"hookwise_poll_{name}_total"), name

    assert process.terminate() == 0
    assert "Traceback" not in process.stderr
    assert "polling items" in process.stderr and "hookwise stopped" in process.stderr
    assert handled(record) == ["created a A", "created b B", "updated a A2"], "each ran once"


def test_only_serve_and_poll_poll_and_a_worker_handles_what_poll_stored(
    hookwise: Shell, api: ItemsAPI, running: list[Process], free_port: int
) -> None:
    api.put("a", name="A")
    record = configure(hookwise, polling(api, every="200ms"))
    receiver = hookwise.start("serve", "--port", str(free_port), "--no-poll", "--no-worker")
    running.append(receiver)
    receiver.wait_for_http(f"http://127.0.0.1:{free_port}/healthz")
    worker = hookwise.start("worker")
    running.append(worker)
    worker.wait_for_output("running 1 handler")
    time.sleep(QUIET)
    assert api.requests == 0, "neither serve --no-poll nor worker polls"
    assert "not polling items" in receiver.stderr

    poller = hookwise.start("poll")
    running.append(poller)
    eventually(lambda: handled(record) == ["created a A"], what="the polled item handled")
    api.put("b", name="B")
    eventually(lambda: handled(record) == ["created a A", "created b B"], what="the new item")
    assert poller.terminate() == 0
    assert "Traceback" not in poller.stderr
    assert "polling stopped" in poller.stderr
    for process in (worker, receiver):
        assert process.terminate() == 0
        assert "Traceback" not in process.stderr
