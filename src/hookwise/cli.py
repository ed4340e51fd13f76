"""The ``hookwise`` command.

>>> hookwise init && export HOOKWISE_DEMO_SECRET=... && hookwise serve

Every command reads ``hookwise.toml`` (or ``-c FILE``); every listing prints one JSON
document with ``--json``. Expected failures (a bad config, an unreachable store, an
unknown id) print one red message and exit 2 (config) or 1 (anything else), never a
traceback. Heavy modules (the server, the HTTP client) are imported by the commands
that need them, so ``hookwise --help`` stays quick.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets as _secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .config import STORE_URL_ENV, Settings, StoreSettings, load_config
from .durations import format_duration, parse_duration
from .errors import ConfigError, HookwiseError, NotFound
from .relay.command import relay_app

if TYPE_CHECKING:
    from .app import Hookwise
    from .capture import Verdict
    from .poller.runner import PollRun
    from .poller.settings import PollSettings
    from .recording import Answer
    from .starters import Starter
    from .store import (
        AttemptRecord,
        DeliveryRecord,
        EventFilter,
        EventRecord,
        OrderingState,
        PollState,
        RejectionRecord,
        Store,
    )
    from .tail import TailLine

__all__ = ["app", "main"]

T = TypeVar("T")

SEND_SECRET_ENV = "HOOKWISE_SEND_SECRET"  # noqa: S105 - the variable's name, not a secret
_SANE_EPOCH = 1_704_067_200.0  # 2024-01-01T00:00:00Z: no clock set right is before this
_CLOCK_SLACK = 300.0
_PAGE = 500
_MIN_PURGE_AGE = 3600.0
"""The youngest events `purge` deletes: the floor ``[store] retention`` has, for the
same reason (a sender's redelivery after the purge would run again)."""


class DeliveryStatusChoice(StrEnum):
    pending = "pending"
    waiting = "waiting"
    leased = "leased"
    retrying = "retrying"
    dead = "dead"
    skipped = "skipped"
    done = "done"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    name="hookwise",
    help="Webhooks and polling done right: verified, durable, deduplicated, ordered.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
events_app = typer.Typer(
    help="Look at stored events: list them, or show one with its deliveries.",
    no_args_is_help=True,
)
dlq_app = typer.Typer(
    help="Dead letters: deliveries that ran out of attempts or were rejected. "
    "List them, retry them, or discard them.",
    no_args_is_help=True,
)
rejections_app = typer.Typer(
    help="Rejection records: requests hookwise refused (a bad or missing signature, a "
    "stale timestamp, a client not allowed), kept for diagnosis. The sender only got a "
    "generic 401 or 403; a record says why, with hints where hookwise could tell (clock "
    "skew, a re-serialized body, the wrong secret). The newest records of each source are "
    "kept; older ones are dropped as new ones arrive.",
    no_args_is_help=True,
)
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")
app.add_typer(rejections_app, name="rejections")
app.add_typer(relay_app, name="relay")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The config file (default: ./hookwise.toml).",
        dir_okay=False,
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")
]
SourceOption = Annotated[str | None, typer.Option("--source", help="Only this source.")]
TypeGlobOption = Annotated[
    str | None, typer.Option("--type", help="Event type glob, e.g. 'invoice.*'.")
]
StatusOption = Annotated[
    DeliveryStatusChoice | None,
    typer.Option("--status", help="Only events with a delivery in this status."),
]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="A duration ago (10m, 3d) or an ISO-8601 time."),
]


# -- entry point ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``hookwise`` command; expected errors become a message and an exit code."""
    command = typer.main.get_command(app)
    try:
        command.main(args=list(argv) if argv is not None else None, prog_name="hookwise")
    except ConfigError as exc:
        _print_error(exc)
        sys.exit(2)
    except HookwiseError as exc:
        _print_error(exc)
        sys.exit(1)


def _print_error(exc: HookwiseError) -> None:
    err.print(f"[bold red]error:[/] [red]{escape(str(exc))}[/]")


def _fail(message: str, *, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] [red]{escape(message)}[/]")
    return typer.Exit(code)


# -- shared plumbing ----------------------------------------------------------------------


def _warn(settings: Settings) -> None:
    for warning in settings.warnings:
        err.print(f"[bold yellow]warning:[/] [yellow]{escape(warning)}[/]")


def _settings(config: Path | None, *, quiet: bool = False) -> Settings:
    """The config for commands that only read the store.

    Without ``-c`` and without ``./hookwise.toml``, ``HOOKWISE_STORE_URL`` alone is
    enough (e.g. to look into the store of ``hookwise serve --demo``).
    """
    if config is None and not Path("hookwise.toml").exists():
        url = os.environ.get(STORE_URL_ENV, "").strip()
        if url:
            return Settings(store=StoreSettings(url=url))
    settings = load_config(config)
    if not quiet:
        _warn(settings)
    return settings


def _hookwise(config: Path | None, *, quiet: bool = False) -> Hookwise:
    """The app with its handlers imported (their module sits beside the config file)."""
    from .app import Hookwise

    _import_path_for(config)
    hw = Hookwise.from_config(config)
    if not quiet:
        _warn(hw.settings)
    return hw


def _import_path_for(config: Path | None) -> None:
    # A console script's sys.path starts at its bin/ directory, not the working
    # directory, so `call = "handlers:on_event"` needs the config's folder added.
    folder = os.fspath((config or Path("hookwise.toml")).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _run(work: Callable[[], Awaitable[T]]) -> T:
    async def runner() -> T:
        return await work()

    return asyncio.run(runner())


def _open(settings: Settings) -> Store:
    from .store import open_store

    return open_store(settings.store)


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    text = datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _since(text: str | None, now: float) -> float | None:
    """``"10m"`` (that long ago) or an ISO-8601 time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (like 10m, 2h, 3d) nor an ISO time "
            "(like 2025-01-31T12:00:00Z)",
            param_hint="--since",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _emit_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _body_view(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}
    view: dict[str, Any] = {"body": text, "body_encoding": "utf-8"}
    try:
        view["json"] = json.loads(text)
    except ValueError:
        view["json"] = None
    return view


def _event_row(record: EventRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "source": record.source,
        "id": record.dedup_key,
        "type": record.type,
        "status": record.status,
        "ordering_key": record.ordering_key,
        "occurred_at": _iso(record.occurred_at),
        "received_at": _iso(record.received_at),
        "intake": record.intake,
    }


def _delivery_row(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "event_seq": record.event_seq,
        "handler": record.handler,
        "status": record.status,
        "attempts": record.attempts,
        "next_attempt_at": _iso(record.next_attempt_at),
        "last_error": record.last_error,
        "updated_at": _iso(record.updated_at),
        "source": record.source,
        "type": record.event_type,
        "event_id": record.dedup_key,
        "ordering_key": record.ordering_key,
        "policy": record.policy,
    }


def _ordering_state_row(state: OrderingState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "applied_at": _iso(state.applied_at),
        "applied_seq": state.applied_seq,
        "updated_at": _iso(state.updated_at),
    }


_SKIP_REASONS = {
    "stale": "older than an event already applied for its key",
    "superseded": "a newer event for its key was waiting",
}


_STATUS_STYLE = {
    "done": "green",
    "pending": "cyan",
    "waiting": "magenta",
    "leased": "blue",
    "retrying": "yellow",
    "dead": "red",
    "skipped": "dim",
}


def _status(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{escape(status)}[/]" if style else escape(status)


# -- init ---------------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write the files.", file_okay=False)
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    config: ConfigOption = None,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="Start from a provider's starter (stripe, github, shopify, slack, twilio...; "
            "an unknown name lists them).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start a project: write a working hookwise.toml and an example handlers.py.

    The config has a SQLite store, a "demo" source (Standard Webhooks, secret read from
    $HOOKWISE_DEMO_SECRET) and one handler. With --provider NAME, the source is
    configured for that provider instead (its secret read from an environment variable,
    its ordering key) with handlers for a few of its real event types, stubbed in
    handlers.py. Existing files are kept unless --force.
    """
    from .starters import starter

    chosen = starter(provider) if provider is not None else None
    config_path = config if config is not None else directory / "hookwise.toml"
    handlers_path = config_path.parent / "handlers.py"
    existing = [p for p in (config_path, handlers_path) if p.exists()]
    if existing and not force:
        names = " and ".join(os.fspath(p) for p in existing)
        raise ConfigError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}; nothing was written",
            fix="pass --force to overwrite, or "
            + ("-c DIR/FILE.toml" if config is not None else "--dir DIR")
            + " to write somewhere else",
        )
    try:
        config_path.parent.mkdir(parents=True, exist_ok=True)
        if chosen is not None:
            _init_starter(chosen, config_path, handlers_path)
            return
        templates = resources.files("hookwise") / "_templates"
        config_path.write_text((templates / "hookwise.toml.tmpl").read_text("utf-8"), "utf-8")
        handlers_path.write_text((templates / "handlers.py.tmpl").read_text("utf-8"), "utf-8")
    except OSError as exc:
        raise _fail(
            f"can't write the project into {config_path.parent}: {exc.strerror or exc} "
            f"({exc.filename or config_path}); pass --dir with a directory you can write to",
            code=2,
        ) from None

    secret = "whsec_" + base64.b64encode(_secrets.token_bytes(32)).decode("ascii")
    out.print(f"[green]wrote[/] {escape(os.fspath(config_path))}")
    out.print(f"[green]wrote[/] {escape(os.fspath(handlers_path))}")
    out.print()
    out.print("[bold]Next steps[/]")
    if config_path.parent.resolve() != Path.cwd().resolve():
        out.print(f"  cd {escape(os.fspath(config_path.parent))}")
    out.print("  1. give the demo source a secret (this one was generated just now):")
    out.print(f"       export HOOKWISE_DEMO_SECRET={secret}")
    named = _config_flag(config_path)
    out.print("  2. start the receiver and a worker:")
    out.print(f"       hookwise serve{named}")
    out.print("  3. from another shell with the same secret exported, send a signed test event:")
    out.print(
        "       hookwise send standard http://127.0.0.1:8000/hooks/demo "
        '--secret "$HOOKWISE_DEMO_SECRET"'
    )
    out.print("  4. see it stored and handled:")
    out.print(f"       hookwise events list{named}")


