"""URL pieces the schemes that sign a URL need: splitting without raising, ports."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

__all__ = ["DEFAULT_PORTS", "host_of", "netloc_with", "port_variants", "split_url"]

DEFAULT_PORTS = {"http": 80, "https": 443}


def split_url(url: str) -> SplitResult | None:
    """``url`` split, or ``None`` when it is not an absolute http(s) URL (never raises)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here, not later
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.netloc:
        return None
    return parts


def host_of(parts: SplitResult) -> str | None:
    """The host as written in the URL (IPv6 literals keep their brackets)."""
    netloc = parts.netloc.rpartition("@")[2]
    if netloc.startswith("["):
        end = netloc.find("]")
        return netloc[: end + 1] if end > 0 else None
    return netloc.partition(":")[0] or None


def netloc_with(parts: SplitResult, host: str, port: int | None) -> str:
    """The URL's netloc with ``host`` and ``port`` (none when ``None``), user info kept."""
    userinfo, at, _ = parts.netloc.rpartition("@")
    prefix = userinfo + at
    return f"{prefix}{host}:{port}" if port is not None else f"{prefix}{host}"


def port_variants(url: str) -> tuple[str, ...]:
    """``url`` as written, then without its port or with the scheme's default port.

    >>> port_variants("https://example.com/hook")
    ('https://example.com/hook', 'https://example.com:443/hook')

    Twilio's own request validators accept both, because its signing is not
    consistent about an explicit port. An unparsable URL comes back alone.
    """
    parts = split_url(url)
    host = host_of(parts) if parts is not None else None
    if parts is None or host is None:
        return (url,)
    if parts.port is not None:
        other = urlunsplit(parts._replace(netloc=netloc_with(parts, host, None)))
    else:
        default = DEFAULT_PORTS[parts.scheme.lower()]
        other = urlunsplit(parts._replace(netloc=netloc_with(parts, host, default)))
    return tuple(dict.fromkeys((url, other)))
