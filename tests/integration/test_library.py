"""hookwise used as a library, as docs/library.md shows it."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from hookwise import Event, Hookwise
from hookwise.testing import MemoryStore, signed_request


def make_app() -> tuple[Hookwise, list[str]]:
    hw = Hookwise(store="memory://")
    hw.source(
        "acme",
        provider="hmac",
        header="X-Acme-Signature",
        secrets=["test"],
        dedup_key="body:id",
        type="body:type",
    )
    seen: list[str] = []

    @hw.handler("acme", "invoice.*")
    async def on_invoice(event: Event) -> None:
        seen.append(event.json()["id"])

    return hw, seen


async def test_the_documented_test_recipe() -> None:
    hw, seen = make_app()
    request = signed_request(hw, "acme", {"id": "evt_1", "type": "invoice.paid"})
    async with hw.open_store() as store:
        assert isinstance(store, MemoryStore)
        transport = httpx.ASGITransport(app=hw.asgi(store=store))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                request.path, content=request.body, headers=request.headers
            )
            forged = await client.post(
                request.path, content=request.body, headers={"X-Acme-Signature": "00"}
            )
        assert response.json()["status"] == "accepted"
        assert forged.status_code == 401
        ran = await hw.worker(store).drain()
    assert ran == 1
    assert seen == ["evt_1"]


async def test_mounted_in_a_starlette_app() -> None:
    hw, seen = make_app()

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("my app")

    async with hw.open_store() as store:
        app = Starlette(routes=[Route("/", home), Mount("/webhooks", app=hw.asgi(store=store))])
        request = signed_request(hw, "acme", {"id": "evt_2", "type": "invoice.created"})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/")).text == "my app"
            response = await client.post(
                "/webhooks" + request.path, content=request.body, headers=request.headers
            )
            health = await client.get("/webhooks/healthz")
        assert response.status_code == 200, response.text
        assert response.json()["id"] == "evt_2"
        assert health.json() == {"status": "ok"}
        await hw.worker(store).drain()
    assert seen == ["evt_2"]


async def test_events_other_handlers_ignore_are_stored_without_deliveries() -> None:
    hw, seen = make_app()
    request = signed_request(hw, "acme", {"id": "evt_3", "type": "customer.created"})
    async with hw.open_store() as store:
        transport = httpx.ASGITransport(app=hw.asgi(store=store))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                request.path, content=request.body, headers=request.headers
            )
        seq = response.json()["seq"]
        assert await store.deliveries(seq) == []
        assert (await store.get_event(seq)) is not None
    assert seen == []
