"""Polling for one simulated day: naive fixed-interval GETs vs conditional + adaptive hookwise.

A GitHub-style REST listing (50 issues, about 8 KB of JSON) is served by a real HTTP
server on loopback (asyncio + h11, in a thread of its own). The listing is a function of
a *simulated* clock shared with the pollers, so a whole day runs in seconds: each issue
change has a time of day, and a request at simulated time ``t`` sees every change made
at or before ``t``. The server sends a strong ``ETag`` and a ``Last-Modified``, answers
``304`` to a matching ``If-None-Match`` (or, without one, ``If-Modified-Since``) and
sends ``X-RateLimit-Limit/-Remaining/-Reset`` per client and hourly window, where, as on
GitHub, a ``304`` does not count. It counts every response's bytes exactly as written to
the socket: status line, headers and body.

Three pollers read the same listing over the same simulated day, interleaved in one
run (the one whose next request is due first goes next):

- ``naive``: ``GET`` every 60 s, no validators: the full body every time;
- ``conditional``: the same every 60 s with ``If-None-Match`` (what validators alone buy);
- ``hookwise``: the real :class:`~hookwise.poller.runner.Poller` (a SQLite store in a
  temporary directory, an ``httpx`` client to the loopback server), with
  ``min_every = 60s`` and ``max_every = 5m``; each run happens at the ``next_due_at``
  its stored state names, on the simulated clock.

A change's detection latency runs from the change to the first request that reported
it (for hookwise: a run whose ``changes`` hold the issue with that ``updated_at`` or a
later one). Two scenarios: ``idle`` (24 changes at seeded random times of the day) and
``busy`` (300 changes in working hours, 09:00-18:00). Changes stop ``max_every`` before
the day ends, so every poller sees every change within the day.

As the reference, push: a real hookwise receiver (uvicorn, SQLite with ``durability =
"full"``) and a worker in one process take signed Standard Webhooks events one at a
time; the figures are POST -> ``200`` (the event committed) and POST -> handler called.

    python bench/poll_day.py                        # both scenarios + 200 webhooks
    python bench/poll_day.py --json bench/results/poll-day-latest.json
    python bench/poll_day.py --scenarios idle --max-every 10m --webhooks 0

Prints the tables and the ratios; ``--json PATH`` also writes the results.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import calendar
import contextlib
import json
import operator
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx
import uvicorn

from hookwise import Event, Hookwise
from hookwise.clock import FrozenClock
from hookwise.config import Settings, SourceSettings, StoreSettings
from hookwise.durations import parse_duration
from hookwise.handlers import HandlerRegistry, HandlerSpec
from hookwise.poller.runner import Poller
from hookwise.poller.settings import parse_poll
from hookwise.store import Store, open_store
from hookwise.testing import signed_request

EPOCH = 1_796_083_200
"""Simulated midnight, 2026-12-01T00:00:00Z: the day runs from here."""

PATH = "/repos/acme/widgets/issues"
QUERY = "state=all&per_page=50"
CLIENT_HEADER = "X-Bench-Client"
"""Which poller sent a request (each one is its own API token, with its own quota)."""

RATE_LIMIT = 5000
RATE_WINDOW = 3600
WORKING_HOURS = (9 * 3600, 18 * 3600)
WEBHOOK_SECRET = "whsec_cG9sbC1kYXktYmVuY2htYXJrLXNlY3JldA=="

_LOGINS = ("ada", "brian", "chen", "dana", "emeka", "farah", "goran", "hana", "ivan", "jo")
_WORDS = (
    "crash",
    "timeout",
    "retry",
    "webhook",
    "signature",
    "ordering",
    "dashboard",
    "migration",
    "latency",
    "docs",
    "config",
    "backoff",
)
_LABELS = ("bug", "enhancement", "docs", "good first issue", "needs triage", "p1")
_REASONS = {200: b"OK", 304: b"Not Modified", 404: b"Not Found", 405: b"Method Not Allowed"}


# -- the day ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One edit of one issue at ``at`` seconds after simulated midnight."""

    at: int
    number: int
    kind: str  # "comment", "label" or "state"


