"""``hookwise serve`` and ``hookwise worker`` as a user runs them: start, send signed
events with ``hookwise send``, watch them get processed, stop with SIGTERM."""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Process, Shell

pytestmark = pytest.mark.slow

PROCESS_TIMEOUT = 20.0


def serve(shell: Shell, running: list[Process], port: int, *args: str) -> Process:
    process = shell.start("serve", "--port", str(port), *args)
    running.append(process)
    process.wait_for_http(f"http://127.0.0.1:{port}/healthz")
    return process


def send(shell: Shell, url: str, *args: str) -> list[dict[str, Any]]:
    result = shell("send", "standard", url, "--json", *args)
    assert result.code == 0, result
    answers: list[dict[str, Any]] = result.json()["requests"]
    return answers


def answer(sent: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(sent["response"])
    return body


def events(shell: Shell, *args: str) -> list[dict[str, Any]]:
    result = shell("events", "list", "--json", *args)
    assert result.code == 0, result
    found: list[dict[str, Any]] = result.json()
    return found


def eventually(
    check: Callable[[], Any], *, timeout: float = PROCESS_TIMEOUT, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(0.1)


def test_serve_accepts_signed_events_and_processes_them(
    initialized: Shell, running: list[Process], free_port: int
) -> None:
    process = serve(initialized, running, free_port)
    base = f"http://127.0.0.1:{free_port}"
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert httpx.get(f"{base}/readyz").status_code == 200

    sent = send(initialized, f"{base}/hooks/demo", "--count", "3", "--event", "order.created")
    assert [s["status"] for s in sent] == [200, 200, 200]
    assert [answer(s)["status"] for s in sent] == ["accepted"] * 3
    assert [answer(s)["id"] for s in sent] == [s["delivery_id"] for s in sent]

    def all_done() -> list[dict[str, Any]] | None:
        listed = events(initialized)
        return listed if len(listed) == 3 and {e["status"] for e in listed} == {"done"} else None

    listed = eventually(all_done, what="3 events done")
    assert {e["id"] for e in listed} == {s["delivery_id"] for s in sent}
    assert {e["type"] for e in listed} == {"order.created"}
    assert all(e["received_at"].endswith("Z") for e in listed)

    shown = initialized("events", "show", str(listed[0]["seq"]), "--json")
    assert shown.code == 0, shown
    detail = shown.json()
    assert detail["json"]["type"] == "order.created"
    (delivery,) = detail["deliveries"]
    assert (delivery["handler"], delivery["status"], delivery["attempts"]) == (
        "on_event",
        "done",
        1,
    )
    assert delivery["attempts_history"][0]["outcome"] == "done"

    assert process.terminate() == 0
    assert "Traceback" not in process.stderr


def test_a_duplicate_delivery_is_answered_200_and_stored_once(
    initialized: Shell, running: list[Process], free_port: int
) -> None:
    serve(initialized, running, free_port, "--no-worker")
    url = f"http://127.0.0.1:{free_port}/hooks/demo"
    sent = send(initialized, url, "--id", "msg_same_delivery", "--count", "2")
    assert [s["status"] for s in sent] == [200, 200]
    assert [answer(s)["status"] for s in sent] == ["accepted", "duplicate"]
    assert [e["id"] for e in events(initialized)] == ["msg_same_delivery"]


def test_forged_and_misaddressed_requests_are_refused(
    initialized: Shell, running: list[Process], free_port: int
) -> None:
    serve(initialized, running, free_port, "--no-worker")
    base = f"http://127.0.0.1:{free_port}/hooks"
    forged = initialized("send", "standard", f"{base}/demo", "--secret", "whsec_" + "A" * 43 + "=")
    assert forged.code == 1, forged
    assert "401" in forged.stdout
    unsigned = httpx.post(f"{base}/demo", content=b'{"type": "x"}')
    assert unsigned.status_code == 401
    assert httpx.post(f"{base}/nowhere", content=b"{}").status_code == 404
    assert events(initialized) == []


def test_serve_without_worker_and_a_separate_worker(
    initialized: Shell, running: list[Process], free_port: int
) -> None:
    serve(initialized, running, free_port, "--no-worker")
    (sent,) = send(initialized, f"http://127.0.0.1:{free_port}/hooks/demo")
    assert answer(sent)["status"] == "accepted"
    (stored,) = events(initialized)
    assert stored["status"] == "pending", "nothing runs handlers yet"

    worker = initialized.start("worker")
    running.append(worker)
    eventually(lambda: events(initialized)[0]["status"] == "done", what="event done")
    assert worker.terminate() == 0
    assert "Traceback" not in worker.stderr


def test_dead_letters_can_be_listed_retried_and_replayed(
    initialized: Shell, running: list[Process], free_port: int
) -> None:
    serve(initialized, running, free_port)
    url = f"http://127.0.0.1:{free_port}/hooks/demo"
    send(initialized, url, "--event", "demo.reject")
    send(initialized, url, "--event", "demo.ping")

    def dead() -> list[dict[str, Any]]:
        result = initialized("dlq", "list", "--json")
        assert result.code == 0, result
        found: list[dict[str, Any]] = result.json()
        return found

    (letter,) = eventually(dead, what="a dead letter")
    assert (letter["handler"], letter["type"], letter["attempts"]) == ("on_event", "demo.reject", 1)
    assert "dead-lettered on purpose" in letter["last_error"]

    def tries() -> list[str]:
        shown = initialized("events", "show", str(letter["event_seq"]), "--json")
        assert shown.code == 0, shown
        (delivery,) = shown.json()["deliveries"]
        return [a["outcome"] for a in delivery["attempts_history"]]

    retried = initialized("dlq", "retry", str(letter["id"]))
    assert retried.code == 0, retried
    assert "scheduled 1 dead letter" in retried.stdout
    eventually(lambda: tries() == ["dead", "dead"], what="the retried letter to die again")
    assert [d["id"] for d in dead()] == [letter["id"]]

    replayed = initialized("replay", str(letter["event_seq"]))
    assert replayed.code == 0, replayed
    assert "scheduled 1 delivery" in replayed.stdout
    eventually(lambda: len(tries()) == 3, what="the replay to run")

    by_filter = initialized("replay", "--type", "demo.*")
    assert by_filter.code == 2, by_filter
    assert "--yes" in by_filter.stderr
    confirmed = initialized("replay", "--type", "demo.*", "--yes")
    assert confirmed.code == 0, confirmed
    assert "for 2 event(s)" in confirmed.stdout


def test_serve_demo_prints_a_send_command_that_works(
    hookwise: Shell, running: list[Process], free_port: int, project: Path
) -> None:
    process = serve(hookwise, running, free_port, "--demo")
    process.wait_for_output("hookwise send standard")
    banner = process.stdout
    line = next(ln for ln in banner.splitlines() if "hookwise send standard" in ln)
    command = shlex.split(line.strip())
    assert command[:3] == ["hookwise", "send", "standard"]
    assert command[3] == f"http://127.0.0.1:{free_port}/hooks/demo"
    result = hookwise(*command[1:])
    assert result.code == 0, result
    assert re.search(r"\b200\b", result.stdout)
    process.wait_for_output("handled event")

    store_hint = next(ln for ln in banner.splitlines() if "events list" in ln)
    variable, _, _ = store_hint.strip().partition(" ")
    name, _, url = variable.partition("=")
    (stored,) = _events_with(hookwise, name, url)
    assert stored["source"] == "demo"
    assert process.terminate() == 0


def _events_with(shell: Shell, name: str, url: str) -> list[dict[str, Any]]:
    result = shell("events", "list", "--json", env={name: url})
    assert result.code == 0, result
    found: list[dict[str, Any]] = result.json()
    return found
