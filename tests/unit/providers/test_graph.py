"""Provider ``graph``: client states instead of signatures, the validationToken
handshake (also on the wire), batches, lifecycle notifications, every reason."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from hookwise import Hookwise, Settings, SourceSettings, StoreSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.providers._base import body_digest
from hookwise.signatures.graph import ClientStates

NOW = 1_700_000_000
STATE = "SecretClientState"
OTHER = "AnotherClientState"
THIRD = "ThirdClientState"
TOKEN = (
    "Validation: Testing client application reachability for subscription "
    "Request-Id: 522a8e7e-096a-494c-aaf1-ac0dcfca45b7"
)

NOTIFICATION = {
    "id": "lsgTZMr9KwAAA",
    "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
    "subscriptionExpirationDateTime": "2023-11-17T22:11:09.952Z",
    "clientState": STATE,
    "changeType": "created",
    "resource": "Users/622eaaff-0683-4862-9de4-f2ec83c2bd98/Messages/AAMkAGUwNjQ4ZjIx",
    "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
    "resourceData": {
        "@odata.type": "#Microsoft.Graph.Message",
        "@odata.id": "Users/622eaaff-0683-4862-9de4-f2ec83c2bd98/Messages/AAMkAGUwNjQ4ZjIx",
        "id": "AAMkAGUwNjQ4ZjIx",
    },
}


def source(*states: str, **kwargs: Any) -> Source:
    return build_source(
        SourceSettings(name="graph", provider="graph", secrets=states or (STATE,), **kwargs)
    )


def delivery(*items: dict[str, Any]) -> bytes:
    return json.dumps({"value": list(items or (NOTIFICATION,))}).encode()


def reason(src: Source, request: Inbound) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify_request(request, NOW)
    return caught.value.reason


def validation(token: str = TOKEN) -> Inbound:
    query = "validationToken=" + quote(token)
    return Inbound(
        b"",
        {"content-type": "text/plain; charset=utf-8"},
        query=query,
        url="https://hooks.example.com/hooks/graph?" + query,
    )


class TestClientState:
    def test_a_notification_with_the_client_state(self) -> None:
        source().verify(delivery(), {}, NOW)
        source().verify_request(Inbound(delivery(), {}), NOW)

    def test_every_notification_of_a_batch_must_match(self) -> None:
        src = source(OTHER, STATE)
        batch = delivery(NOTIFICATION, {**NOTIFICATION, "clientState": OTHER})
        src.verify(batch, {}, NOW)
        forged = delivery(NOTIFICATION, {**NOTIFICATION, "clientState": THIRD})
        assert reason(src, Inbound(forged, {})) == "bad_token"
        assert reason(source(), Inbound(delivery({**NOTIFICATION, "clientState": OTHER}), {})) == (
            "bad_token"
        )

    def test_worked_example(self) -> None:
        src = source(STATE, OTHER)
        unsigned = delivery({**NOTIFICATION, "clientState": "placeholder"})
        request = src.sign_request(unsigned, now=NOW, secret_index=1)
        assert request.headers == {"content-type": "application/json"}
        assert json.loads(request.body)["value"][0]["clientState"] == OTHER
        src.verify(request.body, request.headers, NOW)
        with pytest.raises(ValueError, match="sign_request"):
            src.sign_headers(unsigned, now=NOW)
        with pytest.raises(ValueError):
            src.sign_request(b"[]", now=NOW)

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (b"", "malformed_body"),
            (b"\xff", "malformed_body"),
            (b"[]", "malformed_body"),
            (b'{"value": []}', "malformed_body"),
            (b'{"value": {"clientState": "SecretClientState"}}', "malformed_body"),
            (b'{"value": ["SecretClientState"]}', "malformed_body"),
            (delivery({**NOTIFICATION, "clientState": None}), "missing_field"),
            (delivery({**NOTIFICATION, "clientState": ""}), "missing_field"),
            (
                delivery({key: v for key, v in NOTIFICATION.items() if key != "clientState"}),
                "missing_field",
            ),
            (delivery({**NOTIFICATION, "clientState": STATE.lower()}), "bad_token"),
            (delivery({**NOTIFICATION, "clientState": STATE + " "}), "bad_token"),
        ],
    )
    def test_refusals(self, body: bytes, expected: str) -> None:
        assert reason(source(), Inbound(body, {})) == expected

    def test_matching_checks_every_state(self) -> None:
        states = ClientStates([OTHER, STATE])
        assert states.match(STATE) and states.match(OTHER)
        assert not states.match(THIRD) and not states.match("")


class TestHandshake:
    def test_validation_token_is_echoed_decoded_as_plain_text(self) -> None:
        src = source()
        request = validation()
        src.verify_request(request, NOW)  # nothing to verify
        answer = src.handshake(request, NOW)
        assert answer is not None
        assert (answer.status, answer.body) == (200, TOKEN.encode())
        assert answer.content_type.startswith("text/plain")
        assert ("x-content-type-options", "nosniff") in answer.headers

    @pytest.mark.parametrize("token", ["", "<script>alert(1)</script>", "line\nbreak", "x" * 4097])
    def test_bad_tokens_are_refused(self, token: str) -> None:
        with pytest.raises(VerificationError) as caught:
            source().handshake(validation(token), NOW)
        assert caught.value.reason == "bad_token"

    def test_notifications_are_not_handshakes(self) -> None:
        assert source().handshake(Inbound(delivery(), {}), NOW) is None
        other_case = Inbound(b"", {}, query="validationtoken=abc")
        assert source().handshake(other_case, NOW) is None
        assert reason(source(), other_case) == "malformed_body"

    async def test_on_the_wire(self) -> None:
        settings = SourceSettings(name="graph", provider="graph", secrets=(STATE,))
        hw = Hookwise(
            settings=Settings(store=StoreSettings(url="memory://"), sources={"graph": settings})
        )
        transport = httpx.ASGITransport(app=hw.asgi())
        async with httpx.AsyncClient(transport=transport, base_url="http://graph.test") as client:
            answer = await client.post(
                "/hooks/graph?validationToken=" + quote(TOKEN),
                headers={"content-type": "text/plain; charset=utf-8"},
            )
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.text == TOKEN
            markup = await client.post("/hooks/graph?validationToken=%3Cb%3E")
            assert markup.status_code == 401
            forged = await client.post(
                "/hooks/graph", content=delivery({**NOTIFICATION, "clientState": THIRD})
            )
            assert forged.status_code == 401
            accepted = await client.post("/hooks/graph", content=delivery())
            assert accepted.status_code == 200
            assert accepted.json()["status"] == "accepted"


class TestDescribe:
    def test_change_notification(self) -> None:
        sent = delivery()
        described = source().describe(sent, {}, NOW)
        assert described.dedup_key == body_digest(sent)
        assert described.type == "created"
        assert described.ordering_key == NOTIFICATION["resource"]
        assert described.occurred_at is None

    def test_lifecycle_notification(self) -> None:
        lifecycle = {
            "subscriptionId": NOTIFICATION["subscriptionId"],
            "subscriptionExpirationDateTime": "2023-11-17T22:11:09.952Z",
            "tenantId": NOTIFICATION["tenantId"],
            "clientState": STATE,
            "lifecycleEvent": "subscriptionRemoved",
        }
        described = source().describe(delivery(lifecycle), {}, NOW)
        assert (described.type, described.ordering_key) == ("subscriptionRemoved", None)

    def test_settings_win(self) -> None:
        src = source(dedup_key="value.0.id", type="const:mail")
        described = src.describe(delivery(), {}, NOW)
        assert (described.dedup_key, described.type) == ("lsgTZMr9KwAAA", "mail")

    def test_samples_verify_and_describe_as_their_type(self) -> None:
        src = source(OTHER, STATE)
        samples = src.samples(NOW)
        assert {"created", "updated", "deleted", "reauthorizationRequired"} <= set(samples)
        keys = set()
        for kind, body in samples.items():
            src.verify(body, {}, NOW)  # samples carry the first client state, as Graph sends
            request = src.sign_request(body, now=NOW, secret_index=1)
            src.verify(request.body, request.headers, NOW)
            described = src.describe(request.body, request.headers, NOW)
            assert described.type == kind
            keys.add(described.dedup_key)
        assert len(keys) == len(samples)


class TestDiagnose:
    def hints(self, src: Source, request: Inbound, error: str) -> str:
        return " ".join(src.diagnose(request, NOW, VerificationError(error)))

    def test_names_the_subscriptions_with_a_foreign_state(self) -> None:
        stranger = {**NOTIFICATION, "subscriptionId": "0000-foreign", "clientState": THIRD}
        text = self.hints(source(), Inbound(delivery(NOTIFICATION, stranger), {}), "bad_token")
        assert "0000-foreign" in text
        assert NOTIFICATION["subscriptionId"] not in text
        assert THIRD not in text and STATE not in text

    def test_missing_state_and_wrong_case_query(self) -> None:
        assert "clientState" in self.hints(source(), Inbound(delivery(), {}), "missing_field")
        wrong_case = Inbound(b"", {}, query="validationtoken=abc")
        assert "another case" in self.hints(source(), wrong_case, "malformed_body")
        assert "neither" in self.hints(source(), Inbound(b"", {}), "malformed_body")


class TestSettings:
    def test_client_states_are_required(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="graph", provider="graph"))
        assert caught.value.key == "sources.graph.secrets"

    def test_options_and_scheme_settings_are_refused(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(options={"client_state": STATE})
        assert caught.value.key == "sources.graph.client_state"
        with pytest.raises(ConfigError):
            source(prefix="x=")

    def test_client_states_are_redacted_values(self) -> None:
        assert source(STATE, OTHER).secret_values == (STATE, OTHER)
