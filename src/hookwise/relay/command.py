"""``hookwise relay serve|connect|channel``: the relay's commands (registered in ``cli.py``).

Only Typer and Rich are imported here; the server, the client and httpx are imported by
the command that runs them, so ``hookwise --help`` stays quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ..durations import format_duration, parse_duration
from ..errors import ConfigError

if TYPE_CHECKING:
    import httpx

    from .client import ChannelAddress, Delivery

__all__ = ["ADMIN_TOKEN_ENV", "DATA_ENV", "TOKEN_ENV", "channel_app", "relay_app"]

ADMIN_TOKEN_ENV = "HOOKWISE_RELAY_ADMIN_TOKEN"  # noqa: S105 - the variable's name
TOKEN_ENV = "HOOKWISE_RELAY_TOKEN"  # noqa: S105 - the variable's name
DATA_ENV = "HOOKWISE_RELAY_DATA"

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

relay_app = typer.Typer(
    help="A relay for webhooks to a machine with no public address (a laptop): "
    "`relay serve` on a public host stores every request sent to a channel URL; "
    "`relay connect` on the laptop streams them out and replays each to your local "
    "receiver, byte for byte, resuming after any disconnect. See docs/relay.md.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
channel_app = typer.Typer(
    help="Channels: one public URL (and one secret token) per relay client.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
relay_app.add_typer(channel_app, name="channel")

LogLevelOption = Annotated[
    str, typer.Option("--log-level", help="Log verbosity: debug, info, warning or error.")
]
AdminTokenOption = Annotated[
    str | None,
    typer.Option(
        "--admin-token",
        envvar=ADMIN_TOKEN_ENV,
        show_envvar=True,
        help="The relay's admin token: needed to create channels when the relay has one.",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (one document, or one line per delivery).")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] [red]{escape(message)}[/]")
    return typer.Exit(code)


def _channel(channel_url: str, token: str | None) -> tuple[ChannelAddress, str]:
    """The channel of ``channel_url`` and the token to reach it; a usage error without."""
    from .client import ChannelAddress

    if not token:
        raise _fail(f"no channel token: pass --token or export {TOKEN_ENV}=...", code=2)
    try:
        return ChannelAddress.parse(channel_url), token
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="CHANNEL_URL") from None


def _seconds(value: str, flag: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None


# -- serve ------------------------------------------------------------------------------------


@relay_app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port.")] = 8787,
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            envvar=DATA_ENV,
            show_envvar=True,
            dir_okay=False,
            help="The SQLite file that holds channels and requests (created if missing).",
        ),
    ] = Path("hookwise-relay.db"),
    admin_token: AdminTokenOption = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The relay's public base URL, e.g. https://relay.example.com, for the "
            "channel URLs it hands out (default: from the request's Host and "
            "X-Forwarded-Proto).",
        ),
    ] = None,
    max_requests: Annotated[
        int,
        typer.Option("--max-requests", min=1, help="Requests kept per channel (the newest)."),
    ] = 10_000,
    keep_acked: Annotated[
        str,
        typer.Option(
            "--keep-acked", help="How long a delivered (acknowledged) request is kept, e.g. 7d."
        ),
    ] = "7d",
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Larger bodies are answered 413.")
    ] = 10 * 1024 * 1024,
    answer_wait: Annotated[
        str,
        typer.Option(
            "--answer-wait",
            help="How long a sender waits for the local answer when a client is connected "
            "(so handshakes such as Slack's url_verification work); 0 answers at once.",
        ),
    ] = "2s",
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", exists=True, dir_okay=False, help="Serve HTTPS: PEM cert."),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", exists=True, dir_okay=False, help="Serve HTTPS: PEM key."),
    ] = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Run the public side of the relay, on a host the senders can reach.

    Stores every request sent to a channel URL (any method, to /c/ID/any/path)
    durably and byte for byte, answers only after the commit, and streams the
    requests to the channel's `relay connect` client.

    Each channel keeps its newest --max-requests requests; delivered ones go after
    --keep-acked. Requests not yet delivered are never dropped for age. Create
    channels with `hookwise relay channel create`. Put it behind TLS (Caddy, nginx;
    see docs/relay.md) or pass --tls-cert/--tls-key.

    Example, on a public host behind a TLS proxy:

      export HOOKWISE_RELAY_ADMIN_TOKEN=$(openssl rand -hex 24)
      hookwise relay serve --port 8787 --public-url https://relay.example.com
    """
    from .server import RelaySettings, run_relay

    if (tls_cert is None) != (tls_key is None):
        raise _fail("pass both --tls-cert and --tls-key to serve HTTPS", code=2)
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("use debug, info, warning or error", param_hint="--log-level")
    try:
        settings = RelaySettings(
            max_requests=max_requests,
            keep_acked=_seconds(keep_acked, "--keep-acked"),
            max_body_bytes=max_body_bytes,
            answer_wait=_seconds(answer_wait, "--answer-wait"),
            admin_token=admin_token or None,
            public_url=public_url,
        )
    except ValueError as exc:
        raise ConfigError(str(exc), fix="see `hookwise relay serve --help`") from None
    scheme = "https" if tls_cert else "http"

    def ready() -> None:
        err.print(
            f"hookwise relay: listening on {scheme}://{host}:{port}; channels take requests at "
            f"/c/ID/...; data {escape(str(data))}; keeping the newest {max_requests} requests "
            f"per channel, delivered ones for {format_duration(settings.keep_acked)}"
        )
        if settings.admin_token is None:
            err.print(
                "[yellow]warning:[/] no admin token: anyone who can reach this relay can "
                f"create channels; set {ADMIN_TOKEN_ENV} (or --admin-token) on a public host"
            )

    run_relay(
        settings,
        data=data,
        host=host,
        port=port,
        log_level=log_level.lower(),
        tls_cert=tls_cert,
        tls_key=tls_key,
        on_ready=ready,
    )


