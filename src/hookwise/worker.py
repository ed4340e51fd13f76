"""The worker: claim due deliveries, run their handlers, settle the outcomes.

::

    claim a batch (under a lease) ──▶ run handlers ──▶ decide() ──▶ settle a batch (fenced)
          ▲                          async: on the loop
          │                          sync:  in a bounded thread pool
          └── wake() (the store's subscription) or poll_interval, or at once when the
              last batch was full

Each claim carries a ``fence``. While a handler runs, a background task extends the
leases this worker holds every ``lease / 3`` seconds. If the worker stalls or dies,
its leases expire, another worker claims the deliveries with a new fence, and the
stale worker's settle is refused. A handler may therefore run more than once for one
event (at-least-once), but each attempt is settled at most once and none is lost.

What an attempt's outcome means is decided by :func:`decide`, a pure function:

- the handler returned: ``done``;
- it raised :class:`~hookwise.Retry`: retry at the time it asked for, within the
  policy's ``max_attempts`` and ``max_age`` (past them: ``dead``);
- it raised :class:`~hookwise.Reject`: ``dead`` at once;
- it raised anything else, or timed out: retry with backoff and full jitter, or
  ``dead`` when the policy gives up.

A claim whose attempt number is already past ``max_attempts`` (earlier attempts never
settled: the process running them crashed or was killed) is dead-lettered without
running again, see :func:`decide_before_run`.

Timeouts: an async handler is cancelled when its ``timeout`` passes. A sync handler
runs in a thread, and Python can't stop a thread: the attempt is recorded as timed
out and retried, while the thread runs on until the function returns (holding one of
the ``threads`` slots meanwhile). Likewise, a sync handler still running when a
graceful shutdown's ``grace`` ends has its lease released while its thread finishes,
so another worker may run that delivery at the same time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import random
import secrets
import socket
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import Self

from .clock import Clock, system_clock
from .config import WorkerSettings
from .durations import format_duration
from .errors import ConfigError, Reject, Retry, StoreUnavailable
from .handlers import HandlerRegistry, HandlerSpec, call_handler_sync
from .store._base import Claim, Outcome, Settlement, Store
from .transactions import AsyncTransaction, StoreTransaction, Transaction

__all__ = [
    "MAX_ERROR_CHARS",
    "Decision",
    "Worker",
    "WorkerStats",
    "decide",
    "decide_before_run",
    "describe_exception",
]

MAX_ERROR_CHARS = 4000
"""Longest error text stored for one attempt; longer tracebacks keep their end."""

SETTLE_LINGER = 0.002
"""Seconds a finished outcome waits for others, so that one round trip settles many."""

STORE_RETRY_DELAY = 1.0
"""Seconds between tries while the store refuses a claim or a settle."""

TRANSACTION_MARGIN = 30.0
"""Seconds past a transactional handler's timeout that the store keeps its transaction
open before rolling it back on its own (the worker rolls back at the timeout)."""

CANCEL_WAIT = 2.0
"""Seconds cancelled handlers get to unwind at shutdown before their leases are released."""

_log = logging.getLogger("hookwise.worker")


# -- outcomes (pure) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """What to record for one attempt.

    >>> decide(spec, claim, None, now=clock.now())
    Decision(outcome='done', next_attempt_at=None, error=None)
    """

    outcome: Outcome
    next_attempt_at: float | None = None
    error: str | None = None


def decide_before_run(spec: HandlerSpec, claim: Claim) -> Decision | None:
    """``dead`` for a claim past its attempt budget, else ``None`` (go ahead and run it).

    Attempts are counted at claim time, so a handler that crashes its process never
    settles and is claimed again and again; this stops that loop.

    >>> decide_before_run(spec, claim)   # claim.attempt == spec.policy.max_attempts + 1
    Decision(outcome='dead', next_attempt_at=None, error='gave up after 5 attempts ...')
    """
    budget = spec.policy.max_attempts
    if claim.attempt <= budget:
        return None
    return Decision(
        "dead",
        error=(
            f"gave up after {claim.attempt - 1} attempts that never settled "
            f"(max_attempts={budget}); the process running them may have crashed, "
            "been killed, or lost its lease"
        ),
    )


def decide(
    spec: HandlerSpec,
    claim: Claim,
    exc: BaseException | None,
    *,
    now: float,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Turn how an attempt ended (``exc`` is ``None`` when the handler returned) into
    the outcome to settle.

    >>> decide(spec, claim, ValueError("boom"), now=1000.0, rand=lambda: 0.5)
    Decision(outcome='retry', next_attempt_at=1001.0, error='ValueError: boom\\n...')
    """
    if exc is None:
        return Decision("done")
    if isinstance(exc, Reject):
        return Decision("dead", error=f"Reject: {exc.reason}")
    requested_at: float | None = None
    if isinstance(exc, Retry):
        error = f"Retry: {exc.reason}"
        requested_at = _requested_time(exc, now)
    else:
        error = describe_exception(exc)
    policy = spec.policy
    when = policy.next_attempt_at(
        attempt=claim.attempt,
        now=now,
        first_received_at=claim.event.received_at,
        requested_at=requested_at,
        rand=rand,
    )
    if when is not None:
        return Decision("retry", next_attempt_at=when, error=error)
    if claim.attempt >= policy.max_attempts:
        why = f"gave up: attempt {claim.attempt} of max_attempts={policy.max_attempts}"
    else:
        why = (
            "gave up: the next attempt would be more than "
            f"max_age={format_duration(policy.max_age)} after the event was received"
        )
    return Decision("dead", error=f"{error}\n{why}")


