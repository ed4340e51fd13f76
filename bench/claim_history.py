"""Claim latency as history grows: an empty store vs one holding 1,000,000 finished events.

Both stores get the same 1,000 pending deliveries (appended through the store API);
then one loop, as a worker would, calls ``store.claim(owner, limit=32, lease=30,
now=...)`` and settles what it got as ``done``, until nothing is due. Each claim and
each settle is timed; the figures are p50/p99 per call. The history (events, their
``done`` deliveries and one attempt each) is loaded straight into the tables with SQL,
then ``VACUUM ANALYZE`` on PostgreSQL (SQLite gets no ``ANALYZE``: hookwise never runs
one). Rounds alternate empty and full, engine by engine; each PostgreSQL store lives in
a schema of its own (``bench_*``, dropped at the end), each SQLite store in a temporary
file (``durability = "full"`` for both engines).

    python bench/claim_history.py                          # 1M history, 1,000 pending, 10 rounds
    python bench/claim_history.py --engines postgresql     # PostgreSQL only
    python bench/claim_history.py --history 5000000 --rounds 5
    python bench/claim_history.py --quick                  # 20,000 history, a smoke run

Prints a table and writes ``bench/results/claim-history-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from hookwise.config import StoreSettings
from hookwise.events import NewEvent
from hookwise.store import Settlement, open_store
from ingest import ROOT
from pg_scale import (
    DEFAULT_PG,
    machine,
    now_utc,
    percentile,
    pg_connect,
    pg_schemas,
    store_url,
    workdir,
    write_result,
)

HANDLER = "noop"
HEADERS = '[["content-type","application/json"],["webhook-id","msg_%s"]]'
BODY = (
    '{"type":"invoice.paid","id":"evt_%s",'
    '"data":{"object":{"id":"in_%s","amount":4200,"currency":"eur"}}}'
)

PG_HISTORY = """
INSERT INTO events (
    source, dedup_key, type, ordering_key, occurred_at, received_at, intake, headers, body
)
SELECT 'bench', 'hist_' || g, 'invoice.paid', 'in_' || g, NULL, %(start)s + g * 0.001, 'push',
       replace(%(headers)s, '%%s', g::text),
       convert_to(replace(%(body)s, '%%s', g::text), 'UTF8')
FROM generate_series(1, %(count)s) AS g;

INSERT INTO deliveries (
    event_seq, handler, status, attempts, next_attempt_at, fence, created_at, updated_at
)
SELECT seq, %(handler)s, 'done', 1, NULL, 1, received_at, received_at + 0.005 FROM events;

INSERT INTO attempts (delivery_id, number, started_at, finished_at, outcome, error, owner)
SELECT id, 1, updated_at - 0.004, updated_at, 'done', NULL, 'bench-history' FROM deliveries;
"""

SQLITE_EVENTS = """
INSERT INTO events (
    source, dedup_key, type, ordering_key, occurred_at, received_at, intake, headers, body
) VALUES ('bench', ?, 'invoice.paid', ?, NULL, ?, 'push', ?, ?)
"""

SQLITE_HISTORY = """
INSERT INTO deliveries (
    event_seq, handler, status, attempts, next_attempt_at, fence, created_at, updated_at
)
SELECT seq, :handler, 'done', 1, NULL, 1, received_at, received_at + 0.005 FROM events;

