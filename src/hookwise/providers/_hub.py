"""What the "HMAC of the raw body" providers share (GitHub, Bitbucket, Jira, Intercom,
Meta, Dropbox, Shopify, Linear).

Each of them signs exactly the bytes it posts, with one header holding a prefix and the
encoded HMAC (``X-Hub-Signature-256: sha256=<hex>``, ``X-Shopify-Hmac-Sha256: <base64>``).
What differs is the header, the hash, the encoding, where the delivery id and the type
are, and the handshakes; this module holds the rest:

- :class:`BodySignature`: one such header, verified against keys prepared once
  (:class:`~hookwise.signatures._common.HmacKey`) and signed through
  :class:`~hookwise.signatures.hmac.HmacScheme`.
- :class:`Rules`: the extraction rules, which for these providers need more than one
  spec can say: a type built from two places (GitHub's ``X-GitHub-Event`` header plus the
  body's ``action``: ``issues.opened``), fallbacks, and times in milliseconds.
- :class:`HubSource`: a source verified by such signatures and described by such rules.
- :func:`hub_hints`: diagnosis of the mistakes these schemes invite (a prefix stripped,
  another hash, the other encoding, a secret with stray whitespace, a signature header
  that belongs to another provider).
"""

from __future__ import annotations

import base64
import logging
import math
import secrets as _random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers._base import (
    UNKNOWN_TYPE,
    Description,
    Extraction,
    Inbound,
    Source,
    body_digest,
    pick_secret,
)
from hookwise.providers._diagnose import common_hints, encoding_hint
from hookwise.providers._extract import (
    NOT_JSON,
    Spec,
    extract,
    lookup,
    parse_body,
    parse_body_fast,
    parse_spec,
    to_timestamp,
)
from hookwise.signatures._common import HmacKey, constant_time_equal
from hookwise.signatures.hmac import HmacScheme

__all__ = [
    "BodySignature",
    "HubSource",
    "Rules",
    "build_rules",
    "flag_option",
    "hub_hints",
    "iso_time",
    "json_bytes",
    "new_uuid",
    "no_tolerance",
    "numeric_id",
    "text_option",
]

log = logging.getLogger("hookwise.diagnose")

# Senders put one signature in the header; a few values separated by commas or spaces
# are tolerated (a relay that appends one), never more than this many are compared.
_MOST_CANDIDATES = 8


