"""Provider ``discord``: the ed25519 reference vector, PING on the wire, deferred
acknowledgements, snowflake times, signing keys for tests, every reason."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hookwise import Hookwise, Settings, SourceSettings, StoreSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.providers.discord import DiscordSource
from hookwise.signatures import discord

NOW = 1_700_000_000
# The reference's vector: seed 00 01 .. 1f, signed with PyNaCl and checked by the
# official discord-interactions libraries (Python and JavaScript).
SEED = bytes(range(32)).hex()
PUBLIC = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
PING = b'{"type":1}'
PING_SIGNATURE = (
    "c1098e97d711377f30225d53d94b89d43537f92e5b3afaddc590781b1f9f9d4b"
    "2eeab335d370be3b9a090bc61a85b86448bc140dcd195f1569c2bff181257607"
)
OTHER_SEED = bytes(range(32, 64)).hex()
THIRD_SEED = bytes(range(64, 96)).hex()

COMMAND = {
    "id": "1184729832543719435",
    "application_id": "1184000000000000000",
    "type": 2,
    "data": {"id": "1183000000000000000", "name": "deploy", "type": 1},
    "guild_id": "1100000000000000000",
    "channel_id": "1150000000000000000",
    "token": "aW50ZXJhY3Rpb246MTE4NDcy",
    "version": 1,
}


def public_of(seed: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    return key.public_key().public_bytes_raw().hex()


def source(*secrets: str, signing_key: Any = SEED, **kwargs: Any) -> Source:
    options = {} if signing_key is None else {"signing_key": signing_key}
    return build_source(
        SourceSettings(
            name="discord",
            provider="discord",
            secrets=secrets or (PUBLIC,),
            options=options,
            **kwargs,
        )
    )


def encode(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def headers(signature: str = PING_SIGNATURE, timestamp: str = str(NOW)) -> dict[str, str]:
    return {"x-signature-ed25519": signature, "x-signature-timestamp": timestamp}


def reason(src: Source, body: bytes, sent: dict[str, str], now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, sent, now)
    return caught.value.reason


def signed_by(seed: str, body: bytes, now: int = NOW) -> dict[str, str]:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    return headers(key.sign(str(now).encode() + body).hex(), str(now))


class TestSignature:
    def test_reference_vector(self) -> None:
        assert public_of(SEED) == PUBLIC
        source(signing_key=None).verify(PING, headers(), NOW)
        assert source().sign_headers(PING, now=NOW) == {
            "content-type": "application/json",
            "x-signature-ed25519": PING_SIGNATURE,
            "x-signature-timestamp": str(NOW),
        }

    def test_worked_example(self) -> None:
        src = source()
        body = encode(COMMAND)
        request = src.sign_request(body, now=NOW)
        assert request.body == body
        src.verify(body, request.headers, NOW)
        # What the cryptography library alone signs verifies too.
        src.verify(body, signed_by(SEED, body), NOW)

    def test_tampered_body_and_wrong_key(self) -> None:
        assert reason(source(), b'{"type":2}', headers()) == "no_matching_signature"
        assert reason(source(), PING, headers(timestamp=str(NOW + 1))) == "no_matching_signature"
        other = source(public_of(OTHER_SEED), signing_key=None)
        assert reason(other, PING, headers()) == "no_matching_signature"

    @pytest.mark.parametrize(
        ("offset", "expected"), [(301, "timestamp_too_old"), (-301, "timestamp_too_new")]
    )
    def test_stale_either_way(self, offset: int, expected: str) -> None:
        source().verify(PING, headers(), NOW + 300)
        source().verify(PING, headers(), NOW - 300)
        assert reason(source(), PING, headers(), NOW + offset) == expected

    def test_rotation(self) -> None:
        src = source(public_of(OTHER_SEED), PUBLIC, signing_key=[SEED, OTHER_SEED])
        body = encode(COMMAND)
        for index in (0, 1):
            src.verify(body, src.sign_headers(body, now=NOW, secret_index=index), NOW)
        assert (
            src.sign_headers(body, now=NOW, secret_index=1)["x-signature-ed25519"]
            == (signed_by(SEED, body)["x-signature-ed25519"])
        )
        assert reason(src, body, signed_by(THIRD_SEED, body)) == "no_matching_signature"

    @pytest.mark.parametrize(
        ("sent", "expected"),
        [
            ({"x-signature-timestamp": str(NOW)}, "missing_header"),
            ({"x-signature-ed25519": PING_SIGNATURE}, "missing_header"),
            (headers(signature=PING_SIGNATURE[:-2]), "malformed_header"),
            (headers(signature="z" * 128), "malformed_header"),
            (headers(timestamp="2023-11-14T22:13:20Z"), "malformed_header"),
        ],
    )
    def test_missing_and_malformed_headers(self, sent: dict[str, str], expected: str) -> None:
        assert reason(source(), PING, sent) == expected

    def test_signing_needs_a_signing_key(self) -> None:
        with pytest.raises(ValueError, match="signing_key"):
            source(signing_key=None).sign_headers(PING, now=NOW)
        half = source(PUBLIC, public_of(OTHER_SEED))
        half.sign_headers(PING, now=NOW, secret_index=0)
        with pytest.raises(ValueError, match="public key number 2"):
            half.sign_headers(PING, now=NOW, secret_index=1)


class TestHandshake:
    def test_ping_gets_pong(self) -> None:
        answer = source().handshake(Inbound(PING, headers()), NOW)
        assert answer is not None
        assert (answer.status, answer.content_type) == (200, "application/json")
        assert json.loads(answer.body) == {"type": 1}

    def test_interactions_are_not_handshakes(self) -> None:
        for body in (encode(COMMAND), b'{"type":true}', b'{"type":"1"}', b"[1]", b""):
            assert source().handshake(Inbound(body, {}), NOW) is None

    async def test_on_the_wire(self) -> None:
        settings = SourceSettings(
            name="discord", provider="discord", secrets=(PUBLIC,), options={"signing_key": SEED}
        )
        hw = Hookwise(
            settings=Settings(store=StoreSettings(url="memory://"), sources={"discord": settings})
        )
        signed = build_source(settings).sign_request(PING, now=time.time())
        transport = httpx.ASGITransport(app=hw.asgi())
        async with httpx.AsyncClient(transport=transport, base_url="http://discord.test") as client:
            answer = await client.post("/hooks/discord", content=PING, headers=signed.headers)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json"
            assert answer.json() == {"type": 1}
            # Discord's routine probe: a PING with a bad signature must get 401.
            probe = {**signed.headers, "x-signature-ed25519": PING_SIGNATURE}
            refused = await client.post("/hooks/discord", content=PING, headers=probe)
            assert refused.status_code == 401


class TestDescribe:
    def test_application_command(self) -> None:
        described = source().describe(encode(COMMAND), {}, NOW)
        assert described.dedup_key == "1184729832543719435"
        assert described.type == "application_command"
        assert described.ordering_key == "1150000000000000000"
        assert described.occurred_at == 1702532003.294

    @pytest.mark.parametrize(
        ("number", "name"),
        [
            (3, "message_component"),
            (4, "application_command_autocomplete"),
            (5, "modal_submit"),
            (9, "type_9"),
        ],
    )
    def test_type_names(self, number: int, name: str) -> None:
        assert source().describe(encode({**COMMAND, "type": number}), {}, NOW).type == name

    def test_channel_object_and_junk(self) -> None:
        body = encode({"id": "x1", "type": 2, "channel": {"id": "c-9"}})
        described = source().describe(body, {}, NOW)
        assert (described.ordering_key, described.occurred_at) == ("c-9", None)
        junk = source().describe(b"\x00", {}, NOW)
        assert (junk.type, junk.ordering_key, junk.occurred_at) == ("unknown", None, None)

    def test_settings_win(self) -> None:
        described = source(type="body:data.name").describe(encode(COMMAND), {}, NOW)
        assert described.type == "deploy"

    def test_samples_verify_and_describe_as_their_type(self) -> None:
        src = source()
        samples = src.samples(NOW)
        assert len(samples) >= 3
        keys = set()
        for kind, body in samples.items():
            request = src.sign_request(body, now=NOW)
            src.verify(request.body, request.headers, NOW)
            assert src.handshake(Inbound(request.body, request.headers), NOW) is None
            described = src.describe(request.body, request.headers, NOW)
            assert described.type == kind
            assert described.occurred_at is not None and abs(described.occurred_at - NOW) < 1
            keys.add(described.dedup_key)
        assert len(keys) == len(samples)


class TestAcknowledgement:
    @pytest.mark.parametrize(
        ("number", "answer"),
        [
            (2, {"type": 5}),
            (3, {"type": 6}),
            (4, {"type": 8, "data": {"choices": []}}),
            (5, {"type": 5}),
        ],
    )
    def test_deferred_answers(self, number: int, answer: dict[str, object]) -> None:
        src = source()
        assert isinstance(src, DiscordSource)
        made = src.acknowledgement(encode({**COMMAND, "type": number}), {})
        assert made is not None
        assert (made.status, made.content_type) == (200, "application/json")
        assert json.loads(made.body) == answer

    def test_unknown_types_keep_the_usual_answer(self) -> None:
        src = source()
        assert isinstance(src, DiscordSource)
        assert src.acknowledgement(encode({**COMMAND, "type": 42}), {}) is None
        assert src.acknowledgement(b"junk", {}) is None


class TestDiagnose:
    def test_names_the_application(self) -> None:
        body = encode(COMMAND)
        sent = signed_by(OTHER_SEED, body)
        error = VerificationError("no_matching_signature")
        hints = " ".join(source().diagnose(Inbound(body, sent), NOW, error))
        assert "application 1184000000000000000" in hints
        assert SEED not in hints

    def test_probe_without_application(self) -> None:
        error = VerificationError("no_matching_signature")
        hints = " ".join(source().diagnose(Inbound(PING, headers()), NOW, error))
        assert "on purpose" in hints


class TestSettings:
    @pytest.mark.parametrize(
        "secret",
        ["MTE4NDAwMDAwMDAwMDAwMDAwMA.GaBcDe.token", PUBLIC[:-2], "g" * 64, "1184000000000000000"],
    )
    def test_a_public_key_is_64_hex_digits(self, secret: str) -> None:
        with pytest.raises(ConfigError) as caught:
            source(PUBLIC, secret, signing_key=None)
        assert caught.value.key == "sources.discord.secrets"
        assert "secret number 2" in caught.value.problem
        assert secret not in str(caught.value)

    def test_signing_key_must_pair_with_a_public_key(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(signing_key=OTHER_SEED)
        assert caught.value.key == "sources.discord.signing_key"
        assert public_of(OTHER_SEED) in caught.value.fix  # the public key to add
        assert OTHER_SEED not in str(caught.value)

    @pytest.mark.parametrize("value", [42, ["ab"], [SEED, 7], "not hex"])
    def test_bad_signing_keys(self, value: object) -> None:
        with pytest.raises(ConfigError) as caught:
            source(signing_key=value)
        assert caught.value.key == "sources.discord.signing_key"

    def test_unknown_option_and_scheme_settings(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_source(
                SourceSettings(
                    name="discord", provider="discord", secrets=(PUBLIC,), options={"key": "x"}
                )
            )
        assert caught.value.key == "sources.discord.key"
        with pytest.raises(ConfigError):
            source(encoding="base64")

    def test_only_signing_keys_are_secret(self) -> None:
        assert source().secret_values == (SEED,)
        assert source(signing_key=None).secret_values == ()

    def test_example_settings_pair(self) -> None:
        from hookwise.providers.discord import EXAMPLE_SETTINGS

        options = EXAMPLE_SETTINGS["options"]
        assert isinstance(options, dict)
        assert EXAMPLE_SETTINGS["secrets"] == (public_of(options["signing_key"]),)
        assert discord.public_key_hex(bytes.fromhex(SEED)) == PUBLIC
