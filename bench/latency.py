"""Enqueue -> handler start latency on PostgreSQL: LISTEN/NOTIFY vs polling alone.

One ``hookwise serve --no-worker`` receiver and one ``hookwise worker`` process share a
PostgreSQL schema. httpx sends signed Standard Webhooks events at a steady rate (open
loop: each request leaves at its scheduled time, whatever the previous answers did).
The handler, :func:`record` below, first writes ``time.time() - event.received_at``:
the time from the receiver taking the request (before its commit) to the handler
starting in the other process.

Variants, interleaved round by round, each with its own schema and processes:

- ``listen``: the worker as shipped; the append's ``NOTIFY`` wakes it at once;
- ``poll``: the same worker with its LISTEN connection never opened (as when LISTEN is
  unavailable), so only the ``[worker] poll_interval`` (default 0.5 s) finds the work.

    python bench/latency.py                      # 150 events/s for 10 s, 3 rounds
    python bench/latency.py --rate 200 --duration 15 --rounds 5
    python bench/latency.py --no-poll            # only the LISTEN/NOTIFY variant
    python bench/latency.py --quick

Prints a table and writes ``bench/results/latency-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hookwise import Event
from hookwise.config import SourceSettings
from hookwise.providers import build_source
from ingest import HOOKWISE, PYTHON, ROOT, SECRET, free_port, wait_up
from pg_scale import (
    DEFAULT_PG,
    bench_env,
    machine,
    now_utc,
    percentile,
    pg_schemas,
    start_logged,
    stop_logged,
    store_url,
    wait_for_line,
    workdir,
    write_config,
    write_result,
)

LATENCY_FILE_ENV = "HOOKWISE_BENCH_LATENCY_FILE"

# -- the handler (runs in the worker process) ---------------------------------------------------

_out: Any = None


def _latency_file() -> Any:
    global _out
    if _out is None:
        _out = open(os.environ[LATENCY_FILE_ENV], "a", buffering=1)  # noqa: SIM115 - kept open
    return _out


async def record(event: Event) -> None:
    """Write how long ago the receiver took this event, in seconds, one per line."""
    waited = time.time() - event.received_at
    _latency_file().write(f"{waited:.6f}\n")


def run_worker_without_listen(config: str) -> None:
    """``hookwise worker -c config`` whose store never opens its LISTEN connection."""
    from hookwise.cli import main as hookwise_main
    from hookwise.store.postgres import PostgresStore

    PostgresStore._start_listener = lambda self: None  # type: ignore[method-assign]
    sys.argv = ["hookwise", "worker", "-c", config]
    hookwise_main()


# -- the benchmark ------------------------------------------------------------------------------


@dataclass
class Sent:
    acks: list[float]
    """Seconds from each request leaving to its answer."""
    rate: float
    """Requests per second actually sent (below the target when the sender falls behind)."""


async def send(url: str, rate: float, duration: float) -> Sent:
    """Send ``rate * duration`` signed events on schedule, each from a task of its own."""
    source = build_source(SourceSettings(name="bench", provider="standard", secrets=(SECRET,)))
    count = round(rate * duration)
    signed_at = time.time()  # within the 5-minute tolerance while the round lasts
    requests = []
    for i in range(count):
        body = json.dumps(
            {"type": "invoice.paid", "id": f"evt_{uuid.uuid4().hex}", "data": {"n": i}},
            separators=(",", ":"),
        ).encode()
        headers = source.sign_headers(body, now=signed_at, delivery_id=f"msg_{uuid.uuid4().hex}")
        headers["content-type"] = "application/json"
        requests.append((body, headers))
    acks: list[float] = []
    left: list[float] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)

    async def one(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> None:
        sent = time.perf_counter()
        left.append(sent)
        response = await client.post(url, content=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"the receiver answered {response.status_code}: {response.text}")
        acks.append(time.perf_counter() - sent)

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        loop = asyncio.get_running_loop()
        start_at = loop.time()
        tasks = []
        for i, (body, headers) in enumerate(requests):
            delay = start_at + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, body, headers)))
        await asyncio.gather(*tasks)
    achieved = (count - 1) / (max(left) - min(left)) if count > 1 else 0.0
    return Sent(acks, achieved)


def read_new(path: Path, offset: int, expected: int, timeout: float) -> tuple[list[float], int]:
    """Wait until ``expected`` new lines follow ``offset``; return them and the new offset."""
    deadline = time.monotonic() + timeout
    while True:
        data = path.read_bytes()[offset:] if path.exists() else b""
        complete = data[: data.rfind(b"\n") + 1]
        lines = complete.splitlines()
        if len(lines) >= expected:
            return [float(line) for line in lines], offset + len(complete)
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(lines)} of {expected} events reached the handler")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL (a database to use)")
    parser.add_argument("--rate", type=float, default=150.0, help="events per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-poll", action="store_true", help="skip the polling-only variant")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 3 s")
    parser.add_argument("--worker-without-listen", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_without_listen:
        run_worker_without_listen(args.worker_without_listen)
        return
    if args.quick:
        args.rounds, args.duration = 1, 3.0
    variants = ["listen"] if args.no_poll else ["listen", "poll"]

    env = bench_env()
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    samples: dict[str, list[list[float]]] = {name: [] for name in variants}
    acks: dict[str, list[list[float]]] = {name: [] for name in variants}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with (
        workdir() as work,
        pg_schemas(args.pg, *(f"latency_{name}" for name in variants)) as schemas,
    ):
        ports = {}
        files = {}
        offsets = dict.fromkeys(variants, 0)
        try:
            for name, schema in zip(variants, schemas, strict=True):
                config = write_config(
                    work / f"{name}.toml", store_url(args.pg, schema), handler="latency:record"
                )
                ports[name] = free_port()
                files[name] = work / f"latency-{name}.txt"
                cmd = [*HOOKWISE, "serve", "-c", str(config), "--no-worker"]
                log_path = work / f"receiver-{name}.log"
                receiver = start_logged([*cmd, "--port", str(ports[name])], env, work, log_path)
                procs.append((receiver, log_path))
                wait_up(f"http://127.0.0.1:{ports[name]}/healthz")
                worker_cmd = (
                    [*HOOKWISE, "worker", "-c", str(config)]
                    if name == "listen"
                    else [PYTHON, __file__, "--worker-without-listen", str(config)]
                )
                log_path = work / f"worker-{name}.log"
                worker_env = {**env, LATENCY_FILE_ENV: str(files[name])}
                worker = start_logged(worker_cmd, worker_env, work, log_path)
                procs.append((worker, log_path))
                wait_for_line(worker, log_path, " running ")
            for round_no in range(args.rounds + 1):  # round 0 warms up and is discarded
                duration = args.duration if round_no else 2.0
                for name in variants:
                    url = f"http://127.0.0.1:{ports[name]}/hooks/bench"
                    sent = asyncio.run(send(url, args.rate, duration))
                    got, offsets[name] = read_new(
                        files[name], offsets[name], len(sent.acks), timeout=30
                    )
                    if not round_no:
                        continue
                    samples[name].append(got)
                    acks[name].append(sent.acks)
                    rates[name].append(sent.rate)
                    print(
                        f"round {round_no} {name:>6}: handler start p50 "
                        f"{percentile(got, 50) * 1000:7.1f} ms  p99 "
                        f"{percentile(got, 99) * 1000:7.1f} ms  (ack p50 "
                        f"{percentile(sent.acks, 50) * 1000:5.1f} ms, {len(got)} events at"
                        f" {sent.rate:.0f}/s)",
                        flush=True,
                    )
        finally:
            stop_logged(procs)

    summary = {}
    for name in variants:
        pooled = [x for sample in samples[name] for x in sample]
        summary[name] = {
            "p50_ms": statistics.median(percentile(s, 50) for s in samples[name]) * 1000,
            "p99_ms": statistics.median(percentile(s, 99) for s in samples[name]) * 1000,
            "max_ms": max(pooled) * 1000,
            "ack_p50_ms": statistics.median(percentile(a, 50) for a in acks[name]) * 1000,
            "events": len(pooled),
            "sent_per_s": statistics.median(rates[name]),
        }
    print()
    print(f"{'variant':<8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'sent/s':>7}")
    for name, fig in summary.items():
        print(
            f"{name:<8} {fig['p50_ms']:8.1f} {fig['p99_ms']:8.1f} {fig['max_ms']:8.1f}"
            f" {fig['sent_per_s']:7.0f}"
        )
    ratios = {}
    if "poll" in summary:
        ratios["poll_vs_listen_p50"] = summary["poll"]["p50_ms"] / summary["listen"]["p50_ms"]
        print(f"\npoll_vs_listen_p50: {ratios['poll_vs_listen_p50']:.1f}x")
    target_met = summary["listen"]["p50_ms"] < 20.0
    print(f"listen p50 under 20 ms: {'yes' if target_met else 'no'}")
    result: dict[str, object] = {
        "when": now_utc(),
        "args": {k: v for k, v in vars(args).items() if k != "worker_without_listen"},
        "machine": machine(),
        "summary": summary,
        "ratios": ratios,
        "target_p50_under_20ms": target_met,
        "rounds": {
            name: [
                {"p50_ms": percentile(s, 50) * 1000, "p99_ms": percentile(s, 99) * 1000}
                for s in samples[name]
            ]
            for name in variants
        },
    }
    print(f"wrote {write_result('latency', result).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
