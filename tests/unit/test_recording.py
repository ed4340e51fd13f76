"""Recordings: the file format (write, read, edits noticed, bad files refused), what an
export keeps and leaves out, and re-signing for every provider."""

from __future__ import annotations

import base64
import importlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.headers import REDACTED, Redactor
from hookwise.providers import KNOWN_PROVIDERS, Inbound, Source, build_source
from hookwise.recording import (
    FORMAT,
    Recorded,
    Replayer,
    as_recorded,
    collect,
    dumps,
    file_name,
    load_recording,
    parse_document,
    prepare,
    resign,
    signer,
    target_source,
    write_directory,
    write_jsonl,
)
from hookwise.starters import STARTERS, local_secrets
from hookwise.store import EventFilter, EventRecord, MemoryStore

NOW = 1_800_000_000.0
URL = "http://127.0.0.1:8000/hooks/p"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

BODY_SIGNED_INSIDE = {"mailgun"}
"""Providers whose signature lives in the body: re-signing changes the body."""
RECEIPT_TIME_KEYS = {"dropbox"}
"""Providers whose dedup key includes the time of receipt: a replay is a new event."""
TIME_IN_BODY = {"linear"}
"""Providers that sign a time written in the body: a recording stays valid only within
the tolerance, re-signed or not."""


def event_record(**changes: Any) -> EventRecord:
    fields: dict[str, Any] = {
        "seq": 7,
        "source": "orders",
        "dedup_key": "msg_1",
        "type": "order.created",
        "ordering_key": "ord_1",
        "occurred_at": 1_700_000_000.25,
        "received_at": 1_700_000_001.125,
        "intake": "push",
        "headers": (("content-type", "application/json"), ("webhook-id", "msg_1")),
        "body": b'{"id": "ord_1"}\n',
    }
    fields.update(changes)
    return EventRecord(**fields)


# -- the format -------------------------------------------------------------------------


def test_a_recording_round_trips_through_a_line_and_a_file(tmp_path: Path) -> None:
    record = as_recorded(event_record(), provider="standard")
    document = json.loads(dumps(record))
    assert list(document) == [
        "format", "version", "source", "provider", "id", "type", "ordering_key",
        "occurred_at", "received_at", "intake", "seq", "method", "path", "headers",
        "redacted", "body_encoding", "body_sha256", "body",
    ]  # fmt: skip
    assert document["format"] == FORMAT and document["version"] == 1
    assert document["body"] == '{"id": "ord_1"}\n' and document["body_encoding"] == "utf-8"
    assert document["path"] == "/hooks/orders" and document["method"] == "POST"
    assert document["received_at"] == "2023-11-14T22:13:21.125000Z"

    write_jsonl([record, record], tmp_path / "r.jsonl")
    write_directory([record], tmp_path / "dir")
    for loaded in (
        load_recording(tmp_path / "r.jsonl")[1],
        load_recording(tmp_path / "dir")[0],
        load_recording(tmp_path / "dir" / file_name(record))[0],
    ):
        assert replace(loaded, origin="") == record
        assert not loaded.body_edited
    assert load_recording(tmp_path / "r.jsonl")[1].origin == f"{tmp_path / 'r.jsonl'}:2"


def test_bodies_that_are_not_utf8_are_base64_and_come_back_byte_for_byte(tmp_path: Path) -> None:
    body = bytes(range(256)) + b"\r\n\x00"
    record = as_recorded(event_record(body=body))
    document = json.loads(dumps(record, pretty=True))
    assert document["body_encoding"] == "base64"
    assert base64.b64decode(document["body"]) == body
    write_jsonl([record], tmp_path / "r.jsonl")
    assert load_recording(tmp_path / "r.jsonl")[0].body == body