def _config_flag(config_path: Path) -> str:
    """`` -c NAME`` for the printed commands when the config is not ./hookwise.toml."""
    if config_path.name == "hookwise.toml":
        return ""
    return f" -c {escape(config_path.name)}"


def _init_starter(chosen: Starter, config_path: Path, handlers_path: Path) -> None:
    from .starters import local_secrets, render

    values = local_secrets(chosen)
    files = render(chosen, secrets=values)
    config_path.write_text(files.config, "utf-8")
    handlers_path.write_text(files.handlers, "utf-8")
    url = f"http://127.0.0.1:8000/hooks/{chosen.source}"
    out.print(f"[green]wrote[/] {escape(os.fspath(config_path))} ({escape(chosen.title)} source)")
    out.print(f"[green]wrote[/] {escape(os.fspath(handlers_path))}")
    out.print()
    out.print("[bold]Next steps[/]")
    if config_path.parent.resolve() != Path.cwd().resolve():
        out.print(f"  cd {escape(os.fspath(config_path.parent))}")
    out.print(
        f"  1. export a local secret (made just now; in production, the one {chosen.title} "
        "gives you):"
    )
    for variable, value in values.items():
        out.print(f"       export {variable}={value}")
    named = _config_flag(config_path)
    out.print("  2. start the receiver and a worker:")
    out.print(f"       hookwise serve{named}")
    out.print(
        f"  3. from another shell with the same exports, send {chosen.title}'s sample events, "
        "signed:"
    )
    out.print(f"       hookwise send {chosen.source} {url} -c {escape(config_path.name)}")
    out.print("  4. watch them arrive and settle:")
    out.print(f"       hookwise tail{named}")
    out.print(
        f"  then point {chosen.title} at https://<public host>/hooks/{chosen.source} "
        "(docs/local-development.md: the relay, or a tunnel)"
    )


# -- serve / worker / migrate ------------------------------------------------------------


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Interface to listen on (default: host in the config)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", min=1, max=65535, help="Port (default: port in the config)."),
    ] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Only receive; run `hookwise worker` elsewhere.")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker loops in this process.")
    ] = 1,
    no_poll: Annotated[
        bool,
        typer.Option(
            "--no-poll", help="Don't run the \\[polls.NAME]; run `hookwise poll` elsewhere."
        ),
    ] = False,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Run a built-in demo source and handler; no config file needed."
        ),
    ] = False,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="Log verbosity.")] = (
        LogLevel.info
    ),
) -> None:
    """Receive webhooks on POST /hooks/{source}, poll APIs, and process both, in one process.

    Acknowledges each event only after it is committed to the store, runs the
    configured \\[polls.NAME] (unless --no-poll), and runs handlers in worker loops
    beside the server (unless --no-worker). SIGTERM/SIGINT stop intake first, then let
    running handlers finish.
    """
    from . import runtime

    if demo:
        if config is not None:
            raise ConfigError(
                "--demo runs a built-in app and reads no config file",
                fix="drop -c to try the demo, or drop --demo to serve your config",
            )
        hw = runtime.demo_app(os.environ.get(STORE_URL_ENV, "").strip() or None)
    else:
        hw = _hookwise(config)
    bind_host = host or hw.settings.server.host
    bind_port = port or hw.settings.server.port
    shown_host = "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host  # noqa: S104
    base = f"http://{shown_host}:{bind_port}"
    if demo:
        _demo_banner(base, hw.settings.store.url, runtime.DEMO_SECRET)
    else:
        names = ", ".join(f"{base}/hooks/{name}" for name in hw.settings.sources) or "(none)"
        loops = "no worker" if no_worker else f"{workers} worker loop(s)"
        polls = ""
        if hw.polls:
            polling = "not polling" if no_poll else "polling"
            polls = f"; {polling} {', '.join(hw.polls)}"
        err.print(
            f"hookwise: receiving on {names}{polls}; {len(hw.handlers)} handler(s), {loops}; "
            f"store {_without_password(hw.settings.store.url)}"
        )
    runtime.serve(
        hw,
        host=bind_host,
        port=bind_port,
        worker=not no_worker,
        workers=workers,
        poll=not no_poll,
        log_level=log_level.value,
    )


def _demo_banner(base: str, store_url: str, secret: str) -> None:
    url = f"{base}/hooks/demo"
    out.print("[bold]hookwise demo[/] [yellow](its secret is public: never use it for real)[/]")
    out.print(f"  receiving  POST {url}")
    out.print(f"  store      {escape(store_url)}")
    out.print("  send a signed test event from another shell:")
    out.print(f"    hookwise send standard {url} --secret {secret}")
    out.print("  then look at what was stored:")
    out.print(f"    {STORE_URL_ENV}={escape(store_url)} hookwise events list", soft_wrap=True)
    sys.stdout.flush()


@app.command()
def worker(
    config: ConfigOption = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, help="Handler runs at once (default: from the config)."
        ),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="Log verbosity.")] = (
        LogLevel.info
    ),
) -> None:
    """Run handlers on stored events, without receiving (pair with `serve --no-worker`).

    Any number of workers may share one store; each delivery is leased to one of them.
    SIGTERM/SIGINT let running handlers finish, then hand back what is left.
    """
    from . import runtime

    hw = _hookwise(config)
    runtime.run_worker(hw, concurrency=concurrency, log_level=log_level.value)


# -- poll ---------------------------------------------------------------------------------


@app.command()
def poll(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Polls to run or show (default: all).", metavar="NAME", show_default=False
        ),
    ] = None,
    config: ConfigOption = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Run each poll once now, print what it did, exit 1 if any failed."
        ),
    ] = False,
    stats: Annotated[
        bool,
        typer.Option(
            "--stats",
            help="Show each poll's counters, last error and schedule from the store; poll nothing.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="With --once or --stats: print one JSON document on stdout."),
    ] = False,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="Log verbosity.")] = (
        LogLevel.info
    ),
) -> None:
    """Poll REST APIs (\\[polls.NAME] in the config): each change becomes an event.

    Without --once, runs the polls until SIGTERM/SIGINT. It runs no receiver and no
    worker: the events wait in the store for a worker elsewhere (`hookwise worker`, or
    `hookwise serve`, which polls too unless --no-poll). --once runs each poll once and
    exits; --stats prints the stored counters: requests, 304 share, bytes, rate-limit
    waits, changes, errors, interval, next due and detection latency bound.
    """
    from .app import unknown_poll

    if once and stats:
        raise typer.BadParameter("give --once or --stats, not both")
    if as_json and not (once or stats):
        raise typer.BadParameter("--json goes with --once or --stats")
    if stats:
        _poll_stats(config, names or [], as_json)
        return
    hw = _hookwise(config, quiet=as_json)
    if not hw.polls:
        raise ConfigError(
            "no polls are configured",
            file=hw.settings.path,
            fix='add a [polls.NAME] section with url = "https://api.example.com/items" '
            "(see docs/configuration.md)",
        )
    chosen = list(dict.fromkeys(names)) if names else list(hw.polls)
    for name in chosen:
        if name not in hw.polls:
            raise unknown_poll(name, hw.polls, file=hw.settings.path)
    if not once:
        from . import runtime

        err.print(
            f"hookwise: polling {', '.join(chosen)}; "
            f"store {_without_password(hw.settings.store.url)}; "
            "handlers run in a worker (`hookwise worker` or `hookwise serve`)"
        )
        runtime.run_polls(hw, names=chosen, log_level=log_level.value)
        return

    if log_level != LogLevel.debug:
        # Each failed run is printed below; the poller's own warning would say it twice.
        logging.getLogger("hookwise.poller").setLevel(logging.ERROR)

    async def work() -> list[PollRun]:
        async with hw.open_store() as store, hw.poller(store, names=chosen) as poller:
            return [await poller.run_once(name) for name in chosen]

    if as_json:
        runs = _run(work)
        _emit_json([_poll_run_row(run) for run in runs])
    else:
        with err.status(f"polling {', '.join(chosen)} ..."):
            runs = _run(work)
        for run in runs:
            out.print(_poll_run_line(run))
        found = sum(len(run.changes) for run in runs)
        if found:
            out.print(
                f"stored {_plural(found, 'event')}; a worker (`hookwise worker` or "
                "`hookwise serve`) runs their handlers"
            )
    if any(run.status == "error" for run in runs):
        raise typer.Exit(1)


_CHANGE_KINDS = ("created", "updated", "deleted")


