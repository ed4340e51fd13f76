"""PostgreSQL beside SQLite, and more processes on one PostgreSQL: ingest and dispatch.

Two benchmarks, each measured side by side in one run (rounds interleaved, medians,
ratios), on loopback against the local PostgreSQL:

``ingest``: wrk sends pre-signed, distinct Standard Webhooks requests to
``hookwise serve --no-worker`` (``durability = "full"``, group commit) on

- ``sqlite``: one receiver on a SQLite file;
- ``pg``: one receiver on PostgreSQL;
- ``pg x2``: two receiver processes on one PostgreSQL schema, each hit by its own wrk
  with half the connections, at the same time; their req/s are summed.

A run in which requests failed (another process closed or restarted the database's
connections) is measured again, up to ``--retries`` times, and recorded apart.

``dispatch``: a store is filled with N events, each with one delivery for an async
no-op handler, then ``hookwise worker`` processes drain it; deliveries/s is N over the
time from the moment the work is made due to the last settle. Variants: one worker on
SQLite, one worker on PostgreSQL, two worker processes on PostgreSQL.

Every PostgreSQL variant lives in a schema of its own (``bench_*``), dropped at the end.

    python bench/pg_scale.py                      # both: 3 rounds; ingest 10 s, 64 connections;
                                                  # dispatch 20,000 deliveries
    python bench/pg_scale.py ingest --rounds 5 --duration 15
    python bench/pg_scale.py dispatch --events 50000
    python bench/pg_scale.py --quick              # a smoke run of both, about a minute
    python bench/pg_scale.py --pg postgresql://postgres@127.0.0.1:5432/test

Needs ``wrk`` (Debian: ``apt-get install wrk``) and PostgreSQL (trust auth is enough).
Prints the tables and writes ``bench/results/pg-ingest-latest.json`` and
``bench/results/pg-dispatch-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

from hookwise.config import StoreSettings
from hookwise.events import NewEvent
from hookwise.store import open_store
from ingest import HERE, HOOKWISE, ROOT, SECRET, free_port, make_requests, parse_wrk, stop, wait_up

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS = HERE / "results"
PARKED = 1e12
"""``next_attempt_at`` of preloaded deliveries until the workers are ready: never due."""


# -- shared helpers (latency.py and claim_history.py use them too) ----------------------------


def store_url(dsn: str, schema: str) -> str:
    """A hookwise store URL whose tables live in ``schema``."""
    return f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"


def schema_name(tag: str) -> str:
    """``bench_<tag>_<pid>``: runs started at the same time don't share tables."""
    return f"bench_{tag}_{os.getpid()}"


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A temporary directory for configs, databases and logs, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="hookwise-bench-") as path:
        yield Path(path)


_DROP = "DROP SCHEMA IF EXISTS {} CASCADE"


@contextlib.contextmanager
def pg_schemas(dsn: str, *tags: str) -> Iterator[list[str]]:
    """Create one empty schema per tag, yield their names, drop them afterwards."""
    names = [schema_name(tag) for tag in tags]
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL(_DROP).format(sql.Identifier(name)))
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        sys.exit(f"can't reach PostgreSQL at {dsn} ({exc}); start it or pass --pg URL")
    try:
        yield names
    finally:
        drop_schemas(dsn, names)


def drop_schemas(dsn: str, names: list[str], *, patience: float = 60.0) -> None:
    """Drop the schemas, waiting out a database that is restarting."""
    deadline = time.monotonic() + patience
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for name in names:
                    conn.execute(sql.SQL(_DROP).format(sql.Identifier(name)))
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                print(
                    f"could not drop schema(s) {', '.join(names)} ({exc}); drop them by hand",
                    file=sys.stderr,
                )
                return
            time.sleep(1)


