"""What the providers that sign the URL they post to (Twilio, Square, HubSpot) share.

These senders sign the URL *as configured at the provider*, byte for byte. hookwise
knows it from the source's ``public_url`` (plus the request's query), or rebuilds it
from the request, which goes wrong behind a proxy that terminates TLS (``http``
instead of ``https``), a framework that adds or strips a trailing slash, or a port
the sender did not write. :func:`url_hint` finds which of those variants the
signature was made over and says which ``public_url`` to set.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlunsplit

from hookwise.errors import ConfigError, VerificationError
from hookwise.signatures._url import DEFAULT_PORTS, host_of, netloc_with, split_url

if TYPE_CHECKING:
    from hookwise.config import SourceSettings
    from hookwise.providers._base import Inbound, Source

__all__ = [
    "check_public_url",
    "reject_tolerance",
    "signing_url",
    "url_hint",
    "url_variants",
    "without_query",
]


def check_public_url(settings: SourceSettings) -> None:
    """A :class:`ConfigError` when ``public_url`` carries a query: the receiver appends
    the query of each request to it, so a query written there would appear twice."""
    url = settings.public_url
    if url is None:
        return
    parts = split_url(url)
    if parts is not None and (parts.query or parts.fragment):
        raise ConfigError(
            f"public_url {url!r} has a query string or fragment",
            key=f"sources.{settings.name}.public_url",
            fix=f'give it without them, like "{without_query(url)}": hookwise adds the '
            "query each request arrives with",
        )


def reject_tolerance(settings: SourceSettings, sender: str) -> None:
    """A :class:`ConfigError` when ``tolerance`` is set for a sender that signs no time."""
    from hookwise.config import DEFAULT_TOLERANCE

    if settings.tolerance != DEFAULT_TOLERANCE:
        raise ConfigError(
            f"{sender} signs no timestamp, so tolerance has nothing to check",
            key=f"sources.{settings.name}.tolerance",
            fix="remove it; replays are caught by the dedup key",
        )


def signing_url(source: Source, signs: str) -> str:
    """The URL to sign a request for ``source`` with: its ``public_url``, or a
    ``ValueError`` saying to set it. ``signs`` says what the sender signs
    ("Twilio signs the URL it posts to")."""
    if not source.public_url:
        raise ValueError(
            f"source {source.name!r} has no public_url: {signs}, so set public_url to sign requests"
        )
    return source.public_url


def without_query(url: str) -> str:
    """``url`` without its query string and fragment."""
    return url.split("#", 1)[0].split("?", 1)[0]


def url_variants(url: str) -> Iterator[tuple[str, str]]:
    """Other ways the sender may have written ``url``, fewest changes first, each with
    what differs: the other scheme, a trailing slash added or removed, the query
    dropped, the port dropped or made explicit."""
    parts = split_url(url)
    host = host_of(parts) if parts is not None else None
    if parts is None or host is None:
        return
    port = parts.port
    scheme = parts.scheme.lower()
    other_scheme = {"http": "https", "https": "http"}.get(scheme)
    schemes: list[tuple[str, str | None]] = [(parts.scheme, None)]
    if other_scheme:
        schemes.append((other_scheme, f"{other_scheme} instead of {scheme}"))
    path = parts.path
    slash = path[:-1] if path.endswith("/") else path + "/"
    slash_change = "without the trailing slash" if path.endswith("/") else "with a trailing slash"
    paths: list[tuple[str, str | None]] = [(path, None), (slash, slash_change)]
    queries: list[tuple[str, str | None]] = [(parts.query, None)]
    if parts.query:
        queries.append(("", "without the query string"))
    ports: list[tuple[str, str | None]] = [("keep", None)]
    ports.append(("drop", f"without the port :{port}") if port else ("explicit", None))

    found: list[tuple[int, str, str]] = []
    seen = {url}
    for (new_scheme, a), (new_path, b), (new_query, c), (port_mode, d) in itertools.product(
        schemes, paths, queries, ports
    ):
        if port_mode == "keep":
            new_port = port
        elif port_mode == "drop":
            new_port = None
        else:
            new_port = DEFAULT_PORTS.get(new_scheme.lower())
            if new_port is None:
                continue
            d = f"with the explicit port :{new_port}"
        candidate = urlunsplit(
            SplitResult(new_scheme, netloc_with(parts, host, new_port), new_path, new_query, "")
        )
        if candidate in seen:
            continue
        seen.add(candidate)
        changed = [change for change in (a, b, c, d) if change]
        found.append((len(changed), candidate, ", ".join(changed)))
    for _, candidate, what in sorted(found, key=lambda item: item[0]):
        yield candidate, what


def url_hint(source: Source, request: Inbound, now: float) -> str | None:
    """Which URL the signature was made over, when it is a variant of the one hookwise
    checked, and the ``public_url`` that fixes it."""
    if not request.url:
        return (
            "no URL to check the signature against: set public_url to the URL "
            "configured at the provider"
        )
    for candidate, changes in url_variants(request.url):
        try:
            source.verify_request(request.replace(url=candidate), now)
        except VerificationError:
            continue
        except Exception:
            return None
        if changes == "without the query string":
            return (
                f"the signature matches the URL without its query string ({candidate}): "
                "something between the sender and hookwise adds a query to the URL"
            )
        how = (
            "hookwise checked the public_url setting"
            if source.public_url
            else "hookwise rebuilt the URL from the Host header (and X-Forwarded-* of "
            "trusted proxies)"
        )
        return (
            f"the signature matches {candidate} ({changes}), not {request.url}: {how}; "
            f'set public_url = "{without_query(candidate)}" for this source'
        )
    return None