@dataclass(frozen=True)
class Scenario:
    """A day (or a shorter stretch) of changes to the listing."""

    name: str
    seconds: int
    changes: tuple[Change, ...]
    items: int = 50
    seed: int = 1

    def __post_init__(self) -> None:
        times = [c.at for c in self.changes]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("changes must have distinct times, in order")
        if times and not 0 < times[0] <= times[-1] < self.seconds:
            raise ValueError(f"changes must happen within (0, {self.seconds}) seconds")
        if any(not 1 <= c.number <= self.items for c in self.changes):
            raise ValueError(f"changes must name issues 1..{self.items}")


def make_scenario(
    name: str,
    count: int,
    *,
    seed: int,
    seconds: int = 86_400,
    items: int = 50,
    window: tuple[int, int] | None = None,
    quiet_tail: int = 300,
) -> Scenario:
    """``count`` changes at distinct random whole seconds of ``window`` (default: the whole
    stretch but its last ``quiet_tail`` seconds), each to a random issue."""
    rng = random.Random(f"{seed}:{name}")
    low, high = window if window is not None else (1, seconds - quiet_tail)
    high = min(high, seconds - quiet_tail)
    if high - low < count:
        raise ValueError(f"{count} changes don't fit in {high - low} seconds")
    times = sorted(rng.sample(range(low, high), count))
    kinds = ("comment", "comment", "comment", "label", "state")
    changes = tuple(Change(at, rng.randint(1, items), rng.choice(kinds)) for at in times)
    return Scenario(name=name, seconds=seconds, changes=changes, items=items, seed=seed)


def iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def from_iso(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


class Resource:
    """The listing at any simulated moment: the first issues plus every change made so far."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._times = [EPOCH + c.at for c in scenario.changes]
        rng = random.Random(f"{scenario.seed}:issues")
        self._initial: list[dict[str, Any]] = []
        for number in range(scenario.items, 0, -1):  # newest first, like GitHub's default
            created = EPOCH - 86_400 * rng.randint(2, 90) - rng.randint(0, 86_399)
            updated = min(created + rng.randint(0, 86_400 * 3), EPOCH - 3600)
            words = rng.sample(_WORDS, 3)
            self._initial.append(
                {
                    "id": 2_400_000 + number * 7,
                    "number": number,
                    "title": f"{words[0].capitalize()} {words[1]} {words[2]}",
                    "state": "open" if rng.random() < 0.8 else "closed",
                    "user": rng.choice(_LOGINS),
                    "labels": sorted(rng.sample(_LABELS, rng.randint(0, 2))),
                    "comments": rng.randint(0, 12),
                    "updated_at": iso(updated),
                }
            )
        self._last_initial_update = max(from_iso(i["updated_at"]) for i in self._initial)
        self._cache: dict[int, tuple[bytes, str, float]] = {}

    def applied(self, now: float) -> int:
        """How many changes were made at or before ``now`` (UNIX seconds)."""
        return bisect.bisect_right(self._times, now)

    def version(self, applied: int) -> tuple[bytes, str, float]:
        """The body, strong ETag and last-modified time once ``applied`` changes are made."""
        found = self._cache.get(applied)
        if found is None:
            issues = {i["number"]: dict(i) for i in self._initial}
            for change in self.scenario.changes[:applied]:
                issue = issues[change.number]
                if change.kind == "comment":
                    issue["comments"] += 1
                elif change.kind == "label":
                    labels = set(issue["labels"])
                    labels ^= {_LABELS[change.at % len(_LABELS)]}
                    issue["labels"] = sorted(labels)
                else:
                    issue["state"] = "closed" if issue["state"] == "open" else "open"
                issue["updated_at"] = iso(EPOCH + change.at)
            listing = [issues[i["number"]] for i in self._initial]
            body = json.dumps(listing, separators=(",", ":")).encode()
            etag = f'"{uuid.uuid5(uuid.NAMESPACE_URL, body.decode()).hex}"'
            modified = self._times[applied - 1] if applied else self._last_initial_update
            found = (body, etag, modified)
            self._cache[applied] = found
        return found


# -- the API server ---------------------------------------------------------------------------


@dataclass
class Served:
    """One response as the server wrote it."""

    client: str
    at: float
    status: int
    bytes: int
    """Status line, headers and body, as written to the socket."""
    body: int


@dataclass
class ClientTally:
    requests: int = 0
    not_modified: int = 0
    rate_limited: int = 0
    bytes: int = 0


def _tags(header: str) -> list[str]:
    """The opaque tags of an ``If-None-Match`` list, compared weakly (RFC 9110 §13.1.2)."""
    tags = []
    for part in header.split(","):
        part = part.strip()
        tags.append(part[2:] if part.startswith("W/") else part)
    return tags


class ListingServer:
    """The listing on 127.0.0.1 over HTTP/1.1 (asyncio + h11) in a thread of its own.

    The data and the ``Date`` are read from ``clock`` at each request. ``tally`` holds,
    per client (the ``X-Bench-Client`` header), the requests, the ``304`` answers, the
    requests counted against the rate limit (every one but a ``304``) and the bytes
    written; ``log`` every response.
    """

    def __init__(self, resource: Resource, clock: FrozenClock) -> None:
        self.resource = resource
        self.clock = clock
        self.tally: dict[str, ClientTally] = {}
        self.log: list[Served] = []
        self.port = 0
        self._used: dict[tuple[str, int], int] = {}
        self._thread = threading.Thread(target=self._run, name="listing-server", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}?{QUERY}"

    def __enter__(self) -> ListingServer:
        self._thread.start()
        if not self._ready.wait(10) or self._failure is not None:
            raise RuntimeError(f"the listing server did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65_536))
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.EndOfMessage) and request is not None:
                    writer.write(self._respond(conn, request))
                    await writer.drain()
                    if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                        break
                    conn.start_next_cycle()
                    request = None
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    break
        except (h11.ProtocolError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _respond(self, conn: h11.Connection, request: h11.Request) -> bytes:
        headers = {name.decode().lower(): value.decode() for name, value in request.headers}
        client = headers.get(CLIENT_HEADER.lower(), "anonymous")
        now = self.clock.now()
        status, out, body = self._answer(request, headers, now)
        window = int(now // RATE_WINDOW) * RATE_WINDOW
        used = self._used.get((client, window), 0) + (status != 304)
        self._used[(client, window)] = used
        out += [
            ("X-RateLimit-Limit", str(RATE_LIMIT)),
            ("X-RateLimit-Remaining", str(max(RATE_LIMIT - used, 0))),
            ("X-RateLimit-Reset", str(window + RATE_WINDOW)),
            ("X-RateLimit-Used", str(used)),
            ("X-RateLimit-Resource", "core"),
        ]
        wire = conn.send(h11.Response(status_code=status, headers=out, reason=_REASONS[status]))
        assert wire is not None
        if body:
            wire += conn.send(h11.Data(data=body)) or b""
        wire += conn.send(h11.EndOfMessage()) or b""
        tally = self.tally.setdefault(client, ClientTally())
        tally.requests += 1
        tally.not_modified += status == 304
        tally.rate_limited += status != 304
        tally.bytes += len(wire)
        self.log.append(Served(client, now, status, len(wire), len(body)))
        return wire

    def _answer(
        self, request: h11.Request, headers: dict[str, str], now: float
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        common = [("Date", formatdate(now, usegmt=True)), ("Server", "bench-api")]
        if request.method != b"GET":
            return 405, [*common, ("Allow", "GET"), ("Content-Length", "0")], b""
        if urlsplit(request.target.decode()).path != PATH:
            missing = b'{"message":"Not Found"}'
            return 404, [*common, ("Content-Length", str(len(missing)))], missing
        body, etag, modified = self.resource.version(self.resource.applied(now))
        validators = [
            ("Cache-Control", "private, max-age=60, s-maxage=60"),
            ("Vary", "Accept, Authorization, Cookie"),
            ("ETag", etag),
            ("Last-Modified", formatdate(modified, usegmt=True)),
        ]
        match = headers.get("if-none-match")
        since = headers.get("if-modified-since")
        if match is not None:
            if "*" in _tags(match) or etag in _tags(match):
                return 304, [*common, *validators], b""
        elif since is not None:
            try:
                unchanged = int(modified) <= parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                unchanged = False
            if unchanged:
                return 304, [*common, *validators], b""
        typed = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        return 200, [*common, *typed, *validators], body


# -- the pollers ------------------------------------------------------------------------------

Seen = list[tuple[int, str]]
"""Issues a request reported as changed: (number, updated_at)."""


class NaivePoller:
    """``GET`` every ``every`` seconds; with ``conditional``, ``If-None-Match`` the last ETag."""

    def __init__(
        self, name: str, url: str, client: httpx.AsyncClient, *, every: float, conditional: bool
    ) -> None:
        self.name = name
        self.url = url
        self.client = client
        self.every = every
        self.conditional = conditional
        self.etag: str | None = None
        self.known: dict[int, str] = {}

    async def poll(self, now: float) -> tuple[Seen, float]:
        headers = {CLIENT_HEADER: self.name, "Accept": "application/vnd.github+json"}
        if self.conditional and self.etag is not None:
            headers["If-None-Match"] = self.etag
        response = await self.client.get(self.url, headers=headers)
        seen: Seen = []
        if response.status_code == 200:
            self.etag = response.headers.get("etag")
            for issue in response.json():
                if self.known.get(issue["number"]) != issue["updated_at"]:
                    seen.append((issue["number"], issue["updated_at"]))
                    self.known[issue["number"]] = issue["updated_at"]
        elif response.status_code != 304:
            raise RuntimeError(f"{self.name}: the listing answered HTTP {response.status_code}")
        return seen, now + self.every


@dataclass
class HookwiseTrace:
    """What the hookwise poller did, run by run, from its PollRun and stored state."""

    runs: int = 0
    requests: int = 0
    not_modified: int = 0
    body_bytes: int = 0
    events: int = 0
    errors: int = 0
    waited: float = 0.0
    bounds: list[tuple[float, float]] = field(default_factory=list)
    """(time of a run, the ``latency_bound`` its stored state published)."""
    stats: dict[str, Any] = field(default_factory=dict)


class HookwisePoller:
    """The real :class:`Poller` on the simulated clock; runs at its stored ``next_due_at``."""

    name = "hookwise"

    def __init__(self, poller: Poller, store: Store) -> None:
        self.poller = poller
        self.store = store
        self.trace = HookwiseTrace()

    async def poll(self, now: float) -> tuple[Seen, float]:
        run = await self.poller.run_once("issues")
        state = await self.store.get_poll_state("issues")
        if state is None or state.next_due_at is None:
            raise RuntimeError("the poller stored no state with a next due time")
        trace = self.trace
        trace.runs += 1
        trace.requests += run.requests
        trace.not_modified += run.not_modified
        trace.body_bytes += run.bytes
        trace.events += len(run.changes)
        trace.errors += run.status == "error"
        trace.waited += run.waited
        trace.bounds.append((now, float(state.stats["latency_bound"] or 0.0)))
        trace.stats = dict(state.stats)
        if run.status == "error":
            print(f"  hookwise run at {iso(now)} failed: {run.error}", file=sys.stderr)
        seen: Seen = []
        for change in run.changes:
            issue: dict[str, Any] = change.item if isinstance(change.item, dict) else {}
            if change.kind != "deleted":
                seen.append((int(issue["number"]), str(issue["updated_at"])))
        return seen, state.next_due_at


# -- one scenario -----------------------------------------------------------------------------


@dataclass
class Options:
    min_every: float = 60.0
    max_every: float = 300.0
    naive_every: float = 60.0


@dataclass
class PollerResult:
    name: str
    label: str
    requests: int
    not_modified: int
    rate_limited: int
    bytes: int
    changes_detected: int
    changes: int
    latencies: list[float]
    p50_s: float
    p95_s: float
    max_s: float
    mean_s: float


@dataclass
class ScenarioResult:
    name: str
    seconds: int
    changes: int
    items: int
    body_bytes: int
    """The listing's JSON body at the start of the day."""
    full_response_bytes: int
    """A ``200`` as written, headers included (the first response of the day)."""
    not_modified_bytes: int
    """A ``304`` as written (the smallest one of the day)."""
    pollers: dict[str, PollerResult]
    ratios: dict[str, float]
    hookwise: dict[str, Any]
    log: list[Served] = field(repr=False)
    detected_at: dict[str, list[float | None]] = field(repr=False)
    wall_seconds: float = 0.0


class Detections:
    """Which change each poller saw when: issue ``n`` reported with ``updated_at`` ``u``
    covers every change to ``n`` made at or before ``u`` not covered yet."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.by_issue: dict[int, list[int]] = {}
        for index, change in enumerate(scenario.changes):
            self.by_issue.setdefault(change.number, []).append(index)
        self.detected_at: dict[str, list[float | None]] = {}

    def observe(self, poller: str, seen: Seen, now: float) -> None:
        found = self.detected_at.setdefault(poller, [None] * len(self.scenario.changes))
        for number, updated_at in seen:
            upto = from_iso(updated_at)
            for index in self.by_issue.get(number, []):
                change = self.scenario.changes[index]
                if found[index] is None and EPOCH + change.at <= upto:
                    found[index] = now

    def latencies(self, poller: str) -> list[float]:
        found = self.detected_at.get(poller, [])
        return [
            at - (EPOCH + change.at)
            for change, at in zip(self.scenario.changes, found, strict=True)
            if at is not None
        ]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


LABELS = {
    "naive": "naive: GET every {naive}",
    "conditional": "naive + conditional (ETag) every {naive}",
    "hookwise": "hookwise: conditional + adaptive {low}..{high}",
}


def _noop(event: Event) -> None:
    """The poll's handler: events go to the inbox with a delivery, as in real use."""


async def run_scenario(scenario: Scenario, options: Options, work: Path) -> ScenarioResult:
    """Serve ``scenario`` on loopback and run the three pollers through it side by side."""
    began = time.perf_counter()
    clock = FrozenClock(EPOCH)
    resource = Resource(scenario)
    detections = Detections(scenario)
    end = EPOCH + scenario.seconds
    rng = random.Random(f"{scenario.seed}:jitter")

    async def simulated_sleep(seconds: float) -> None:
        clock.advance(seconds)

    with ListingServer(resource, clock) as server:
        settings = parse_poll(
            "issues",
            {
                "url": server.url,
                "min_every": options.min_every,
                "max_every": options.max_every,
                "version": "updated_at",
                "headers": {CLIENT_HEADER: "hookwise", "Accept": "application/vnd.github+json"},
            },
        )
        handlers = HandlerRegistry()
        handlers.add(HandlerSpec(name="noop", func=_noop, source="issues"))
        database = work / f"poll-{scenario.name}-{uuid.uuid4().hex[:8]}.db"
        async with (
            httpx.AsyncClient() as client,
            open_store(StoreSettings(url=f"sqlite:///{database}")) as store,
        ):
            poller = Poller(
                store,
                handlers,
                [settings],
                client=client,
                clock=clock,
                rand=rng.random,
                sleep=simulated_sleep,
            )
            async with poller:
                hookwise = HookwisePoller(poller, store)
                agents: list[NaivePoller | HookwisePoller] = [
                    NaivePoller(
                        "naive", server.url, client, every=options.naive_every, conditional=False
                    ),
                    NaivePoller(
                        "conditional",
                        server.url,
                        client,
                        every=options.naive_every,
                        conditional=True,
                    ),
                    hookwise,
                ]
                due = [float(EPOCH)] * len(agents)
                while True:
                    turn = min(range(len(agents)), key=lambda i: (due[i], i))
                    if due[turn] >= end:
                        break
                    clock.set(due[turn])
                    seen, next_due = await agents[turn].poll(due[turn])
                    detections.observe(agents[turn].name, seen, due[turn])
                    if next_due <= due[turn]:
                        raise RuntimeError(f"{agents[turn].name} asked to run again at once")
                    due[turn] = next_due
    trace = hookwise.trace

    pollers: dict[str, PollerResult] = {}
    labels = {
        key: text.format(
            naive=_seconds(options.naive_every),
            low=_seconds(options.min_every),
            high=_seconds(options.max_every),
        )
        for key, text in LABELS.items()
    }
    for agent in agents:
        tally = server.tally.get(agent.name, ClientTally())
        latencies = detections.latencies(agent.name)
        pollers[agent.name] = PollerResult(
            name=agent.name,
            label=labels[agent.name],
            requests=tally.requests,
            not_modified=tally.not_modified,
            rate_limited=tally.rate_limited,
            bytes=tally.bytes,
            changes_detected=len(latencies),
            changes=len(scenario.changes),
            latencies=latencies,
            p50_s=percentile(latencies, 50),
            p95_s=percentile(latencies, 95),
            max_s=max(latencies, default=float("nan")),
            mean_s=statistics.fmean(latencies) if latencies else float("nan"),
        )

    naive, conditional, ours = pollers["naive"], pollers["conditional"], pollers["hookwise"]
    ratios = {
        "hookwise_vs_naive_bytes": ours.bytes / naive.bytes,
        "hookwise_vs_naive_requests": ours.requests / naive.requests,
        "hookwise_vs_naive_rate_limited": ours.rate_limited / naive.rate_limited,
        "conditional_vs_naive_bytes": conditional.bytes / naive.bytes,
        "conditional_vs_naive_requests": conditional.requests / naive.requests,
        "conditional_vs_naive_rate_limited": conditional.rate_limited / naive.rate_limited,
        "hookwise_vs_conditional_bytes": ours.bytes / conditional.bytes,
        "hookwise_vs_conditional_requests": ours.requests / conditional.requests,
    }

    # Each change must be reported by the first run after it, and so wait no longer than
    # the latency bound the run before it published (its interval): check it change by change.
    runs = [at for at, _ in trace.bounds]
    within_bound = True
    worst_margin = float("inf")
    for change, seen_at in zip(
        scenario.changes, detections.detected_at.get("hookwise", []), strict=True
    ):
        if seen_at is None:
            within_bound = False
            continue
        position = runs.index(seen_at)
        previous_at, bound = trace.bounds[position - 1] if position else (EPOCH, 0.0)
        happened = EPOCH + change.at
        if not (previous_at < happened and seen_at - happened <= bound):
            within_bound = False
        worst_margin = min(worst_margin, bound - (seen_at - happened))
    hookwise_info: dict[str, Any] = {
        "min_every_s": options.min_every,
        "max_every_s": options.max_every,
        "runs": trace.runs,
        "events_emitted": trace.events,
        "errors": trace.errors,
        "rate_limit_wait_s": trace.waited,
        "poller_counted_requests": trace.requests,
        "poller_counted_not_modified": trace.not_modified,
        "poller_counted_body_bytes": trace.body_bytes,
        "largest_published_bound_s": max((b for _, b in trace.bounds), default=0.0),
        "max_latency_within_max_every": ours.max_s <= options.max_every,
        "every_change_within_published_bound": within_bound,
        "smallest_margin_to_bound_s": worst_margin if worst_margin != float("inf") else None,
        "stored_stats": trace.stats,
    }
    first_200 = next(s for s in server.log if s.status == 200)
    smallest_304 = min((s.bytes for s in server.log if s.status == 304), default=0)
    return ScenarioResult(
        name=scenario.name,
        seconds=scenario.seconds,
        changes=len(scenario.changes),
        items=scenario.items,
        body_bytes=len(resource.version(0)[0]),
        full_response_bytes=first_200.bytes,
        not_modified_bytes=smallest_304,
        pollers=pollers,
        ratios=ratios,
        hookwise=hookwise_info,
        log=server.log,
        detected_at=detections.detected_at,
        wall_seconds=time.perf_counter() - began,
    )


def _seconds(value: float) -> str:
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:g}s"