def test_an_export_directory_lists_in_arrival_order_and_is_pretty(tmp_path: Path) -> None:
    records = [
        as_recorded(event_record(seq=seq, type=kind))
        for seq, kind in ((12, "invoice.paid"), (3, "a/b c"), (100, "!!"))
    ]
    written = write_directory(records, tmp_path)
    assert [path.name for path in written] == [
        "000012-orders-invoice.paid.json",
        "000003-orders-a_b_c.json",
        "000100-orders-event.json",
    ]
    assert [r.seq for r in load_recording(tmp_path)] == [3, 12, 100]
    text = written[0].read_text()
    assert text.count("\n") > 10 and text.endswith("}\n")


def test_an_edited_body_is_noticed_and_a_missing_digest_counts_as_edited() -> None:
    document = as_recorded(event_record()).to_json()
    assert not parse_document(document).body_edited
    assert parse_document({**document, "body": '{"id": "ord_2"}\n'}).body_edited
    without = {key: value for key, value in document.items() if key != "body_sha256"}
    assert parse_document(without).body_edited


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"format": "something-else"}, "not a hookwise recording"),
        ({"version": 2}, "upgrade hookwise"),
        ({"version": "1"}, "not a version number"),
        ({"source": ""}, '"source"'),
        ({"id": 5}, '"id"'),
        ({"headers": [["x-a"]]}, "[name, value] pair"),
        ({"headers": "x"}, '"headers"'),
        ({"body_encoding": "latin-1"}, '"body_encoding"'),
        ({"body_encoding": "base64", "body": "***"}, "not valid base64"),
        ({"intake": "email"}, '"intake"'),
        ({"received_at": "yesterday"}, "not a time"),
        ({"seq": True}, '"seq"'),
    ],
)
def test_a_bad_recording_is_one_clear_error_naming_where(
    change: dict[str, Any], words: str
) -> None:
    document = {**as_recorded(event_record()).to_json(), **change}
    with pytest.raises(ConfigError) as caught:
        parse_document(document, origin="r.jsonl:3")
    assert words in str(caught.value)
    assert caught.value.file == "r.jsonl:3"
    assert caught.value.fix


def test_bad_files_are_refused_with_the_line(tmp_path: Path) -> None:
    good = dumps(as_recorded(event_record()))
    (tmp_path / "r.jsonl").write_text(good + "\n\n{not json\n")
    with pytest.raises(ConfigError, match="not valid JSON") as caught:
        load_recording(tmp_path / "r.jsonl")
    assert caught.value.file == f"{tmp_path / 'r.jsonl'}:3"
    with pytest.raises(ConfigError, match="no such recording file"):
        load_recording(tmp_path / "missing.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no recordings"):
        load_recording(tmp_path / "empty")


def test_a_json_file_may_hold_a_list_of_recordings(tmp_path: Path) -> None:
    document = as_recorded(event_record()).to_json()
    (tmp_path / "many.json").write_text(json.dumps([document, document]))
    assert len(load_recording(tmp_path / "many.json")) == 2


def test_a_recording_is_an_event_for_a_handler() -> None:
    record = as_recorded(event_record())
    event = record.event(handler="billing")
    assert (event.id, event.source, event.type, event.seq) == (
        "msg_1",
        "orders",
        "order.created",
        7,
    )
    assert event.json() == {"id": "ord_1"}
    assert event.headers["webhook-id"] == "msg_1"
    assert event.handler == "billing" and event.idempotency_key.startswith("hw1_")
    assert event.occurred_at == pytest.approx(1_700_000_000.25)


# -- what an export keeps and leaves out ------------------------------------------------


def test_secrets_are_never_written() -> None:
    record = as_recorded(
        event_record(
            headers=(
                ("authorization", REDACTED),
                ("x-echo", "prefix-s3cret-value"),
                ("x-id", "1"),
            ),
            body=b'{"clientState": "s3cret", "id": 1}',
        ),
        secrets=("s3cret", ""),
    )
    assert dict(record.headers) == {"authorization": REDACTED, "x-echo": REDACTED, "x-id": "1"}
    assert record.body == b'{"clientState": "[redacted]", "id": 1}'
    assert record.redacted == ("authorization", "x-echo", "body")
    assert "s3cret" not in dumps(record)


