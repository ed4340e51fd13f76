"""Generic HMAC: GitHub's and Slack's official vectors, templates, rotation, every reason."""

from __future__ import annotations

import base64
import hashlib
import hmac as stdlib_hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.errors import VerificationError
from hookwise.signatures import standard
from hookwise.signatures.hmac import HmacScheme, parse_template, render_content, sign

GITHUB_SECRET = b"It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SHA256 = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
GITHUB_SHA1 = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"

SLACK_SECRET = b"8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

GITHUB = HmacScheme(header="X-Hub-Signature-256", prefix="sha256=")
SLACK = HmacScheme(
    header="X-Slack-Signature",
    prefix="v0=",
    template="v0:{timestamp}:{body}",
    timestamp_header="X-Slack-Request-Timestamp",
)


def github(signature: str | None, body: bytes = GITHUB_BODY, *secrets: bytes) -> None:
    headers = {} if signature is None else {"x-hub-signature-256": signature}
    GITHUB.verify(secrets or [GITHUB_SECRET], headers=headers, body=body, now=0, tolerance=300)


def slack(
    *,
    timestamp: str | None = str(SLACK_TIMESTAMP),
    signature: str = SLACK_SIGNATURE,
    body: bytes = SLACK_BODY,
    now: float = SLACK_TIMESTAMP,
) -> None:
    headers = {"x-slack-signature": signature}
    if timestamp is not None:
        headers["x-slack-request-timestamp"] = timestamp
    SLACK.verify([SLACK_SECRET], headers=headers, body=body, now=now, tolerance=300)