def _poll_run_row(run: PollRun) -> dict[str, Any]:
    kinds: list[str] = [change.kind for change in run.changes]
    return {
        "name": run.name,
        "status": run.status,
        "requests": run.requests,
        "not_modified": run.not_modified,
        "bytes": run.bytes,
        "changes": len(kinds),
        **{kind: kinds.count(kind) for kind in _CHANGE_KINDS},
        "waited": round(run.waited, 3),
        "error": run.error,
    }


def _poll_run_line(run: PollRun) -> str:
    row = _poll_run_row(run)
    style = {"changed": "green", "unchanged": "dim", "error": "red"}.get(run.status, "")
    kinds = ", ".join(f"{row[kind]} {kind}" for kind in _CHANGE_KINDS if row[kind])
    line = (
        f"{escape(run.name)}: [{style}]{escape(run.status)}[/], "
        f"{_plural(run.requests, 'request')} ({run.not_modified} answered 304), "
        f"{_size(run.bytes)}, {_plural(len(run.changes), 'change')}"
    )
    if kinds:
        line += f" ({kinds})"
    if run.error:
        line += f"\n  [red]error: {escape(run.error)}[/]"
    return line


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _size(count: float) -> str:
    """``"512 B"``, ``"1.5 KiB"``, ``"2.0 MiB"``."""
    if count < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB"):
        count /= 1024
        if count < 1024:
            return f"{count:.1f} {unit}"
    return f"{count / 1024:.1f} GiB"


def _relative(moment: float | None, now: float) -> str:
    """``"in 42s"``, ``"3m ago"``, ``"now"``, or ``"-"`` for no time."""
    if moment is None:
        return "-"
    delta = moment - now
    if abs(delta) < 1:
        return "now"
    return f"in {format_duration(delta)}" if delta > 0 else f"{format_duration(-delta)} ago"


def _poll_stats(config: Path | None, names: list[str], as_json: bool) -> None:
    from .app import unknown_poll

    settings = _settings(config, quiet=as_json)

    async def work() -> list[PollState]:
        async with _open(settings) as store:
            return await store.list_poll_states()

    states = {state.name: state for state in _run(work)}
    # Polls removed from the config keep their state; they are shown too.
    known = list(dict.fromkeys([*settings.polls, *sorted(states)]))
    for name in names:
        if name not in known:
            raise unknown_poll(name, known, file=settings.path)
    chosen = list(dict.fromkeys(names)) if names else known
    now = time.time()
    if as_json:
        _emit_json(
            [
                _poll_stats_row(name, settings.polls.get(name), states.get(name), now)
                for name in chosen
            ]
        )
        return
    if not chosen:
        out.print(
            "no polls: add a [polls.NAME] section to the config, then run `hookwise poll` "
            "or `hookwise serve`"
        )
        return
    right = ("requests", "304s", "bytes", "waits", "changes", "errors")
    columns = ("poll", *right, "interval", "next due", "latency ≤", "last error")
    rows: list[tuple[str, ...]] = []
    for name in chosen:
        row = _poll_stats_row(name, settings.polls.get(name), states.get(name), now)
        state = states.get(name)
        if state is None:
            error = "[dim]never run[/]"
        elif state.error is not None:
            since = _relative(state.error_since, now)
            error = f"[red]{escape(state.error)}[/] (failing since {since})"
        else:
            error = "-"
        share = row["not_modified_share"]
        rows.append(
            (
                escape(name) + ("" if row["configured"] else " [dim](not configured)[/]"),
                str(row["requests"]),
                f"{row['not_modified']} ({share:.0%})" if share is not None else "0",
                _size(row["bytes"]),
                str(row["rate_limit_waits"]),
                f"{row['backfilled']} backfilled" if "backfilled" in row else str(row["changes"]),
                f"[red]{row['errors']}[/]" if row["errors"] else "0",
                format_duration(row["interval"]) if row["interval"] is not None else "-",
                _relative(state.next_due_at if state is not None else None, now),
                format_duration(row["latency_bound"]) if row["latency_bound"] is not None else "-",
                error,
            )
        )
    if out.width >= POLL_TABLE_WIDTH:
        table = Table(box=None, header_style="bold")
        for column in columns[:-1]:
            table.add_column(column, no_wrap=True, justify="right" if column in right else "left")
        table.add_column(columns[-1], overflow="fold")
        for cells in rows:
            table.add_row(*cells)
        out.print(table)
        return
    for cells in rows:  # a narrow terminal: one block per poll
        block = Table(box=None, show_header=False, padding=(0, 1))
        block.add_column(style="bold", no_wrap=True)
        block.add_column(overflow="fold")
        for label, value in zip(columns[1:], cells[1:], strict=True):
            block.add_row(label, value)
        out.print(f"[bold]{cells[0]}[/]")
        out.print(block)


POLL_TABLE_WIDTH = 120
"""Below this terminal width, ``poll --stats`` prints one block per poll, not a table."""

_RECONCILE_COUNTERS = ("emitted", "backfilled", "skipped_delivered", "detail_requests")
"""The counters of a poll with ``emit = "events"`` (reconciliation), in ``--stats``."""


def _poll_stats_row(
    name: str, settings: PollSettings | None, state: PollState | None, now: float
) -> dict[str, Any]:
    """One poll's stored counters and schedule, as ``--stats --json`` prints them."""
    stats = state.stats if state is not None else {}

    def count(key: str) -> int:
        value = stats.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    latency = stats.get("latency_bound")
    requests = count("requests")
    next_due = state.next_due_at if state is not None else None
    return {
        "name": name,
        "configured": settings is not None,
        "source": settings.source if settings is not None else None,
        "url": settings.url if settings is not None else None,
        "requests": requests,
        "not_modified": count("not_modified"),
        "not_modified_share": round(count("not_modified") / requests, 4) if requests else None,
        "bytes": count("bytes"),
        "rate_limit_waits": count("rate_limit_waits"),
        "changes": count("changes"),
        **{kind: count(kind) for kind in _CHANGE_KINDS},
        "errors": count("errors"),
        **(
            {key: count(key) for key in _RECONCILE_COUNTERS}
            if settings is not None and settings.emit == "events"
            else {}
        ),
        "failures": state.failures if state is not None else 0,
        "error": state.error if state is not None else None,
        "error_since": _iso(state.error_since) if state is not None else None,
        "interval": state.interval if state is not None else None,
        "next_due_at": _iso(next_due),
        "next_due_in": round(next_due - now, 3) if next_due is not None else None,
        "latency_bound": float(latency) if isinstance(latency, int | float) else None,
        "last_status": stats.get("last_status"),
        "updated_at": _iso(state.updated_at) if state is not None and state.updated_at else None,
    }


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Create the store's tables, or bring them to this version's schema.

    Safe to run any time, from several processes at once; `serve` and `worker`
    migrate on start too.
    """
    settings = _settings(config)

    async def work() -> tuple[list[str], str | None]:
        store = _open(settings)
        migrate_fn = getattr(store, "migrate", None)
        if migrate_fn is None:  # nothing persistent to migrate
            async with store:
                return [], None
        applied: list[str] = await migrate_fn()
        version: str | None = await store.schema_version()  # type: ignore[attr-defined]
        return applied, version

    applied, version = _run(work)
    if applied:
        out.print(f"[green]applied[/] {len(applied)} migration(s): {', '.join(applied)}")
    else:
        out.print("already up to date")
    out.print(
        f"schema version: {version or 'n/a'} ({escape(_without_password(settings.store.url))})"
    )


# -- events -------------------------------------------------------------------------------


@events_app.command("list")
def events_list(
    config: ConfigOption = None,
    source: SourceOption = None,
    type_glob: TypeGlobOption = None,
    status: StatusOption = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List stored events, newest first."""
    from .store import EventFilter

    settings = _settings(config, quiet=as_json)
    flt = EventFilter(
        source=source,
        type=type_glob,
        status=status.value if status is not None else None,
        since=_since(since, time.time()),
        limit=limit,
    )

    async def work() -> list[EventRecord]:
        async with _open(settings) as store:
            return await store.list_events(flt)

    records = _run(work)
    if as_json:
        _emit_json([_event_row(r) for r in records])
        return
    if not records:
        out.print("no events")
        return
    table = Table(box=None, header_style="bold")
    for column in ("seq", "received (UTC)", "source", "type", "id", "status"):
        table.add_column(column, no_wrap=column != "id", overflow="fold")
    for r in records:
        table.add_row(
            str(r.seq),
            _iso(r.received_at),
            escape(r.source),
            escape(r.type),
            escape(r.dedup_key),
            _status(r.status),
        )
    out.print(table)


