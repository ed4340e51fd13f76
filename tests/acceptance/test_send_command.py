"""``hookwise send`` as a user runs it against receivers: a real ``hookwise serve`` with
one source per provider, chaos flags counted at the receiver (its answers, its store,
its rejection records, its metrics), and a plain HTTP server that is not hookwise,
whose requests are checked with each provider's own verification."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookwise.config import SourceSettings
from hookwise.providers import KNOWN_PROVIDERS, Inbound, Source, build_source

from .conftest import Process, Result, Shell

pytestmark = pytest.mark.slow

WAIT = 20.0
SENDERS = 3
"""``hookwise send`` commands run at once (each is a process of its own)."""


def example_settings(provider: str) -> dict[str, Any]:
    """The settings each provider module gives for a working source (key pairs and
    certificates included, made once per test process)."""
    module = importlib.import_module(f"hookwise.providers.{provider}")
    settings: dict[str, Any] = dict(module.EXAMPLE_SETTINGS)
    return settings


def example_source(provider: str) -> Source:
    settings = example_settings(provider)
    return build_source(SourceSettings(name=provider, provider=provider, **settings))


def sample_types(provider: str) -> list[str]:
    return list(example_source(provider).samples(time.time()))


PROVIDERS = [p for p in KNOWN_PROVIDERS if sample_types(p)]


def dedups_repeats(provider: str) -> bool:
    """Whether the provider's dedup key of a delivery is the same whenever it comes
    (not when the key includes the time of receipt)."""
    source = example_source(provider)
    body = next(iter(source.samples(time.time()).values()))
    signed = source.sign_request(body, now=time.time(), delivery_id="msg_probe")
    headers = {name.lower(): value for name, value in signed.headers.items()}
    now = time.time()
    first = source.describe(signed.body, headers, now).dedup_key
    return first == source.describe(signed.body, headers, now + 60).dedup_key


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"no TOML for {value!r}")


def write_config(project: Path, shell: Shell, providers: list[str]) -> None:
    """``hookwise.toml`` with a source named after each provider, built from the
    provider's example settings; secrets go through the environment."""
    lines = ['[store]\nurl = "sqlite:///hookwise.db"\n']
    for provider in providers:
        settings = example_settings(provider)
        lines.append(f"[sources.{provider}]")
        lines.append(f'provider = "{provider}"')
        names = []
        for position, secret in enumerate(settings.pop("secrets", ())):
            name = f"SECRET_{provider.upper()}_{position}"
            shell.env[name] = secret
            names.append(f"env:{name}")
        if names:
            lines.append(f"secrets = {toml_value(names)}")
        for key, value in settings.items():
            if value is not None and value != {}:
                lines.append(f"{key} = {toml_value(value)}")
        lines.append("")
    (project / "hookwise.toml").write_text("\n".join(lines))


def serve(shell: Shell, running: list[Process], port: int) -> str:
    process = shell.start("serve", "--port", str(port), "--no-worker")
    running.append(process)
    process.wait_for_http(f"http://127.0.0.1:{port}/healthz")
    return f"http://127.0.0.1:{port}"


def send(shell: Shell, source: str, url: str, *args: str, code: int = 0) -> dict[str, Any]:
    result = shell("send", source, url, "-c", "hookwise.toml", "--json", *args)
    assert result.code == code, result
    document: dict[str, Any] = result.json()
    return document


def listing(shell: Shell, *args: str) -> list[dict[str, Any]]:
    result = shell(*args, "--json")
    assert result.code == 0, result
    rows: list[dict[str, Any]] = result.json()
    return rows


def stored(shell: Shell, source: str) -> list[dict[str, Any]]:
    return listing(shell, "events", "list", "--source", source, "--limit", "1000")


def eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {WAIT}s (last: {value!r})")
        time.sleep(0.1)


def metric(base: str, name: str, **labels: str) -> float:
    """One sample of ``GET /metrics`` (0 when the series does not exist yet)."""
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- every provider, through a real receiver ------------------------------------------------