def reason(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(VerificationError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value.reason


class TestVectors:
    def test_github_sha256_signs(self) -> None:
        assert sign(GITHUB_SECRET, GITHUB_BODY, "sha256", "hex", "sha256=") == GITHUB_SHA256

    def test_github_sha1_signs(self) -> None:
        assert sign(GITHUB_SECRET, GITHUB_BODY, "sha1", "hex", "sha1=") == GITHUB_SHA1

    def test_github_sha256_verifies(self) -> None:
        github(GITHUB_SHA256)

    def test_github_legacy_sha1_verifies(self) -> None:
        scheme = HmacScheme(header="X-Hub-Signature", algorithm="sha1", prefix="sha1=")
        headers = {"x-hub-signature": GITHUB_SHA1}
        scheme.verify([GITHUB_SECRET], headers=headers, body=GITHUB_BODY, now=0, tolerance=0)

    def test_slack_signs(self) -> None:
        content = SLACK.content(SLACK_BODY, str(SLACK_TIMESTAMP))
        assert content == b"v0:1531420618:" + SLACK_BODY
        assert SLACK.sign(SLACK_SECRET, SLACK_BODY, timestamp=str(SLACK_TIMESTAMP)) == (
            SLACK_SIGNATURE
        )

    def test_slack_verifies(self) -> None:
        slack()

    def test_sha512_and_base64_match_the_standard_library(self) -> None:
        expected = base64.b64encode(
            stdlib_hmac.new(b"k", b"payload", hashlib.sha512).digest()
        ).decode()
        assert sign(b"k", b"payload", "sha512", "base64") == expected
        scheme = HmacScheme(header="X-Sig", algorithm="sha512", encoding="base64")
        scheme.verify([b"k"], headers={"x-sig": expected}, body=b"payload", now=0, tolerance=0)

    def test_standard_webhooks_is_an_hmac_template(self) -> None:
        key = standard.decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        scheme = HmacScheme(
            header="webhook-signature",
            encoding="base64",
            prefix="v1,",
            template="{id}.{timestamp}.{body}",
            timestamp_header="webhook-timestamp",
            id_header="webhook-id",
        )
        headers = {
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        }
        body = b'{"test": 2432232314}'
        scheme.verify([key], headers=headers, body=body, now=1614265330, tolerance=300)
        # With "," in the prefix, only spaces separate signatures (as the spec has it).
        rotated = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
        scheme.verify([key], headers=rotated, body=body, now=1614265330, tolerance=300)


class TestMatching:
    def test_hex_compare_ignores_case(self) -> None:
        github(GITHUB_SHA256.upper())
        github("SHA256=" + GITHUB_SHA256.removeprefix("sha256=").upper())

    def test_base64_compare_is_exact(self) -> None:
        scheme = HmacScheme(header="X-Sig", encoding="base64")
        good = sign(b"k", b"b", "sha256", "base64")
        scheme.verify([b"k"], headers={"x-sig": good}, body=b"b", now=0, tolerance=0)
        with pytest.raises(VerificationError):
            scheme.verify([b"k"], headers={"x-sig": good.lower()}, body=b"b", now=0, tolerance=0)

    @pytest.mark.parametrize("separator", [",", " ", ", ", "\t"])
    def test_several_signatures_in_one_header(self, separator: str) -> None:
        other = sign(b"old secret", GITHUB_BODY, "sha256", "hex", "sha256=")
        github(other + separator + GITHUB_SHA256)
        github(GITHUB_SHA256 + separator + other)

    def test_values_without_the_prefix_are_ignored(self) -> None:
        bare = GITHUB_SHA256.removeprefix("sha256=")
        github(f"t=1,{GITHUB_SHA256}")
        assert reason(github, bare) == "malformed_header"

    def test_any_secret_may_match(self) -> None:
        github(GITHUB_SHA256, GITHUB_BODY, b"new secret", GITHUB_SECRET)

    def test_tampered_body(self) -> None:
        assert reason(github, GITHUB_SHA256, b"Hello, World?") == "no_matching_signature"

    def test_wrong_secret(self) -> None:
        assert reason(github, GITHUB_SHA256, GITHUB_BODY, b"guess") == "no_matching_signature"

    def test_tampered_timestamp(self) -> None:
        assert (
            reason(slack, timestamp=str(SLACK_TIMESTAMP + 1), now=SLACK_TIMESTAMP)
            == "no_matching_signature"
        )


class TestReasons:
    @pytest.mark.parametrize("value", [None, "", "  "])
    def test_missing_signature_header(self, value: str | None) -> None:
        assert reason(github, value) == "missing_header"

    def test_header_without_any_value(self) -> None:
        assert reason(github, " , ,") == "malformed_header"

    def test_missing_timestamp(self) -> None:
        assert reason(slack, timestamp=None) == "missing_header"

    @pytest.mark.parametrize("timestamp", ["yesterday", "1531420618.0", "-1"])
    def test_malformed_timestamp(self, timestamp: str) -> None:
        assert reason(slack, timestamp=timestamp) == "malformed_header"

    def test_tolerance_is_two_sided_and_inclusive(self) -> None:
        slack(now=SLACK_TIMESTAMP + 300)
        slack(now=SLACK_TIMESTAMP - 300)
        assert reason(slack, now=SLACK_TIMESTAMP + 301) == "timestamp_too_old"
        assert reason(slack, now=SLACK_TIMESTAMP - 301) == "timestamp_too_new"

    def test_missing_id_header_when_the_id_is_signed(self) -> None:
        scheme = HmacScheme(header="X-Sig", template="{id}:{body}", id_header="X-Id")
        with pytest.raises(VerificationError) as caught:
            scheme.verify([b"k"], headers={"x-sig": "00"}, body=b"", now=0, tolerance=0)
        assert caught.value.reason == "missing_header"
        assert "x-id" in caught.value.detail

    def test_signed_id_is_checked(self) -> None:
        scheme = HmacScheme(header="X-Sig", template="{id}:{body}", id_header="X-Id")
        signature = scheme.sign(b"k", b"{}", id="d-1")
        headers = {"x-sig": signature, "x-id": "d-1"}
        scheme.verify([b"k"], headers=headers, body=b"{}", now=0, tolerance=0)
        with pytest.raises(VerificationError, match="no_matching_signature"):
            scheme.verify(
                [b"k"], headers={**headers, "x-id": "d-2"}, body=b"{}", now=0, tolerance=0
            )


class TestTemplates:
    def test_no_template_is_the_body(self) -> None:
        assert render_content(None, b"\x00\xff") == b"\x00\xff"
        assert render_content("{body}", b"\x00\xff") == b"\x00\xff"

    def test_body_bytes_are_inserted_verbatim(self) -> None:
        body = b"\xff\xfe not utf-8 \xc3\x28"
        content = render_content("{id}|{timestamp}|{body}|{body}", body, "17", "abc")
        assert content == b"abc|17|" + body + b"|" + body

    def test_literal_text_is_utf8_and_headers_keep_their_wire_bytes(self) -> None:
        assert render_content("é:{id}:{body}", b"", id="\xe9") == b"\xc3\xa9:\xe9:"

    def test_template_is_parsed_into_parts(self) -> None:
        assert parse_template("v0:{timestamp}:{body}") == (b"v0:", "timestamp", b":", "body")

    @pytest.mark.parametrize("template", ["{timestamp}", "{id}.{timestamp}", "no body"])
    def test_template_without_body_is_refused(self, template: str) -> None:
        with pytest.raises(ValueError, match=r"\{body\}"):
            parse_template(template)

    def test_unknown_placeholder_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"\{method\}"):
            parse_template("{method}{body}")

    def test_missing_value_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timestamp"):
            render_content("{timestamp}.{body}", b"")


class TestConstruction:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"algorithm": "md5"}, "sha1, sha256, sha512"),
            ({"encoding": "base32"}, "base64, hex"),
            ({"prefix": "sha256 ="}, "contains a space"),
            ({"template": "{timestamp}.{body}"}, "timestamp header"),
            ({"template": "{id}.{body}"}, "delivery-id header"),
            ({"header": " "}, "empty"),
        ],
    )
    def test_bad_scheme(self, kwargs: dict[str, str], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            HmacScheme(**{"header": "X-Sig", **kwargs})

    def test_header_names_are_lowercased(self) -> None:
        scheme = HmacScheme(
            header="X-Sig", template="{timestamp}{body}", timestamp_header="X-TS", id_header="X-ID"
        )
        assert (scheme.header, scheme.timestamp_header, scheme.id_header) == (
            "x-sig",
            "x-ts",
            "x-id",
        )

    @pytest.mark.parametrize(("algorithm", "encoding"), [("md5", "hex"), ("sha256", "b32")])
    def test_sign_refuses_unknown_choices(self, algorithm: str, encoding: str) -> None:
        with pytest.raises(ValueError, match="unknown"):
            sign(b"k", b"", algorithm, encoding)


SCHEMES = [
    GITHUB,
    SLACK,
    HmacScheme(header="X-Sig", encoding="base64"),
    HmacScheme(
        header="X-Sig",
        algorithm="sha1",
        template="{id}.{timestamp}.{body}",
        timestamp_header="X-TS",
        id_header="X-Id",
    ),
]
NAMES = [
    "x-hub-signature-256",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-sig",
    "x-ts",
    "x-id",
]


@given(
    scheme=st.sampled_from(SCHEMES),
    headers=st.dictionaries(
        st.sampled_from(NAMES) | st.text(max_size=10),
        st.text(max_size=120) | st.sampled_from([GITHUB_SHA256, str(SLACK_TIMESTAMP), "sha256="]),
        max_size=6,
    ),
    body=st.binary(max_size=200),
    now=st.floats() | st.integers(min_value=-(2**40), max_value=2**40),
    tolerance=st.floats() | st.integers(min_value=-10, max_value=2**40),
    secrets=st.lists(st.binary(max_size=40), max_size=3),
)
def test_any_input_raises_only_verification_error(
    scheme: HmacScheme,
    headers: dict[str, str],
    body: bytes,
    now: float,
    tolerance: float,
    secrets: list[bytes],
) -> None:
    try:
        scheme.verify(secrets, headers=headers, body=body, now=now, tolerance=tolerance)
    except VerificationError as exc:
        assert exc.reason in {
            "missing_header",
            "malformed_header",
            "timestamp_too_old",
            "timestamp_too_new",
            "no_matching_signature",
        }