def describe_exception(exc: BaseException, *, limit: int = MAX_ERROR_CHARS) -> str:
    """``"ExcType: message"``, then the traceback, in at most ``limit`` characters.

    >>> describe_exception(ValueError("bad amount")).splitlines()[0]
    'ValueError: bad amount'

    When too long, the middle goes: the summary line and the innermost frames (where
    the error happened) are what a reader needs.
    """
    message = str(exc)
    summary = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    summary = summary[: limit // 4]
    details = "".join(traceback.format_exception(exc)).rstrip("\n")
    text = f"{summary}\n{details}"
    if len(text) <= limit:
        return text
    marker = "\n[... traceback trimmed ...]\n"
    keep = max(limit - len(summary) - len(marker), 0)
    return f"{summary}{marker}{details[len(details) - keep :]}"


def _requested_time(retry: Retry, now: float) -> float | None:
    if retry.at is not None:
        at = retry.at if retry.at.tzinfo is not None else retry.at.replace(tzinfo=UTC)
        return at.timestamp()
    if retry.after is not None:
        return now + retry.after
    return None


# -- the worker ------------------------------------------------------------------------------


@dataclass(slots=True)
class WorkerStats:
    """Counters since the worker was made. Outcome counters count accepted settles.

    >>> worker.stats.done, worker.stats.fenced_out
    (12, 0)
    """

    claimed: int = 0
    done: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0
    fenced_out: int = 0
    """Settles the store refused: the lease had passed to another worker."""
    released: int = 0
    """Leases given back unsettled at shutdown."""
    leases_lost: int = 0
    """Lease extensions refused while the handler was still running."""


def default_owner() -> str:
    """A lease owner name unique to this process and worker: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    """Claims due deliveries from ``store`` and runs ``handlers`` on them.

    >>> worker = Worker(store, registry, settings=WorkerSettings(concurrency=8))
    >>> stop = asyncio.Event()
    >>> await worker.run(stop)          # until stop.set(); then a graceful shutdown

    Tests and one-shot commands use :meth:`drain` (or :meth:`run_once`) instead of
    :meth:`run`. The worker owns a thread pool for sync handlers; :meth:`run` shuts
    it down when it returns, otherwise use ``async with worker:`` or :meth:`close`.
    """

    def __init__(
        self,
        store: Store,
        handlers: HandlerRegistry,
        *,
        settings: WorkerSettings = WorkerSettings(),  # noqa: B008 - frozen, shared safely
        clock: Clock = system_clock,
        owner: str | None = None,
        rand: Callable[[], float] = random.random,
        logger: logging.Logger | None = None,
    ) -> None:
        _check_settings(settings)
        _check_transactions(store, handlers)
        self.store = store
        self.handlers = handlers
        self.settings = settings
        self.owner: str = owner if owner else default_owner()
        self.stats = WorkerStats()
        self._clock = clock
        self._rand = rand
        self._log = logger if logger is not None else _log
        self._held: dict[int, Claim] = {}
        """Claims leased to us and not yet settled or released, by delivery id."""
        self._settling: set[int] = set()
        self._lost: set[int] = set()
        self._outbox: list[Settlement] = []
        self._tasks: dict[asyncio.Task[None], Claim] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._busy = False
        self._wake_event = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._outbox_ready = asyncio.Event()
        self._flush_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Shut the sync-handler thread pool down (threads still running finish on their
        own). Idempotent; the worker can be used again afterwards."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Claim now instead of at the next poll: new work may be due. :meth:`run`
        subscribes it to the store; call it yourself for other signals.

        Safe to call from any thread, and before :meth:`run` starts.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            self._wake_event.set()
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            self._wake_event.set()
            return
        try:
            loop.call_soon_threadsafe(self._wake_event.set)
        except RuntimeError:  # the loop closed meanwhile; nothing is waiting
            pass

    # -- running ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Claim and run until ``stop`` is set, then shut down gracefully: stop claiming,
        give running handlers ``settings.grace`` seconds, cancel the rest, settle what
        finished and release the leases of what did not (another worker takes them at
        once). Cancelling this coroutine shuts down the same way without the grace.

        While it runs, the worker is subscribed to the store, so new work (an append,
        a replay, a dead-letter retry) wakes it at once instead of at the next poll."""
        self._enter()
        stop = stop if stop is not None else asyncio.Event()
        try:
            unsubscribe = self.store.subscribe(self.wake)
        except BaseException:
            self._busy = False
            raise
        extender = asyncio.create_task(self._extend_forever(), name="hookwise-lease-extender")
        settler = asyncio.create_task(self._settle_forever(), name="hookwise-settler")
        graceful = False
        try:
            await self._claim_loop(stop)
            graceful = True
        finally:
            unsubscribe()
            try:
                await self._shutdown(
                    grace=self.settings.grace if graceful else 0.0,
                    extender=extender,
                    settler=settler,
                )
            finally:
                self.close()
                self._busy = False

    async def run_once(self) -> int:
        """Claim one batch, run it to completion and settle it. Returns how many
        deliveries were handled (0 when nothing was due)."""
        self._enter()
        try:
            return await self._run_batch()
        finally:
            self._busy = False

    async def drain(self, timeout: float = 10.0) -> int:  # noqa: ASYNC109 - a budget, not a cancel scope
        """Run batches until nothing is due. Returns how many deliveries were handled.

        Raises ``TimeoutError`` when work is still due after ``timeout`` seconds (a
        batch cut short is released, not lost).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        total = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"work was still due after {timeout}s ({total} handled)")
            scope = asyncio.timeout(remaining)
            try:
                async with scope:
                    handled = await self.run_once()
            except TimeoutError:
                if not scope.expired():
                    raise
                raise TimeoutError(
                    f"a batch was still running after {timeout}s ({total} handled before it)"
                ) from None
            if handled == 0:
                return total
            total += handled

    # -- claiming --------------------------------------------------------------------------

    def _enter(self) -> None:
        if self._busy:
            raise RuntimeError("this worker is already running; use one run() at a time")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # asyncio primitives belong to the loop that first waits on them.
            woken = self._wake_event.is_set()
            self._wake_event = asyncio.Event()
            if woken:
                self._wake_event.set()
            self._slot_freed = asyncio.Event()
            self._outbox_ready = asyncio.Event()
            self._flush_lock = asyncio.Lock()
            self._loop = loop
        self._busy = True

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        concurrency = self.settings.concurrency
        while not stop.is_set():
            self._wake_event.clear()
            self._slot_freed.clear()
            free = concurrency - len(self._tasks)
            full_batch = False
            if free > 0:
                want = min(self.settings.batch, free)
                try:
                    claims = await self._claim(want)
                except StoreUnavailable as exc:
                    # An outage is expected weather, not a bug: one line, no traceback.
                    self._log.warning("claiming deliveries failed (%s); trying again shortly", exc)
                    await _wait_any([stop], STORE_RETRY_DELAY)
                    continue
                except Exception:
                    self._log.exception("claiming deliveries failed; trying again shortly")
                    await _wait_any([stop], STORE_RETRY_DELAY)
                    continue
                for claim, spec in claims:
                    self._start(spec, claim)
                full_batch = len(claims) == want
            if len(self._tasks) >= concurrency:
                await _wait_any([stop, self._slot_freed], self.settings.poll_interval)
            elif not full_batch:
                await _wait_any([stop, self._wake_event], self.settings.poll_interval)
            else:
                await asyncio.sleep(0)  # let the handlers just started begin

    async def _claim(self, want: int) -> list[tuple[Claim, HandlerSpec]]:
        names = self.handlers.names()
        if not names or want <= 0:
            return []
        claims = await self.store.claim(
            self.owner,
            limit=want,
            lease=self.settings.lease,
            now=self._clock.now(),
            handlers=names,
        )
        self.stats.claimed += len(claims)
        runnable: list[tuple[Claim, HandlerSpec]] = []
        strangers: list[Claim] = []
        for claim in claims:
            self._held[claim.delivery_id] = claim
            spec = self.handlers.get(claim.handler)
            if spec is None:
                strangers.append(claim)
            else:
                runnable.append((claim, spec))
        if strangers:
            # The store was asked for our handlers only; give anything else back untouched.
            self._log.error(
                "the store handed out deliveries for handlers this worker does not have "
                "(%s); releasing them",
                ", ".join(sorted({c.handler for c in strangers})),
            )
            await self._release(strangers)
        return runnable

    async def _run_batch(self) -> int:
        want = min(self.settings.batch, self.settings.concurrency)
        claims = await self._claim(want)
        if not claims:
            return 0
        extender = asyncio.create_task(self._extend_forever(), name="hookwise-lease-extender")
        tasks = [self._start(spec, claim) for claim, spec in claims]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            await self._abandon(tasks)
            raise
        finally:
            extender.cancel()
            await _quietly(extender)
        if not await self._flush():
            await asyncio.sleep(STORE_RETRY_DELAY)
            if not await self._flush():
                await self._release_unsettled()
                raise StoreUnavailable("the store refused to settle finished deliveries")
        return len(tasks)

    async def _abandon(self, tasks: Iterable[asyncio.Task[None]]) -> None:
        """Cancel ``tasks``, settle what finished, give back the leases of the rest."""
        running = [t for t in tasks if not t.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=CANCEL_WAIT)
        await self._flush()
        await self._release_unsettled()

    # -- running handlers ------------------------------------------------------------------

    def _start(self, spec: HandlerSpec, claim: Claim) -> asyncio.Task[None]:
        task = asyncio.create_task(
            self._attempt(spec, claim), name=f"hookwise:{claim.handler}:{claim.delivery_id}"
        )
        self._tasks[task] = claim
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._slot_freed.set()

    async def _attempt(self, spec: HandlerSpec, claim: Claim) -> None:
        started = self._clock.now()
        decision = decide_before_run(spec, claim)
        finished = started
        if decision is None:
            failure: BaseException | None = None
            try:
                if spec.transactional:
                    committed = await self._invoke_in_transaction(spec, claim, started)
                    self._committed(claim, committed)
                    return
                await self._invoke(spec, claim)
            except asyncio.CancelledError as exc:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are shutting down: the lease is released, not settled
                failure = exc  # the handler raised CancelledError on its own
            except Exception as exc:
                failure = exc
            finished = self._clock.now()
            decision = decide(spec, claim, failure, now=finished, rand=self._rand)
        self._report(claim, decision, finished)
        self._outbox.append(
            Settlement(
                delivery_id=claim.delivery_id,
                fence=claim.fence,
                owner=self.owner,
                outcome=decision.outcome,
                started_at=started,
                finished_at=finished,
                next_attempt_at=decision.next_attempt_at,
                error=decision.error,
            )
        )
        self._outbox_ready.set()

    async def _invoke_in_transaction(self, spec: HandlerSpec, claim: Claim, started: float) -> bool:
        """Run a transactional handler in a store transaction and commit its writes with
        the delivery's ``done``. True when committed; False when the lease was lost (the
        writes were rolled back). A failure rolls back and raises, to be settled as usual."""
        tx = await self.store.begin(limit=spec.timeout + TRANSACTION_MARGIN)
        try:
            await self._invoke(spec, claim, tx)
        except BaseException:
            await _rolled_back(tx)
            raise
        finished = self._clock.now()
        return await tx.commit(
            Settlement(
                delivery_id=claim.delivery_id,
                fence=claim.fence,
                owner=self.owner,
                outcome="done",
                started_at=started,
                finished_at=finished,
            )
        )

    def _committed(self, claim: Claim, committed: bool) -> None:
        """Account for a delivery settled inside its handler's transaction."""
        self._held.pop(claim.delivery_id, None)
        self._lost.discard(claim.delivery_id)
        if committed:
            self._report(claim, Decision("done"), self._clock.now())
            self._count("done")
            return
        self.stats.fenced_out += 1
        self._log.warning(
            "event %s handler %s attempt %d: lease lost; the handler's transaction was "
            "rolled back (another worker owns this delivery now: delivery %d, fence %d)",
            claim.event.id,
            claim.handler,
            claim.attempt,
            claim.delivery_id,
            claim.fence,
        )

    async def _invoke(
        self, spec: HandlerSpec, claim: Claim, tx: StoreTransaction | None = None
    ) -> None:
        event = claim.event
        if event.attempt != claim.attempt or event.handler != claim.handler:
            event = dataclasses.replace(event, attempt=claim.attempt, handler=claim.handler)
        loop = asyncio.get_running_loop()
        scope = asyncio.timeout(spec.timeout)
        try:
            async with scope:
                if spec.is_async:
                    result = (
                        spec.func(event) if tx is None else spec.func(event, AsyncTransaction(tx))
                    )
                    if inspect.isawaitable(result):
                        await result
                else:
                    args = () if tx is None else (Transaction(tx, loop),)
                    await loop.run_in_executor(
                        self._executor(), call_handler_sync, spec.func, event, *args
                    )
        except TimeoutError as exc:
            if not scope.expired():
                raise  # the handler's own TimeoutError
            kind = "" if spec.is_async else " (a sync handler's thread runs on until it returns)"
            raise TimeoutError(
                f"handler {spec.name!r} did not finish within {format_duration(spec.timeout)}{kind}"
            ) from exc

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.settings.threads, thread_name_prefix="hookwise-handler"
            )
        return self._pool

    def _report(self, claim: Claim, decision: Decision, now: float) -> None:
        if decision.outcome == "done":
            self._log.debug(
                "event %s (seq %d) handler %s attempt %d -> done",
                claim.event.id,
                claim.event.seq,
                claim.handler,
                claim.attempt,
            )
            return
        reason = (decision.error or "").partition("\n")[0]
        if decision.outcome == "retry" and decision.next_attempt_at is not None:
            then = f"retry in {format_duration(max(decision.next_attempt_at - now, 0.0))}"
            level = logging.WARNING
        else:
            then = decision.outcome
            level = logging.ERROR
        self._log.log(
            level,
            "event %s (seq %d) handler %s attempt %d failed: %s -> %s",
            claim.event.id,
            claim.event.seq,
            claim.handler,
            claim.attempt,
            reason,
            then,
        )

    # -- settling --------------------------------------------------------------------------

    async def _settle_forever(self) -> None:
        while True:
            await self._outbox_ready.wait()
            await asyncio.sleep(SETTLE_LINGER)
            self._outbox_ready.clear()
            if not await self._flush():
                await asyncio.sleep(STORE_RETRY_DELAY)
                self._outbox_ready.set()

    async def _flush(self) -> bool:
        """Settle everything finished in one call. False when the store failed (the
        outcomes stay queued and their leases keep being extended)."""
        async with self._flush_lock:
            batch, self._outbox = self._outbox, []
            if not batch:
                return True
            ids = {s.delivery_id for s in batch}
            self._settling |= ids
            try:
                applied = await self.store.settle(batch)
            except BaseException as exc:
                self._outbox[:0] = batch
                if not isinstance(exc, Exception):
                    raise
                if isinstance(exc, StoreUnavailable):
                    self._log.warning(
                        "settling %d outcomes failed (%s); will try again", len(batch), exc
                    )
                else:
                    self._log.exception("settling %d outcomes failed; will try again", len(batch))
                return False
            finally:
                self._settling -= ids
        for settlement, ok in zip(batch, applied, strict=True):
            claim = self._held.pop(settlement.delivery_id, None)
            self._lost.discard(settlement.delivery_id)
            if ok:
                self._count(settlement.outcome)
                continue
            self.stats.fenced_out += 1
            self._log.warning(
                "event %s handler %s attempt %s: outcome %r not recorded: lease lost; "
                "another worker owns this delivery now (delivery %d, fence %d)",
                claim.event.id if claim else "?",
                claim.handler if claim else "?",
                claim.attempt if claim else "?",
                settlement.outcome,
                settlement.delivery_id,
                settlement.fence,
            )
        return True

    def _count(self, outcome: Outcome) -> None:
        if outcome == "done":
            self.stats.done += 1
        elif outcome == "retry":
            self.stats.retried += 1
        elif outcome == "dead":
            self.stats.dead += 1
        else:
            self.stats.skipped += 1

    # -- leases ----------------------------------------------------------------------------

    async def _extend_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease / 3)
            await self._extend_once()

    async def _extend_once(self) -> None:
        leases = [
            (delivery_id, claim.fence)
            for delivery_id, claim in self._held.items()
            if delivery_id not in self._settling and delivery_id not in self._lost
        ]
        if not leases:
            return
        until = self._clock.now() + self.settings.lease
        try:
            extended = set(await self.store.extend(self.owner, leases, until=until))
        except Exception:
            self._log.warning("extending %d leases failed", len(leases), exc_info=True)
            return
        for delivery_id, fence in leases:
            if delivery_id in extended or delivery_id in self._settling:
                continue
            claim = self._held.get(delivery_id)
            if claim is None:  # settled while the extension was in flight
                continue
            self._lost.add(delivery_id)
            self.stats.leases_lost += 1
            self._log.warning(
                "event %s handler %s attempt %d: lease lost while running (delivery %d, "
                "fence %d); its outcome will not be recorded",
                claim.event.id,
                claim.handler,
                claim.attempt,
                delivery_id,
                fence,
            )

    async def _release(self, claims: Iterable[Claim]) -> None:
        leases = [(c.delivery_id, c.fence) for c in claims]
        for delivery_id, _ in leases:
            self._held.pop(delivery_id, None)
            self._lost.discard(delivery_id)
        if not leases:
            return
        try:
            released = await self.store.release(self.owner, leases, now=self._clock.now())
        except Exception:
            self._log.exception(
                "releasing %d leases failed; they become claimable when they expire",
                len(leases),
            )
            return
        self.stats.released += released

    async def _release_unsettled(self) -> None:
        queued = {s.delivery_id for s in self._outbox}
        if queued:
            # The store would not take these outcomes; letting the deliveries run again
            # is better than holding them until their leases expire.
            self._log.warning("%d outcomes could not be settled; releasing them", len(queued))
            self._outbox.clear()
        await self._release(list(self._held.values()))

    async def _shutdown(
        self, *, grace: float, extender: asyncio.Task[None], settler: asyncio.Task[None]
    ) -> None:
        running = list(self._tasks)
        if running and grace > 0:
            self._log.info("stopping: waiting up to %ss for %d handlers", grace, len(running))
            await asyncio.wait(running, timeout=grace)
        late = [t for t in running if not t.done()]
        if late:
            self._log.warning("stopping: releasing %d deliveries still running", len(late))
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=CANCEL_WAIT)
        async with self._flush_lock:  # the settler is not mid-settle while it holds none
            settler.cancel()
        await _quietly(settler)
        if not await self._flush():
            await self._flush()
        await self._release_unsettled()
        extender.cancel()
        await _quietly(extender)


