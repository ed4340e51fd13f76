"""What the ordering chaos runs share: the plan of events and copies, reading the
handler's journal and the store afterwards, and the checks of what ordering promises.

Used by ``test_ordering_chaos.py`` (appends through the store API) and by
``tests/acceptance/test_ordering_end_to_end.py`` (signed requests to ``hookwise serve``).
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

T0 = 1_700_000_000.0
UNFINISHED = ("pending", "waiting", "leased", "retrying")


@dataclass(frozen=True)
class Planned:
    """One event: version ``version`` of object ``key``, sent ``copies`` times."""

    dedup_key: str
    key: str
    version: int
    occurred_at: float
    copies: int

    def body(self) -> bytes:
        """What a provider would send: the object's id, version and version time."""
        data = {"id": self.key, "version": self.version, "version_time": self.occurred_at}
        return json.dumps({"type": "object.updated", "data": data}).encode()


Job = tuple[Planned, ...]
"""Copies of one event sent at the same moment (one, or two at once)."""


def plan(
    rng: random.Random, *, events: int, keys: int, max_copies: int = 3, simultaneous: float = 0.5
) -> tuple[list[Planned], list[Job]]:
    """``events`` events spread at random over ``keys`` objects, each object's versions
    1, 2, ... with rising times (objects' timelines overlap); each sent 1 to
    ``max_copies`` times, the first two copies of a ``simultaneous`` share of them at
    the very same moment. Returns the events (per object, in version order) and the
    shuffled jobs that send every copy."""
    per_key = Counter(rng.randrange(keys) for _ in range(events))
    planned = []
    for k in range(keys):
        times = sorted(rng.sample(range(1, 100_000), per_key[k]))
        for version, offset in enumerate(times, start=1):
            planned.append(
                Planned(
                    dedup_key=f"evt_{k}_{version}",
                    key=f"obj_{k}",
                    version=version,
                    occurred_at=T0 + offset / 8,  # eighths: exact in binary and in JSON
                    copies=rng.randint(1, max_copies),
                )
            )
    jobs: list[Job] = []
    for event in planned:
        left = event.copies
        if left >= 2 and rng.random() < simultaneous:
            jobs.append((event, event))
            left -= 2
        jobs.extend((event,) for _ in range(left))
    rng.shuffle(jobs)
    return planned, jobs


def newest(events: Sequence[Planned]) -> dict[str, Planned]:
    """Each object's newest event."""
    found: dict[str, Planned] = {}
    for event in events:
        if event.key not in found or event.version > found[event.key].version:
            found[event.key] = event
    return found


# -- reading ---------------------------------------------------------------------------------