# -- the push reference -----------------------------------------------------------------------


@dataclass
class WebhookResult:
    events: int
    ack_p50_ms: float
    ack_p95_ms: float
    handler_p50_ms: float
    handler_p95_ms: float
    handler_max_ms: float


class _Receiver:
    """``hookwise serve`` in miniature, in a thread: the receiver on uvicorn and one worker
    sharing a SQLite store (``durability = "full"``), on one event loop."""

    def __init__(self, hw: Hookwise) -> None:
        self.hw = hw
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="webhook-receiver", daemon=True)
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> _Receiver:
        self._thread.start()
        if not self._started.wait(20) or self._failure is not None:
            raise RuntimeError(f"the webhook receiver did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(20)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._failure = exc
            self._started.set()

    async def _serve(self) -> None:
        stop = asyncio.Event()
        async with self.hw.open_store() as store:
            config = uvicorn.Config(
                self.hw.asgi(store=store),
                host="127.0.0.1",
                port=0,
                lifespan="off",
                access_log=False,
                log_level="warning",
                log_config=None,
            )
            self._server = uvicorn.Server(config)
            worker = asyncio.create_task(self.hw.worker(store).run(stop))
            serving = asyncio.create_task(self._server.serve())
            while not self._server.started:
                if serving.done():
                    await serving
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
            self.port = self._server.servers[0].sockets[0].getsockname()[1]
            self._started.set()
            try:
                await serving
            finally:
                stop.set()
                await worker


def measure_webhooks(count: int, work: Path, *, warmup: int = 20) -> WebhookResult:
    """Send ``count`` signed events one at a time to a real receiver on loopback; time
    POST -> ``200`` (committed) and POST -> handler called."""
    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{work / f'push-{uuid.uuid4().hex[:8]}.db'}"),
        sources={
            "bench": SourceSettings(name="bench", provider="standard", secrets=(WEBHOOK_SECRET,))
        },
    )
    hw = Hookwise(settings=settings)
    called: dict[str, float] = {}
    arrived = threading.Condition()

    @hw.handler("bench", "*")
    async def record(event: Event) -> None:
        at = time.perf_counter()
        with arrived:
            called[event.id] = at
            arrived.notify_all()

    acks: list[float] = []
    handled: list[float] = []
    with _Receiver(hw) as receiver, httpx.Client(timeout=10) as client:
        base = f"http://127.0.0.1:{receiver.port}"
        for number in range(warmup + count):
            delivery = f"msg_{uuid.uuid4().hex}"
            body = {"type": "issue.updated", "data": {"number": number}}
            request = signed_request(hw, "bench", body, delivery_id=delivery, now=time.time())
            sent = time.perf_counter()
            response = client.post(
                base + request.path, content=request.body, headers=request.headers
            )
            acked = time.perf_counter()
            if response.status_code != 200:
                raise RuntimeError(f"the receiver answered {response.status_code}: {response.text}")
            with arrived:
                if not arrived.wait_for(partial(operator.contains, called, delivery), 10):
                    raise RuntimeError(f"the handler was not called for {delivery} within 10 s")
                ran = called[delivery]
            if number >= warmup:
                acks.append(acked - sent)
                handled.append(ran - sent)
    return WebhookResult(
        events=len(acks),
        ack_p50_ms=percentile(acks, 50) * 1000,
        ack_p95_ms=percentile(acks, 95) * 1000,
        handler_p50_ms=percentile(handled, 50) * 1000,
        handler_p95_ms=percentile(handled, 95) * 1000,
        handler_max_ms=max(handled) * 1000,
    )


