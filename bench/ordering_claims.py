"""Claim throughput with ordering policies: ``serial`` and ``latest`` beside ``none``.

For each variant a fresh store gets N events (20,000 by default) spread over 500
ordering keys, appended through ``store.append(event, ["noop"], ordering=...)`` with
``Ordering("serial")``, ``Ordering("latest")`` or no ordering (``none``); each key's
events have increasing ``occurred_at`` and are appended in that order. Then one loop,
as a worker would, calls ``store.claim(owner, limit=32, lease=30, now=...)`` and
settles everything it got as ``done``, until nothing is left. With ``serial`` and
``latest`` only the head of each key is due (500 at a time); each settle promotes the
key's next event. The figure is deliveries settled per second (settled / time of the
loop); for ``latest`` the script also counts deliveries skipped as stale (0 expected:
the events arrive in order). Rounds interleave none, serial, latest, engine by engine;
medians over the rounds, and ``serial / none`` and ``latest / none`` per engine.
``durability = "full"`` on both engines: every claim and settle is a flushed commit.
A PostgreSQL store lives in a schema of its own (``bench_ord_<pid>``), dropped and
created again for each variant and dropped at the end; a SQLite store in a temporary
file.

    python bench/ordering_claims.py                        # 20,000 events, 500 keys, 3 rounds
    python bench/ordering_claims.py --engines sqlite       # SQLite only
    python bench/ordering_claims.py --events 50000 --rounds 5
    python bench/ordering_claims.py --quick                # 2,000 events, 1 round: a smoke run

Run from the repository root with ``PYTHONPATH=src``. Prints a table and writes
``bench/results/ordering-claims-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from hookwise.config import StoreSettings
from hookwise.events import NewEvent
from hookwise.store import Ordering, Settlement, open_store
from ingest import ROOT
from pg_scale import (
    DEFAULT_PG,
    machine,
    now_utc,
    paired_ratio,
    pg_schemas,
    store_url,
    workdir,
    write_result,
)

HANDLER = "noop"
VARIANTS = ("none", "serial", "latest")
BODY = '{"type":"invoice.updated","data":{"object":{"id":"in_%d","version":%d}}}'


@dataclass
class Run:
    engine: str
    variant: str
    round: int
    settled: int
    stale: int
    claims: int
    seconds: float
    rate: float
    append_seconds: float


def ordering_of(variant: str) -> Ordering | None:
    if variant == "serial":
        return Ordering("serial")
    if variant == "latest":
        return Ordering("latest")
    return None


async def measure(engine: str, url: str, variant: str, events: int, keys: int, limit: int) -> Run:
    """Append ``events`` over ``keys`` keys with ``variant``'s ordering, then claim and
    settle as ``done`` until nothing is left; time that loop."""
    ordering = ordering_of(variant)
    owner = f"bench-{uuid.uuid4().hex[:8]}"
    async with open_store(StoreSettings(url=url)) as store:
        began = time.perf_counter()
        first_occurred = time.time() - 3600
        # One event per key per batch: appends that run concurrently never share a key,
        # so each key's events are stored in occurred_at order.
        for first in range(0, events, keys):
            now = time.time()
            await asyncio.gather(
                *(
                    store.append(
                        NewEvent(
                            source="bench",
                            dedup_key=f"msg_{uuid.uuid4().hex}",
                            type="invoice.updated",
                            body=(BODY % (i % keys, i // keys)).encode(),
                            ordering_key=f"in_{i % keys}",
                            occurred_at=first_occurred + i // keys,
                            received_at=now,
                        ),
                        [HANDLER],
                        ordering=ordering,
                    )
                    for i in range(first, min(first + keys, events))
                )
            )
        append_seconds = time.perf_counter() - began

        settled = claims = 0
        began = time.perf_counter()
        while True:
            claimed = await store.claim(
                owner, limit=limit, lease=30, now=time.time(), handlers=[HANDLER]
            )
            if not claimed:
                break
            claims += 1
            finished = time.time()
            applied = await store.settle(
                [
                    Settlement(c.delivery_id, c.fence, owner, "done", finished, finished)
                    for c in claimed
                ]
            )
            if not all(applied):
                raise RuntimeError("a settle was refused; is another worker using this store?")
            settled += len(claimed)
        seconds = time.perf_counter() - began

        counts = await store.counts()
    left = {status: n for status, n in counts.items() if n and status not in ("done", "skipped")}
    if left or counts["done"] != settled or settled + counts["skipped"] != events:
        raise RuntimeError(
            f"{engine} {variant}: settled {settled} of {events} events, store counts {counts}"
        )
    return Run(
        engine=engine,
        variant=variant,
        round=0,
        settled=settled,
        stale=counts["skipped"],
        claims=claims,
        seconds=seconds,
        rate=settled / seconds,
        append_seconds=append_seconds,
    )


def reset_schema(dsn: str, schema: str) -> None:
    """An empty schema: the next store opened on it migrates from scratch."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL (a database to use)")
    parser.add_argument(
        "--engines", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument("--events", type=int, default=20_000, help="events per variant")
    parser.add_argument("--keys", type=int, default=500, help="ordering keys")
    parser.add_argument("--limit", type=int, default=32, help="claim batch size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 events, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 2_000, 1
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - {"postgresql", "sqlite"}
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(sorted(unknown))}: use sqlite, postgresql")
    if args.events < 1 or args.keys < 1 or args.rounds < 1:
        parser.error("--events, --keys and --rounds must be at least 1")

    runs: list[Run] = []
    with (
        workdir() as work,
        pg_schemas(args.pg, *(["ord"] if "postgresql" in engines else [])) as schemas,
    ):

        def fresh_store(engine: str, name: str) -> str:
            if engine == "postgresql":
                reset_schema(args.pg, schemas[0])
                return store_url(args.pg, schemas[0])
            return f"sqlite:///{work}/{name}.db"

        # A short warm-up per engine (connections, caches, imports), not recorded.
        for engine in engines:
            url = fresh_store(engine, "warmup")
            asyncio.run(measure(engine, url, "serial", args.keys * 2, args.keys, args.limit))

        for round_no in range(1, args.rounds + 1):
            for engine in engines:
                for variant in VARIANTS:
                    name = f"{engine}-{variant}-{round_no}"
                    url = fresh_store(engine, name)
                    run = asyncio.run(
                        measure(engine, url, variant, args.events, args.keys, args.limit)
                    )
                    run.round = round_no
                    runs.append(run)
                    if engine == "sqlite":
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{work}/{name}.db{suffix}").unlink(missing_ok=True)
                    print(
                        f"round {round_no} {engine:>10} {variant:>6}: {run.rate:7.0f} settled/s"
                        f"  ({run.settled:,} in {run.seconds:.2f} s, {run.claims} claims,"
                        f" {run.stale} stale; append {run.append_seconds:.1f} s)",
                        flush=True,
                    )

    def rates(engine: str, variant: str) -> list[float]:
        return [r.rate for r in runs if r.engine == engine and r.variant == variant]

    summary: dict[str, dict[str, dict[str, float]]] = {}
    ratios: dict[str, dict[str, float]] = {}
    paired: dict[str, dict[str, float]] = {}
    for engine in engines:
        summary[engine] = {
            variant: {
                "settled_per_s": statistics.median(rates(engine, variant)),
                "stale": sum(r.stale for r in runs if r.engine == engine and r.variant == variant),
            }
            for variant in VARIANTS
        }
        none = summary[engine]["none"]["settled_per_s"]
        ratios[engine] = {
            f"{variant}_vs_none": summary[engine][variant]["settled_per_s"] / none
            for variant in ("serial", "latest")
        }
        paired[engine] = {
            f"{variant}_vs_none": paired_ratio(rates(engine, variant), rates(engine, "none"))
            for variant in ("serial", "latest")
        }

    print()
    print(f"{'engine':<10} {'variant':<7} {'settled/s':>10} {'vs none':>8} {'stale':>6}")
    for engine in engines:
        for variant in VARIANTS:
            fig = summary[engine][variant]
            ratio = 1.0 if variant == "none" else ratios[engine][f"{variant}_vs_none"]
            print(
                f"{engine:<10} {variant:<7} {fig['settled_per_s']:10.0f} {ratio:7.2f}x"
                f" {fig['stale']:6.0f}"
            )
    print()
    for engine in engines:
        r, p = ratios[engine], paired[engine]
        print(
            f"{engine}: serial / none {r['serial_vs_none']:.2f}x"
            f" (per-round median {p['serial_vs_none']:.2f}x), latest / none"
            f" {r['latest_vs_none']:.2f}x (per-round median {p['latest_vs_none']:.2f}x)"
        )
    result: dict[str, object] = {
        "when": now_utc(),
        "args": vars(args),
        "machine": machine(),
        "runs": [asdict(r) for r in runs],
        "summary": summary,
        "ratios": ratios,
        "ratios_paired": paired,
    }
    print(f"wrote {write_result('ordering-claims', result).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