# -- connect ----------------------------------------------------------------------------------


@relay_app.command("connect")
def connect(
    channel_url: Annotated[
        str,
        typer.Argument(
            help="The channel URL `relay channel create` printed: https://HOST/c/ID",
            metavar="CHANNEL_URL",
            show_default=False,
        ),
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            "-t",
            envvar=TOKEN_ENV,
            show_envvar=True,
            help="The channel's token (printed once, when the channel was created).",
        ),
    ] = None,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Your local receiver's base URL; the path after the channel id is "
            "appended (/c/ID/hooks/stripe goes to TO/hooks/stripe).",
        ),
    ] = "http://127.0.0.1:8000",
    heartbeat: Annotated[
        float,
        typer.Option(
            "--heartbeat",
            min=1,
            max=300,
            help="Seconds between keep-alive lines from an idle relay; silence for 3 "
            "of them means the connection is dead, and the client reconnects.",
        ),
    ] = 15.0,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="Seconds the local receiver has to answer."),
    ] = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Stream a relay channel to a local receiver: the laptop side of the relay.

    Opens one outbound connection (nothing listens on this machine) and replays each
    stored request to --to with its exact method, path, query, headers and body, so
    signatures still verify; prints one line per delivery with the local answer:

      12:00:03 17 POST /hooks/stripe -> 200 12ms

    2xx, 3xx and 4xx answers are final and acknowledged; no answer, 5xx, 408 and 429
    are retried with backoff and not acknowledged, so nothing is lost while the
    receiver is down. After any disconnect (sleep, network change, relay restart) it
    reconnects and resumes after the last acknowledged request: nothing lost, nothing
    repeated. One channel carries several sources: each request keeps its own path.

    Example:

      hookwise relay connect https://relay.example.com/c/3kQ... --token hwr_... \\
          --to http://127.0.0.1:8000
    """
    from .client import RelayClient, RelayRefused

    address, token = _channel(channel_url, token)

    def delivered(delivery: Delivery) -> None:
        if as_json:
            sys.stdout.write(json.dumps(delivery.as_json()) + "\n")
            sys.stdout.flush()
        else:
            out.print(delivery.line(), markup=False)

    def notice(text: str) -> None:
        err.print(f"hookwise relay: {escape(text)}")

    try:
        client = RelayClient(
            address,
            token=token,
            to=to,
            heartbeat=heartbeat,
            local_timeout=timeout,
            on_delivery=delivered,
            on_notice=notice,
        )
    except ValueError as exc:  # the message names the option (--to or --token)
        raise typer.BadParameter(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await client.run(stop)

    notice(f"connecting to {address.url}, delivering to {to}")
    try:
        asyncio.run(main())
    except RelayRefused as exc:
        raise _fail(str(exc)) from None
    notice("stopped" + (f" after seq {client.after}" if client.after is not None else ""))


# -- channel create / show ---------------------------------------------------------------------


@channel_app.command("create")
def channel_create(
    server: Annotated[
        str,
        typer.Option(
            "--server",
            "-s",
            help="The relay's base URL, e.g. https://relay.example.com",
            show_default=False,
        ),
    ],
    admin_token: AdminTokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a channel on a relay: an unguessable URL for senders, and a token for
    `relay connect`. The token is shown once; the relay keeps only its hash.

    Give the provider the channel URL followed by your receiver's path, e.g.
    https://relay.example.com/c/ID/hooks/stripe (several sources can share a channel).

    Example:

      hookwise relay channel create --server https://relay.example.com
    """
    import httpx

    headers = {"authorization": f"Bearer {admin_token}"} if admin_token else {}
    url = server.rstrip("/") + "/channels"
    try:
        response = httpx.post(url, headers=headers, timeout=15.0)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _fail(f"can't reach the relay at {server}: {exc}") from None
    if response.status_code == 401:
        raise _fail(
            f"the relay wants its admin token (401): pass --admin-token or export {ADMIN_TOKEN_ENV}"
        )
    if response.status_code != 201:
        raise _fail(
            f"the relay answered {response.status_code} to POST {url}: {response.text[:200]}"
        )
    created = _document(response, ("id", "token", "url"))
    if as_json:
        out.print_json(data=created)
        return
    out.print(f"channel [bold]{escape(created['id'])}[/] created")
    out.print(f"  url    {escape(created['url'])}")
    out.print("         give it to the provider followed by your path, e.g. …/hooks/stripe")
    out.print(f"  token  {escape(created['token'])}")
    out.print("         a secret, shown once: only `relay connect` needs it")
    out.print("then, on the machine with the receiver:")
    out.print(
        f"  {TOKEN_ENV}={escape(created['token'])} hookwise relay connect "
        f"{escape(created['url'])} --to http://127.0.0.1:8000",
        soft_wrap=True,
    )