INSERT INTO attempts (delivery_id, number, started_at, finished_at, outcome, error, owner)
SELECT id, 1, updated_at - 0.004, updated_at, 'done', NULL, 'bench-history' FROM deliveries;
"""


def history_start(count: int) -> float:
    """The history ends an hour ago, one event per millisecond."""
    return time.time() - 3600 - count * 0.001


def load_postgres(dsn: str, schema: str, count: int) -> None:
    with pg_connect(dsn, schema) as conn:
        for statement in filter(str.strip, PG_HISTORY.split(";")):
            conn.execute(
                statement,
                {
                    "start": history_start(count),
                    "count": count,
                    "handler": HANDLER,
                    "headers": HEADERS,
                    "body": BODY,
                },
            )
        conn.execute("VACUUM ANALYZE events, deliveries, attempts")


def vacuum_postgres(dsn: str, schema: str) -> None:
    with pg_connect(dsn, schema) as conn:
        conn.execute("VACUUM ANALYZE events, deliveries, attempts")


def load_sqlite(path: Path, count: int) -> None:
    start = history_start(count)

    def rows() -> Iterator[tuple[str, str, float, str, bytes]]:
        for i in range(1, count + 1):
            yield (
                f"hist_{i}",
                f"in_{i}",
                start + i * 0.001,
                HEADERS % i,
                (BODY % (i, i)).encode(),
            )

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # this loading connection only
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(SQLITE_EVENTS, rows())
        for statement in filter(str.strip, SQLITE_HISTORY.split(";")):
            conn.execute(statement, {"handler": HANDLER})
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def migrate(url: str) -> None:
    async with open_store(StoreSettings(url=url)):
        pass


async def measure(url: str, pending: int, limit: int) -> tuple[list[float], list[float]]:
    """Append ``pending`` deliveries, then claim and settle until none is due; return the
    seconds each claim and each settle took."""
    claim_times: list[float] = []
    settle_times: list[float] = []
    owner = f"bench-{uuid.uuid4().hex[:8]}"
    async with open_store(StoreSettings(url=url)) as store:
        now = time.time()
        await asyncio.gather(
            *(
                store.append(
                    NewEvent(
                        source="bench",
                        dedup_key=f"msg_{uuid.uuid4().hex}",
                        type="invoice.paid",
                        body=(BODY % (i, i)).encode(),
                        received_at=now,
                    ),
                    [HANDLER],
                )
                for i in range(pending)
            )
        )
        claimed = 0
        while True:
            began = time.perf_counter()
            claims = await store.claim(
                owner, limit=limit, lease=30, now=time.time(), handlers=[HANDLER]
            )
            took = time.perf_counter() - began
            if not claims:
                break
            claim_times.append(took)
            claimed += len(claims)
            finished = time.time()
            settlements = [
                Settlement(c.delivery_id, c.fence, owner, "done", finished, finished)
                for c in claims
            ]
            began = time.perf_counter()
            applied = await store.settle(settlements)
            settle_times.append(time.perf_counter() - began)
            if not all(applied):
                raise RuntimeError("a settle was refused; is another worker using this store?")
        if claimed != pending:
            raise RuntimeError(f"claimed {claimed} deliveries, expected {pending}")
    return claim_times, settle_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL (a database to use)")
    parser.add_argument(
        "--engines", default="postgresql,sqlite", help="comma-separated: postgresql,sqlite"
    )
    parser.add_argument("--history", type=int, default=1_000_000, help="finished events")
    parser.add_argument("--pending", type=int, default=1000, help="deliveries due per round")
    parser.add_argument("--limit", type=int, default=32, help="claim batch size")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20,000 history")
    args = parser.parse_args()
    if args.quick:
        args.history, args.pending, args.rounds = 20_000, 320, 1
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - {"postgresql", "sqlite"}
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(sorted(unknown))}: use postgresql, sqlite")

    urls: dict[tuple[str, str], str] = {}
    load_seconds: dict[str, float] = {}
    times: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    with (
        workdir() as work,
        pg_schemas(
            args.pg, *(["claim_empty", "claim_full"] if "postgresql" in engines else [])
        ) as schemas,
    ):
        for engine in engines:
            for size in ("empty", "full"):
                if engine == "postgresql":
                    schema = schemas[0 if size == "empty" else 1]
                    urls[engine, size] = store_url(args.pg, schema)
                else:
                    urls[engine, size] = f"sqlite:///{work}/claim-{size}.db"
                asyncio.run(migrate(urls[engine, size]))
                times[engine, size] = ([], [])
            began = time.perf_counter()
            print(f"loading {args.history:,} finished events into {engine} ...", flush=True)
            if engine == "postgresql":
                load_postgres(args.pg, schemas[1], args.history)
                vacuum_postgres(args.pg, schemas[0])
            else:
                load_sqlite(work / "claim-full.db", args.history)
            load_seconds[engine] = time.perf_counter() - began
            print(f"  loaded in {load_seconds[engine]:.1f} s", flush=True)

        for round_no in range(args.rounds + 1):  # round 0 warms up and is discarded
            for engine in engines:
                for size in ("empty", "full"):
                    claims, settles = asyncio.run(
                        measure(urls[engine, size], args.pending, args.limit)
                    )
                    if not round_no:
                        continue
                    times[engine, size][0].extend(claims)
                    times[engine, size][1].extend(settles)
                    print(
                        f"round {round_no} {engine:>10} {size:>5}: claim p50 "
                        f"{percentile(claims, 50) * 1000:6.2f} ms  p99 "
                        f"{percentile(claims, 99) * 1000:6.2f} ms   settle p50 "
                        f"{percentile(settles, 50) * 1000:6.2f} ms",
                        flush=True,
                    )

    summary: dict[str, dict[str, dict[str, float]]] = {}
    ratios: dict[str, dict[str, float]] = {}
    for engine in engines:
        summary[engine] = {}
        for size in ("empty", "full"):
            claims, settles = times[engine, size]
            summary[engine][size] = {
                "claim_p50_ms": percentile(claims, 50) * 1000,
                "claim_p99_ms": percentile(claims, 99) * 1000,
                "settle_p50_ms": percentile(settles, 50) * 1000,
                "settle_p99_ms": percentile(settles, 99) * 1000,
                "claims": len(claims),
            }
        full, empty = summary[engine]["full"], summary[engine]["empty"]
        ratios[engine] = {
            "claim_p50_full_vs_empty": full["claim_p50_ms"] / empty["claim_p50_ms"],
            "claim_p99_full_vs_empty": full["claim_p99_ms"] / empty["claim_p99_ms"],
            "settle_p50_full_vs_empty": full["settle_p50_ms"] / empty["settle_p50_ms"],
        }

    print()
    print(
        f"{'engine':<10} {'history':>9} {'claim p50':>10} {'claim p99':>10}"
        f" {'settle p50':>11} {'settle p99':>11}"
    )
    for engine in engines:
        for size in ("empty", "full"):
            fig = summary[engine][size]
            history = 0 if size == "empty" else args.history
            print(
                f"{engine:<10} {history:>9,} {fig['claim_p50_ms']:8.2f}ms"
                f" {fig['claim_p99_ms']:8.2f}ms {fig['settle_p50_ms']:9.2f}ms"
                f" {fig['settle_p99_ms']:9.2f}ms"
            )
    print()
    for engine in engines:
        r = ratios[engine]
        met = r["claim_p50_full_vs_empty"] <= 2 and r["claim_p99_full_vs_empty"] <= 2
        print(
            f"{engine}: claim p50 {r['claim_p50_full_vs_empty']:.2f}x, p99 "
            f"{r['claim_p99_full_vs_empty']:.2f}x, settle p50 "
            f"{r['settle_p50_full_vs_empty']:.2f}x at {args.history:,} vs empty"
            f" (target within 2x: {'met' if met else 'not met'})"
        )
    result: dict[str, object] = {
        "when": now_utc(),
        "args": vars(args),
        "machine": machine(),
        "load_seconds": load_seconds,
        "summary": summary,
        "ratios": ratios,
        "samples_ms": {
            f"{engine}/{size}": {
                "claim": [round(t * 1000, 3) for t in times[engine, size][0]],
                "settle": [round(t * 1000, 3) for t in times[engine, size][1]],
            }
            for engine in engines
            for size in ("empty", "full")
        },
    }
    print(f"wrote {write_result('claim-history', result).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
