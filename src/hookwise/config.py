"""``hookwise.toml`` -> frozen, validated settings.

Settings are plain frozen dataclasses, so the same objects can be built in Python.
:func:`load_config` reads a file, resolves ``env:NAME`` secrets and
``HOOKWISE_STORE_URL``, and turns every mistake into one :class:`ConfigError` that
names the file, the key and the fix.

A relative SQLite path in ``[store] url`` is relative to the directory of the config
file, so ``hookwise -c /srv/app/hookwise.toml`` finds the same database from anywhere.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from .durations import parse_duration
from .errors import ConfigError
from .poller.settings import PollSettings, parse_poll

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "STORE_URL_ENV",
    "HandlerSettings",
    "MissingSecretError",
    "ServerSettings",
    "Settings",
    "SourceSettings",
    "StoreSettings",
    "WorkerSettings",
    "load_config",
    "parse_config",
]

DEFAULT_CONFIG_FILE = "hookwise.toml"
DEFAULT_STORE_URL = "sqlite:///hookwise.db"
DEFAULT_TOLERANCE = 300.0
DEFAULT_MAX_BODY_BYTES = 1_048_576

Durability = Literal["full", "normal"]
Ordering = Literal["none", "serial", "latest", "coalesce"]


@dataclass(frozen=True, slots=True)
class StoreSettings:
    url: str = DEFAULT_STORE_URL
    durability: Durability = "full"
    busy_timeout: float = 5.0
    """Seconds a write waits for a lock before the store reports itself unavailable."""
    group_commit: bool = True
    """Share one transaction and one fsync among concurrent appends. Off only to measure."""
    max_pending: int = 10_000
    """Appends allowed to wait for a commit before new ones are answered 503."""
    retention: float | None = None
    """Seconds finished events are kept (their deliveries all done or skipped); None
    keeps everything. Dead letters stay until retried or discarded."""
    pool_size: int = 10
    """PostgreSQL: connections per process for claims, settles and reads (the intake
    has its own)."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs of reverse proxies whose ``X-Forwarded-For``/``-Proto``/``-Host`` are
    believed; from anyone else those headers are ignored."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int = 16
    """Handler runs in flight at once, per worker process."""
    threads: int = 8
    """Thread-pool size for sync handlers."""
    batch: int = 32
    """Deliveries claimed per round trip."""
    lease: float = 30.0
    """Seconds a claim is held before another worker may take it; extended while running."""
    poll_interval: float = 0.5
    """Seconds between claims when idle (appends in the same process wake it at once)."""
    grace: float = 10.0
    """On SIGTERM, seconds in-flight handlers get to finish before they are released."""


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """One intake endpoint, ``POST /hooks/{name}``."""

    name: str
    provider: str
    secrets: tuple[str, ...] = ()
    tolerance: float = DEFAULT_TOLERANCE
    dedup_key: str | None = None
    """``header:NAME`` or ``body:dotted.path``; the provider's default if None."""
    type: str | None = None
    """Where the event type is: ``header:NAME``, ``body:path`` or a literal ``const:NAME``."""
    ordering: Ordering = "none"
    """``serial``, ``latest`` or ``coalesce``: one event at a time per ordering key and
    handler (see docs/ordering.md); ``none`` runs deliveries in parallel."""
    ordering_key: str | None = None
    """Where the key of the object an event is about is; the provider's default if None."""
    occurred_at: str | None = None
    """Where the time an event happened is; the provider's default if None."""
    reorder_window: float = 0.0
    """Seconds a new event is held back so that a late, earlier one can go first
    (ordered sources only)."""
    # generic HMAC
    header: str | None = None
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    timestamp_header: str | None = None
    signed_content: str | None = None
    """What is signed, e.g. ``"{timestamp}.{body}"``; the raw body when None."""
    options: Mapping[str, object] = field(default_factory=dict)
    """Provider-specific settings not listed above (``"env:NAME"`` values resolved)."""
    public_url: str | None = None
    """The URL the provider posts to, for providers that sign it (Twilio, Square,
    HubSpot); rebuilt from the request when None."""
    allow_ips: tuple[str, ...] = ()
    """CIDRs the deliveries must come from; empty means any address."""
    backfill: str | None = None
    """The name of a poll whose events go to this source, to catch what webhooks missed
    (the poll's ``source`` becomes this source's name)."""


