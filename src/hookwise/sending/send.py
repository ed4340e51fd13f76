"""One ``hookwise send`` run: check how to break requests, plan, send, add it up."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from ..config import SourceSettings
from ..providers import SignedRequest, Source
from .forge import EventMaker, Forger
from .plan import Chaos, PlannedRequest, make_plan
from .report import Report
from .runner import Outcome, run_plan

__all__ = ["send"]


async def send(
    settings: SourceSettings,
    source: Source,
    url: str,
    chaos: Chaos,
    *,
    event_type: str | None = None,
    body: bytes | None = None,
    delivery_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    delay: float = 0.0,
    request_timeout: float = 10.0,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Report:
    """Send ``chaos.count`` events to ``url`` as ``source`` signs them, broken and
    repeated as ``chaos`` says, and report what came back.

    >>> settings, source = resolve_source("stripe", secret="whsec_...")
    >>> report = await send(settings, source, "http://127.0.0.1:8000/hooks/stripe",
    ...                     Chaos(count=20, duplicates=3, concurrency=8, shuffle=True))
    >>> report.ok

    A :class:`~hookwise.errors.ConfigError` before anything is sent when the body can't
    be signed, or the provider can't be broken the way ``chaos`` asks.
    """
    import httpx

    forger = Forger(settings, source, url)
    maker = EventMaker(
        source,
        event_type=event_type,
        body=body,
        delivery_id=delivery_id,
        stale_by=forger.stale_by,
    )
    forger.check_signable(maker(1, False))
    await forger.prepare(
        maker, bad_signature=chaos.bad_signature_rate > 0, stale=chaos.stale_rate > 0
    )
    plan = make_plan(chaos, maker)

    def sign(request: PlannedRequest, now: float) -> SignedRequest:
        return forger.sign(request.event, now=now)

    def describe(signed: SignedRequest) -> str | None:
        # None when the key depends on the time of receipt (Dropbox sends no id): the
        # receiver's would differ from any found here.
        request = forger.inbound(signed)
        now = time.time()
        key = source.describe(request.body, request.headers, now).dedup_key
        later = source.describe(request.body, request.headers, now + 1).dedup_key
        return key if key == later else None

    limits = httpx.Limits(max_connections=max(2, chaos.concurrency))
    begun = time.perf_counter()
    async with httpx.AsyncClient(timeout=request_timeout, limits=limits) as client:
        outcomes = await run_plan(
            plan,
            url,
            sign=sign,
            client=client,
            delay=delay,
            headers=headers,
            describe=describe,
            on_outcome=on_outcome,
        )
    elapsed = time.perf_counter() - begun
    return Report(
        plan,
        tuple(outcomes),
        url=url,
        provider=source.provider,
        source=settings.name,
        elapsed=elapsed,
        delay=delay,
        bad_signature=forger.bad_signature,
        stale=forger.stale,
    )