def test_pull_events_have_no_request_line() -> None:
    record = as_recorded(event_record(intake="pull"))
    assert record.method is None and record.path is None


async def test_collect_pages_through_the_store_oldest_first() -> None:
    from hookwise.events import NewEvent

    async with MemoryStore() as store:
        for number in range(1, 1203):
            await store.append(
                NewEvent("orders", f"m{number}", "order.created", b"{}", received_at=number),
                handlers=[],
            )
        everything = await collect(store, EventFilter())
        assert [r.dedup_key for r in everything] == [f"m{n}" for n in range(1, 1203)]
        newest = await collect(store, EventFilter(), limit=3)
        assert [r.dedup_key for r in newest] == ["m1200", "m1201", "m1202"]


# -- sending again ----------------------------------------------------------------------


def test_as_recorded_the_hop_headers_and_the_redacted_ones_are_left_out() -> None:
    record = as_recorded(
        event_record(
            headers=(
                ("host", "old.example.com"),
                ("content-length", "99"),
                ("connection", "keep-alive"),
                ("authorization", REDACTED),
                ("webhook-id", "msg_1"),
            )
        )
    )
    request = prepare(record, url="http://x/hooks/orders")
    assert request.headers == (("webhook-id", "msg_1"),)
    assert request.body == record.body and not request.resigned
    assert "authorization" in request.notes[0]


def test_target_source() -> None:
    assert target_source("http://h:1/hooks/stripe") == "stripe"
    assert target_source("http://h/c/abc/hooks/gh/?x=1") == "gh"
    assert target_source("http://h/other") is None
    assert target_source("http://h/hooks/a/b") is None


def example_settings(provider: str, **changes: Any) -> SourceSettings:
    module = importlib.import_module(f"hookwise.providers.{provider}")
    example: dict[str, Any] = dict(module.EXAMPLE_SETTINGS)
    example.update(changes)
    example.pop("public_url", None)
    return SourceSettings(name="p", provider=provider, **example)


def received(source: Source, body: bytes, *, now: float) -> Recorded:
    """What the receiver would store for ``body`` signed by ``source`` at ``now``."""
    signed = source.sign_request(body, now=now)
    headers = {
        "host": "provider.example",
        "content-length": str(len(signed.body)),
        **{name.lower(): value for name, value in signed.headers.items()},
    }
    described = source.describe(signed.body, headers, now)
    redact = Redactor(secret_values=source.secret_values, secret_headers=source.secret_headers)
    return as_recorded(
        EventRecord(
            seq=1,
            source="p",
            dedup_key=described.dedup_key,
            type=described.type,
            ordering_key=described.ordering_key,
            occurred_at=described.occurred_at,
            received_at=now,
            intake="push",
            headers=redact(headers),
            body=signed.body,
        ),
        provider=source.provider,
    )


def refusal(source: Source, body: bytes, headers: dict[str, str], url: str, now: float) -> str:
    query = url.partition("?")[2]
    public = (source.public_url or url.split("?")[0]) + ("?" + query if query else "")
    try:
        source.verify_request(Inbound(body, headers, url=public, query=query), now)
    except VerificationError as exc:
        return exc.reason
    return ""


@pytest.mark.parametrize("provider", KNOWN_PROVIDERS)
def test_every_provider_re_signs_a_stale_recording_into_a_valid_delivery(provider: str) -> None:
    original = signer(example_settings(provider), URL)
    signed_at = NOW - (60 if provider in TIME_IN_BODY else 3600)
    for event_type, body in original.samples(signed_at).items():
        record = received(original, body, now=signed_at)
        fresh = signer(example_settings(provider), URL)
        request = resign(record, fresh, url=URL, now=NOW)
        headers = dict(request.headers)
        assert refusal(fresh, request.body, headers, request.url, NOW) == "", event_type
        assert "host" not in headers and "content-length" not in headers
        described = fresh.describe(request.body, headers, NOW)
        assert described.type == record.type, event_type
        if provider in RECEIPT_TIME_KEYS:
            assert any("dedup key" in note for note in request.notes)
        else:
            assert described.dedup_key == record.id, event_type
        if provider in BODY_SIGNED_INSIDE:
            assert request.body != record.body
            assert any("inside the body" in note for note in request.notes)
        else:
            assert provider in RECEIPT_TIME_KEYS or not request.notes, request.notes
            assert request.body == record.body, event_type
        for name, value in record.headers:
            if name not in ("host", "content-length") and value != REDACTED:
                assert name in headers, (event_type, name)