# -- the report -------------------------------------------------------------------------------


def _size(count: float) -> str:
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"


def print_scenario(result: ScenarioResult) -> None:
    hours = result.seconds / 3600
    print(
        f"\n== {result.name}: {result.changes} changes in {hours:g} h; {result.items} issues, "
        f"body {_size(result.body_bytes)}, a 200 is {_size(result.full_response_bytes)} "
        f"and a 304 {result.not_modified_bytes} B on the wire"
    )
    head = (
        f"{'poller':<46} {'requests':>8} {'304s':>6} {'counted':>8} {'bytes':>9} "
        f"{'seen':>7} {'p50 s':>6} {'p95 s':>6} {'max s':>6}"
    )
    print(head)
    for fig in result.pollers.values():
        print(
            f"{fig.label:<46} {fig.requests:8d} {fig.not_modified:6d} {fig.rate_limited:8d} "
            f"{_size(fig.bytes):>9} {fig.changes_detected:3d}/{fig.changes:<3d} "
            f"{fig.p50_s:6.0f} {fig.p95_s:6.0f} {fig.max_s:6.0f}"
        )
    r = result.ratios
    print(
        f"hookwise / naive: bytes {r['hookwise_vs_naive_bytes']:.4f} "
        f"({(1 - r['hookwise_vs_naive_bytes']) * 100:.1f}% fewer), requests "
        f"{r['hookwise_vs_naive_requests']:.3f}, rate-limited "
        f"{r['hookwise_vs_naive_rate_limited']:.4f}"
    )
    print(
        f"conditional / naive: bytes {r['conditional_vs_naive_bytes']:.4f}, requests "
        f"{r['conditional_vs_naive_requests']:.3f}, rate-limited "
        f"{r['conditional_vs_naive_rate_limited']:.4f}"
    )
    h = result.hookwise
    print(
        f"hookwise max latency {result.pollers['hookwise'].max_s:.1f} s <= max_every "
        f"{h['max_every_s']:g} s: {'yes' if h['max_latency_within_max_every'] else 'NO'}; "
        f"every change within the bound published by the run before it: "
        f"{'yes' if h['every_change_within_published_bound'] else 'NO'}; "
        f"{h['runs']} runs, {h['events_emitted']} events, {h['errors']} errors"
    )


