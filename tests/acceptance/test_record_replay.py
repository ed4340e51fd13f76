"""Record and replay with real processes: receiver A takes signed deliveries,
``hookwise events export`` records them, and ``hookwise replay --file`` sends them to a
fresh receiver B with another secret: refused as recorded, stored identically when
re-signed, duplicates the second time; and duplicates at A, whose secret they match."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Process, Shell

pytestmark = pytest.mark.slow

PROCESS_TIMEOUT = 20.0

EXTRA_SOURCE = """
[sources.orders]
provider = "standard"
secrets = ["env:ORDERS_SECRET"]
tolerance = "5m"

[[handlers]]
name = "on_order"
source = "orders"
events = ["*"]
call = "handlers:on_order"
"""
EXTRA_HANDLER = """

def on_order(event: Event) -> None:
    print(f"order event {event.type} {event.id}")
"""


def receiver(hookwise: Shell, directory: Path, port: int, secrets: dict[str, str]) -> Shell:
    """A project made with ``init --provider stripe`` plus a Standard Webhooks source
    (its delivery id travels in a header), listening on ``port``."""
    directory.mkdir()
    shell = Shell(directory, {**hookwise.env, **secrets})
    result = shell("init", "--provider", "stripe")
    assert result.code == 0, result
    config = directory / "hookwise.toml"
    config.write_text(config.read_text().replace("port = 8000", f"port = {port}") + EXTRA_SOURCE)
    handlers = directory / "handlers.py"
    handlers.write_text(handlers.read_text() + EXTRA_HANDLER)
    return shell


def another_port(taken: int) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port != taken:
            return port


def start(shell: Shell, running: list[Process], port: int) -> Process:
    process = shell.start("serve")
    running.append(process)
    process.wait_for_http(f"http://127.0.0.1:{port}/healthz")
    return process


def eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached (last: {value!r})"
        time.sleep(0.1)


def listed(shell: Shell) -> list[dict[str, Any]]:
    result = shell("events", "list", "--json", "-n", "100")
    assert result.code == 0, result
    events: list[dict[str, Any]] = result.json()
    return events


def settled(shell: Shell, count: int) -> list[dict[str, Any]] | None:
    events = listed(shell)
    if len(events) == count and all(e["status"] in ("done", "none") for e in events):
        return events
    return None


def recordings(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def replay(shell: Shell, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = shell("replay", *args, "--json")
    assert "Traceback" not in result.stderr, result
    rows: list[dict[str, Any]] = result.json()
    return result.code, rows


def answers(rows: list[dict[str, Any]]) -> list[str]:
    return [json.loads(row["response"]).get("status", "?") for row in rows]


def test_record_then_replay_to_another_receiver(
    hookwise: Shell, project: Path, running: list[Process], free_port: int
) -> None:
    port_a, port_b = free_port, another_port(free_port)
    a = receiver(
        hookwise,
        project / "a",
        port_a,
        {"STRIPE_WEBHOOK_SECRET": "whsec_a_production_like", "ORDERS_SECRET": "whsec_" + "YQ" * 16},
    )
    start(a, running, port_a)
    base_a = f"http://127.0.0.1:{port_a}/hooks"
    sent = a("send", "stripe", f"{base_a}/stripe", "-c", "hookwise.toml", "-n", "4")
    assert sent.code == 0, sent
    sent = a("send", "orders", f"{base_a}/orders", "-c", "hookwise.toml", "-n", "3")
    assert sent.code == 0, sent
    stored_a = eventually(lambda: settled(a, 7), "7 events handled at A")

    exported = a("events", "export", "--file", "recorded.jsonl")
    assert exported.code == 0, exported
    assert "7 recordings" in exported.stdout
    recorded = recordings(project / "a" / "recorded.jsonl")
    assert [r["seq"] for r in recorded] == sorted(e["seq"] for e in stored_a)
    assert {(r["source"], r["id"], r["type"]) for r in recorded} == {
        (e["source"], e["id"], e["type"]) for e in stored_a
    }
    assert all(r["redacted"] == [] for r in recorded)
    headers = {name for r in recorded for name, _ in r["headers"]}
    assert {"stripe-signature", "webhook-id", "webhook-signature"} <= headers
    directory = a("events", "export", "--out", "recorded", "--source", "orders")
    assert directory.code == 0, directory
    assert len(list((project / "a" / "recorded").glob("*.json"))) == 3
    unset = {"STRIPE_WEBHOOK_SECRET": "", "ORDERS_SECRET": ""}  # exporting reads no secret
    piped = a(
        "events", "export", "--file", "-", "--source", "stripe", "--type", "invoice.*", env=unset
    )
    assert piped.code == 0, piped
    [line] = [json.loads(text) for text in piped.stdout.splitlines()]
    assert line["type"] == "invoice.paid" and line["provider"] == "stripe"

    b = receiver(
        hookwise,
        project / "b",
        port_b,
        {"STRIPE_WEBHOOK_SECRET": "whsec_b_local_only", "ORDERS_SECRET": "whsec_" + "Yg" * 16},
    )
    start(b, running, port_b)
    recording = str(project / "a" / "recorded.jsonl")

    code, rows = replay(b, "--file", recording)
    assert code == 1
    assert [row["status"] for row in rows] == [401] * 7
    assert all(row["url"].startswith(f"http://127.0.0.1:{port_b}/hooks/") for row in rows)
    assert listed(b) == []

    code, rows = replay(b, "--file", recording, "--resign", "-c", "hookwise.toml")
    assert code == 0, rows
    assert answers(rows) == ["accepted"] * 7
    assert all(row["resigned"] and row["notes"] == [] for row in rows)
    stored_b = eventually(lambda: settled(b, 7), "7 events handled at B")
    assert {(e["source"], e["id"], e["type"]) for e in stored_b} == {
        (r["source"], r["id"], r["type"]) for r in recorded
    }
    assert {e["status"] for e in stored_b} == {e["status"] for e in stored_a}

    again = b("events", "export", "--file", "stored-at-b.jsonl")
    assert again.code == 0, again
    at_b = {r["id"]: r for r in recordings(project / "b" / "stored-at-b.jsonl")}
    for original in recorded:
        copy = at_b[original["id"]]
        assert copy["body_sha256"] == original["body_sha256"]
        assert copy["body"] == original["body"]
        assert copy["ordering_key"] == original["ordering_key"]
    for record in recorded:  # the delivery id header travelled unchanged
        if record["source"] == "orders":
            original_ids = [v for name, v in record["headers"] if name == "webhook-id"]
            copy_ids = [v for name, v in at_b[record["id"]]["headers"] if name == "webhook-id"]
            assert original_ids == copy_ids == [record["id"]]

    code, rows = replay(b, "--file", recording, "--resign")
    assert code == 0, rows
    assert answers(rows) == ["duplicate"] * 7
    assert len(listed(b)) == 7

    code, rows = replay(a, "--file", "recorded.jsonl")
    assert code == 0, rows
    assert answers(rows) == ["duplicate"] * 7
    assert not any(row["resigned"] for row in rows)


def test_replay_needs_a_receiver_and_says_so(hookwise: Shell, project: Path) -> None:
    (project / "r.jsonl").write_text("")
    result = hookwise("replay", "--file", "r.jsonl")
    assert result.code == 2, result
    assert "--to" in result.stderr
    mixed = hookwise("replay", "3", "--file", "r.jsonl")
    assert mixed.code == 2, mixed
    assert "event numbers" in mixed.stderr
    loose = hookwise("replay", "3", "--resign")
    assert loose.code == 2, loose
    assert "--file" in loose.stderr


def test_replay_to_a_url_without_a_scheme_is_a_usage_mistake(
    hookwise: Shell, project: Path
) -> None:
    (project / "r.jsonl").write_text("")
    result = hookwise("replay", "--file", "r.jsonl", "--to", "127.0.0.1:8000/hooks/{source}")
    assert result.code == 2, result
    assert "http://" in result.stderr and "is the receiver running" not in result.stderr


def test_export_to_a_path_that_cannot_be_written_says_so(hookwise: Shell, project: Path) -> None:
    (project / "taken").write_text("a file, not a directory")
    env = {"HOOKWISE_STORE_URL": "sqlite:///store.db"}
    for args in (("--file", "taken/stripe.jsonl"), ("--out", "taken/recordings")):
        result = hookwise("events", "export", *args, env=env)
        assert result.code == 2, result
        assert "can't write the recordings to taken" in result.stderr
        assert "Traceback" not in result.output