@pytest.mark.parametrize("provider", sorted(STARTERS))
def test_re_signing_uses_the_new_secret_and_keeps_the_recorded_id(provider: str) -> None:
    starter = STARTERS[provider]
    old_secret = local_secrets(starter)
    new_secret = local_secrets(starter)

    def settings(values: dict[str, str]) -> SourceSettings:
        return SourceSettings(
            name="p",
            provider=provider,
            secrets=(values[starter.secret_env],),
            options={option: values[variable] for option, variable, _ in starter.options},
        )

    original = signer(settings(old_secret), URL)
    local = signer(settings(new_secret), URL)
    for event_type, body in original.samples(NOW - 30).items():
        record = received(original, body, now=NOW - 30)
        as_sent = prepare(record, url=URL)
        assert refusal(local, as_sent.body, dict(as_sent.headers), URL, NOW), event_type
        request = resign(record, local, url=URL, now=NOW)
        headers = dict(request.headers)
        assert refusal(local, request.body, headers, request.url, NOW) == "", event_type
        assert refusal(original, request.body, headers, request.url, NOW), event_type
        assert local.describe(request.body, headers, NOW).dedup_key == record.id


def test_headers_the_signature_does_not_cover_keep_their_recorded_values() -> None:
    settings = example_settings("shopify")
    original = signer(settings, URL)
    body = original.samples(NOW)["orders/create"]
    record = received(original, body, now=NOW)
    edited = tuple(
        (name, "acme.myshopify.com" if name == "x-shopify-shop-domain" else value)
        for name, value in record.headers
    )
    request = resign(replace(record, headers=edited), signer(settings, URL), url=URL, now=NOW)
    headers = dict(request.headers)
    assert headers["x-shopify-shop-domain"] == "acme.myshopify.com"
    assert headers["x-shopify-webhook-id"] == record.id
    assert headers["x-shopify-event-id"] == dict(record.headers)["x-shopify-event-id"]


def test_the_delivery_id_comes_from_its_header_else_the_dedup_key() -> None:
    source = signer(SourceSettings(name="p", provider="standard", secrets=(WHSEC,)), URL)
    record = Recorded(
        "p",
        "msg_original",
        "ping",
        b'{"type": "ping"}',
        headers=(("webhook-id", "msg_original"), ("webhook-signature", "v1,stale")),
        provider="standard",
    )
    request = resign(record, source, url=URL, now=NOW)
    assert dict(request.headers)["webhook-id"] == "msg_original"
    without = resign(replace(record, headers=()), source, url=URL, now=NOW)
    assert dict(without.headers)["webhook-id"] == "msg_original"


def test_a_url_signing_provider_signs_the_url_replayed_to() -> None:
    settings = example_settings("twilio")
    original = signer(settings, "https://public.example.com/hooks/twilio")
    body = original.samples(NOW)["message.received"]
    record = received(original, body, now=NOW)
    assert dict(record.headers)["i-twilio-idempotency-token"] == REDACTED
    local = "http://127.0.0.1:9000/hooks/sms"
    request = resign(record, signer(settings, local), url=local, now=NOW)
    assert request.url == local
    headers = dict(request.headers)
    assert refusal(signer(settings, local), request.body, headers, local, NOW) == ""
    assert headers["i-twilio-idempotency-token"] == record.id


