"""Provider ``dropbox``: the reference vector, the GET challenge echoed exactly as Dropbox
asks (directly and through the receiver), and a dedup key that keeps repeated bodies."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.handlers import HandlerRegistry
from hookwise.providers import Description, Inbound, build_source
from hookwise.providers.dropbox import MAX_CHALLENGE, DropboxSource
from hookwise.receiver import Receiver
from hookwise.store import EventFilter, MemoryStore

NOW = 1_700_000_000.0
# Reference example (also the third-party hapi-dropbox-webhooks test), standard library.
SECRET = "the_secret"
BODY = b'{"delta": {"users": [12345]}}'
SIGNATURE = "0a8c16b085420b960dc78664279fe09e936a2a01b1f91064869d9e77dfd64529"


def source(**kwargs: Any) -> DropboxSource:
    kwargs.setdefault("secrets", (SECRET,))
    built = build_source(SourceSettings(name="dbx", provider="dropbox", **kwargs))
    assert isinstance(built, DropboxSource)
    return built


def get(query: str) -> Inbound:
    return Inbound(b"", {}, method="GET", query=query)


def test_reference_vector() -> None:
    src = source()
    src.verify(BODY, {"x-dropbox-signature": SIGNATURE}, NOW)
    assert src.sign_headers(BODY, now=NOW) == {"x-dropbox-signature": SIGNATURE}
    with pytest.raises(VerificationError, match="no_matching_signature"):
        src.verify(BODY, {"x-dropbox-signature": "sha256=" + SIGNATURE}, NOW)


class TestChallenge:
    def test_echoed_as_plain_text_with_nosniff(self) -> None:
        answer = source().handshake(get("challenge=Yj9iJSqQMs3RsO4r"), NOW)
        assert answer is not None
        assert answer.status == 200
        assert answer.body == b"Yj9iJSqQMs3RsO4r"
        assert answer.content_type == "text/plain"
        assert answer.headers == (("x-content-type-options", "nosniff"),)

    def test_a_script_is_echoed_only_as_inert_text(self) -> None:
        answer = source().handshake(get("challenge=%3Cscript%3Ealert(1)%3C/script%3E"), NOW)
        assert answer is not None
        assert answer.body == b"<script>alert(1)</script>"
        assert answer.content_type == "text/plain"
        assert ("x-content-type-options", "nosniff") in answer.headers

    @pytest.mark.parametrize("query", ["challenge=", "challenge=" + "a" * (MAX_CHALLENGE + 1)])
    def test_empty_or_huge_challenges_are_refused(self, query: str) -> None:
        answer = source().handshake(get(query), NOW)
        assert answer is not None and answer.status == 400

    def test_other_requests_are_no_handshake(self) -> None:
        src = source()
        assert src.handshake(get(""), NOW) is None
        assert src.handshake(get("other=1"), NOW) is None
        assert src.handshake(Inbound(BODY, {}, query="challenge=x"), NOW) is None

    async def test_through_the_receiver(self) -> None:
        src = source()
        app = Receiver(
            sources={src.name: src},
            handlers=HandlerRegistry(),
            store=MemoryStore(),
            max_body_bytes=1 << 20,
        )
        await app.store.open()
        transport = httpx.ASGITransport(app, client=("203.0.113.9", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            transport=transport, base_url="https://hooks.example.com"
        ) as http:
            answer = await http.get("/hooks/dbx", params={"challenge": "abc123"})
            assert (answer.status_code, answer.text) == (200, "abc123")
            assert answer.headers["content-type"] == "text/plain"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert (await http.get("/hooks/dbx")).status_code == 405
            body = src.samples(NOW)["list_folder"]
            for _ in range(2):
                sent = await http.post(
                    "/hooks/dbx", content=body, headers=src.sign_headers(body, now=NOW)
                )
                assert sent.json()["status"] == "accepted"
                # The key includes the millisecond of receipt: keep the two apart.
                await asyncio.sleep(0.005)
        events = await app.store.list_events(EventFilter(limit=10))
        assert [event.type for event in events] == ["list_folder", "list_folder"]


class TestDescribe:
    def test_the_same_body_later_is_a_new_event(self) -> None:
        src = source()
        digest = "sha256:" + hashlib.sha256(BODY).hexdigest()
        first = src.describe(BODY, {}, NOW)
        assert first == Description(f"{digest}@1700000000000", "list_folder", None, None)
        assert src.describe(BODY, {}, NOW + 0.5).dedup_key == f"{digest}@1700000000500"
        assert src.describe(BODY, {}, NOW).dedup_key == first.dedup_key

    def test_a_dedup_setting_is_used_as_is(self) -> None:
        src = source(dedup_key="body:list_folder.accounts.0")
        body = b'{"list_folder": {"accounts": ["dbid:AAH4f99"]}}'
        assert src.describe(body, {}, NOW).dedup_key == "dbid:AAH4f99"

    def test_coalescing_per_account_can_be_configured(self) -> None:
        src = source(ordering_key="list_folder.accounts.0")
        body = source().samples(NOW)["list_folder"]
        assert src.describe(body, {}, NOW).ordering_key is not None
        assert src.describe(body, {}, NOW).ordering_key.startswith("dbid:")  # type: ignore[union-attr]


def test_app_key_hint_on_a_wrong_secret() -> None:
    hints = source(secrets=("other",)).diagnose(
        Inbound(BODY, {"x-dropbox-signature": SIGNATURE}),
        NOW,
        VerificationError("no_matching_signature"),
    )
    assert source().key_hint in hints
