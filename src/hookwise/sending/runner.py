"""Sending a plan over HTTP: a limit on requests in flight, a pause between sends, and
what came back for each request (status, answer, latency, or the error)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .plan import Plan, PlannedRequest

if TYPE_CHECKING:
    import httpx

    from ..providers import SignedRequest

__all__ = ["RESPONSE_CHARS", "USER_AGENT", "Outcome", "run_plan"]

USER_AGENT = "hookwise-send"
RESPONSE_CHARS = 2000
"""How much of each answer's body is kept."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one request of the plan."""

    request: PlannedRequest
    started: float
    """Seconds from the start of the run to the start of this request."""
    status: int | None = None
    """The HTTP status, ``None`` when no answer came (see :attr:`error`)."""
    latency: float | None = None
    """Seconds from sending the request to reading the whole answer."""
    answer: str | None = None
    """The ``status`` field of a JSON answer (hookwise says ``accepted`` or ``duplicate``)."""
    response: str = ""
    """The answer's body as text, cut to :data:`RESPONSE_CHARS`."""
    error: str | None = None
    """Why no answer came: ``connection refused``, ``timeout``, ``connection error``..."""
    error_detail: str | None = None
    event_id: str | None = None
    """The id the provider's rules find in the request (what hookwise dedups on);
    ``None`` when it depends on the time of receipt (Dropbox)."""

    @property
    def as_expected(self) -> bool:
        """Whether a correct receiver would have answered so: ``2xx`` for a good event,
        ``4xx`` for a forged or stale one."""
        if self.status is None:
            return False
        if self.request.event.expected == "2xx":
            return 200 <= self.status < 300
        return 400 <= self.status < 500


Sign = Callable[[PlannedRequest, float], "SignedRequest"]
"""Makes the request for one planned request at a time (UNIX seconds)."""


async def run_plan(
    plan: Plan,
    url: str,
    *,
    sign: Sign,
    client: httpx.AsyncClient,
    delay: float = 0.0,
    headers: Mapping[str, str] | None = None,
    describe: Callable[[SignedRequest], str | None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[Outcome]:
    """Send every request of ``plan`` to ``url`` and return the outcomes in plan order.

    >>> async with httpx.AsyncClient(timeout=10) as client:
    ...     outcomes = await run_plan(plan, url, sign=sign, client=client, delay=0.2)

    At most ``plan.chaos.concurrency`` requests are in flight; the requests of one step
    start together (a step never waits for more slots than it has requests). Between
    the starts of two steps there is at least ``delay`` seconds. ``headers`` are added
    to every request (after the signed ones: they may override them). ``describe``
    names the event id of a signed request. Failed connections and timeouts are
    outcomes, not exceptions. An exception raised by ``on_outcome`` (a closed pipe
    while printing) stops the run: nothing more is sent, the requests in flight are
    cancelled, and it is raised here.
    """
    import httpx

    slots = asyncio.Semaphore(plan.chaos.concurrency)
    begun = monotonic()
    outcomes: dict[int, Outcome] = {}
    stopped: list[BaseException] = []

    def tell(outcome: Outcome) -> None:
        outcomes[outcome.request.number] = outcome
        if on_outcome is None or stopped:
            return
        try:
            on_outcome(outcome)
        except BaseException as exc:
            # Raised from run_plan below, not lost inside one request's task.
            stopped.append(exc)

    async def one(request: PlannedRequest, signed: SignedRequest, started: float) -> None:
        target = url + (("&" if "?" in url else "?") + signed.query if signed.query else "")
        sent = httpx.Headers({"content-type": "application/json", "user-agent": USER_AGENT})
        for name, value in signed.headers.items():
            sent[name] = value
        for name, value in (headers or {}).items():
            sent[name] = value
        event_id = describe(signed) if describe is not None else None
        at = monotonic()
        try:
            response = await client.request(
                signed.method, target, content=signed.body, headers=sent
            )
            outcome = Outcome(
                request,
                started,
                status=response.status_code,
                latency=monotonic() - at,
                answer=_answer(response.content),
                response=response.text[:RESPONSE_CHARS],
                event_id=event_id,
            )
        except httpx.HTTPError as exc:
            outcome = Outcome(
                request,
                started,
                error=_error_kind(exc),
                error_detail=_detail(exc, client),
                event_id=event_id,
            )
        finally:
            slots.release()
        tell(outcome)

    tasks: list[asyncio.Task[None]] = []
    steps = plan.steps
    try:
        for position, step in enumerate(steps):
            for _ in step:
                await slots.acquire()
            if stopped:
                break
            started = monotonic() - begun
            for request in step:
                try:
                    signed = sign(request, clock())
                except ValueError as exc:
                    slots.release()
                    tell(Outcome(request, started, error="can't sign", error_detail=str(exc)))
                    continue
                tasks.append(asyncio.create_task(one(request, signed, started)))
            if stopped:
                break
            if delay > 0 and position + 1 < len(steps):
                await sleep(delay)
        if not stopped:
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if stopped:
        raise stopped[0]
    return [outcomes[request.number] for request in plan.requests]


def _answer(content: bytes) -> str | None:
    if not content.lstrip().startswith(b"{"):
        return None
    try:
        document = json.loads(content)
    except ValueError:
        return None
    status = document.get("status") if isinstance(document, dict) else None
    return status if isinstance(status, str) else None


def _detail(exc: Exception, client: httpx.AsyncClient) -> str:
    """What went wrong, in words: how long a timeout waited, else what the socket said."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        limits = client.timeout
        what, waited = "no answer", limits.read
        if isinstance(exc, httpx.ConnectTimeout):
            what, waited = "no connection", limits.connect
        elif isinstance(exc, httpx.WriteTimeout):
            what, waited = "request not sent", limits.write
        elif isinstance(exc, httpx.PoolTimeout):
            what, waited = "no free connection", limits.pool
        return f"{what} within {waited:g} s (the timeout)" if waited else f"{what} (timeout)"
    return _innermost(exc)


def _innermost(exc: BaseException) -> str:
    """The message of the first cause of ``exc`` (what the socket said), else its own."""
    while True:
        cause = exc.__cause__ or exc.__context__
        if cause is None:
            return str(exc) or type(exc).__name__
        exc = cause


def _error_kind(exc: Exception) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ConnectionRefusedError):
                return "connection refused"
            cause = cause.__cause__ or cause.__context__
        return "connection error"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed"
    return "http error"