@dataclass(frozen=True, slots=True)
class HandlerSettings:
    name: str
    call: str
    source: str = "*"
    events: tuple[str, ...] = ("*",)
    max_attempts: int = 40
    max_age: float = 3 * 86400.0
    timeout: float = 60.0
    base_delay: float = 2.0
    max_delay: float = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class Settings:
    store: StoreSettings = field(default_factory=StoreSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    handlers: tuple[HandlerSettings, ...] = ()
    polls: Mapping[str, PollSettings] = field(default_factory=dict)
    """``[polls.NAME]`` tables, in the file's order."""
    path: str | None = None
    """The file these settings came from, for messages."""
    warnings: tuple[str, ...] = ()
    """Things worth saying at start-up (literal secrets, ``provider = "none"``...)."""


STORE_URL_ENV = "HOOKWISE_STORE_URL"
"""Set, it replaces ``[store] url`` (handy for containers and tests)."""

_SOURCE_NAME = re.compile(r"[a-z0-9_-]+")
_HANDLER_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_POLL_NAME = _HANDLER_NAME
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALL = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_FALLBACK_PROVIDERS = frozenset({"standard", "hmac", "none"})
_STORE_SCHEMES = ("sqlite", "postgresql", "postgres", "memory")
_SQLITE_PREFIX = "sqlite:///"
_DURATION_FIX = 'write it like "250ms", "30s", "5m", "1h30m", "3d" or a number of seconds'

_SECTIONS = ("store", "server", "worker", "sources", "polls", "handlers")
_STORE_KEYS = (
    "url", "durability", "busy_timeout", "group_commit", "max_pending", "retention", "pool_size",
)  # fmt: skip
_SERVER_KEYS = ("host", "port", "max_body_bytes", "trusted_proxies")
_WORKER_KEYS = ("concurrency", "threads", "batch", "lease", "poll_interval", "grace")
_SOURCE_KEYS = (
    "provider", "secrets", "tolerance", "dedup_key", "type", "ordering", "ordering_key",
    "occurred_at", "reorder_window", "header", "algorithm", "encoding", "prefix",
    "timestamp_header", "signed_content", "options", "public_url", "allow_ips", "backfill",
)  # fmt: skip
_HANDLER_KEYS = (
    "name", "call", "source", "events", "max_attempts", "max_age", "timeout", "base_delay",
    "max_delay",
)  # fmt: skip


class MissingSecretError(ConfigError):
    """``env:NAME`` secrets whose variables are unset or empty; the rest of the file is valid.

    ``missing`` lists ``(key, variable)`` pairs. ``settings`` is the validated config with
    those secrets left out, so ``hookwise doctor`` can go on with its other checks.

    >>> try:
    ...     load_config("hookwise.toml", env={})
    ... except MissingSecretError as exc:
    ...     print(exc.missing)
    (('sources.demo.secrets', 'HOOKWISE_DEMO_SECRET'),)
    """

    def __init__(
        self, missing: tuple[tuple[str, str], ...], settings: Settings, *, file: str | None
    ) -> None:
        self.missing = missing
        self.settings = settings
        key, variable = missing[0]
        variables = list(dict.fromkeys(var for _, var in missing))
        if len(variables) == 1:
            problem = f"the environment variable {variable} is not set (or is empty)"
        else:
            problem = f"the environment variables {', '.join(variables)} are not set (or are empty)"
        fix = "; ".join(f"export {var}=..." for var in variables)
        super().__init__(problem, file=file, key=key, fix=fix)


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate a ``hookwise.toml`` (``./hookwise.toml`` when ``path`` is None).

    ``env`` (``os.environ`` by default) resolves ``"env:NAME"`` secrets and
    ``HOOKWISE_STORE_URL``. Every mistake raises one :class:`ConfigError` naming the
    file, the key and the fix; unset secrets raise :class:`MissingSecretError`.

    >>> settings = load_config("hookwise.toml", env={"STRIPE_SECRET": "whsec_..."})
    >>> settings.sources["stripe"].tolerance
    300.0
    """
    file_path = Path(DEFAULT_CONFIG_FILE if path is None else path)
    shown = os.fspath(file_path)
    try:
        data = file_path.read_bytes()
    except FileNotFoundError:
        where = file_path.resolve().parent
        raise ConfigError(
            f"config file not found (looked in {where})",
            file=shown,
            fix="run `hookwise init`, or pass -c FILE",
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            "is a directory, not a config file", file=shown, fix="pass -c path/to/hookwise.toml"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"can't read the config file: {exc.strerror}",
            file=shown,
            fix="check the path and its permissions",
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start})", file=shown, fix="save the file as UTF-8"
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where_match = re.search(r"line (\d+), column (\d+)", str(exc))
        fix = (
            f"correct the TOML syntax at line {where_match[1]}, column {where_match[2]}"
            if where_match
            else "correct the TOML syntax"
        )
        raise ConfigError(f"not valid TOML: {exc}", file=shown, fix=fix) from None
    return parse_config(raw, file=shown, base_dir=file_path.resolve().parent, env=env)


def parse_config(
    raw: Mapping[str, Any],
    *,
    file: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Validate an already-parsed TOML document; what :func:`load_config` does after reading.

    ``base_dir`` anchors a relative SQLite path (the current directory when None).

    >>> parse_config({"sources": {"demo": {"provider": "none"}}}).sources["demo"].provider
    'none'
    """
    parser = _Parser(
        file=file,
        base_dir=Path(base_dir) if base_dir is not None else None,
        env=os.environ if env is None else env,
    )
    settings = parser.settings(raw)
    if parser.missing:
        raise MissingSecretError(tuple(parser.missing), settings, file=file)
    return settings


class _Parser:
    """Walks one TOML document; every check raises a ConfigError pointing into it."""

    def __init__(self, *, file: str | None, base_dir: Path | None, env: Mapping[str, str]):
        self.file = file
        self.base_dir = base_dir
        self.env = env
        self.warnings: list[str] = []
        self.missing: list[tuple[str, str]] = []
        self.providers = _provider_hooks()

    def error(self, problem: str, key: str | None, fix: str | None = None) -> ConfigError:
        return ConfigError(problem, file=self.file, key=key, fix=fix)

    def warn(self, key: str, text: str) -> None:
        where = f"{self.file}: " if self.file else ""
        self.warnings.append(f"{where}[{key}] {text}")

    # -- sections ---------------------------------------------------------------------

    def settings(self, raw: Mapping[str, Any]) -> Settings:
        self.check_keys(raw, _SECTIONS, None)
        store = self.store(self.table(raw.get("store", {}), "store"))
        server = self.server(self.table(raw.get("server", {}), "server"))
        worker = self.worker(self.table(raw.get("worker", {}), "worker"))
        sources_raw = self.table(raw.get("sources", {}), "sources")
        sources = {name: self.source(name, value) for name, value in sources_raw.items()}
        polls = self.polls(raw.get("polls", {}), sources)
        targets = {*sources, *(poll.source for poll in polls.values())}
        handlers = self.handlers(raw.get("handlers", []), targets)
        return Settings(
            store=store,
            server=server,
            worker=worker,
            sources=sources,
            handlers=handlers,
            polls=polls,
            path=self.file,
            warnings=tuple(self.warnings),
        )

    def store(self, raw: Mapping[str, Any]) -> StoreSettings:
        self.check_keys(raw, _STORE_KEYS, "store")
        defaults = StoreSettings()
        override = self.env.get(STORE_URL_ENV, "").strip()
        if override:
            url = self.store_url(override, f"store.url (from {STORE_URL_ENV})", relative=False)
        else:
            value = self.string(raw["url"], "store.url") if "url" in raw else defaults.url
            if value.startswith("env:"):
                value = self.env_value(value[4:], "store.url")
            url = self.store_url(value, "store.url", relative=True)
        durability = self.choice(
            raw.get("durability", defaults.durability), "store.durability", get_args(Durability)
        )
        return StoreSettings(
            url=url,
            durability=durability,  # type: ignore[arg-type]  # checked by choice()
            busy_timeout=self.duration(
                raw.get("busy_timeout", defaults.busy_timeout), "store.busy_timeout"
            ),
            group_commit=self.boolean(
                raw.get("group_commit", defaults.group_commit), "store.group_commit"
            ),
            max_pending=self.integer(
                raw.get("max_pending", defaults.max_pending), "store.max_pending", minimum=1
            ),
            retention=self.retention(raw.get("retention")),
            pool_size=self.integer(
                raw.get("pool_size", defaults.pool_size), "store.pool_size", minimum=2
            ),
        )

    def retention(self, value: Any) -> float | None:
        if value is None or value == "forever":
            return None
        seconds = self.duration(value, "store.retention")
        if seconds < 3600:
            raise self.error(
                f"a retention of {value!r} would purge events while senders may still "
                "redeliver them, and a redelivery after the purge would run again",
                "store.retention",
                fix='keep events at least an hour (e.g. "30d"), or write "forever"',
            )
        return seconds

    def store_url(self, url: str, key: str, *, relative: bool) -> str:
        scheme, sep, _ = url.partition("://")
        if not sep or scheme not in _STORE_SCHEMES:
            raise self.error(
                f"{url!r} is not a store URL",
                key,
                fix='use "sqlite:///hookwise.db" (a file beside the config), '
                '"sqlite:////absolute/path.db", "memory://" or "postgresql://user@host/db"',
            )
        if relative and self.base_dir is not None:
            url = _anchor_sqlite(url, self.base_dir)
        self.check_store_url(url, key)
        return url

    def check_store_url(self, url: str, key: str) -> None:
        """Let the store engine judge the URL now (nothing is opened)."""
        try:
            from .store import open_store
        except ImportError:
            return
        try:
            open_store(url)
        except ConfigError as exc:
            raise self.error(exc.problem, key, exc.fix) from None

    def server(self, raw: Mapping[str, Any]) -> ServerSettings:
        self.check_keys(raw, _SERVER_KEYS, "server")
        defaults = ServerSettings()
        host = self.string(raw.get("host", defaults.host), "server.host")
        if not host:
            raise self.error("the host is empty", "server.host", fix='write host = "127.0.0.1"')
        port = self.integer(raw.get("port", defaults.port), "server.port", minimum=1)
        if port > 65535:
            raise self.error(
                f"port {port} is out of range", "server.port", fix="pick a port from 1 to 65535"
            )
        return ServerSettings(
            host=host,
            port=port,
            max_body_bytes=self.integer(
                raw.get("max_body_bytes", defaults.max_body_bytes),
                "server.max_body_bytes",
                minimum=1,
            ),
            trusted_proxies=self.networks(raw.get("trusted_proxies"), "server.trusted_proxies"),
        )

    def networks(self, value: Any, key: str) -> tuple[str, ...]:
        """A list of IP networks (CIDRs or single addresses), normalized."""
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(
                f"expected a list of networks, got {_describe(value)}",
                key,
                fix='write it like ["10.0.0.0/8", "192.0.2.7"]',
            )
        networks = []
        for position, item in enumerate(value, start=1):
            if not isinstance(item, str):
                raise self.error(
                    f"entry {position} is {_describe(item)}, not a network",
                    key,
                    fix='write networks as strings, like "10.0.0.0/8"',
                )
            try:
                networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise self.error(
                    f"entry {position} ({item!r}) is not an IP address or network",
                    key,
                    fix='write it like "203.0.113.0/24", "2001:db8::/32" or "192.0.2.7"',
                ) from None
        return tuple(networks)

    def public_url(self, value: Any, key: str) -> str | None:
        if value is None:
            return None
        text = self.string(value, key).strip()
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.error(
                f"{text!r} is not an http(s) URL",
                key,
                fix="write the URL exactly as configured at the provider, like "
                '"https://hooks.example.com/hooks/twilio"',
            )
        if parts.query or parts.fragment:
            raise self.error(
                f"{text!r} has a query or a fragment; each request's own query is added to it",
                key,
                fix="give the URL without its query string",
            )
        return text

    def worker(self, raw: Mapping[str, Any]) -> WorkerSettings:
        self.check_keys(raw, _WORKER_KEYS, "worker")
        d = WorkerSettings()
        return WorkerSettings(
            concurrency=self.integer(
                raw.get("concurrency", d.concurrency), "worker.concurrency", minimum=1
            ),
            threads=self.integer(raw.get("threads", d.threads), "worker.threads", minimum=1),
            batch=self.integer(raw.get("batch", d.batch), "worker.batch", minimum=1),
            lease=self.duration(raw.get("lease", d.lease), "worker.lease"),
            poll_interval=self.duration(
                raw.get("poll_interval", d.poll_interval), "worker.poll_interval"
            ),
            grace=self.duration(raw.get("grace", d.grace), "worker.grace", allow_zero=True),
        )

    def source(self, name: str, value: Any) -> SourceSettings:
        key = f"sources.{name}"
        if not _SOURCE_NAME.fullmatch(name):
            raise self.error(
                f"the source name {name!r} can't be used in a URL path (/hooks/{name})",
                key,
                fix="use lowercase letters, digits, '_' and '-' only, e.g. [sources.stripe_live]",
            )
        if not isinstance(value, dict):
            raise self.error(
                f"expected a table, got {_describe(value)}",
                key,
                fix=f'write it as a section: [sources.{name}] with provider = "..." below',
            )
        raw: dict[str, Any] = value
        extras = self.source_extras(raw, key)
        known = self.providers.known
        if "provider" not in raw:
            raise self.error(
                "the source has no provider",
                f"{key}.provider",
                fix=f'add provider = "standard" (known: {", ".join(sorted(known))})',
            )
        provider = self.string(raw["provider"], f"{key}.provider")
        if provider not in known:
            raise self.error(
                f"unknown provider {provider!r}",
                f"{key}.provider",
                fix=_suggest(provider, known, f"known providers: {', '.join(sorted(known))}"),
            )
        secrets = self.secrets(raw.get("secrets"), f"{key}.secrets", provider)
        d = SourceSettings(name=name, provider=provider)
        settings = SourceSettings(
            name=name,
            provider=provider,
            secrets=secrets,
            tolerance=self.duration(raw.get("tolerance", d.tolerance), f"{key}.tolerance"),
            dedup_key=self.reference(
                raw.get("dedup_key"), f"{key}.dedup_key", ("header", "body"), "header:X-Delivery-Id"
            ),
            type=self.reference(
                raw.get("type"), f"{key}.type", ("header", "body", "const"), "body:type"
            ),
            ordering=self.choice(  # type: ignore[arg-type]  # checked by choice()
                raw.get("ordering", d.ordering), f"{key}.ordering", get_args(Ordering)
            ),
            ordering_key=self.optional_string(raw.get("ordering_key"), f"{key}.ordering_key"),
            occurred_at=self.optional_string(raw.get("occurred_at"), f"{key}.occurred_at"),
            reorder_window=self.duration(
                raw.get("reorder_window", d.reorder_window),
                f"{key}.reorder_window",
                allow_zero=True,
            ),
            header=self.optional_string(raw.get("header"), f"{key}.header"),
            algorithm=self.string(raw.get("algorithm", d.algorithm), f"{key}.algorithm"),
            encoding=self.string(raw.get("encoding", d.encoding), f"{key}.encoding"),
            prefix=self.string(raw.get("prefix", d.prefix), f"{key}.prefix"),
            timestamp_header=self.optional_string(
                raw.get("timestamp_header"), f"{key}.timestamp_header"
            ),
            signed_content=self.optional_string(raw.get("signed_content"), f"{key}.signed_content"),
            options=self.options(
                {**self.table(raw.get("options", {}), f"{key}.options"), **extras}, key
            ),
            public_url=self.public_url(raw.get("public_url"), f"{key}.public_url"),
            allow_ips=self.networks(raw.get("allow_ips"), f"{key}.allow_ips"),
            backfill=self.optional_string(raw.get("backfill"), f"{key}.backfill"),
        )
        if settings.reorder_window and settings.ordering == "none":
            raise self.error(
                "reorder_window only applies to ordered sources, and this one has "
                'ordering = "none"',
                f"{key}.reorder_window",
                fix='set ordering = "serial", "latest" or "coalesce", or remove reorder_window',
            )
        if provider == "none":
            self.warn(
                key,
                f'provider = "none": requests to /hooks/{name} are NOT verified; anyone who '
                "can reach that URL can inject events. Use it only for local experiments.",
            )
        missing_here = any(k == f"{key}.secrets" for k, _ in self.missing)
        if not missing_here:
            for warning in self.providers.check(settings, key, self.file):
                self.warn(key, warning)
        return settings

    def options(self, raw: Mapping[str, Any], key: str) -> dict[str, Any]:
        """Provider options, with ``"env:NAME"`` values read from the environment."""
        return {
            name: self.env_value(value[4:], f"{key}.{name}")
            if isinstance(value, str) and value.startswith("env:")
            else value
            for name, value in raw.items()
        }

    def source_extras(self, raw: Mapping[str, Any], key: str) -> dict[str, Any]:
        """Keys that are not common source settings: provider options, or typos.

        A near miss of a common key (``secret``, ``tolerence``) is a typo at once; the
        rest go to the provider, which knows its own options.
        """
        extras = {name: value for name, value in raw.items() if name not in _SOURCE_KEYS}
        for name in extras:
            close = difflib.get_close_matches(name, _SOURCE_KEYS, n=1, cutoff=0.85)
            if close or self.providers.build is None:
                fallback = f"valid keys here: {', '.join(sorted(_SOURCE_KEYS))}"
                raise self.error(
                    f"unknown key {name!r}",
                    f"{key}.{name}",
                    fix=_suggest(name, _SOURCE_KEYS, fallback),
                )
        return extras

    def secrets(self, value: Any, key: str, provider: str) -> tuple[str, ...]:
        if value is None:
            value = []
        if isinstance(value, str):
            shown = value if value.startswith("env:") else "env:NAME"
            raise self.error(
                "expected a list of secrets, got a string",
                key,
                fix=f'write secrets = ["{shown}"] (a list, so old and new secrets can overlap '
                "during a rotation)",
            )
        if not isinstance(value, list):
            raise self.error(
                f"expected a list of secrets, got {_describe(value)}",
                key,
                fix='write secrets = ["env:NAME"]',
            )
        resolved: list[str] = []
        literal = False
        for item in value:
            if not isinstance(item, str):
                raise self.error(
                    f"each secret must be a string, got {_describe(item)}",
                    key,
                    fix='write secrets = ["env:NAME"]',
                )
            if item.startswith("env:"):
                variable = item[4:]
                if not _ENV_NAME.fullmatch(variable):
                    raise self.error(
                        f"{item!r} does not name an environment variable",
                        key,
                        fix='write it like "env:STRIPE_WEBHOOK_SECRET"',
                    )
                secret = self.env.get(variable, "")
                if secret:
                    resolved.append(secret)
                else:
                    self.missing.append((key, variable))
            elif not item:
                raise self.error("a secret is empty", key, fix='write secrets = ["env:NAME"]')
            else:
                literal = True
                resolved.append(item)
        if literal:
            self.warn(
                key,
                'holds a literal secret; prefer "env:NAME" so the secret stays out of the file '
                "(and out of version control)",
            )
        if provider not in _SECRETLESS_PROVIDERS and not value:
            raise self.error(
                f"provider {provider!r} needs at least one secret to verify requests",
                key,
                fix='add secrets = ["env:NAME"] and export NAME=...',
            )
        return tuple(resolved)

    def polls(self, value: Any, sources: Mapping[str, SourceSettings]) -> dict[str, PollSettings]:
        """The ``[polls.NAME]`` tables, with each ``[sources.X] backfill`` applied."""
        raw = self.table(value, "polls")
        polls: dict[str, PollSettings] = {}
        for name, table in raw.items():
            key = f"polls.{name}"
            if not _POLL_NAME.fullmatch(name):
                raise self.error(
                    f"the poll name {name!r} has characters hookwise does not allow",
                    key,
                    fix="use letters, digits, '_', '-' and '.' only, e.g. [polls.github_issues]",
                )
            if not isinstance(table, dict):
                raise self.error(
                    f"expected a table, got {_describe(table)}",
                    key,
                    fix=f'write it as a section: [polls.{name}] with url = "https://..." below',
                )
            polls[name] = parse_poll(name, table, file=self.file, env=self.env)
        self.backfill(polls, raw, sources)
        for name, poll in polls.items():
            if poll.emit == "events" and poll.source not in sources:
                raise self.error(
                    f'poll {name!r} has emit = "events", so its items are deliveries of a '
                    f"webhook source, but no source named {poll.source!r} is configured",
                    f"polls.{name}.source",
                    fix=_suggest(
                        poll.source,
                        sources,
                        f"set source = the webhook source whose deliveries it lists, or "
                        f"backfill = {name!r} in that [sources.NAME]",
                    ),
                )
        return polls

    def backfill(
        self,
        polls: dict[str, PollSettings],
        raw: Mapping[str, Mapping[str, Any]],
        sources: Mapping[str, SourceSettings],
    ) -> None:
        """Point each poll named by a source's ``backfill`` at that source."""
        claimed: dict[str, str] = {}
        for source in sources.values():
            name = source.backfill
            if name is None:
                continue
            key = f"sources.{source.name}.backfill"
            poll = polls.get(name)
            if poll is None:
                fallback = (
                    f"configured polls: {', '.join(polls)}"
                    if polls
                    else f'add a [polls.{name}] section with url = "https://..." below'
                )
                raise self.error(
                    f"no poll named {name!r} is configured",
                    key,
                    fix=_suggest(name, polls, fallback),
                )
            if name in claimed:
                raise self.error(
                    f"poll {name!r} already backfills source {claimed[name]!r}, and a poll's "
                    "events go to one source",
                    key,
                    fix=f"add another [polls.NAME] for {source.name!r}, or remove one backfill",
                )
            if "source" in raw[name] and poll.source != source.name:
                raise self.error(
                    f"poll {name!r} sends its events to source {poll.source!r}, but "
                    f"[sources.{source.name}] backfill names it",
                    f"polls.{name}.source",
                    fix=f"remove source from [polls.{name}] (backfill makes it "
                    f"{source.name!r}), or remove backfill from [sources.{source.name}]",
                )
            claimed[name] = source.name
            polls[name] = replace(poll, source=source.name)

    def handlers(self, value: Any, sources: Collection[str]) -> tuple[HandlerSettings, ...]:
        """The ``[[handlers]]``; ``sources`` are the names events can come from (webhook
        sources and the polls' sources)."""
        if isinstance(value, dict):
            raise self.error(
                "[handlers] must be an array of tables",
                "handlers",
                fix="write each handler as [[handlers]] (with double brackets)",
            )
        if not isinstance(value, list):
            raise self.error(
                f"expected [[handlers]] tables, got {_describe(value)}",
                "handlers",
                fix="write each handler as [[handlers]] with name, call and events below",
            )
        found: dict[str, HandlerSettings] = {}
        for index, item in enumerate(value):
            where = f"handlers[{index}]"
            if not isinstance(item, dict):
                raise self.error(
                    f"expected a table, got {_describe(item)}",
                    where,
                    fix="write each handler as [[handlers]] with name, call and events below",
                )
            handler = self.handler(item, where, sources)
            if handler.name in found:
                raise self.error(
                    f"two handlers are named {handler.name!r}",
                    f"handlers.{handler.name}.name",
                    fix="give each [[handlers]] its own name",
                )
            found[handler.name] = handler
        return tuple(found.values())

    def handler(
        self, raw: Mapping[str, Any], where: str, sources: Collection[str]
    ) -> HandlerSettings:
        self.check_keys(raw, _HANDLER_KEYS, where)
        if "call" not in raw:
            raise self.error(
                "the handler has no call",
                f"{where}.call",
                fix='add call = "module:function", e.g. call = "handlers:on_event"',
            )
        call = self.string(raw["call"], f"{where}.call")
        if not _CALL.fullmatch(call):
            raise self.error(
                f'{call!r} is not of the form "module:function"',
                f"{where}.call",
                fix='write it like call = "myapp.hooks:on_event"',
            )
        if "name" in raw:
            name = self.string(raw["name"], f"{where}.name")
            if not _HANDLER_NAME.fullmatch(name):
                raise self.error(
                    f"the handler name {name!r} has characters hookwise does not allow",
                    f"{where}.name",
                    fix="use letters, digits, '_', '-' and '.' only",
                )
        else:
            name = call.rpartition(":")[2].rpartition(".")[2]
        key = f"handlers.{name}"
        source = self.string(raw.get("source", "*"), f"{key}.source")
        if source != "*" and source not in sources:
            configured = sorted(sources)
            fallback = (
                f"configured sources (webhooks and polls): {', '.join(configured)}; "
                'or use "*" for all'
                if configured
                else 'add a [sources.NAME] or [polls.NAME] section, or use "*" for all sources'
            )
            raise self.error(
                f"no source named {source!r} is configured",
                f"{key}.source",
                fix=_suggest(source, configured, fallback),
            )
        events = self.events(raw.get("events", ["*"]), f"{key}.events")
        d = HandlerSettings(name=name, call=call)
        base_delay = self.duration(raw.get("base_delay", d.base_delay), f"{key}.base_delay")
        max_delay = self.duration(raw.get("max_delay", d.max_delay), f"{key}.max_delay")
        if max_delay < base_delay:
            raise self.error(
                "max_delay is shorter than base_delay",
                f"{key}.max_delay",
                fix="make max_delay at least as long as base_delay",
            )
        return HandlerSettings(
            name=name,
            call=call,
            source=source,
            events=events,
            max_attempts=self.integer(
                raw.get("max_attempts", d.max_attempts), f"{key}.max_attempts", minimum=1
            ),
            max_age=self.duration(raw.get("max_age", d.max_age), f"{key}.max_age"),
            timeout=self.duration(raw.get("timeout", d.timeout), f"{key}.timeout"),
            base_delay=base_delay,
            max_delay=max_delay,
        )

    def events(self, value: Any, key: str) -> tuple[str, ...]:
        if isinstance(value, str):
            raise self.error(
                "expected a list of event types, got a string",
                key,
                fix=f'write events = ["{value}"]',
            )
        if not isinstance(value, list):
            raise self.error(
                f"expected a list of event types, got {_describe(value)}",
                key,
                fix='write events = ["invoice.*", "customer.created"]',
            )
        if not value:
            raise self.error(
                "an empty list matches no event", key, fix='use events = ["*"] for every event'
            )
        for item in value:
            if not isinstance(item, str) or not item:
                raise self.error(
                    f"each event type must be a non-empty string, got {_describe(item)}",
                    key,
                    fix='write events = ["invoice.*", "customer.created"]',
                )
        return tuple(value)

    # -- values -----------------------------------------------------------------------

    def check_keys(
        self, raw: Mapping[str, Any], allowed: tuple[str, ...], where: str | None
    ) -> None:
        for name in raw:
            if name in allowed:
                continue
            if where is None:
                problem = f"unknown section [{name}]"
                fallback = f"valid sections: {', '.join(allowed)}"
            else:
                problem = f"unknown key {name!r}"
                fallback = f"valid keys here: {', '.join(sorted(allowed))}"
            key = name if where is None else f"{where}.{name}"
            raise self.error(problem, key, fix=_suggest(name, allowed, fallback))

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(
                f"expected a table, got {_describe(value)}",
                key,
                fix=f"write it as a section: [{key}]",
            )
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.error(
                f"expected a string, got {_describe(value)}", key, fix="put the value in quotes"
            )
        return value

    def optional_string(self, value: Any, key: str) -> str | None:
        if value is None:
            return None
        text = self.string(value, key)
        if not text:
            raise self.error("the value is empty", key, fix="remove the key to use the default")
        return text

    def reference(self, value: Any, key: str, kinds: tuple[str, ...], example: str) -> str | None:
        text = self.optional_string(value, key)
        if text is None:
            return None
        kind, sep, rest = text.partition(":")
        if not sep or kind not in kinds or not rest:
            forms = " or ".join(f'"{k}:..."' for k in kinds)
            raise self.error(
                f"{text!r} does not say where to look", key, fix=f'write {forms}, e.g. "{example}"'
            )
        return text

    def integer(self, value: Any, key: str, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(
                f"expected a whole number, got {_describe(value)}", key, fix="write a number"
            )
        if value < minimum:
            raise self.error(
                f"{value} is too small", key, fix=f"use a number of at least {minimum}"
            )
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(
                f"expected true or false, got {_describe(value)}", key, fix="write true or false"
            )
        return value

    def duration(self, value: Any, key: str, *, allow_zero: bool = False) -> float:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.error(f"expected a duration, got {_describe(value)}", key, fix=_DURATION_FIX)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.error(str(exc), key, fix=_DURATION_FIX) from None
        if seconds == 0 and not allow_zero:
            raise self.error("the duration must be longer than zero", key, fix=_DURATION_FIX)
        return seconds

    def choice(self, value: Any, key: str, choices: tuple[str, ...]) -> str:
        text = self.string(value, key)
        if text not in choices:
            raise self.error(
                f"{text!r} is not one of {', '.join(choices)}",
                key,
                fix=_suggest(text, choices, f"write one of: {', '.join(choices)}"),
            )
        return text

    def env_value(self, variable: str, key: str) -> str:
        if not _ENV_NAME.fullmatch(variable):
            raise self.error(
                f"'env:{variable}' does not name an environment variable",
                key,
                fix='write it like "env:DATABASE_URL"',
            )
        value = self.env.get(variable, "")
        if not value:
            raise self.error(
                f"the environment variable {variable} is not set (or is empty)",
                key,
                fix=f"export {variable}=...",
            )
        return value


class _ProviderHooks:
    """What the providers package offers for validation, when it is installed."""

    def __init__(self, known: frozenset[str], build: Any, advise: Any = None) -> None:
        self.known = known
        self.build = build
        self.advise = advise

    def check(self, settings: SourceSettings, key: str, file: str | None) -> tuple[str, ...]:
        """Build the source once so its own complaints surface at load time; what is
        worth a warning about it is returned."""
        if self.build is None:
            return ()
        try:
            source = self.build(settings)
        except ConfigError as exc:
            raise ConfigError(exc.problem, file=file, key=exc.key or key, fix=exc.fix) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(
                f"provider {settings.provider!r} can't use these settings: {exc}",
                file=file,
                key=key,
                fix="correct the settings of this source (see the provider's page in the docs)",
            ) from None
        return tuple(self.advise(source)) if self.advise is not None else ()


_SECRETLESS_PROVIDERS = frozenset({"none", "paypal"})
"""Providers that verify without a shared secret: ``none`` checks nothing, PayPal signs
with its certificate (the source names its ``webhook_id`` instead)."""


def _provider_hooks() -> _ProviderHooks:
    import importlib

    try:
        module = importlib.import_module(".providers", __package__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.providers":
            raise
        return _ProviderHooks(_FALLBACK_PROVIDERS, None)
    names = getattr(module, "KNOWN_PROVIDERS", None)
    known = frozenset(names) if names else _FALLBACK_PROVIDERS
    return _ProviderHooks(
        known, getattr(module, "build_source", None), getattr(module, "source_warnings", None)
    )


def _anchor_sqlite(url: str, base_dir: Path) -> str:
    """``sqlite:///rel.db`` -> ``sqlite:////<base_dir>/rel.db``; other URLs unchanged."""
    if not url.startswith(_SQLITE_PREFIX):
        return url
    path = url[len(_SQLITE_PREFIX) :]
    if not path or path.startswith((":", "file:")) or Path(path).is_absolute():
        return url
    return _SQLITE_PREFIX + os.fspath(base_dir / path)


def _suggest(given: str, valid: Any, fallback: str) -> str:
    close = difflib.get_close_matches(given, list(valid), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else fallback


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "a table"}  # fmt: skip
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})"