def test_a_re_signed_request_that_will_be_refused_says_why() -> None:
    settings = example_settings("linear")
    original = signer(settings, URL)
    record = received(original, original.samples(NOW - 3600)["Issue.create"], now=NOW - 3600)
    request = resign(record, signer(settings, URL), url=URL, now=NOW)
    assert any("timestamp_too_old" in note for note in request.notes)


# -- the replayer -----------------------------------------------------------------------


def stripe_record(**changes: Any) -> Recorded:
    fields: dict[str, Any] = {
        "source": "stripe",
        "id": "evt_1",
        "type": "invoice.paid",
        "body": b'{"id": "evt_1", "type": "invoice.paid"}',
        "provider": "stripe",
        "origin": "r.jsonl:1",
    }
    fields.update(changes)
    return Recorded(**fields)


def test_the_replayer_posts_each_recording_to_its_source() -> None:
    replayer = Replayer(to="http://h:1/hooks/{source}")
    assert replayer.url(stripe_record()) == "http://h:1/hooks/stripe"
    assert Replayer(to="http://h:1/hooks/dev").url(stripe_record()) == "http://h:1/hooks/dev"


def test_the_replayer_refuses_edited_bodies_unless_re_signing() -> None:
    edited = stripe_record(body_edited=True)
    with pytest.raises(ConfigError, match="--resign"):
        Replayer(to=URL).check([stripe_record(), edited])
    Replayer(to=URL, resign=True, secret="whsec_x").check([edited])
    with pytest.raises(ConfigError, match="no deliveries"):
        Replayer(to=URL).check([])


def test_a_body_with_a_secret_redacted_is_sent_only_re_signed() -> None:
    # Its recorded signature covers the body with the secret, not with [redacted].
    exported = as_recorded(
        event_record(body=b'{"clientState": "s3cret", "id": 1}'),
        provider="standard",
        secrets=("s3cret",),
    )
    reloaded = parse_document(json.loads(dumps(exported)))
    assert "body" in reloaded.redacted
    with pytest.raises(ConfigError, match="redacted") as caught:
        Replayer(to=URL).check([reloaded])
    assert "--resign" in str(caught.value.fix)
    Replayer(to=URL, resign=True, secret="whsec_" + "A" * 32).check([reloaded])


def test_re_signing_needs_a_secret_and_a_provider() -> None:
    with pytest.raises(ConfigError, match="--secret S"):
        Replayer(to=URL, resign=True).check([stripe_record()])
    with pytest.raises(ConfigError, match="provider"):
        Replayer(to=URL, resign=True, secret="x").check([stripe_record(provider=None)])
    settings = {"dev": SourceSettings(name="dev", provider="github", secrets=("s",))}
    replayer = Replayer(to="http://h/hooks/dev", resign=True, sources=settings, config="b.toml")
    with pytest.raises(ConfigError, match="'stripe' source") as caught:
        replayer.check([stripe_record()])
    assert "b.toml" in str(caught.value)
    unset = {"stripe": SourceSettings(name="stripe", provider="stripe")}
    with pytest.raises(ConfigError, match="no secret"):
        Replayer(to=URL, resign=True, sources=unset).check([stripe_record()])


def test_the_source_in_the_url_signs_when_the_config_has_it() -> None:
    settings = {"dev": SourceSettings(name="dev", provider="stripe", secrets=("whsec_dev",))}
    replayer = Replayer(to="http://h/hooks/dev", resign=True, sources=settings)
    record = stripe_record()
    assert replayer.target(record) == "dev"
    request = replayer.request(record, now=NOW)
    local = build_source(settings["dev"])
    assert refusal(local, request.body, dict(request.headers), request.url, NOW) == ""
    with_secret = Replayer(to="http://h/hooks/dev", resign=True, sources=settings, secret="o")
    other = with_secret.request(record, now=NOW)
    assert refusal(local, other.body, dict(other.headers), other.url, NOW)
