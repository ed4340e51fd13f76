"""The polling benchmark's accounting (bench/poll_day.py), on a simulated hour."""

from __future__ import annotations

import importlib.util
import math
import socket
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hookwise.clock import FrozenClock


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "poll_day.py"
    spec = importlib.util.spec_from_file_location("poll_day", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["poll_day"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load()
EPOCH = bench.EPOCH

HOUR = bench.Scenario(
    name="hour",
    seconds=3600,
    changes=(
        bench.Change(100, 3, "comment"),
        bench.Change(1000, 5, "label"),
        bench.Change(2000, 3, "state"),
    ),
)


def fetch(port: int, *headers: str) -> tuple[bytes, int, dict[str, str], bytes]:
    """One raw HTTP/1.1 GET: every byte received, the status, the headers, the body."""
    lines = [
        f"GET {bench.PATH}?{bench.QUERY} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "X-Bench-Client: probe",
        "Connection: close",
        *headers,
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        while chunk := sock.recv(65_536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return received, int(status_line.split()[1]), parsed, body


def test_the_server_counts_every_byte_it_writes_and_a_304_costs_no_quota() -> None:
    resource = bench.Resource(HOUR)
    clock = FrozenClock(EPOCH + 50)
    with bench.ListingServer(resource, clock) as server:
        raw, status, headers, body = fetch(server.port)
        assert status == 200 and body == resource.version(0)[0]
        assert 5_000 <= len(body) <= 10_000  # about 50 issues, as the benchmark says
        assert server.tally["probe"].bytes == len(raw)
        assert headers["x-ratelimit-remaining"] == "4999"
        assert headers["x-ratelimit-reset"] == str(EPOCH + 3600)
        etag = headers["etag"]

        raw_304, status, headers, body = fetch(server.port, f"If-None-Match: {etag}")
        assert (status, body) == (304, b"")
        assert headers["x-ratelimit-remaining"] == "4999"  # GitHub's rule: a 304 is free
        assert server.tally["probe"].bytes == len(raw) + len(raw_304)

        _, status, headers, _ = fetch(server.port, f"If-Modified-Since: {headers['last-modified']}")
        assert status == 304

        clock.set(EPOCH + 100)  # the first change is made at 100 s
        _, status, headers, body = fetch(server.port, f"If-None-Match: W/{etag}")
        assert status == 200 and headers["etag"] != etag
        assert body == resource.version(1)[0] != resource.version(0)[0]
        assert headers["x-ratelimit-remaining"] == "4998"

        clock.set(EPOCH + 3600)  # a new hour, a new quota
        _, _, headers, _ = fetch(server.port)
        assert headers["x-ratelimit-remaining"] == "4999"

    tally = server.tally["probe"]
    assert (tally.requests, tally.not_modified, tally.rate_limited) == (5, 2, 3)
    assert tally.bytes == sum(s.bytes for s in server.log)


async def test_one_simulated_hour_is_accounted_request_by_request(tmp_path: Path) -> None:
    options = bench.Options(min_every=60, max_every=300, naive_every=60)
    result = await bench.run_scenario(HOUR, options, tmp_path)
    naive, conditional, ours = (result.pollers[n] for n in ("naive", "conditional", "hookwise"))

    # Fixed 60 s polls at 0, 60, 120, ...: changes at 100, 1000 and 2000 s are seen at
    # 120, 1020 and 2040 s.
    assert (naive.requests, naive.not_modified, naive.rate_limited) == (60, 0, 60)
    assert naive.latencies == [20.0, 20.0, 40.0]
    assert (conditional.requests, conditional.not_modified, conditional.rate_limited) == (60, 56, 4)
    assert conditional.latencies == [20.0, 20.0, 40.0]
    assert 60 * result.body_bytes < naive.bytes < 60 * (result.body_bytes + 1_000)
    assert conditional.bytes < naive.bytes / 5

    # hookwise: the server's counts agree with what the poller itself counted.
    info = result.hookwise
    assert ours.requests == info["poller_counted_requests"] == info["runs"]
    assert ours.not_modified == info["poller_counted_not_modified"]
    assert ours.rate_limited == ours.requests - ours.not_modified
    served = [s for s in result.log if s.client == "hookwise"]
    assert info["poller_counted_body_bytes"] == sum(s.body for s in served)
    assert ours.bytes == sum(s.bytes for s in served)
    assert info["events_emitted"] == 50 + 3  # the first listing, then one update per change
    assert info["errors"] == 0 and info["rate_limit_wait_s"] == 0

    # Each change is seen by hookwise's first request at or after it, and no sooner.
    assert ours.changes_detected == 3
    for change, seen_at in zip(HOUR.changes, result.detected_at["hookwise"], strict=True):
        first = next(s.at for s in served if s.at >= EPOCH + change.at)
        assert seen_at == first
    assert ours.latencies == [
        seen - (EPOCH + c.at)
        for c, seen in zip(HOUR.changes, result.detected_at["hookwise"], strict=True)
    ]
    assert ours.max_s <= options.max_every and info["max_latency_within_max_every"]
    assert info["every_change_within_published_bound"]
    assert ours.requests < naive.requests  # quiet stretches stretch the interval
    assert math.isclose(result.ratios["hookwise_vs_naive_bytes"], ours.bytes / naive.bytes)
    assert result.ratios["hookwise_vs_naive_bytes"] < result.ratios["conditional_vs_naive_bytes"]


def test_scenarios_are_seeded_and_stay_inside_their_window() -> None:
    idle = bench.make_scenario("idle", 24, seed=7)
    assert idle == bench.make_scenario("idle", 24, seed=7)
    assert idle != bench.make_scenario("idle", 24, seed=8)
    assert len(idle.changes) == 24
    assert all(1 <= c.at < 86_400 - 300 for c in idle.changes)
    busy = bench.make_scenario("busy", 300, seed=7, window=bench.WORKING_HOURS)
    assert len({c.at for c in busy.changes}) == 300
    assert all(9 * 3600 <= c.at < 18 * 3600 for c in busy.changes)
    with pytest.raises(ValueError, match="don't fit"):
        bench.make_scenario("idle", 10, seed=7, seconds=100, quiet_tail=95)
    with pytest.raises(ValueError, match="distinct times"):
        bench.Scenario("bad", 3600, (bench.Change(20, 1, "comment"), bench.Change(10, 1, "label")))


def test_the_push_reference_times_real_webhooks(tmp_path: Path) -> None:
    result = bench.measure_webhooks(3, tmp_path, warmup=1)
    assert result.events == 3
    for figure in (result.ack_p50_ms, result.ack_p95_ms, result.handler_p50_ms):
        assert 0 < figure < 10_000
    assert result.handler_p50_ms <= result.handler_max_ms
