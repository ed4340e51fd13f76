"""Why a signature failed, told to a person: the checks every provider shares.

A rejection answers a generic ``401``; the reason and these hints go to the logs, the
stored rejection record and ``hookwise verify``. Each check is cheap and never
raises; none prints a secret. Providers add their own (wrong URL for URL signers,
``whsec_`` decoded or not) by overriding :meth:`Source.diagnose` and calling
:func:`common_hints`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from hookwise.errors import VerificationError

if TYPE_CHECKING:
    from hookwise.providers._base import Inbound, Source

__all__ = [
    "api_key_hints",
    "clock_hints",
    "common_hints",
    "encoding_hint",
    "json_variants",
    "reserialized_hint",
    "try_variants",
]

log = logging.getLogger("hookwise.diagnose")

SKEW_WORTH_MENTIONING = 30.0
"""Seconds of clock difference below which skew is not suggested as the cause."""

# Prefixes of credentials that are not webhook signing secrets, and what they are.
_API_KEY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("sk_live_", "a Stripe secret API key"),
    ("sk_test_", "a Stripe secret API key"),
    ("rk_live_", "a Stripe restricted API key"),
    ("rk_test_", "a Stripe restricted API key"),
    ("pk_live_", "a Stripe publishable key"),
    ("pk_test_", "a Stripe publishable key"),
    ("xoxb-", "a Slack bot token"),
    ("xoxp-", "a Slack user token"),
    ("xapp-", "a Slack app-level token"),
    ("ghp_", "a GitHub personal access token"),
    ("github_pat_", "a GitHub personal access token"),
    ("shpat_", "a Shopify access token"),
    ("shpss_", "a Shopify shared secret of the legacy kind"),
    ("SG.", "a SendGrid API key"),
    ("AC", "a Twilio account SID"),
)
_TWILIO_SID = re.compile(r"AC[0-9a-f]{32}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def common_hints(source: Source, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
    """The shared checks, in the order a person should read them."""
    hints: list[str] = []
    try:
        hints += clock_hints(error)
        hints += api_key_hints(source.secret_values)
        hint = reserialized_hint(source, request, now)
        if hint:
            hints.append(hint)
    except Exception:  # a diagnosis must never turn into a second failure
        log.debug("diagnosing a rejection failed", exc_info=True)
    return tuple(hints)


def clock_hints(error: Exception) -> list[str]:
    """Skew between the sender's clock and ours, from a timestamp rejection."""
    if not isinstance(error, VerificationError) or error.offset is None:
        return []
    offset = error.offset
    if abs(offset) < SKEW_WORTH_MENTIONING:
        return []
    if offset < 0:
        return [
            f"the signed time is {_duration(-offset)} ahead of this host's clock: "
            "check that this host keeps time (NTP); a sender's clock that far ahead "
            "is rare"
        ]
    if offset > 3600:
        return [
            f"the signed time is {_duration(offset)} old: this is a replay of an old "
            "request (a captured or manually redelivered one), or this host's clock is "
            "far ahead; check NTP, and that the sender signs each attempt afresh"
        ]
    return [
        f"the signed time is {_duration(offset)} old: the request waited somewhere "
        "(a queue, a relay, a paused debugger) or the clocks differ by that much; "
        "check NTP here, or raise the source's tolerance if a relay delays deliveries"
    ]


def api_key_hints(secrets: tuple[str, ...]) -> list[str]:
    """Secrets that look like API keys or tokens rather than webhook signing secrets."""
    hints = []
    for position, secret in enumerate(secrets, start=1):
        text = secret.strip()
        for prefix, what in _API_KEY_PREFIXES:
            if prefix == "AC":
                if not _TWILIO_SID.fullmatch(text):
                    continue
            elif not text.startswith(prefix):
                continue
            hints.append(
                f"secret number {position} looks like {what}, not a webhook signing "
                "secret: copy the signing secret from the provider's webhook settings"
            )
            break
    return hints


def encoding_hint(signature: str, *, expected: str) -> str | None:
    """When a signature is written in the other encoding than the scheme uses.

    >>> encoding_hint("3q2+7w==", expected="hex")
    'the signature is base64 where hex is expected: ...'
    """
    text = signature.strip()
    if not text:
        return None
    if expected == "hex" and not _HEX.fullmatch(text) and _BASE64.fullmatch(text):
        return (
            "the signature is base64 where hex is expected: the sender (or the source's "
            "settings) uses another encoding; for provider 'hmac' set encoding = \"base64\""
        )
    if expected == "base64" and _HEX.fullmatch(text) and len(text) in (40, 64, 128):
        return (
            "the signature is hex where base64 is expected: the sender (or the source's "
            "settings) uses another encoding; for provider 'hmac' set encoding = \"hex\""
        )
    return None


def json_variants(body: bytes) -> Iterator[tuple[bytes, str]]:
    """The same JSON document written the ways common libraries write it, except the
    way it arrived. Empty when the body is not JSON."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    styles: tuple[tuple[str, Callable[[object], str]], ...] = (
        ("compact", lambda d: json.dumps(d, separators=(",", ":"), ensure_ascii=False)),
        ("compact, ASCII-escaped", lambda d: json.dumps(d, separators=(",", ":"))),
        ("with spaces after , and :", lambda d: json.dumps(d, ensure_ascii=False)),
        ("with spaces, ASCII-escaped", json.dumps),
        ("indented by 2", lambda d: json.dumps(d, indent=2, ensure_ascii=False)),
        ("indented by 4", lambda d: json.dumps(d, indent=4, ensure_ascii=False)),
        ("with sorted keys", lambda d: json.dumps(d, sort_keys=True, separators=(",", ":"))),
    )
    seen = {body}
    for name, write in styles:
        try:
            variant = write(document).encode("utf-8")
        except (ValueError, TypeError):
            continue
        for candidate in (variant, variant + b"\n"):
            if candidate not in seen:
                seen.add(candidate)
                yield candidate, name


def try_variants(
    source: Source, request: Inbound, now: float, variants: Iterator[Inbound]
) -> Inbound | None:
    """The first variant of ``request`` that verifies, or None."""
    for variant in variants:
        try:
            source.verify_request(variant, now)
        except VerificationError:
            continue
        except Exception:
            return None
        return variant
    return None


def reserialized_hint(source: Source, request: Inbound, now: float) -> str | None:
    """When the signature matches the same JSON written differently: something between
    the sender and hookwise parsed the body and wrote it again."""
    if source.insecure or len(request.body) > 256 * 1024:
        return None
    written = dict(json_variants(request.body))
    match = try_variants(source, request, now, (request.replace(body=body) for body in written))
    if match is None:
        return None
    return (
        f"the signature matches the same JSON written {written[match.body]}: something "
        "between the sender and hookwise parsed the body and encoded it again (a proxy, "
        "a framework's JSON middleware, a test that re-serialized it); hookwise must "
        "get the raw bytes"
    )


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"
