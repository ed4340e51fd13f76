"""``hookwise tail`` beside ``hookwise serve``: one line per event as it arrives, one per
delivery as it settles (done, retry, dead), in JSON and as text; Ctrl-C ends it."""

from __future__ import annotations

import json
import signal
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from ..integration._postgres import pg_schema
from .conftest import Process, Shell

pytestmark = pytest.mark.slow

PROCESS_TIMEOUT = 20.0


def json_lines(process: Process) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.stdout.splitlines() if line.strip()]


def wait_for(process: Process, check: Any, what: str) -> Any:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while True:
        value = check()
        if value:
            return value
        assert process.popen.poll() is None, f"tail exited\n{process.stdout}\n{process.stderr}"
        assert time.monotonic() < deadline, f"{what}\n{process.stdout}\n{process.stderr}"
        time.sleep(0.1)


def interrupt(process: Process) -> int:
    process.popen.send_signal(signal.SIGINT)
    code = process.popen.wait(timeout=PROCESS_TIMEOUT)
    process.stop()
    return code


def test_tail_follows_arrivals_and_settlements(
    initialized: Shell, running: list[Process], free_port: int
) -> None:
    server = initialized.start("serve", "--port", str(free_port))
    running.append(server)
    base = f"http://127.0.0.1:{free_port}"
    server.wait_for_http(f"{base}/healthz")
    follower = initialized.start("tail", "--json", "--since", "10m", "--interval", "0.1")
    running.append(follower)
    text = initialized.start("tail", "--since", "10m", "--source", "demo")
    running.append(text)

    url = f"{base}/hooks/demo"
    for args in (
        ("--event", "order.created", "-n", "2"),
        ("--event", "demo.reject"),
        ("--event", "demo.flaky", "--id", "msg_flaky"),
    ):
        sent = initialized("send", "standard", url, *args)
        assert sent.code == 0, sent

    def complete() -> list[dict[str, Any]] | None:
        lines = json_lines(follower)
        events = [line for line in lines if line["kind"] == "event"]
        retries = [line for line in lines if line.get("status") == "retry"]
        return lines if len(events) == 4 and retries else None

    lines = wait_for(follower, complete, "4 events and a retry")
    events = [line for line in lines if line["kind"] == "event"]
    assert [e["type"] for e in events] == [
        "order.created",
        "order.created",
        "demo.reject",
        "demo.flaky",
    ]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert all(e["source"] == "demo" and e["intake"] == "push" for e in events)
    assert all(e["handlers"] == ["on_event"] for e in events)
    by_type = {e["id"]: e["type"] for e in events}

    def outcome(kind: str) -> list[dict[str, Any]]:
        return [
            line
            for line in json_lines(follower)
            if line["kind"] == "delivery" and by_type.get(line["id"]) == kind
        ]

    wait_for(follower, lambda: len(outcome("order.created")) == 2, "2 done")
    assert {line["status"] for line in outcome("order.created")} == {"done"}
    [dead] = wait_for(follower, lambda: outcome("demo.reject"), "a dead letter")
    assert dead["status"] == "dead" and dead["handler"] == "on_event"
    assert "dead-lettered on purpose" in dead["error"]
    retry = outcome("demo.flaky")[0]  # retried again 5 s later, then done
    assert retry["status"] == "retry" and retry["attempts"] == 1
    assert retry["next_attempt_at"] is not None and retry["id"] == "msg_flaky"
    for line in lines:  # each line says what it is about
        assert {"seq", "time", "source", "type", "id"} <= set(line)

    assert interrupt(follower) == 0
    assert follower.stderr == ""
    wait_for(
        text,
        lambda: "on_event dead" in text.stdout and "on_event retry" in text.stdout,
        "the text view of the dead letter and the retry",
    )
    assert interrupt(text) == 0
    assert "#1 demo order.created" in text.stdout
    assert "-> on_event done (1 attempt)" in text.stdout
    assert "-> on_event retry (1 attempt, next in" in text.stdout
    assert "(Ctrl-C to stop)" in text.stderr and "Traceback" not in text.stderr


def test_tail_without_since_shows_only_what_comes_next(
    initialized: Shell, running: list[Process], free_port: int
) -> None:
    server = initialized.start("serve", "--port", str(free_port))
    running.append(server)
    url = f"http://127.0.0.1:{free_port}/hooks/demo"
    server.wait_for_http(f"http://127.0.0.1:{free_port}/healthz")
    assert initialized("send", "standard", url, "--id", "msg_before").code == 0
    follower = initialized.start("tail")
    running.append(follower)
    follower.wait_for_output("Ctrl-C to stop")  # printed once its starting point is taken
    assert initialized("send", "standard", url, "--id", "msg_after").code == 0
    wait_for(follower, lambda: "msg_after" in follower.stdout, "the new event")
    assert interrupt(follower) == 0
    assert "msg_before" not in follower.stdout


def test_tail_on_postgresql_never_prints_the_password(
    initialized: Shell, running: list[Process], free_port: int
) -> None:
    with pg_schema() as url:
        parts = urlsplit(url)
        password = parts.password or "tail-test-password"  # trust auth ignores it
        netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port or 5432}"
        store_url = urlunsplit(parts._replace(netloc=netloc))
        env = {"HOOKWISE_STORE_URL": store_url}
        server = initialized.start("serve", "--port", str(free_port), env=env)
        running.append(server)
        server.wait_for_http(f"http://127.0.0.1:{free_port}/healthz")
        follower = initialized.start("tail", env=env)
        running.append(follower)
        follower.wait_for_output("Ctrl-C to stop")
        url_to = f"http://127.0.0.1:{free_port}/hooks/demo"
        assert initialized("send", "standard", url_to, "--id", "msg_pg").code == 0
        wait_for(follower, lambda: "on_event done" in follower.stdout, "the event handled")
        assert interrupt(follower) == 0
        assert server.terminate() == 0
    assert "#1 demo" in follower.stdout and "msg_pg" in follower.stdout
    assert "postgresql://" in follower.stderr and "Traceback" not in follower.stderr
    assert password not in follower.stderr + follower.stdout
    assert "postgresql://" in server.stderr and password not in server.stderr + server.stdout