@events_app.command("show")
def events_show(
    seq: Annotated[int, typer.Argument(help="The event's number (the seq column).")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one event: headers, body, deliveries and every attempt with its error."""
    settings = _settings(config, quiet=as_json)

    async def work() -> tuple[EventRecord, list[_DeliveryView]]:
        async with _open(settings) as store:
            record = await store.get_event(seq)
            if record is None:
                raise NotFound(
                    f"no event #{seq} in {_without_password(settings.store.url)}; "
                    "`hookwise events list` shows what is stored"
                )
            found = []
            for delivery in await store.deliveries(seq):
                state = None
                if delivery.policy is not None and delivery.ordering_key is not None:
                    state = await store.ordering_state(delivery.handler, delivery.ordering_key)
                found.append(_DeliveryView(delivery, await store.attempts(delivery.id), state))
            return record, found

    record, deliveries = _run(work)
    if as_json:
        document = _event_row(record)
        document["headers"] = [list(pair) for pair in record.headers]
        document.update(_body_view(record.body))
        document["deliveries"] = [
            {
                **_delivery_row(delivery),
                "ordering_state": _ordering_state_row(state),
                "attempts_history": [
                    {
                        "number": a.number,
                        "started_at": _iso(a.started_at),
                        "finished_at": _iso(a.finished_at),
                        "duration_ms": round((a.finished_at - a.started_at) * 1000, 1),
                        "outcome": a.outcome,
                        "error": a.error,
                        "owner": a.owner,
                    }
                    for a in attempts
                ],
            }
            for delivery, attempts, state in deliveries
        ]
        _emit_json(document)
        return
    _print_event(record, deliveries)


class _DeliveryView(NamedTuple):
    delivery: DeliveryRecord
    attempts: Sequence[AttemptRecord]
    state: OrderingState | None = None
    """The ordering state of the delivery's group, when it is ordered."""


def _print_event(record: EventRecord, deliveries: Sequence[_DeliveryView]) -> None:
    from rich.json import JSON

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for name, value in (
        ("event", f"#{record.seq}"),
        ("source", record.source),
        ("type", record.type),
        ("id", record.dedup_key),
        ("status", record.status),
        ("received", _iso(record.received_at)),
        ("occurred", _iso(record.occurred_at) or "-"),
        ("ordering key", record.ordering_key or "-"),
        ("intake", record.intake),
    ):
        facts.add_row(name, _status(str(value)) if name == "status" else escape(str(value)))
    out.print(facts)
    out.print()
    out.print("[bold]headers[/]")
    for name, value in record.headers:
        out.print(f"  {escape(name)}: {escape(value)}")
    if not record.headers:
        out.print("  (none)")
    out.print()
    out.print(f"[bold]body[/] ({len(record.body)} bytes)")
    try:
        out.print(JSON(record.body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        out.print(escape(repr(record.body)))
    out.print()
    out.print("[bold]deliveries[/]")
    if not deliveries:
        out.print("  (none: no handler was subscribed to this event)")
    for delivery, attempts, state in deliveries:
        line = (
            f"  #{delivery.id} {escape(delivery.handler)}: {_status(delivery.status)}, "
            f"{delivery.attempts} attempt(s)"
        )
        if delivery.status in ("pending", "retrying") and delivery.next_attempt_at:
            line += f", next at {_iso(delivery.next_attempt_at)}"
        if delivery.status == "waiting":
            line += ", behind an earlier event of its key"
        if delivery.status == "skipped" and delivery.last_error:
            reason = _SKIP_REASONS.get(delivery.last_error)
            line += f", {escape(delivery.last_error)}" + (f" ({reason})" if reason else "")
        if delivery.policy is not None:
            line += (
                f"; ordering {escape(delivery.policy)} by key "
                f"{escape(delivery.ordering_key or '-')}"
            )
        out.print(line)
        if delivery.policy is not None and delivery.ordering_key is not None:
            out.print(f"    {_group_line(state)}")
        for a in attempts:
            took = (a.finished_at - a.started_at) * 1000
            text = f"    {a.number}. {_iso(a.started_at)} {escape(a.outcome)} ({took:.1f} ms)"
            if a.error:
                text += f" [red]{escape(a.error)}[/]"
            out.print(text)


def _group_line(state: OrderingState | None) -> str:
    """What the delivery's group has applied: the newest event done for the key."""
    if state is None or (state.applied_seq is None and state.applied_at is None):
        return "key state: nothing applied yet"
    parts = []
    if state.applied_seq is not None:
        parts.append(f"event #{state.applied_seq}")
    if state.applied_at is not None:
        parts.append(f"occurred {_iso(state.applied_at)}")
    return f"key state: newest applied {', '.join(parts)} (updated {_iso(state.updated_at)})"


@events_app.command("export")
def events_export(
    config: ConfigOption = None,
    source: SourceOption = None,
    type_glob: TypeGlobOption = None,
    status: StatusOption = None,
    since: SinceOption = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            min=1,
            help="At most this many, the newest (default: all).",
            show_default=False,
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write one .json file per delivery into this directory.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Write one JSON line per delivery into this file (- for stdout).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write stored deliveries to recording files, oldest first, to replay or test with.

    Each recording is one delivery: source, provider, dedup key, type, times, the
    headers as stored (in order; credentials were redacted when stored) and the body
    byte for byte (text, or base64 when not UTF-8) with its SHA-256, so a body edited by
    hand is noticed. `hookwise replay --file` sends them again; `hookwise.testing`
    loads them in tests. The format: docs/local-development.md.
    """
    from .recording import as_recorded, collect, write_directory, write_jsonl
    from .store import EventFilter

    if (out_dir is None) == (file is None):
        raise typer.BadParameter("give --out DIR (a file per delivery) or --file F.jsonl")
    settings = _settings_any_secrets(config, quiet=file is not None and str(file) == "-")
    flt = EventFilter(
        source=source,
        type=type_glob,
        status=status.value if status is not None else None,
        since=_since(since, time.time()),
    )

    async def work() -> list[EventRecord]:
        async with _open(settings) as store:
            return await collect(store, flt, limit=limit)

    records = [
        as_recorded(
            record,
            provider=_provider_of(settings, record.source),
            secrets=_secrets_of(settings, record.source),
        )
        for record in _run(work)
    ]
    if file is not None and str(file) == "-":
        from .recording import dumps

        for record in records:
            sys.stdout.write(dumps(record) + "\n")
        return
    where = ""
    try:
        if file is not None:
            where = os.fspath(file)
            write_jsonl(records, file)
        elif out_dir is not None:
            where = os.fspath(out_dir) + os.sep
            write_directory(records, out_dir)
    except OSError as exc:
        raise _fail(
            f"can't write the recordings to {where}: {exc.strerror or exc} "
            f"({exc.filename or where}); choose a path in a directory you can write to",
            code=2,
        ) from None
    out.print(f"wrote {_plural(len(records), 'recording')} to {escape(where)}")
    redacted = sorted({name for record in records for name in record.redacted})
    if redacted:
        err.print(
            f"[yellow]note: redacted (never written): {escape(', '.join(redacted))}; "
            "such recordings verify only re-signed (`hookwise replay --file F --resign`)[/]"
        )


def _settings_any_secrets(config: Path | None, *, quiet: bool = False) -> Settings:
    """The config, even when some of its secrets' variables are not set."""
    from .config import MissingSecretError

    try:
        return _settings(config, quiet=quiet)
    except MissingSecretError as exc:
        return exc.settings


def _provider_of(settings: Settings, source: str) -> str | None:
    configured = settings.sources.get(source)
    return configured.provider if configured is not None else None


def _secrets_of(settings: Settings, source: str) -> tuple[str, ...]:
    configured = settings.sources.get(source)
    return configured.secrets if configured is not None else ()


# -- tail ---------------------------------------------------------------------------------


@app.command()
def tail(
    config: ConfigOption = None,
    source: SourceOption = None,
    type_glob: TypeGlobOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Start this long ago (10m, 3d) or at this ISO-8601 time (default: now).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per line, nothing else.")
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.05, help="Seconds between two looks at the store."),
    ] = 0.5,
) -> None:
    """Follow events as they arrive and settle, until Ctrl-C.

    One line per stored event (seq, time, source, type, id, intake), then one per
    delivery as it settles: done, retry (with the error and when the next attempt is),
    dead or skipped, with the handler. Reads the store only, so it works beside any
    number of receivers and workers, on SQLite and PostgreSQL.
    """
    from .tail import Tail, line_json, line_text

    settings = _settings_any_secrets(config, quiet=as_json)
    start = _since(since, time.time())

    def emit(line: TailLine) -> None:
        if as_json:
            sys.stdout.write(json.dumps(line_json(line), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            out.print(line_text(line, now=time.time()))

    async def work() -> None:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with _open(settings) as store:
            following = Tail(store, source=source, type_glob=type_glob, since=start)
            await following.follow(emit, stop=stop, interval=interval, ready=ready)

    def ready() -> None:
        if not as_json:
            shown = _without_password(settings.store.url)
            err.print(f"hookwise tail: following {escape(shown)} (Ctrl-C to stop)")

    _run(work)


def _without_password(url: str) -> str:
    """A store URL fit to print: its password, if any, replaced by ``***``."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


# -- replay -------------------------------------------------------------------------------


@app.command()
def replay(
    seqs: Annotated[
        list[int] | None, typer.Argument(help="Event numbers to replay.", show_default=False)
    ] = None,
    config: ConfigOption = None,
    source: SourceOption = None,
    type_glob: TypeGlobOption = None,
    since: SinceOption = None,
    handler: Annotated[
        list[str] | None,
        typer.Option(
            "--handler",
            help="Only for this handler (repeatable; default: every handler the event routes to).",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Replay a filter's events without asking.")
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="Send recorded deliveries (a .jsonl file or an export directory) to a "
            "receiver over HTTP instead.",
            show_default=False,
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="With --file: where to POST; {source} stands for each recording's source "
            "(default: http://HOST:PORT/hooks/{source} from the config's \\[server]).",
            show_default=False,
        ),
    ] = None,
    resign: Annotated[
        bool,
        typer.Option(
            "--resign",
            help="With --file: replace the recorded signature with a fresh one made with "
            "the receiving source's secret (-c) or --secret; the delivery id is kept.",
        ),
    ] = False,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", help="With --resign: the secret to sign with.", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="With --file: seconds per request.")
    ] = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --file: print one JSON document, nothing else.")
    ] = False,
) -> None:
    """Run stored events through their handlers again, or send recorded deliveries again.

    Stored events: `replay 12 13`, or by filter (--source, --type, --since; it asks for
    confirmation unless --yes). Their deliveries become pending now with a fresh attempt
    budget, their history kept; a running worker picks them up.

    Recorded deliveries: `replay --file F [--to URL] [--resign]` POSTs each delivery of a
    recording (`hookwise events export`) to a receiver, with its exact body and headers:
    as recorded (the receiver must have the same secret, and the signed time must still
    be within its tolerance), or with --resign signed afresh by the receiving source's
    secret (from -c, or --secret). The delivery id is kept, so dedup works as in
    production. Prints one line per request with the answer; exits 1 if any was not 2xx.
    """
    if file is not None:
        stored_mode = [
            flag
            for flag, given in (
                ("event numbers", bool(seqs)),
                ("--source", source is not None),
                ("--type", type_glob is not None),
                ("--since", since is not None),
                ("--handler", bool(handler)),
                ("--yes", yes),
            )
            if given
        ]
        if stored_mode:
            raise typer.BadParameter(
                f"--file sends recorded deliveries over HTTP; {', '.join(stored_mode)} "
                "select stored events to run again: give one or the other"
            )
        _replay_file(
            file, config, to=to, resign=resign, secret=secret, timeout=timeout, as_json=as_json
        )
        return
    file_mode = [
        flag
        for flag, given in (
            ("--to", to is not None),
            ("--resign", resign),
            ("--secret", secret is not None),
            ("--json", as_json),
        )
        if given
    ]
    if file_mode:
        raise typer.BadParameter(
            f"{', '.join(file_mode)} {'goes' if len(file_mode) == 1 else 'go'} with --file "
            "(sending recorded deliveries); "
            "stored events are replayed by number or filter"
        )
    by_filter = source is not None or type_glob is not None or since is not None
    if seqs and by_filter:
        raise typer.BadParameter("give event numbers or a filter, not both")
    if not seqs and not by_filter:
        raise typer.BadParameter(
            "give event numbers (hookwise replay 12 13) or a filter (--source, --type, --since)"
        )
    hw = _hookwise(config)
    for name in handler or ():
        if name not in hw.handlers:
            known = ", ".join(hw.handlers.names()) or "none configured"
            raise typer.BadParameter(f"no handler named {name!r} (handlers: {known})")
    from .store import EventFilter

    now = time.time()
    flt = EventFilter(source=source, type=type_glob, since=_since(since, now), limit=_PAGE)

    async def work() -> tuple[int, int, list[int]]:
        async with hw.open_store() as store:
            if seqs:
                records = []
                for seq in dict.fromkeys(seqs):
                    record = await store.get_event(seq)
                    if record is None:
                        raise NotFound(f"no event #{seq}; `hookwise events list` shows them")
                    records.append(record)
            else:
                records = await _all_events(store, flt)
                if not records:
                    return 0, 0, []
                _confirm_replay(len(records), yes)
            routes: dict[tuple[str, ...], list[int]] = {}
            unrouted: list[int] = []
            for record in records:
                names = tuple(handler) if handler else hw.handlers.route(record.source, record.type)
                if names:
                    routes.setdefault(names, []).append(record.seq)
                else:
                    unrouted.append(record.seq)
            scheduled = 0
            for names, event_seqs in routes.items():
                scheduled += await store.replay(event_seqs, names, now=time.time())
            return len(records), scheduled, unrouted

    matched, scheduled, unrouted = _run(work)
    if matched == 0:
        out.print("no events match; nothing to replay")
        return
    out.print(
        f"scheduled {scheduled} deliver{'y' if scheduled == 1 else 'ies'} for "
        f"{matched - len(unrouted)} event(s); a running worker picks them up"
    )
    if unrouted:
        shown = ", ".join(f"#{seq}" for seq in unrouted[:20])
        err.print(
            f"[yellow]no handler receives {shown}{' ...' if len(unrouted) > 20 else ''}; "
            "pass --handler NAME to replay them anyway[/]"
        )


async def _all_events(store: Store, flt: EventFilter) -> list[EventRecord]:
    found: list[EventRecord] = []
    while True:
        page = await store.list_events(flt)
        found.extend(page)
        if len(page) < flt.limit:
            return found
        flt = replace(flt, before_seq=page[-1].seq)


def _replay_file(
    file: Path,
    config: Path | None,
    *,
    to: str | None,
    resign: bool,
    secret: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    import httpx

    from .config import MissingSecretError
    from .recording import Replayer, load_recording, send_all

    if secret is not None and not resign:
        raise typer.BadParameter("--secret signs re-signed requests: add --resign")
    if to is not None:
        _http_url(to, "--to")
    records = load_recording(file)
    settings: Settings | None = None
    unset: MissingSecretError | None = None
    if config is not None or Path("hookwise.toml").exists():
        try:
            settings = load_config(config)
        except MissingSecretError as exc:
            settings, unset = exc.settings, exc
        if not as_json:
            _warn(settings)
    if to is None:
        if settings is None:
            raise ConfigError(
                "no receiver to send to: no --to, and no config to take [server] from",
                fix="pass --to http://HOST:PORT/hooks/{source}, or -c FILE",
            )
        host = settings.server.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        to = f"http://{shown}:{settings.server.port}/hooks/{{source}}"
    replayer = Replayer(
        to=to,
        resign=resign,
        sources=settings.sources if settings is not None else None,
        secret=secret,
        config=settings.path if settings is not None else None,
    )
    if resign and secret is None and unset is not None:
        # Only the secrets of the sources that sign these recordings are needed.
        targets = tuple(f"sources.{replayer.target(record)}." for record in records)
        if any(key.startswith(targets) for key, _ in unset.missing):
            raise unset
    replayer.check(records)
    rows: list[dict[str, Any]] = []

    async def work() -> None:
        requests = (replayer.request(record, now=time.time()) for record in records)
        async with httpx.AsyncClient(timeout=timeout) as client:
            async for answer in send_all(requests, client):
                rows.append(_replay_row(len(rows) + 1, answer))
                if not as_json:
                    _print_replayed(answer)

    try:
        _run(work)
    except httpx.HTTPError as exc:
        raise _fail(
            f"sending to {to} failed after {_plural(len(rows), 'request')}: "
            f"{exc or type(exc).__name__}; is the receiver running (`hookwise serve`)?"
        ) from None
    failed = [row for row in rows if not 200 <= row["status"] < 300]
    if as_json:
        _emit_json(rows)
    else:
        answers = [_answer_status(row["response"]) for row in rows]
        counts = ", ".join(
            f"{answers.count(kind)} {kind}" for kind in dict.fromkeys(answers) if kind
        )
        out.print(
            f"sent {_plural(len(rows), 'recording')}"
            + (f": {counts}" if counts else "")
            + (f"; [red]{len(failed)} not 2xx[/]" if failed else "")
        )
        if any(row["status"] == 401 for row in failed) and not resign:
            err.print(
                "[yellow]401: the receiver refused the recorded signatures: its secret differs, "
                "or the signed time is older than its tolerance. Re-sign them: --resign "
                "(with -c FILE, or --secret S)[/]"
            )
    if failed:
        raise typer.Exit(1)


def _replay_row(number: int, answer: Answer) -> dict[str, Any]:
    record = answer.request.recorded
    return {
        "n": number,
        "source": record.source,
        "id": record.id,
        "type": record.type,
        "origin": record.origin,
        "url": answer.request.url,
        "resigned": answer.request.resigned,
        "status": answer.status,
        "latency_ms": answer.latency_ms,
        "response": answer.text,
        "notes": list(answer.request.notes),
    }


def _answer_status(text: str) -> str:
    """The ``status`` of a hookwise answer (accepted, duplicate), else ""."""
    try:
        document = json.loads(text)
    except ValueError:
        return ""
    status = document.get("status") if isinstance(document, dict) else None
    return status if isinstance(status, str) else ""


def _print_replayed(answer: Answer) -> None:
    record = answer.request.recorded
    style = "green" if answer.ok else "red"
    out.print(
        f"[{style}]{answer.status}[/] {answer.latency_ms:6.1f} ms  {escape(record.source)} "
        f"{escape(record.type)} {escape(record.id)}  {escape(answer.text.strip()[:300])}"
    )
    for note in answer.request.notes:
        out.print(f"    [yellow]note: {escape(note)}[/]")


def _confirm_replay(count: int, yes: bool) -> None:
    if yes:
        return
    if sys.stdin is None or not sys.stdin.isatty():
        raise _fail(f"replaying {count} event(s) needs confirmation; pass --yes", code=2)
    if not typer.confirm(f"replay {count} event(s)?", default=False):
        raise typer.Exit(1)


# -- dead letters ---------------------------------------------------------------------------


@dlq_app.command("list")
def dlq_list(
    config: ConfigOption = None,
    source: SourceOption = None,
    handler: Annotated[str | None, typer.Option("--handler", help="Only this handler.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List dead letters, newest first, with the error that ended each."""
    settings = _settings(config, quiet=as_json)

    async def work() -> list[DeliveryRecord]:
        async with _open(settings) as store:
            return await store.list_dead(source=source, handler=handler, limit=limit)

    records = _run(work)
    if as_json:
        _emit_json([_delivery_row(r) for r in records])
        return
    if not records:
        out.print("no dead letters")
        return
    table = Table(box=None, header_style="bold")
    for column in ("delivery", "event", "source", "type", "handler", "attempts", "died (UTC)"):
        table.add_column(column, no_wrap=True)
    table.add_column("last error")
    for r in records:
        table.add_row(
            str(r.id),
            f"#{r.event_seq}",
            escape(r.source),
            escape(r.event_type),
            escape(r.handler),
            str(r.attempts),
            _iso(r.updated_at),
            f"[red]{escape(r.last_error or '')}[/]",
        )
    out.print(table)


@dlq_app.command("retry")
def dlq_retry(
    ids: Annotated[
        list[int] | None,
        typer.Argument(help="Delivery ids (the delivery column).", show_default=False),
    ] = None,
    config: ConfigOption = None,
    retry_all: Annotated[
        bool, typer.Option("--all", help="Every dead letter (of --source, if given).")
    ] = False,
    source: SourceOption = None,
) -> None:
    """Make dead letters pending again now, with a fresh attempt budget."""
    if ids and retry_all:
        raise typer.BadParameter("give delivery ids or --all, not both")
    if not ids and not retry_all:
        raise typer.BadParameter("give delivery ids (hookwise dlq retry 7 9) or --all")
    settings = _settings(config)

    async def work() -> int:
        async with _open(settings) as store:
            return await store.retry_dead(ids or None, now=time.time(), source=source)

    count = _run(work)
    out.print(
        f"scheduled {count} dead letter{'' if count == 1 else 's'} again; "
        "a running worker picks them up"
    )
    if ids and count < len(set(ids)):
        err.print(
            f"[yellow]{len(set(ids)) - count} of the ids given are not dead letters "
            "(see `hookwise dlq list`)[/]"
        )


@dlq_app.command("discard")
def dlq_discard(
    ids: Annotated[
        list[int] | None,
        typer.Argument(help="Delivery ids (the delivery column).", show_default=False),
    ] = None,
    config: ConfigOption = None,
    discard_all: Annotated[
        bool, typer.Option("--all", help="Every dead letter (of --source, if given).")
    ] = False,
    source: SourceOption = None,
) -> None:
    """Give up on dead letters: they become skipped, with the error "discarded".

    Their attempt history stays and they leave the dead-letter list; their
    events count as finished, so retention (or `hookwise purge`) may delete
    them. To run one again after all, replay its event (`hookwise replay SEQ`).
    """
    if ids and discard_all:
        raise typer.BadParameter("give delivery ids or --all, not both")
    if not ids and not discard_all:
        raise typer.BadParameter("give delivery ids (hookwise dlq discard 7 9) or --all")
    settings = _settings(config)

    async def work() -> int:
        async with _open(settings) as store:
            return await store.discard_dead(ids or None, now=time.time(), source=source)

    count = _run(work)
    out.print(
        f"discarded {count} dead letter{'' if count == 1 else 's'}; "
        "their history is kept until their events are purged"
    )
    if ids and count < len(set(ids)):
        err.print(
            f"[yellow]{len(set(ids)) - count} of the ids given are not dead letters "
            "(see `hookwise dlq list`)[/]"
        )


# -- rejection records ----------------------------------------------------------------------

_HINT_WIDTH = 60
"""Characters of the first hint a listing shows."""
_TEXT_PREVIEW = 4000
"""Characters of a text body `rejections show` prints (--json has all that is kept)."""
_BINARY_PREVIEW = 256
"""Bytes of a binary body `rejections show` prints as a hex dump."""
_MAX_ID = 2**63 - 1
"""The largest id a store can hold (a 64-bit integer)."""


def _rejection_row(record: RejectionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "received_at": _iso(record.received_at),
        "source": record.source,
        "status": record.status,
        "reason": record.reason,
        "detail": record.detail,
        "hints": list(record.hints),
        "method": record.method,
        "url": record.url,
        "client": record.client,
        "body_size": record.body_size,
    }


def _shorten(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


@rejections_app.command("list")
def rejections_list(
    config: ConfigOption = None,
    source: SourceOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List rejection records, newest first: requests refused with a 401 or 403.

    Each is a refused request kept for diagnosis: the sender got a generic 401/403,
    the record has the reason and hints. `hookwise rejections show ID` shows one
    whole (headers, body).
    """
    settings = _settings(config, quiet=as_json)

    async def work() -> list[RejectionRecord]:
        async with _open(settings) as store:
            return await store.list_rejections(source=source, limit=limit)

    records = _run(work)
    if as_json:
        _emit_json([_rejection_row(r) for r in records])
        return
    if not records:
        out.print("no rejection records" + (f" for {escape(source)}" if source else ""))
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "received (UTC)", "source", "status", "reason"):
        table.add_column(column, no_wrap=True)
    table.add_column("first hint")
    for r in records:
        table.add_row(
            str(r.id),
            _iso(r.received_at),
            escape(r.source),
            f"[red]{r.status}[/]",
            escape(r.reason),
            escape(_shorten(r.hints[0], _HINT_WIDTH)) if r.hints else "[dim]-[/]",
        )
    out.print(table)


@rejections_app.command("show")
def rejections_show(
    rejection_id: Annotated[
        int, typer.Argument(metavar="ID", help="The record's number (the id column).")
    ],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one rejection record: reason, detail, hints, the request and its body.

    A rejection record is a refused request kept for diagnosis: the sender got a
    generic 401/403 and was told nothing more. Headers are redacted like an event's;
    the body is kept up to a cap (body_size is the whole size).
    """
    if not 1 <= rejection_id <= _MAX_ID:
        raise typer.BadParameter(
            f"{rejection_id} is not a record's number; take one from the id column of "
            "`hookwise rejections list`",
            param_hint="ID",
        )
    settings = _settings(config, quiet=as_json)

    async def work() -> RejectionRecord:
        async with _open(settings) as store:
            record = await store.get_rejection(rejection_id)
        if record is None:
            raise NotFound(
                f"no rejection record #{rejection_id} in {_without_password(settings.store.url)}; "
                "`hookwise rejections list` shows the ones kept (the newest of each source)"
            )
        return record

    record = _run(work)
    if as_json:
        document = _rejection_row(record)
        document["headers"] = [list(pair) for pair in record.headers]
        document.update(_body_view(record.body))
        document["body_kept"] = len(record.body)
        _emit_json(document)
        return
    _print_rejection(record)


def _print_rejection(record: RejectionRecord) -> None:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    for name, value in (
        ("rejection", f"#{record.id}"),
        ("source", escape(record.source)),
        ("received", _iso(record.received_at)),
        ("answered", f"[red]{record.status}[/] (a generic answer: the sender was not told why)"),
        ("reason", escape(record.reason)),
        ("detail", escape(record.detail)),
        ("request", f"{escape(record.method)} {escape(record.url)}"),
        ("client", escape(record.client or "-")),
    ):
        facts.add_row(name, value)
    out.print(facts)
    out.print()
    out.print("[bold]hints[/]")
    for hint in record.hints:
        out.print(f"  - {escape(hint)}")
    if not record.hints:
        out.print("  (none: hookwise could not tell more than the reason)")
    out.print()
    out.print("[bold]headers[/] (secrets redacted)")
    for name, value in record.headers:
        out.print(f"  {escape(name)}: {escape(value)}")
    if not record.headers:
        out.print("  (none)")
    out.print()
    kept = len(record.body)
    size = f"{record.body_size} bytes" + (
        f", the first {kept} kept" if kept < record.body_size else ""
    )
    out.print(f"[bold]body[/] ({size})")
    for line in _body_preview(record.body):
        out.print(line)


def _body_preview(body: bytes) -> list[str]:
    """The body as received, to print: text as it is (not re-formatted: whitespace and
    key order are what a signature covers), anything else as a hex dump."""
    if not body:
        return ["  (empty)"]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\n\r" for c in text):
        lines = [escape(text[:_TEXT_PREVIEW])]
        if len(text) > _TEXT_PREVIEW:
            lines.append(
                f"[dim]... {len(text) - _TEXT_PREVIEW} more characters (--json has them)[/]"
            )
        return lines
    lines = ["[dim]binary (not printable UTF-8 text), in hex:[/]"]
    for offset in range(0, min(len(body), _BINARY_PREVIEW), 16):
        chunk = body[offset : offset + 16]
        hexes = " ".join(f"{byte:02x}" for byte in chunk)
        printable = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"  {offset:08x}  {hexes:<47}  |{escape(printable)}|")
    if len(body) > _BINARY_PREVIEW:
        lines.append(
            f"[dim]... {len(body) - _BINARY_PREVIEW} more bytes (--json has them, base64)[/]"
        )
    return lines


# -- verify -------------------------------------------------------------------------------


@app.command()
def verify(
    capture_file: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="The captured request: raw HTTP (.http) or JSON; - reads it from stdin.",
            show_default=False,
        ),
    ],
    config: ConfigOption = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="The configured source to check against (default: the source a stored "
            "record names, else NAME in the captured /hooks/NAME path).",
            show_default=False,
        ),
    ] = None,
    now: Annotated[
        float | None,
        typer.Option(
            "--now",
            metavar="UNIX_SECONDS",
            help="Check as if it were this time (default: the current time).",
            show_default=False,
        ),
    ] = None,
    at_capture_time: Annotated[
        bool,
        typer.Option(
            "--at-capture-time",
            help="Check at the time the request was captured: the received_at of a stored "
            "record, else the capture's Date header.",
        ),
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="The URL the sender posted to, for providers that sign it (default: the "
            "source's public_url, else the captured URL).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a captured request against a configured source, offline, and say why it fails.

    FILE is a raw HTTP request: a request line (POST /hooks/NAME HTTP/1.1, or a full
    URL), the headers, one blank line, then the body bytes exactly as sent (nothing is
    added; the head may end lines with CRLF or LF). Or JSON: {"method", "url",
    "headers", "body"}, with headers as an object or a list of name/value pairs and
    "body_base64" instead of "body" for bytes that are not text. What `hookwise
    rejections show ID --json` and `hookwise events show SEQ --json` print are captures
    too.

    Prints VALID or REJECTED with the reason, the detail and every hint; for a valid
    delivery, the dedup key, type, ordering key and time hookwise would store; for a
    handshake, the answer hookwise would send. Exit status: 0 valid, 1 rejected, 2 the
    capture or the config can't be used.
    """
    from .capture import captured_at, load_capture, parse_capture, source_name, verify_capture
    from .config import MissingSecretError
    from .providers import build_source

    if now is not None and at_capture_time:
        raise typer.BadParameter("give --now or --at-capture-time, not both")
    if now is not None and not 0 <= now < 1e11:
        raise typer.BadParameter(
            f"{now} is not a time in UNIX seconds (like 1700000000)", param_hint="--now"
        )
    shown = "<stdin>" if capture_file == "-" else capture_file
    if capture_file == "-":
        capture = parse_capture(sys.stdin.buffer.read(), name=shown)
    else:
        capture = load_capture(capture_file)
    name = source or source_name(capture)
    try:
        settings = _settings(config, quiet=as_json)
    except MissingSecretError as exc:
        if name is None or any(key.startswith(f"sources.{name}.") for key, _ in exc.missing):
            raise
        settings = exc.settings  # another source's secret is missing: not needed here
    configured = ", ".join(settings.sources)
    if name is None:
        raise ConfigError(
            "can't tell which source the capture is for: its path is not /hooks/NAME",
            file=shown,
            fix=f"pass --source NAME (configured: {configured or 'none'})",
        )
    if name not in settings.sources:
        raise ConfigError(
            f"no source named {name!r} is configured",
            file=settings.path or os.fspath(config or Path("hookwise.toml")),
            key=f"sources.{name}",
            fix=f"pass --source with one of: {configured}"
            if configured
            else "pass -c FILE with the config that has the source",
        )
    checked = build_source(settings.sources[name])
    moment = time.time() if now is None else now
    if at_capture_time:
        when = captured_at(capture)
        if when is None:
            raise ConfigError(
                "the capture does not say when it was made (no received_at, no Date header)",
                file=shown,
                fix="pass --now UNIX_SECONDS instead (e.g. the signed timestamp)",
            )
        moment = when
    verdict = _run(lambda: verify_capture(capture, checked, now=moment, url=url))
    if as_json:
        _emit_json(verdict.to_json())
    else:
        _print_verdict(verdict, clock_chosen=now is not None or at_capture_time)
    if not verdict.valid:
        raise typer.Exit(1)


def _print_verdict(verdict: Verdict, *, clock_chosen: bool) -> None:
    mark = "[bold green]VALID[/]" if verdict.valid else "[bold red]REJECTED[/]"
    out.print(
        f"{mark}  {escape(verdict.method)} {escape(verdict.url)} -> {verdict.status}, "
        f"source {escape(verdict.source)} (provider {escape(verdict.provider)}), "
        f"checked at {_iso(verdict.now)}"
    )
    if verdict.reason:
        out.print(f"  reason: [red]{escape(verdict.reason)}[/]")
    if verdict.detail:
        out.print(f"  detail: {escape(verdict.detail)}")
    for hint in verdict.hints:
        out.print(f"  hint: {escape(hint)}")
    if not verdict.valid and not verdict.hints:
        out.print(
            "  hint: none; hookwise could not tell more than the reason "
            "(docs/troubleshooting.md lists what each reason means)"
        )
    if verdict.handshake is not None:
        answer = verdict.handshake
        text = " ".join(answer.body.decode("utf-8", "replace").split())
        shown = text if len(text) <= 200 else text[:199] + "…"
        out.print(
            f"  this is a handshake; hookwise would answer {answer.status} "
            f"({escape(answer.content_type)}): {escape(shown) or '(empty body)'}"
        )
    if verdict.description is not None:
        event = verdict.description
        out.print(f"  dedup key:    {escape(event.dedup_key)}")
        out.print(f"  type:         {escape(event.type)}")
        out.print(f"  ordering key: {escape(event.ordering_key or '-')}")
        out.print(f"  occurred at:  {_iso(event.occurred_at) or '-'}")
    for note in verdict.notes:
        out.print(f"  note: {escape(note)}")
    if verdict.offset is not None and not clock_chosen:
        signed = round(verdict.now - verdict.offset)
        out.print(
            f"  tip: to check the signature apart from its age, run again with --now {signed} "
            "(the signed time) or --at-capture-time"
        )


# -- purge --------------------------------------------------------------------------------


@app.command()
def purge(
    config: ConfigOption = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Delete finished events received longer ago than this, e.g. 30d "
            "(default: store.retention in the config).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Delete old finished events, with their deliveries and attempt history.

    Finished means every delivery is done or skipped (or the event has none).
    Dead letters and work still pending, leased or retrying keep their events:
    retry or discard them first (`hookwise dlq`).

    With store.retention set in the config, `serve` and `worker` purge by
    themselves every 10 minutes; this command purges now. A purged event is
    forgotten: if its sender delivers it again, it is stored and handled again.
    """
    settings = _settings(config, quiet=as_json)
    if older_than is not None:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--older-than") from None
        if age < _MIN_PURGE_AGE:
            raise typer.BadParameter(
                f"{older_than!r} is too recent: a sender may still redeliver such events, "
                "and a redelivery after the purge would run again; give 1h or more",
                param_hint="--older-than",
            )
    elif settings.store.retention is not None:
        age = settings.store.retention
    else:
        raise ConfigError(
            "purge needs an age: neither --older-than nor [store] retention is set",
            file=settings.path,
            key="store.retention",
            fix='pass --older-than 30d, or set retention = "30d" in [store]',
        )
    before = time.time() - age

    async def work() -> int:
        async with _open(settings) as store:
            return await store.purge(before=before)

    if as_json:
        deleted = _run(work)
        _emit_json({"deleted": deleted, "before": _iso(before)})
        return
    with err.status(f"deleting finished events received before {_iso(before)} ..."):
        deleted = _run(work)
    out.print(
        f"deleted {deleted} finished event{'' if deleted == 1 else 's'} received before "
        f"{_iso(before)} ({format_duration(age)} ago); dead letters and unfinished work are kept"
    )


# -- doctor -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


@app.command()
def doctor(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Check the setup: config, secrets, handlers, store and clock; exit 1 if anything fails.

    Each failed check says how to fix it.
    """
    checks = _diagnose(config)
    ok = all(check.ok for check in checks)
    if as_json:
        _emit_json(
            {
                "ok": ok,
                "checks": [
                    {"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks
                ],
            }
        )
    else:
        for check in checks:
            mark = "[green]ok  [/]" if check.ok else "[red]FAIL[/]"
            out.print(f"{mark} {check.name:<9} {escape(check.detail)}")
            if check.fix and not check.ok:
                out.print(f"               [bold]fix:[/] {escape(check.fix)}")
        failed = sum(not check.ok for check in checks)
        out.print()
        if failed:
            out.print(f"[red]{failed} check(s) failed[/]")
        else:
            out.print("[green]all checks passed[/]")
    if not ok:
        raise typer.Exit(1)


def _diagnose(config: Path | None) -> list[_Check]:
    from .config import MissingSecretError
    from .handlers import import_callable

    checks: list[_Check] = []
    shown = os.fspath(config or Path("hookwise.toml"))
    try:
        settings = load_config(config)
        missing: tuple[tuple[str, str], ...] = ()
    except MissingSecretError as exc:
        settings, missing = exc.settings, exc.missing
    except ConfigError as exc:
        checks.append(_Check("config", False, str(exc).split("\n")[0], exc.fix))
        return checks
    detail = (
        f"{shown}: {len(settings.sources)} source(s), {len(settings.polls)} poll(s), "
        f"{len(settings.handlers)} handler(s)"
    )
    checks.append(_Check("config", True, detail))
    for warning in settings.warnings:
        checks.append(_Check("warning", True, warning))

    if missing:
        variables = list(dict.fromkeys(var for _, var in missing))
        checks.append(
            _Check(
                "secrets",
                False,
                "not set: " + ", ".join(f"{var} (for {key})" for key, var in missing),
                "; ".join(f"export {var}=..." for var in variables),
            )
        )
    else:
        count = sum(len(s.secrets) for s in settings.sources.values())
        checks.append(_Check("secrets", True, f"{count} secret(s) present"))

    _import_path_for(config)
    broken: list[ConfigError] = []
    for handler in settings.handlers:
        try:
            import_callable(handler.call, key=f"handlers.{handler.name}.call", file=shown)
        except ConfigError as exc:
            broken.append(exc)
    if broken:
        checks.append(
            _Check(
                "handlers",
                False,
                "; ".join(exc.problem for exc in broken),
                broken[0].fix,
            )
        )
    else:
        checks.append(_Check("handlers", True, f"{len(settings.handlers)} importable"))

    checks.extend(_run(lambda: _check_store(settings)))
    return checks


async def _check_store(settings: Settings) -> list[_Check]:
    from .store import EventFilter

    url = settings.store.url
    checks: list[_Check] = []
    now = time.time()
    newest: float | None = None
    try:
        store = _open(settings)
        schema_version = getattr(store, "schema_version", None)
        if schema_version is not None:
            version = await schema_version()
            if version is None:
                checks.append(
                    _Check(
                        "store",
                        False,
                        f"{url} is reachable but has no tables",
                        "run `hookwise migrate`",
                    )
                )
                return [*checks, _clock_check(now, None)]
        async with store:
            await store.ping()
            problem = _unwritable(settings.store.url)
            if problem:
                checks.append(_Check("store", False, problem, "fix the file's permissions"))
            else:
                version_text = f", schema {version}" if schema_version is not None else ""
                checks.append(_Check("store", True, f"{url} reachable, writable{version_text}"))
            latest = await store.list_events(EventFilter(limit=1))
            newest = latest[0].received_at if latest else None
    except HookwiseError as exc:
        fix = (
            exc.fix
            if isinstance(exc, ConfigError)
            else "check [store] url, and run `hookwise migrate`"
        )
        problem = exc.problem if isinstance(exc, ConfigError) else str(exc)
        checks.append(_Check("store", False, f"{url}: {problem}", fix))
    checks.append(_clock_check(now, newest))
    return checks


def _unwritable(url: str) -> str | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = Path(url[len(prefix) :])
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable by this user"
    if not os.access(path.parent, os.W_OK):
        return f"{path.parent} is not writable (SQLite keeps its journal beside the file)"
    return None


def _clock_check(now: float, newest: float | None) -> _Check:
    if now < _SANE_EPOCH:
        return _Check(
            "clock",
            False,
            f"this machine's clock says {_iso(now)}",
            "set the clock (enable NTP): signature timestamps are checked against it",
        )
    if newest is not None and newest > now + _CLOCK_SLACK:
        return _Check(
            "clock",
            False,
            f"the newest stored event was received at {_iso(newest)}, "
            f"{newest - now:.0f}s ahead of this clock ({_iso(now)})",
            "one of the machines sharing this store has a wrong clock; enable NTP on all",
        )
    return _Check("clock", True, f"{_iso(now)}")


# -- send ---------------------------------------------------------------------------------


@app.command()
def send(
    provider: Annotated[
        str,
        typer.Argument(
            help="A provider (stripe, github, standard, hmac...), or with -c the name of a "
            "configured source."
        ),
    ],
    url: Annotated[
        str, typer.Argument(help="Where to POST, e.g. http://127.0.0.1:8000/hooks/demo")
    ],
    config: ConfigOption = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            "-s",
            envvar=SEND_SECRET_ENV,
            help="The signing secret (default: the configured source's, with -c).",
            show_envvar=True,
        ),
    ] = None,
    event: Annotated[
        str | None,
        typer.Option(
            "--event",
            "-e",
            help="The event type to send: one of the provider's samples (see --list-events), "
            "or any type for a generic sample body. Default: each sample in turn.",
        ),
    ] = None,
    list_events: Annotated[
        bool, typer.Option("--list-events", help="List the provider's sample event types.")
    ] = False,
    body: Annotated[
        str | None,
        typer.Option(
            "--body", "-b", help="The body: JSON text, or @FILE (default: a sample event)."
        ),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, help="How many events to send.")
    ] = 1,
    duplicates: Annotated[
        int,
        typer.Option(
            "--duplicates",
            "-k",
            min=1,
            help="Send each event K times: same body, same delivery id, each copy signed "
            "as it goes (as providers sign retries). With --concurrency above 1, the first "
            "two copies of every other event (the 1st, 3rd, 5th...) go at the same moment.",
        ),
    ] = 1,
    shuffle: Annotated[
        bool, typer.Option("--shuffle", help="Send all the requests in a random order.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed of the random draws (--shuffle, the rates): the summary prints the one "
            "used, pass it to send the same plan again.",
            show_default=False,
        ),
    ] = None,
    delay: Annotated[
        str | None,
        typer.Option(
            "--delay",
            help="Wait this long between the starts of two sends, e.g. 200ms.",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", "-j", min=1, help="Requests in flight at most."),
    ] = 1,
    bad_signature: Annotated[
        bool,
        typer.Option(
            "--bad-signature",
            help="Break the signature of every event: one character of it changed (for "
            "providers that sign inside the body: a wrong secret), checked first to fail the "
            "provider's own verification. A correct receiver answers 4xx.",
        ),
    ] = False,
    bad_signature_rate: Annotated[
        float | None,
        typer.Option(
            "--bad-signature-rate",
            min=0.0,
            max=1.0,
            help="Break the signature of this share of the events (e.g. 0.2), chosen at random.",
            show_default=False,
        ),
    ] = None,
    stale: Annotated[
        bool,
        typer.Option(
            "--stale",
            help="Sign every event tolerance + 5m ago (the source's tolerance; 5m by "
            "default). Refused (exit 2) for providers that sign no timestamp.",
        ),
    ] = False,
    stale_rate: Annotated[
        float | None,
        typer.Option(
            "--stale-rate",
            min=0.0,
            max=1.0,
            help="Sign this share of the events stale (e.g. 0.2), chosen at random.",
            show_default=False,
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Extra header K=V (repeatable).", show_default=False),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Source setting K=V for the signer, e.g. header=X-Sig,algorithm=sha256.",
            show_default=False,
        ),
    ] = None,
    delivery_id: Annotated[
        str | None,
        typer.Option("--id", help="Delivery id to sign every event with (to test dedup)."),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Sign sample events the way PROVIDER does and POST them to URL: a chaos tool for
    any webhook receiver, not only hookwise.

    The samples are realistic events in the provider's own shape (several types per
    provider; --list-events shows them), with fresh ids and times, signed exactly as the
    provider signs: headers, body fields or URL as the scheme requires (URL-signing
    providers sign URL unless the source sets public_url). The secret is --secret, else
    HOOKWISE_SEND_SECRET, else (with -c) the configured source's.

    Prints each answer, then a summary: requests by status, the answers' statuses
    (accepted, duplicate), what a correct receiver answers against what came back,
    latency p50/p95/max and errors (connection refused, timeouts); --json prints all of
    it as one document with a row per request. Exit status: 0 when every answer was
    what a correct receiver says (2xx for good events and their duplicates, 4xx for
    forged or stale ones), 1 otherwise, 2 for a usage mistake.
    """
    from .sending import Chaos, Outcome, outcome_line, print_report, resolve_source
    from .sending import send as send_events

    _http_url(url, "URL")
    settings, source = resolve_source(
        provider, config=config, secret=secret, options=_pairs(option or [], "--option")
    )
    if list_events:
        for name in source.samples(time.time()):
            out.print(escape(name))
        return
    try:
        chaos = Chaos(
            count=count,
            duplicates=duplicates,
            shuffle=shuffle,
            seed=seed,
            bad_signature_rate=_rate(bad_signature_rate, bad_signature),
            stale_rate=_rate(stale_rate, stale),
            concurrency=concurrency,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    pause = _duration_option(delay, "--delay") if delay is not None else 0.0
    fixed_body = _read_body(body) if body is not None else None
    extra_headers = _pairs(header or [], "--header")
    told: set[str] = set()

    def show(outcome: Outcome) -> None:
        if outcome.error is not None and outcome.error not in told:
            told.add(outcome.error)
            detail = escape(outcome.error_detail or outcome.error)
            err.print(f"[bold red]error:[/] [red]POST {escape(url)} failed: {detail}[/]")
        if not as_json:
            out.print(outcome_line(outcome, count * duplicates))

    report = _run(
        lambda: send_events(
            settings,
            source,
            url,
            chaos,
            event_type=event,
            body=fixed_body,
            delivery_id=delivery_id,
            headers=extra_headers,
            delay=pause,
            request_timeout=timeout,
            on_outcome=show,
        )
    )
    if as_json:
        _emit_json(report.document())
    else:
        print_report(report, out)
    if not report.ok:
        raise typer.Exit(1)


def _http_url(url: str, flag: str) -> None:
    """A usage mistake unless ``url`` is an absolute http(s) URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.replace("{source}", "source"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(
            f"{url!r} is not an http:// or https:// URL; write it whole, like "
            "http://127.0.0.1:8000/hooks/NAME",
            param_hint=flag,
        )


def _rate(rate: float | None, every: bool) -> float:
    if rate is not None:
        return rate
    return 1.0 if every else 0.0


def _duration_option(text: str, flag: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None


def _pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        for part in item.split(",") if flag == "--option" else [item]:
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise typer.BadParameter(f"{part!r} is not K=V", param_hint=flag)
            found[name.strip()] = value.strip() if flag == "--option" else value
    return found


def _read_body(body: str) -> bytes:
    if not body.startswith("@"):
        return body.encode("utf-8")
    path = Path(body[1:])
    try:
        return path.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(
            f"can't read {path}: {exc.strerror}", param_hint="--body"
        ) from None


# -- version ------------------------------------------------------------------------------


@app.command()
def version() -> None:
    """Print hookwise's version."""
    from . import __version__

    out.print(f"hookwise {__version__} (Python {sys.version.split()[0]})")


# -- advise -------------------------------------------------------------------------------

from .advise.command import ADVISE_HELP, advise_command  # noqa: E402 - registered last

app.command("advise", help=ADVISE_HELP)(advise_command)