@channel_app.command("show")
def channel_show(
    channel_url: Annotated[
        str, typer.Argument(help="The channel URL: https://HOST/c/ID", metavar="CHANNEL_URL")
    ],
    token: Annotated[
        str | None,
        typer.Option("--token", "-t", envvar=TOKEN_ENV, show_envvar=True, help="Its token."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a channel's counters: requests held, waiting (not acknowledged), dropped,
    the acknowledged cursor, and whether a client is connected."""
    import httpx

    address, token = _channel(channel_url, token)
    url = f"{address.base}/channels/{address.channel}"
    try:
        response = httpx.get(url, headers={"authorization": f"Bearer {token}"}, timeout=15.0)
    except httpx.HTTPError as exc:
        raise _fail(f"can't reach the relay at {address.base}: {exc}") from None
    if response.status_code == 401:
        raise _fail("the relay refused the channel token (401)")
    if response.status_code == 404:
        raise _fail(f"the relay has no channel {address.channel} (404)")
    if response.status_code != 200:
        raise _fail(f"the relay answered {response.status_code}: {response.text[:200]}")
    info = _document(response, ("last_seq", "cursor"))
    if as_json:
        out.print_json(data=info)
        return
    for key in ("url", "last_seq", "cursor", "held", "pending", "dropped", "connected"):
        out.print(f"{key:<10} {escape(str(info.get(key)))}")


def _document(response: httpx.Response, keys: tuple[str, ...]) -> dict[str, Any]:
    """The relay's JSON answer, or an error saying that something else answered."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict) or not all(key in document for key in keys):
        raise _fail(
            f"{response.url} answered {response.status_code} but not as a hookwise relay does: "
            f"{response.text[:200]!r}; check the URL points at `hookwise relay serve`"
        )
    return document