def pg_connect(dsn: str, schema: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


def write_config(
    path: Path,
    url: str,
    *,
    handler: str = "noop_handler:handle_async",
    worker: dict[str, object] | None = None,
) -> Path:
    """A hookwise.toml: one Standard Webhooks source ``bench``, one handler ``noop``."""
    worker_lines = "".join(f"{key} = {value!r}\n" for key, value in (worker or {}).items())
    path.write_text(
        f"""
[store]
url = "{url}"
durability = "full"
group_commit = true

[worker]
{worker_lines}
[sources.bench]
provider = "standard"
secrets = ["env:HOOKWISE_BENCH_SECRET"]

[[handlers]]
name = "noop"
source = "bench"
call = "{handler}"
"""
    )
    return path


def bench_env() -> dict[str, str]:
    return {
        **os.environ,
        "HOOKWISE_BENCH_SECRET": SECRET,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")]),
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of round-by-round ratios: a neighbour slowing one round down slows
    both variants of that round, and cancels out."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def machine() -> dict[str, object]:
    """What the figures were measured on, with the load average at the end of the run
    (the machine is shared: a high one says the neighbours were busy)."""
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def write_result(name: str, result: dict[str, object]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-latest.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- ingest ------------------------------------------------------------------------------------


@dataclass
class IngestRun:
    variant: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int


def run_wrks(
    targets: list[tuple[str, Path]], duration: int, connections: int, threads: int
) -> list[str]:
    """Run one wrk per (url, requests file), all at once; return their outputs."""
    procs = []
    for url, requests_file in targets:
        env = {
            **os.environ,
            "HOOKWISE_BENCH_REQUESTS": str(requests_file),
            "HOOKWISE_BENCH_THREADS": str(threads),
        }
        procs.append(
            subprocess.Popen(
                [
                    "wrk",
                    f"-t{threads}",
                    f"-c{connections}",
                    f"-d{duration}s",
                    "--latency",
                    "-s",
                    str(HERE / "presigned.lua"),
                    url,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    outputs = []
    for proc in procs:
        out, errors = proc.communicate(timeout=duration + 60)
        if proc.returncode:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {errors.strip()}")
        if "WARNING: thread reused requests" in out:
            raise RuntimeError("not enough pre-signed requests: raise --expect-rps")
        outputs.append(out)
    return outputs


def ingest(args: argparse.Namespace) -> dict[str, object]:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    env = bench_env()
    with workdir() as work, pg_schemas(args.pg, "ingest_one", "ingest_two") as (one, two):
        configs = {
            "sqlite": write_config(work / "sqlite.toml", f"sqlite:///{work}/ingest.db"),
            "pg": write_config(work / "pg.toml", store_url(args.pg, one)),
            "pg x2": write_config(work / "pg2.toml", store_url(args.pg, two)),
        }
        receivers = {"sqlite": 1, "pg": 1, "pg x2": 2}
        ports = {name: [free_port() for _ in range(n)] for name, n in receivers.items()}
        receivers_started: list[tuple[subprocess.Popen[bytes], Path]] = []
        try:
            # The two receivers of "pg x2" start one after the other: the first migrates.
            for name, config in configs.items():
                for port in ports[name]:
                    cmd = [*HOOKWISE, "serve", "-c", str(config), "--no-worker"]
                    log_path = work / f"receiver-{port}.log"
                    proc = start_logged([*cmd, "--port", str(port)], env, work, log_path)
                    receivers_started.append((proc, log_path))
                    wait_up(f"http://127.0.0.1:{port}/healthz")
            runs, discarded = ingest_rounds(args, work, ports)
        finally:
            stop_logged(receivers_started)

    def median(variant: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in runs if r.variant == variant))

    summary = {name: {f: median(name, f) for f in ("rps", "p50_ms", "p99_ms")} for name in configs}
    ratios = {
        "pg_vs_sqlite_throughput": summary["pg"]["rps"] / summary["sqlite"]["rps"],
        "pg_two_vs_one_receiver_throughput": summary["pg x2"]["rps"] / summary["pg"]["rps"],
    }
    rps = {name: [r.rps for r in runs if r.variant == name] for name in configs}
    paired = {
        "pg_vs_sqlite_throughput": paired_ratio(rps["pg"], rps["sqlite"]),
        "pg_two_vs_one_receiver_throughput": paired_ratio(rps["pg x2"], rps["pg"]),
    }
    errors = sum(r.non_2xx for r in runs)
    print()
    print(f"{'variant':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, fig in summary.items():
        print(f"{name:<8} {fig['rps']:9.0f} {fig['p50_ms']:8.2f} {fig['p99_ms']:8.2f}")
    print()
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x (median of the per-round ratios: {paired[key]:.2f}x)")
    print(f"non-2xx answers: {errors} (runs measured again after failures: {len(discarded)})")
    if errors:
        print("some requests were not answered 2xx (see the receiver logs above): the")
        print("store was interrupted; run again when the database is left alone")
    result: dict[str, object] = {
        "when": now_utc(),
        "args": {k: v for k, v in vars(args).items() if k != "func"},
        "machine": machine(),
        "runs": [asdict(r) for r in runs],
        "measured_again": [asdict(r) for r in discarded],
        "summary": summary,
        "ratios": ratios,
        "ratios_paired": paired,
        "non_2xx": errors,
        "note": "pg x2: two receivers, two wrk processes with half the connections each; "
        "req/s summed, latencies the worse of the two",
    }
    print(f"wrote {write_result('pg-ingest', result).relative_to(ROOT)}")
    return result


def ingest_rounds(
    args: argparse.Namespace, work: Path, ports: dict[str, list[int]]
) -> tuple[list[IngestRun], list[IngestRun]]:
    """Measured runs, and those measured again because some requests failed (another
    process closed the store's connections: that is not what is measured here)."""
    runs: list[IngestRun] = []
    discarded: list[IngestRun] = []
    for round_no in range(args.rounds + 1):  # round 0 warms up and is discarded
        duration = args.duration if round_no else 2
        for name, variant_ports in ports.items():
            for attempt in range(args.retries + 1):
                run = ingest_once(args, work, name, variant_ports, duration)
                if not round_no:
                    break
                print(
                    f"ingest round {round_no} {name:>6}: {run.rps:8.0f} req/s"
                    f"  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms"
                    f"  non-2xx {run.non_2xx}",
                    flush=True,
                )
                if run.non_2xx and attempt < args.retries:
                    print("  (some requests failed: measured again)", flush=True)
                    discarded.append(run)
                    continue
                runs.append(run)
                break
    return runs, discarded


def ingest_once(
    args: argparse.Namespace, work: Path, name: str, ports: list[int], duration: int
) -> IngestRun:
    per_run = args.expect_rps * duration // len(ports)
    targets = []
    for i, port in enumerate(ports):
        file = work / f"requests-{i}.tsv"
        make_requests(file, per_run)
        targets.append((f"http://127.0.0.1:{port}/hooks/bench", file))
    connections = max(1, args.connections // len(ports))
    outputs = run_wrks(targets, duration, connections, args.threads)
    for _, file in targets:
        file.unlink()
    parsed = [parse_wrk(out) for out in outputs]
    return IngestRun(
        variant=name,
        rps=sum(p[0] for p in parsed),
        p50_ms=max(p[1] for p in parsed),
        p99_ms=max(p[2] for p in parsed),
        non_2xx=sum(p[3] for p in parsed),
        requests=sum(p[4] for p in parsed),
    )


# -- dispatch ----------------------------------------------------------------------------------


@dataclass
class DispatchRun:
    variant: str
    deliveries: int
    seconds: float
    rate: float


async def preload(url: str, count: int) -> None:
    """``count`` events through the store's own append, one pending delivery each."""
    async with open_store(StoreSettings(url=url)) as store:
        now = time.time()
        for first in range(0, count, 1000):
            await asyncio.gather(
                *(
                    store.append(
                        NewEvent(
                            source="bench",
                            dedup_key=f"msg_{uuid.uuid4().hex}",
                            type="invoice.paid",
                            body=b'{"type":"invoice.paid","data":{"object":{"id":"in_%d"}}}' % i,
                            received_at=now,
                        ),
                        ["noop"],
                    )
                    for i in range(first, min(first + 1000, count))
                )
            )


class Backend(Protocol):
    """Park, release and count the deliveries of one store with plain SQL."""

    def park(self) -> None:
        """Make every delivery not due (the workers are not running yet)."""

    def release(self) -> float:
        """Make them due now, wake the workers; return the wall time it committed."""

    def remaining(self) -> int:
        """Deliveries not done yet."""

    def finished_at(self) -> tuple[int, float]:
        """(deliveries done, when the last one was settled)."""

    def close(self) -> None: ...


class SQLiteBackend:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)

    def park(self) -> None:
        self.conn.execute("UPDATE deliveries SET next_attempt_at = ?", (PARKED,))

    def release(self) -> float:
        self.conn.execute("UPDATE deliveries SET next_attempt_at = created_at")
        return time.time()

    def remaining(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM deliveries WHERE status <> 'done'").fetchone()
        return int(row[0])

    def finished_at(self) -> tuple[int, float]:
        row = self.conn.execute(
            "SELECT count(*), max(updated_at) FROM deliveries WHERE status = 'done'"
        ).fetchone()
        return int(row[0]), float(row[1])

    def close(self) -> None:
        self.conn.close()


class PostgresBackend:
    def __init__(self, dsn: str, schema: str) -> None:
        self.conn = pg_connect(dsn, schema)
        self.channel = f"hookwise:{schema}"

    def truncate(self) -> None:
        self.conn.execute("TRUNCATE events, deliveries, attempts RESTART IDENTITY")

    def park(self) -> None:
        self.conn.execute("UPDATE deliveries SET next_attempt_at = %s", (PARKED,))
        self.conn.execute("VACUUM ANALYZE events, deliveries, attempts")

    def release(self) -> float:
        with self.conn.transaction():
            self.conn.execute("UPDATE deliveries SET next_attempt_at = created_at")
            self.conn.execute("SELECT pg_notify(%s, '')", (self.channel,))
        return time.time()

    def remaining(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM deliveries WHERE status <> 'done'").fetchone()
        assert row is not None
        return int(row[0])

    def finished_at(self) -> tuple[int, float]:
        row = self.conn.execute(
            "SELECT count(*), max(updated_at) FROM deliveries WHERE status = 'done'"
        ).fetchone()
        assert row is not None
        return int(row[0]), float(row[1])

    def close(self) -> None:
        self.conn.close()


def start_logged(
    cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with its stderr in ``log_path`` (a pipe nobody reads could fill up)."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
        )


def wait_for_line(proc: subprocess.Popen[bytes], log_path: Path, needle: str) -> None:
    deadline = time.monotonic() + 30
    while needle not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{log_path.stem} did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.05)


def start_workers(
    config: Path, count: int, work: Path, env: dict[str, str]
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """Start ``count`` ``hookwise worker`` processes and wait until each is running."""
    started = []
    for i in range(count):
        log_path = work / f"worker-{i}.log"
        cmd = [*HOOKWISE, "worker", "-c", str(config)]
        started.append((start_logged(cmd, env, work, log_path), log_path))
    for proc, log_path in started:
        wait_for_line(proc, log_path, " running ")
    return started


def stop_logged(started: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    """Stop the processes; show the end of any log that has warnings or errors."""
    for proc, log_path in started:
        stop(proc)
        text = log_path.read_text()
        if any(word in text for word in ("Traceback", " ERROR ", " WARNING ")):
            print(f"{log_path.name}:\n{text[-2000:]}", file=sys.stderr)


def dispatch_once(
    backend: Backend,
    url: str,
    config: Path,
    workers: int,
    events: int,
    work: Path,
    env: dict[str, str],
) -> DispatchRun:
    asyncio.run(preload(url, events))
    backend.park()
    started = start_workers(config, workers, work, env)
    try:
        released_at = backend.release()
        deadline = time.monotonic() + max(120.0, events / 50)
        while backend.remaining():
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not finish in time; see their logs")
            time.sleep(0.1)
    finally:
        stop_logged(started)
    done, last = backend.finished_at()
    if done != events:
        raise RuntimeError(f"{done} deliveries done, expected {events}")
    seconds = last - released_at
    return DispatchRun("", events, seconds, events / seconds)


def dispatch(args: argparse.Namespace) -> dict[str, object]:
    env = bench_env()
    # Poll often when idle so that SQLite (no cross-process wake-up) starts as soon as
    # PostgreSQL (woken by NOTIFY) does; once busy, workers claim as slots free up.
    worker = {"poll_interval": args.poll_interval}
    runs: list[DispatchRun] = []
    with workdir() as work, pg_schemas(args.pg, "dispatch") as (schema,):
        pg_url = store_url(args.pg, schema)
        pg_config = write_config(work / "pg.toml", pg_url, worker=worker)
        asyncio.run(preload(pg_url, 0))  # create the tables
        pg = PostgresBackend(args.pg, schema)
        variants = {"sqlite": 1, "pg": 1, "pg x2": 2}
        try:
            for round_no in range(args.rounds + 1):  # round 0 warms up and is discarded
                events = args.events if round_no else max(1000, args.events // 5)
                for name, workers in variants.items():
                    if name == "sqlite":
                        db = work / f"dispatch-{round_no}.db"
                        url = f"sqlite:///{db}"
                        config = write_config(work / "sqlite.toml", url, worker=worker)
                        asyncio.run(preload(url, 0))  # create the schema
                        backend: Backend = SQLiteBackend(db)
                    else:
                        pg.truncate()
                        url, config, backend = pg_url, pg_config, pg
                    try:
                        run = dispatch_once(backend, url, config, workers, events, work, env)
                    finally:
                        if backend is not pg:
                            backend.close()
                    run.variant = name
                    if name == "sqlite":
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{db}{suffix}").unlink(missing_ok=True)
                    if round_no:
                        runs.append(run)
                        print(
                            f"dispatch round {round_no} {name:>6}: {run.rate:8.0f} deliveries/s"
                            f"  ({run.deliveries} in {run.seconds:.2f} s)",
                            flush=True,
                        )
        finally:
            pg.close()

    summary = {
        name: statistics.median(r.rate for r in runs if r.variant == name) for name in variants
    }
    ratios = {
        "pg_vs_sqlite_dispatch": summary["pg"] / summary["sqlite"],
        "pg_two_vs_one_worker_dispatch": summary["pg x2"] / summary["pg"],
    }
    rates = {name: [r.rate for r in runs if r.variant == name] for name in variants}
    paired = {
        "pg_vs_sqlite_dispatch": paired_ratio(rates["pg"], rates["sqlite"]),
        "pg_two_vs_one_worker_dispatch": paired_ratio(rates["pg x2"], rates["pg"]),
    }
    print()
    print(f"{'variant':<8} {'deliveries/s':>13}")
    for name, rate in summary.items():
        print(f"{name:<8} {rate:13.0f}")
    print()
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x (median of the per-round ratios: {paired[key]:.2f}x)")
    result: dict[str, object] = {
        "when": now_utc(),
        "args": {k: v for k, v in vars(args).items() if k != "func"},
        "machine": machine(),
        "runs": [asdict(r) for r in runs],
        "median_deliveries_per_s": summary,
        "ratios": ratios,
        "ratios_paired": paired,
    }
    print(f"wrote {write_result('pg-dispatch', result).relative_to(ROOT)}")
    return result


# -- command line ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=("all", "ingest", "dispatch"), default="all")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL (a database to use)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    ingest_args = parser.add_argument_group("ingest")
    ingest_args.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ingest_args.add_argument("--connections", type=int, default=64, help="in total")
    ingest_args.add_argument("--threads", type=int, default=1, help="threads per wrk")
    ingest_args.add_argument(
        "--retries",
        type=int,
        default=2,
        help="times a run with failed requests (the store interrupted) is measured again",
    )
    ingest_args.add_argument(
        "--expect-rps",
        type=int,
        default=20_000,
        help="upper bound used to size the pre-signed request files",
    )
    dispatch_args = parser.add_argument_group("dispatch")
    dispatch_args.add_argument("--events", type=int, default=20_000)
    dispatch_args.add_argument(
        "--poll-interval", type=float, default=0.05, help="[worker] poll_interval (seconds)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.events = 1, 3, 3000
    if args.what in ("all", "ingest"):
        ingest(args)
    if args.what in ("all", "dispatch"):
        dispatch(args)


if __name__ == "__main__":
    main()