def test_send_drives_every_provider_through_hookwise_serve(
    hookwise: Shell, running: list[Process], free_port: int, project: Path
) -> None:
    assert len(PROVIDERS) >= 20, PROVIDERS
    write_config(project, hookwise, PROVIDERS)
    base = serve(hookwise, running, free_port)

    def send_samples(provider: str) -> dict[str, Any]:
        count = str(len(sample_types(provider)))
        url = f"{base}/hooks/{provider}"
        return send(hookwise, provider, url, "--count", count, "--duplicates", "2")

    with ThreadPoolExecutor(SENDERS) as pool:
        sent = dict(zip(PROVIDERS, pool.map(send_samples, PROVIDERS), strict=True))
    for provider, document in sent.items():
        rows = document["requests"]
        types = sample_types(provider)
        assert document["ok"] and document["sent"] == 2 * len(types), (provider, document)
        assert all(200 <= row["status"] < 300 for row in rows), (provider, rows)
        assert sorted({row["type"] for row in rows}) == sorted(types), provider

    for provider, document in sent.items():
        events = stored(hookwise, provider)
        types = sample_types(provider)
        rows = document["requests"]
        answered = {row["answer"] for row in rows if row["answer"] is not None}
        if not dedups_repeats(provider):
            # Its deliveries carry no id (Dropbox): every copy is an event of its own.
            assert sorted(e["type"] for e in events) == sorted(types * 2), (provider, events)
            assert answered <= {"accepted"}, provider
            continue
        # Every sample type stored once: the second copy of each was a duplicate.
        assert sorted(e["type"] for e in events) == sorted(types), (provider, events)
        assert {e["id"] for e in events} == {row["event_id"] for row in rows}, provider
        # Copies go one after the other: the first is stored, the second is a duplicate
        # (answers in the provider's own shape, as Discord's or Slack commands', say neither).
        for row in rows:
            if row["answer"] is not None:
                assert row["answer"] == ("accepted" if row["copy"] == 1 else "duplicate"), row
    assert sum(answered_by(d) for d in sent.values()) > len(PROVIDERS)


def answered_by(document: dict[str, Any]) -> int:
    return sum(row["answer"] is not None for row in document["requests"])


# -- chaos, counted at the receiver -----------------------------------------------------------


@pytest.fixture
def stripe(hookwise: Shell, running: list[Process], free_port: int, project: Path) -> str:
    """A ``hookwise serve`` with a Stripe and a GitHub source; its base URL."""
    write_config(project, hookwise, ["stripe", "github"])
    return serve(hookwise, running, free_port)


def test_duplicates_shuffled_and_concurrent_are_stored_once(hookwise: Shell, stripe: str) -> None:
    url = f"{stripe}/hooks/stripe"
    chaos = ("--count", "20", "--duplicates", "3", "--concurrency", "8", "--shuffle")
    document = send(hookwise, "stripe", url, *chaos)
    rows = document["requests"]
    assert document["sent"] == 60 and document["ok"]
    assert document["by_status"] == {"200": 60}
    assert document["answers"] == {"accepted": 20, "duplicate": 40}
    per_event = Counter((row["event_id"], row["answer"]) for row in rows)
    assert sorted(Counter(answer for _, answer in per_event).items()) == [
        ("accepted", 20),
        ("duplicate", 20),
    ]
    assert {count for (_, answer), count in per_event.items() if answer == "duplicate"} == {2}

    events = stored(hookwise, "stripe")
    assert len(events) == 20
    assert {e["id"] for e in events} == {row["event_id"] for row in rows}
    assert metric(stripe, "hookwise_requests_total", source="stripe", outcome="accepted") == 20
    assert metric(stripe, "hookwise_requests_total", source="stripe", outcome="duplicate") == 40

    # Shuffled: the copies of an event are not all next to each other.
    order = [row["event"] for row in sorted(rows, key=lambda row: row["n"])]
    assert order != sorted(order)
    # The first two copies of the odd events started together.
    steps = Counter(row["step"] for row in rows)
    pairs = sorted((row["event"], row["copy"]) for row in rows if steps[row["step"]] == 2)
    assert pairs == [(event, copy) for event in range(1, 21, 2) for copy in (1, 2)]

    # The seed the summary printed sends the same plan again (with fresh events).
    again = send(hookwise, "stripe", url, *chaos, "--seed", str(document["seed"]))
    assert again["seed"] == document["seed"]
    shape = [(r["n"], r["event"], r["copy"], r["step"], r["type"]) for r in rows]
    assert [(r["n"], r["event"], r["copy"], r["step"], r["type"]) for r in again["requests"]] == (
        shape
    )
    assert again["answers"] == {"accepted": 20, "duplicate": 40}
    assert len(stored(hookwise, "stripe")) == 40


