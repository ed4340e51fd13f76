"""SIGTERM while handlers run: nothing acknowledged is lost, nothing runs twice.

A user's process manager stops ``hookwise serve`` in the middle of work. Every event
that was answered 200 must be in the store; handlers that were running finish within
the grace period; whatever had not started is released, and a worker started later
runs it — each event exactly once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import Process, Shell
from .test_serve import eventually

pytestmark = pytest.mark.slow

SLOW_HANDLER = """
import os
import time

def handle(event):
    time.sleep(0.3)
    with open(os.environ["HANDLED_LOG"], "a") as log:
        log.write(event.id + "\\n")
        log.flush()
        os.fsync(log.fileno())
"""

CONFIG = """
[store]
url = "sqlite:///inbox.db"

[worker]
concurrency = 3
threads = 3
grace = "5s"

[sources.demo]
provider = "standard"
secrets = ["env:HOOKWISE_DEMO_SECRET"]

[[handlers]]
name = "slow"
source = "demo"
call = "slow:handle"
"""


def statuses(shell: Shell) -> Counter[str]:
    result = shell("events", "list", "--json", "--limit", "1000")
    assert result.code == 0, result
    listed: list[dict[str, Any]] = result.json()
    return Counter(event["status"] for event in listed)


def test_sigterm_mid_work_loses_nothing_and_runs_nothing_twice(
    initialized: Shell, project: Path, running: list[Process], free_port: int
) -> None:
    (project / "slow.py").write_text(SLOW_HANDLER)
    (project / "hookwise.toml").write_text(CONFIG)
    handled = project / "handled.log"
    initialized.env["HANDLED_LOG"] = str(handled)

    server = initialized.start("serve", "--port", str(free_port))
    running.append(server)
    server.wait_for_http(f"http://127.0.0.1:{free_port}/healthz")
    sent = initialized(
        "send",
        "standard",
        f"http://127.0.0.1:{free_port}/hooks/demo",
        "--count",
        "30",
        "--json",
    )
    assert sent.code == 0, sent
    acked = {answer["delivery_id"] for answer in sent.json()["requests"] if answer["status"] == 200}
    assert len(acked) == 30

    # Stop while the first handlers are running (30 events x 0.3 s / 3 at a time = 3 s of work).
    eventually(
        lambda: handled.exists() and handled.read_text().count("\n") >= 3, what="some handlers ran"
    )
    assert server.terminate() == 0, server.stderr
    assert "Traceback" not in server.stderr

    after_stop = statuses(initialized)
    assert sum(after_stop.values()) == 30, "every acknowledged event is stored"
    assert after_stop["leased"] == 0, "nothing is left leased: finished or released"
    assert after_stop["pending"] > 0, "the stop really came mid-work"

    worker = initialized.start("worker")
    running.append(worker)
    eventually(lambda: statuses(initialized) == Counter({"done": 30}), what="all 30 done")
    assert worker.terminate() == 0

    runs = Counter(handled.read_text().split())
    assert set(runs) == acked
    assert set(runs.values()) == {1}, f"ran more than once: {runs.most_common(3)}"
    shown = initialized("events", "list", "--json", "--limit", "1000")
    assert {event["id"] for event in json.loads(shown.stdout)} == acked