class BodySignature:
    """One signature header over the raw body, with the keys that may have made it.

    >>> github = BodySignature("X-Hub-Signature-256", "sha256", "hex", "sha256=",
    ...                        [b"It's a Secret to Everybody"])
    >>> github.verify({"x-hub-signature-256": github.sign(0, b"Hello, World!")},
    ...               b"Hello, World!")

    :meth:`verify` raises only :class:`~hookwise.errors.VerificationError`, with the
    reasons ``missing_header``, ``malformed_header`` and ``no_matching_signature``.
    """

    __slots__ = ("_keys", "_secrets", "display", "scheme")

    def __init__(
        self,
        header: str,
        algorithm: str,
        encoding: str,
        prefix: str,
        secrets: Sequence[bytes],
    ) -> None:
        self.display = header
        """The header name as the provider spells it, for messages."""
        self.scheme = HmacScheme(
            header=header, algorithm=algorithm, encoding=encoding, prefix=prefix
        )
        self._secrets = tuple(secrets)
        self._keys = tuple(HmacKey(secret, algorithm) for secret in secrets)

    def __repr__(self) -> str:
        return f"<BodySignature {self.display} {self.scheme.algorithm}>"  # never a key

    @property
    def header(self) -> str:
        """The lowercase header name."""
        return self.scheme.header

    def sign(self, secret_index: int, body: bytes) -> str:
        """The header value the sender would put on ``body`` with secret ``secret_index``."""
        return self.scheme.sign(pick_secret(self._secrets, secret_index), body)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Return if the header holds a signature of ``body`` by one of the keys."""
        value = headers.get(self.scheme.header)
        if not value or not value.strip():
            raise VerificationError(
                "missing_header", f"the {self.display} header is missing or empty"
            )
        candidates = self.candidates(value)
        if not candidates:
            expected = f"a value starting with {self.scheme.prefix!r}" if self.scheme.prefix else ""
            raise VerificationError(
                "malformed_header", f"{self.display} holds no {expected or 'signature'}"
            )
        for key in self._keys:
            expected = self._encode(key.digest(body))
            for given in candidates:
                if constant_time_equal(expected, given):
                    return
        raise VerificationError(
            "no_matching_signature",
            f"the signature in {self.display} matches none of the {len(self._keys)} secret(s)",
        )

    def matches(self, secret: bytes, value: str, body: bytes) -> bool:
        """Whether ``value`` (a header value) signs ``body`` with ``secret``; for diagnosis."""
        expected = self._encode(HmacKey(secret, self.scheme.algorithm).digest(body))
        return any(constant_time_equal(expected, given) for given in self.candidates(value))

    def candidates(self, value: str) -> list[str]:
        """The encoded signatures in a header value, prefix removed."""
        prefix = self.scheme.prefix.lower()
        found: list[str] = []
        for item in value.replace(",", " ").split()[:_MOST_CANDIDATES]:
            if item[: len(prefix)].lower() != prefix:
                continue
            signature = item[len(prefix) :]
            if signature:
                found.append(signature.lower() if self.scheme.encoding == "hex" else signature)
        return found

    def _encode(self, digest: bytes) -> str:
        if self.scheme.encoding == "hex":
            return digest.hex()
        return base64.b64encode(digest).decode("ascii")


# -- extraction ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rules:
    """Where a delivery's id, type, ordering key and time are, with fallbacks.

    Each field lists places tried in order; the first that holds a value wins. The
    type may get a suffix (``action``): ``issues`` + ``opened`` is ``issues.opened``.
    Times are ``(place, units per second)``: ``1000`` for milliseconds.

    >>> rules = Rules(type=(parse_spec("header:X-GitHub-Event", key="k"),),
    ...               action=(parse_spec("body:action", key="k"),))
    >>> rules.describe(b'{"action": "opened"}', {"x-github-event": "issues"}).type
    'issues.opened'
    """

    dedup: tuple[Spec, ...] = ()
    type: tuple[Spec, ...] = ()
    action: tuple[Spec, ...] = ()
    ordering_key: tuple[Spec, ...] = ()
    occurred_at: tuple[tuple[Spec, int], ...] = ()
    needs_body: bool = field(init=False, repr=False, compare=False)
    _body_paths: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        specs = [
            *self.dedup,
            *self.type,
            *self.action,
            *self.ordering_key,
            *(spec for spec, _ in self.occurred_at),
        ]
        paths = tuple(spec.path for spec in specs if spec.kind == "body")
        object.__setattr__(self, "needs_body", bool(paths))
        object.__setattr__(self, "_body_paths", paths)

    def document(self, body: bytes) -> object:
        """The body as JSON when a rule reads it (parsed once), else ``NOT_JSON``."""
        if not self.needs_body:
            return NOT_JSON
        document, inexact = parse_body_fast(body)
        if inexact and any(isinstance(lookup(p, document), float) for p in self._body_paths):
            document = parse_body(body)  # that float may have been a long integer
        return document

    def describe(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        document: object = None,
        suffix: Callable[[object], str | None] | None = None,
    ) -> Description:
        """The fields of one delivery; never raises, falls back instead.

        ``suffix`` computes the type's suffix where :attr:`action` can't say it.
        """
        if document is None:
            document = self.document(body)
        dedup_key = _first(self.dedup, headers, document)
        event_type = _first(self.type, headers, document)
        if event_type is not None:
            action = _first(self.action, headers, document) if self.action else None
            if action is None and suffix is not None:
                action = suffix(document)
            if action is not None:
                event_type = f"{event_type}.{action}"
        occurred_at = None
        for spec, per_second in self.occurred_at:
            value = extract(spec, headers, document)
            moment = to_timestamp(value) if value is not None else None
            if moment is not None and math.isfinite(moment / per_second):
                occurred_at = moment / per_second
                break
        return Description(
            dedup_key=dedup_key or body_digest(body),
            type=event_type or UNKNOWN_TYPE,
            ordering_key=_first(self.ordering_key, headers, document),
            occurred_at=occurred_at,
        )

    def extraction(self) -> Extraction:
        """The closest single-spec :class:`Extraction` (what ``Source.extraction`` shows)."""
        return Extraction(
            dedup=self.dedup[0] if self.dedup else None,
            type=self.type[0] if self.type else None,
            ordering_key=self.ordering_key[0] if self.ordering_key else None,
            occurred_at=self.occurred_at[0][0] if self.occurred_at else None,
        )


def _first(specs: Iterable[Spec], headers: Mapping[str, str], document: object) -> str | None:
    for spec in specs:
        value = extract(spec, headers, document)
        if value is not None:
            return value
    return None


def build_rules(
    settings: SourceSettings,
    *,
    dedup: Sequence[str] = (),
    type: Sequence[str] = (),
    action: Sequence[str] = (),
    ordering_key: Sequence[str] = (),
    occurred_at: Sequence[tuple[str, int]] = (),
) -> Rules:
    """The provider's default places, each replaced by the setting when one is given.

    A ``type`` setting replaces the whole type, suffix included; an ``occurred_at``
    setting is read in seconds (or as an ISO-8601 time).
    """
    prefix = f"sources.{settings.name}"

    def specs(
        given: str | None, name: str, defaults: Sequence[str], *, const: bool = False
    ) -> tuple[Spec, ...]:
        texts = (given,) if given is not None else tuple(defaults)
        return tuple(parse_spec(t, key=f"{prefix}.{name}", allow_const=const) for t in texts)

    times: tuple[tuple[Spec, int], ...]
    if settings.occurred_at is not None:
        times = ((parse_spec(settings.occurred_at, key=f"{prefix}.occurred_at"), 1),)
    else:
        times = tuple(
            (parse_spec(text, key=f"{prefix}.occurred_at"), unit) for text, unit in occurred_at
        )
    return Rules(
        dedup=specs(settings.dedup_key, "dedup_key", dedup),
        type=specs(settings.type, "type", type, const=True),
        action=() if settings.type is not None else specs(None, "type", action),
        ordering_key=specs(settings.ordering_key, "ordering_key", ordering_key),
        occurred_at=times,
    )


# -- the source ------------------------------------------------------------------------


class HubSource(Source):
    """A source verified by one :class:`BodySignature` and described by :class:`Rules`.

    Subclasses set :attr:`provider`, :attr:`key_hint` and implement
    :meth:`sign_headers` and :meth:`samples`; most verify with :attr:`signature` as is.
    """

    key_hint: str = ""
    """Where the provider shows the secret, said when no signature matches."""
    missing_hint: str = ""
    """Why the signature header may be absent, said when it is."""

    def __init__(
        self,
        name: str,
        rules: Rules,
        *,
        signature: BodySignature,
        secrets: tuple[str, ...],
        secret_values: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(
            name,
            rules.extraction(),
            secret_values=secrets if secret_values is None else secret_values,
        )
        self.rules = rules
        self.signature = signature
        self.signing_secrets = secrets
        """The secrets that sign (``secret_values`` may hold other credentials too)."""

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self.signature.verify(headers, body)

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        return self.rules.describe(body, headers)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        hints: list[str] = []
        try:
            hints += self.provider_hints(request, now, error)
        except Exception:  # a diagnosis must never turn into a second failure
            log.debug("diagnosing a %s rejection failed", self.provider, exc_info=True)
        return (*hints, *common_hints(self, request, now, error))

    def provider_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        """The hints of this provider; the shared ones by default."""
        return hub_hints(self, self.signature, request, error)


# Which provider puts which prefix in which header: said when a delivery carries a
# signature header that belongs to another provider than the source's.
_KNOWN_HEADERS: tuple[tuple[str, str, str], ...] = (
    ("x-hub-signature-256", "sha256=", "github or meta"),
    ("x-hub-signature", "sha256=", "bitbucket or jira"),
    ("x-hub-signature", "sha1=", "intercom (or the legacy SHA-1 header of github and meta)"),
    ("x-shopify-hmac-sha256", "", "shopify"),
    ("linear-signature", "", "linear"),
    ("x-dropbox-signature", "", "dropbox"),
)


def hub_hints(
    source: HubSource, signature: BodySignature, request: Inbound, error: Exception
) -> list[str]:
    """The checks every body-HMAC provider shares, most telling first."""
    reason = getattr(error, "reason", "")
    value = request.headers.get(signature.header, "").strip()
    hints: list[str] = []
    if not value:
        others = [
            f"{name} ({provider})"
            for name, prefix, provider in _KNOWN_HEADERS
            if name != signature.header
            and request.headers.get(name, "").strip().lower().startswith(prefix)
            and request.headers.get(name, "").strip()
        ]
        if others:
            hints.append(
                f"there is no {signature.display} header, but there is "
                + ", ".join(others)
                + f": the sender is not {source.provider}, or the source's provider is wrong"
            )
        elif source.missing_hint:
            hints.append(source.missing_hint)
        return hints
    prefix = signature.scheme.prefix
    if prefix and not value.lower().startswith(prefix.lower()):
        algorithm, equals, rest = value.partition("=")
        if equals and algorithm.lower() in ("sha1", "sha256", "sha512") and rest:
            hints.append(
                f"{signature.display} holds a {algorithm.lower()} signature where "
                f"{source.provider} sends {prefix[:-1]}: the sender is not {source.provider} "
                "or was set to another hash; the source's provider is wrong for it"
            )
        elif _fits(source, signature, prefix + value, request.body):
            hints.append(
                f"{signature.display} lacks the {prefix!r} prefix, and the signature matches "
                "once it is added: something between the sender and hookwise (a proxy, a "
                "test) strips it; send the header as the provider does"
            )
        else:
            hints.append(
                f"{signature.display} lacks the {prefix!r} prefix {source.provider} puts "
                "before the signature: the sender is not " + source.provider
            )
    elif not prefix:
        algorithm, equals, rest = value.partition("=")
        if equals and algorithm.lower() in ("sha1", "sha256", "sha512") and rest:
            fits = _fits(source, signature, rest, request.body)
            hints.append(
                f"{signature.display} starts with {algorithm}=, which {source.provider} does "
                "not write"
                + (
                    ": the rest matches, so something adds the prefix on the way"
                    if fits
                    else f": the sender is not {source.provider}"
                )
            )
    for given in signature.candidates(value) or [value]:
        hint = encoding_hint(given, expected=signature.scheme.encoding)
        if hint:
            hints.append(hint)
            break
    for position, secret in enumerate(source.signing_secrets, start=1):
        stripped = secret.strip()
        if stripped != secret and _fits(source, signature, value, request.body, stripped):
            hints.append(
                f"secret number {position} has spaces or a line break around it, and the "
                "signature matches without them: remove them where the secret is set"
            )
    if reason == "no_matching_signature" and source.key_hint:
        hints.append(source.key_hint)
    return hints


def _fits(
    source: HubSource,
    signature: BodySignature,
    value: str,
    body: bytes,
    secret: str | None = None,
) -> bool:
    secrets = [secret] if secret is not None else list(source.signing_secrets)
    return any(signature.matches(s.encode("utf-8"), value, body) for s in secrets)


# -- settings --------------------------------------------------------------------------


def no_tolerance(settings: SourceSettings, why: str) -> None:
    """A :class:`ConfigError` when ``tolerance`` is set for a provider that signs no time."""
    default = SourceSettings(name=settings.name, provider=settings.provider).tolerance
    if settings.tolerance != default:
        raise ConfigError(
            f"tolerance is not used by provider {settings.provider!r}: {why}",
            key=f"sources.{settings.name}.tolerance",
            fix="remove it",
        )


def flag_option(settings: SourceSettings, name: str, default: bool = False) -> bool:
    """A true/false provider option; a :class:`ConfigError` when it is anything else."""
    value = settings.options.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(
            f"{name} must be true or false, not {value!r}",
            key=f"sources.{settings.name}.{name}",
            fix=f"write {name} = true (without quotes)",
        )
    return value


def text_option(settings: SourceSettings, name: str, *, fix: str) -> str:
    """A required, non-empty text option; a :class:`ConfigError` when missing or empty."""
    value = settings.options.get(name)
    key = f"sources.{settings.name}.{name}"
    if value is None:
        raise ConfigError(f"provider {settings.provider!r} needs {name}", key=key, fix=fix)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be non-empty text", key=key, fix=fix)
    return value


# -- samples ---------------------------------------------------------------------------


def numeric_id(digits: int = 10) -> int:
    """A fresh random id of ``digits`` digits, as providers number their objects."""
    low: int = 10 ** (digits - 1)
    return low + _random.randbelow(9 * low)


def new_uuid() -> str:
    """A fresh random UUID, as most providers write delivery ids."""
    return str(uuid.uuid4())


def iso_time(now: float, *, millis: bool = True, offset: str = "Z") -> str:
    """``now`` as an ISO-8601 UTC time (``2023-11-14T22:13:20.000Z``)."""
    moment = datetime.fromtimestamp(now, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        text += f".{moment.microsecond // 1000:03d}"
    return text + offset


def json_bytes(document: object, *, ascii_only: bool = False) -> bytes:
    """``document`` as compact JSON bytes (non-ASCII escaped when ``ascii_only``)."""
    import json

    return json.dumps(document, separators=(",", ":"), ensure_ascii=ascii_only).encode("utf-8")