def test_bad_signatures_are_refused_recorded_and_never_stored(hookwise: Shell, stripe: str) -> None:
    url = f"{stripe}/hooks/stripe"
    document = send(hookwise, "stripe", url, "--count", "20", "--bad-signature-rate", "0.25")
    rows = document["requests"]
    bad = {row["event_id"] for row in rows if row["kind"] == "bad signature"}
    assert len(bad) == 5 and document["bad_signature"]["events"] == 5
    assert document["by_status"] == {"200": 15, "401": 5}
    assert document["expected"] == {"2xx": 15, "4xx": 5} and document["ok"]

    records = eventually(
        lambda: (found := listing(hookwise, "rejections", "list")) and len(found) >= 5 and found,
        "5 rejection records",
    )
    assert len(records) == 5
    assert {(r["source"], r["status"], r["reason"]) for r in records} == {
        ("stripe", 401, "no_matching_signature")
    }
    assert (
        metric(stripe, "hookwise_rejections_total", source="stripe", reason="no_matching_signature")
        == 5
    )
    ids = {e["id"] for e in stored(hookwise, "stripe")}
    assert len(ids) == 15 and not ids & bad


def test_a_receiver_that_accepts_bad_signatures_fails_the_run(hookwise: Shell) -> None:
    with recording_server() as (base, requests):
        result = hookwise(
            "send",
            "stripe",
            f"{base}/hooks/stripe",
            "--secret",
            "whsec_test_secret",
            "-n",
            "3",
            "--bad-signature",
            "--json",
        )
    assert result.code == 1, result
    document = result.json()
    assert document["by_status"] == {"200": 3}
    assert document["expected"] == {"4xx": 3}
    assert document["unexpected"] == 3 and not document["ok"]
    assert len(requests) == 3


def test_stale_requests_are_refused_as_too_old(hookwise: Shell, stripe: str) -> None:
    document = send(hookwise, "stripe", f"{stripe}/hooks/stripe", "--count", "3", "--stale")
    assert document["by_status"] == {"401": 3} and document["ok"]
    assert document["stale"]["reason"] == "timestamp_too_old"
    records = eventually(
        lambda: (found := listing(hookwise, "rejections", "list")) and len(found) >= 3 and found,
        "3 rejection records",
    )
    assert [r["reason"] for r in records] == ["timestamp_too_old"] * 3
    assert stored(hookwise, "stripe") == []


def test_stale_is_refused_for_a_provider_that_signs_no_timestamp(
    hookwise: Shell, project: Path
) -> None:
    write_config(project, hookwise, ["github"])
    result = hookwise(
        "send", "github", "http://127.0.0.1:9/hooks/github", "-c", "hookwise.toml", "--stale"
    )
    assert result.code == 2, result
    assert "signs no timestamp" in result.stderr and "--stale" in result.stderr
    assert "Traceback" not in result.output