async def _wait_any(events: list[asyncio.Event], seconds: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def _rolled_back(tx: StoreTransaction) -> None:
    """Roll a failed attempt's transaction back; a store error here is only logged (the
    transaction ends with its connection either way)."""
    try:
        await tx.rollback()
    except Exception:
        _log.warning("rolling back a handler transaction failed", exc_info=True)


async def _quietly(task: asyncio.Task[None]) -> None:
    """Wait for a cancelled background task; log (rather than raise) how it failed."""
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        _log.error("background task %s failed", task.get_name(), exc_info=task.exception())


def _check_settings(settings: WorkerSettings) -> None:
    for name in ("concurrency", "threads", "batch"):
        if getattr(settings, name) < 1:
            raise ValueError(f"worker {name} must be at least 1")
    for name in ("lease", "poll_interval"):
        if getattr(settings, name) <= 0:
            raise ValueError(f"worker {name} must be positive seconds")
    if settings.grace < 0:
        raise ValueError("worker grace can't be negative")


def _check_transactions(store: Store, handlers: HandlerRegistry) -> None:
    wanting = [spec.name for spec in handlers if spec.transactional]
    if wanting and not getattr(store, "supports_transactions", False):
        raise ConfigError(
            f"handler {wanting[0]!r} takes a transaction (def handle(event, tx)), and the "
            f"store {store.url!r} can't give one",
            key="store.url",
            fix="use a SQLite or PostgreSQL store, or drop the handler's second parameter",
        )