def query(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read straight from a store's database; ``%s`` placeholders."""
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return db.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            db.close()
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def status_counts(url: str) -> Counter[str]:
    """Deliveries per status, ``waiting`` apart from ``pending``, as ``counts()`` gives."""
    rows = query(
        url,
        "SELECT CASE WHEN status = 'pending' AND next_attempt_at IS NULL THEN 'waiting' "
        "ELSE status END, count(*) FROM deliveries GROUP BY 1",
    )
    return Counter({str(status): int(n) for status, n in rows})


def settled(counts: dict[str, int]) -> int:
    return sum(n for status, n in counts.items() if status not in UNFINISHED)


@dataclass(frozen=True)
class Call:
    """One handler call, as the handler journaled it."""

    n: int
    key: str
    version: int
    seq: int
    attempt: int
    owner: str
    applied: bool


@dataclass(frozen=True)
class StoredDelivery:
    id: int
    seq: int
    status: str
    last_error: str | None
    attempts: int
    lease_owner: str | None


def read_journal(path: Path) -> tuple[list[Call], dict[str, int]]:
    """Every call in the order it happened, and the state per key."""
    db = sqlite3.connect(path)
    try:
        calls = [
            Call(n, key, version, seq, attempt, owner, bool(applied))
            for n, key, version, seq, attempt, owner, applied in db.execute(
                "SELECT n, key, version, seq, attempt, owner, applied FROM calls ORDER BY n"
            )
        ]
        state = dict(db.execute("SELECT key, version FROM state").fetchall())
    finally:
        db.close()
    return calls, state


def read_store(url: str) -> tuple[dict[str, StoredDelivery], dict[tuple[int, int], str]]:
    """Each event's (only) delivery by dedup key, and every recorded attempt's outcome by
    (event seq, attempt number)."""
    deliveries = {
        dedup_key: StoredDelivery(delivery_id, seq, status, last_error, attempts, owner)
        for dedup_key, delivery_id, seq, status, last_error, attempts, owner in query(
            url,
            "SELECT e.dedup_key, d.id, e.seq, d.status, d.last_error, d.attempts, "
            "d.lease_owner FROM deliveries d JOIN events e ON e.seq = d.event_seq",
        )
    }
    outcomes = {
        (seq, number): outcome
        for seq, number, outcome in query(
            url,
            "SELECT d.event_seq, a.number, a.outcome FROM attempts a "
            "JOIN deliveries d ON d.id = a.delivery_id",
        )
    }
    return deliveries, outcomes


# -- checking --------------------------------------------------------------------------------


def check_order(
    policy: str,
    events: Sequence[Planned],
    deliveries: dict[str, StoredDelivery],
    outcomes: dict[tuple[int, int], str],
    calls: Sequence[Call],
    state: dict[str, int],
    *,
    window: float = 0.0,
) -> tuple[list[str], Counter[str]]:
    """Everything wrong with a run (empty when ordering held), and figures to report.

    For every policy: the final state is the newest version, and an event is applied a
    second time only when the attempt that applied it first was never settled (its lease
    was lost). ``serial`` and ``latest`` without a reorder ``window``: per object, calls
    never go back to an earlier event seq (arrival order). ``serial``: every event done
    and applied, in arrival order. ``latest`` and ``coalesce``: applied versions only
    rise, the newest event is done, every other event is done or skipped without running
    (``stale``, or for ``coalesce`` also ``superseded``), with a newer version applied.
    """
    problems: list[str] = []
    figures: Counter[str] = Counter()
    by_key: dict[str, list[Planned]] = defaultdict(list)
    for event in events:
        by_key[event.key].append(event)
    calls_of: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        calls_of[call.key].append(call)
    newest_of = newest(events)
    in_arrival_order = policy != "coalesce" and not window

    for key, planned in sorted(by_key.items()):
        last = newest_of[key]
        mine = calls_of[key]
        applied = [c for c in mine if c.applied]
        figures["applied"] += len(applied)
        figures["failed calls"] += len(mine) - len(applied)

        for before, after in itertools.pairwise(mine):
            if in_arrival_order and after.seq < before.seq:
                problems.append(
                    f"{key}: called for seq {after.seq} (v{after.version}) after seq "
                    f"{before.seq} (v{before.version})"
                )
        for before, after in itertools.pairwise(applied):
            if after.seq != before.seq:
                continue
            figures["reapplied"] += 1
            first = outcomes.get((before.seq, before.attempt))
            if first is not None:
                problems.append(
                    f"{key}: seq {after.seq} applied again (attempt {after.attempt}) after "
                    f"attempt {before.attempt} was settled {first}"
                )
            elif before.attempt >= after.attempt:
                problems.append(f"{key}: seq {after.seq} applied twice by attempt {after.attempt}")
        if state.get(key) != last.version:
            problems.append(f"{key}: final state v{state.get(key)}, newest is v{last.version}")

        applied_versions = {c.version for c in applied}
        if policy in ("latest", "coalesce"):
            skip_reasons = {"stale", "superseded"} if policy == "coalesce" else {"stale"}
            for before, after in itertools.pairwise(applied):
                if after.version < before.version:
                    problems.append(f"{key}: applied v{after.version} after v{before.version}")
            for event in planned:
                found = deliveries[event.dedup_key]
                if found.status == "done":
                    if event.version not in applied_versions:
                        problems.append(f"{key}: v{event.version} is done but was never applied")
                    continue
                reason = found.last_error
                if found.status != "skipped" or reason not in skip_reasons:
                    problems.append(f"{key}: v{event.version} ended {found.status} ({reason})")
                    continue
                figures[str(reason)] += 1
                if found.attempts or event.version in applied_versions:
                    problems.append(f"{key}: v{event.version} was skipped {reason}, yet it ran")
                if not any(v > event.version for v in applied_versions):
                    problems.append(
                        f"{key}: v{event.version} was skipped {reason}, yet nothing newer "
                        "was applied"
                    )
            if deliveries[last.dedup_key].status != "done":
                problems.append(f"{key}: its newest event v{last.version} is not done")
        else:
            arrival = sorted(deliveries[e.dedup_key].seq for e in planned)
            in_order = [
                c.seq for i, c in enumerate(applied) if i == 0 or applied[i - 1].seq != c.seq
            ]
            if in_order != arrival:
                problems.append(f"{key}: applied seqs {in_order}, arrival order is {arrival}")
            for event in planned:
                found = deliveries[event.dedup_key]
                if found.status != "done":
                    problems.append(
                        f"{key}: v{event.version} ended {found.status} ({found.last_error})"
                    )
    return problems, figures