def test_delay_spaces_the_sends_at_the_receiver(hookwise: Shell, stripe: str) -> None:
    url = f"{stripe}/hooks/github"
    document = send(hookwise, "github", url, "--count", "5", "--delay", "100ms")
    assert document["elapsed_ms"] >= 400
    starts = [row["started_ms"] for row in document["requests"]]
    assert all(later - earlier >= 99 for earlier, later in pairwise(starts))
    received = sorted(
        datetime.fromisoformat(e["received_at"].replace("Z", "+00:00")).timestamp()
        for e in stored(hookwise, "github")
    )
    assert len(received) == 5
    # The first request reached the receiver at most its latency after it started, the
    # last one after it started (times stored to the millisecond).
    first = document["requests"][0]["latency_ms"] / 1000
    assert received[-1] - received[0] >= 0.4 - first - 0.002


# -- any receiver ---------------------------------------------------------------------------


class Recorded:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path, _, self.query = target.partition("?")
        self.headers = headers
        self.body = body


class _Server(ThreadingHTTPServer):
    recorded: list[Recorded]


class _Recorder(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.recorded.append(Recorded("POST", self.path, headers, body))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class recording_server:
    """A small HTTP server that is not hookwise: answers 200 to everything and keeps
    each request's method, path, query, headers and body."""

    def __enter__(self) -> tuple[str, list[Recorded]]:
        self.server = _Server(("127.0.0.1", 0), _Recorder)
        self.server.recorded = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}", self.server.recorded

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[Recorded]]]:
    with recording_server() as found:
        yield found


def verify(provider: str, base: str, request: Recorded) -> None:
    """Check ``request`` with the provider's own verification, as built from the same
    settings ``send`` signed with."""
    source = example_source(provider)
    url = (source.public_url or base + request.path) + (
        "?" + request.query if request.query else ""
    )
    inbound = Inbound(
        request.body, request.headers, method=request.method, url=url, query=request.query
    )
    if source.needs_prepare:
        asyncio.run(source.prepare(inbound))
    source.verify_request(inbound, time.time())


def test_what_any_receiver_gets_verifies_with_the_providers_own_check(
    hookwise: Shell, project: Path, recorder: tuple[str, list[Recorded]]
) -> None:
    base, requests = recorder
    write_config(project, hookwise, PROVIDERS)

    def send_samples(provider: str) -> Result:
        count = str(len(sample_types(provider)))
        url = f"{base}/hooks/{provider}"
        return hookwise("send", provider, url, "-c", "hookwise.toml", "--count", count)

    with ThreadPoolExecutor(SENDERS) as pool:
        results = list(pool.map(send_samples, PROVIDERS))
    for result in results:
        assert result.code == 0, result
    assert all(request.headers["user-agent"] == "hookwise-send" for request in requests)
    for provider in PROVIDERS:
        got = [request for request in requests if request.path == f"/hooks/{provider}"]
        assert len(got) == len(sample_types(provider)), provider
        for request in got:
            verify(provider, base, request)


def test_a_reader_that_goes_away_stops_the_run_without_a_traceback(hookwise: Shell) -> None:
    # `hookwise send ... | head -1`: the pipe closes after the first line.
    with recording_server() as (base, requests):
        process = subprocess.Popen(
            hookwise.command("send", "stripe", f"{base}/hooks/stripe", "-n", "2000"),
            cwd=hookwise.cwd,
            env={**hookwise.env, "HOOKWISE_SEND_SECRET": "whsec_test_secret"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        with process.stderr:
            stderr = process.stderr.read().decode()
        code = process.wait(timeout=WAIT)
    assert b"200" in first
    assert code == 1
    assert "Traceback" not in stderr and "never retrieved" not in stderr, stderr
    assert len(requests) < 2000


@pytest.mark.parametrize("url", ["127.0.0.1:8000/hooks/stripe", "ftp://example.com/hooks"])
def test_a_url_that_is_not_http_is_a_usage_mistake(hookwise: Shell, url: str) -> None:
    result = hookwise("send", "stripe", url, "--secret", "whsec_test_secret")
    assert result.code == 2, result
    assert "http://" in result.stderr and "Traceback" not in result.output