def to_json(result: ScenarioResult) -> dict[str, Any]:
    data = asdict(result)
    data.pop("log")
    data.pop("detected_at")
    for fig in data["pollers"].values():
        fig["latencies"] = [round(x, 3) for x in fig["latencies"]]
    return data


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="idle,busy", help="comma-separated: idle,busy")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours per scenario")
    parser.add_argument("--items", type=int, default=50, help="issues in the listing")
    parser.add_argument("--idle-changes", type=int, default=24)
    parser.add_argument("--busy-changes", type=int, default=300)
    parser.add_argument("--min-every", default="60s", help="hookwise's min_every")
    parser.add_argument("--max-every", default="5m", help="hookwise's max_every")
    parser.add_argument("--naive-every", default="60s", help="the naive pollers' interval")
    parser.add_argument("--webhooks", type=int, default=200, help="push events (0: skip)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    args = parser.parse_args(argv)
    try:
        options = Options(
            min_every=parse_duration(args.min_every),
            max_every=parse_duration(args.max_every),
            naive_every=parse_duration(args.naive_every),
        )
    except ValueError as exc:
        parser.error(f"{exc}; write durations like 60s, 5m or 300")
    if not 0 < options.min_every <= options.max_every:
        parser.error("need 0 < --min-every <= --max-every")
    if options.naive_every <= 0:
        parser.error("--naive-every must be longer than zero")
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(names) - {"idle", "busy"}
    if unknown or not names:
        parser.error(
            f"unknown scenario(s) {', '.join(sorted(unknown)) or '(none)'}: use idle, busy"
        )
    seconds = round(args.hours * 3600)
    tail = round(max(options.max_every, options.naive_every))
    scenarios = []
    for name in names:
        if name == "idle":
            scenarios.append(
                make_scenario(
                    "idle",
                    args.idle_changes,
                    seed=args.seed,
                    seconds=seconds,
                    items=args.items,
                    quiet_tail=tail,
                )
            )
        else:
            scenarios.append(
                make_scenario(
                    "busy",
                    args.busy_changes,
                    seed=args.seed,
                    seconds=seconds,
                    items=args.items,
                    window=WORKING_HOURS,
                    quiet_tail=tail,
                )
            )

    results = []
    webhooks = None
    with tempfile.TemporaryDirectory(prefix="hookwise-poll-day-") as directory:
        work = Path(directory)
        for scenario in scenarios:
            result = asyncio.run(run_scenario(scenario, options, work))
            results.append(result)
            print_scenario(result)
            print(f"(simulated {scenario.seconds / 3600:g} h in {result.wall_seconds:.1f} s)")
        if args.webhooks > 0:
            webhooks = measure_webhooks(args.webhooks, work)
            print(
                f"\n== push reference: {webhooks.events} signed webhooks on loopback, one at a "
                f"time\nPOST -> 200 (committed): p50 {webhooks.ack_p50_ms:.1f} ms, p95 "
                f"{webhooks.ack_p95_ms:.1f} ms; POST -> handler called: p50 "
                f"{webhooks.handler_p50_ms:.1f} ms, p95 {webhooks.handler_p95_ms:.1f} ms "
                "(plus the provider's own delay before it sends)"
            )

    if args.json:
        payload: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "args": vars(args),
            "machine": {
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "loadavg": [round(x, 2) for x in os.getloadavg()],
            },
            "scenarios": {r.name: to_json(r) for r in results},
            "webhooks": asdict(webhooks) if webhooks is not None else None,
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
