"""Every provider end to end through the real receiver over HTTP on loopback: its
samples, signed as the provider signs them, are accepted, stored with the id, type,
ordering key and time the provider's rules give, and reach a handler as such."""

from __future__ import annotations

import asyncio
import importlib
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookwise import Event, Hookwise, Settings, SourceSettings, StoreSettings
from hookwise.providers import KNOWN_PROVIDERS, build_source

from ._live import live

RECEIPT_TIME_KEYS = {"dropbox"}
"""Providers whose dedup key includes the time of receipt (identical bodies are distinct
notifications), so a test can't predict it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(provider: str, public_url: str) -> SourceSettings:
    module = importlib.import_module(f"hookwise.providers.{provider}")
    example: dict[str, Any] = dict(module.EXAMPLE_SETTINGS)
    example["public_url"] = public_url
    return SourceSettings(name="p", provider=provider, **example)


@pytest.mark.parametrize("provider", KNOWN_PROVIDERS)
def test_samples_are_received_stored_and_handled(provider: str, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/p"
    source_settings = settings_for(provider, url)
    hw = Hookwise(
        settings=Settings(
            store=StoreSettings(url=f"sqlite:///{tmp_path / 'hooks.db'}"),
            sources={"p": source_settings},
        )
    )
    seen: list[Event] = []

    @hw.handler("p", "*", name="record")
    def record(event: Event) -> None:
        seen.append(event)

    source = build_source(source_settings)
    expected = {}
    with live(hw.asgi(), port=port) as server, httpx.Client(base_url=server.url) as client:
        for event_type, body in sorted(source.samples(time.time()).items()):
            request = source.sign_request(body, now=time.time())
            target = "/hooks/p" + ("?" + request.query if request.query else "")
            answer = client.request(
                request.method, target, content=request.body, headers=request.headers
            )
            headers = {name.lower(): value for name, value in request.headers.items()}
            described = source.describe(request.body, headers, time.time())
            acknowledgement = source.acknowledgement(request.body, headers)
            if acknowledgement is not None:  # the provider's own answer (Discord, Slack)
                assert answer.status_code == acknowledgement.status, (provider, answer.text)
                assert answer.content == acknowledgement.body, (provider, event_type)
            else:
                assert answer.status_code == 200, (provider, event_type, answer.text)
                assert answer.json()["status"] == "accepted", (provider, event_type, answer.json())
                if provider in RECEIPT_TIME_KEYS:
                    described = replace(described, dedup_key=answer.json()["id"])
                assert answer.json()["id"] == described.dedup_key
            expected[described.dedup_key] = described

    async def drain() -> None:
        async with hw.open_store() as store:
            await hw.worker(store).drain(timeout=20)

    asyncio.run(drain())
    assert sorted(e.id for e in seen) == sorted(expected)
    for event in seen:
        want = expected[event.id]
        assert event.type == want.type
        assert event.ordering_key == want.ordering_key
        assert event.occurred_at == want.occurred_at
        assert event.source == "p"
