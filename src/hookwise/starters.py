"""Provider starters: what ``hookwise init --provider NAME`` writes.

>>> files = render(STARTERS["stripe"], secrets={"STRIPE_WEBHOOK_SECRET": "whsec_local"})
>>> print(files.config)       # hookwise.toml: the source, its ordering, three handlers
>>> print(files.handlers)     # handlers.py: those handlers, reading the provider's fields

A starter is a ``hookwise.toml`` with one source configured for the provider (its
secret read from an environment variable, its ordering key, its options) and handlers
subscribed to a few of the provider's real event types, plus a ``handlers.py`` whose
functions read the fields those events carry. The handlers' code lives in
``_templates/starters/<provider>.py.tmpl``; the config is rendered here.
"""

from __future__ import annotations

import base64
import secrets as _random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from string import Template
from types import MappingProxyType
from typing import Literal

from .config import SourceSettings
from .errors import ConfigError

__all__ = ["STARTERS", "Files", "Starter", "StarterHandler", "local_secrets", "render", "starter"]

KeyShape = Literal["hex", "token", "whsec", "stripe"]


@dataclass(frozen=True, slots=True)
class StarterHandler:
    """One handler of a starter: a function in handlers.py and the types it takes."""

    function: str
    events: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Starter:
    """What a provider's starter holds (see :data:`STARTERS`)."""

    provider: str
    title: str
    secret_env: str
    handlers: tuple[StarterHandler, ...]
    key_shape: KeyShape = "token"
    """How a local secret for it looks: 32 hex digits, a URL-safe token, a Standard
    Webhooks ``whsec_`` key, or a Stripe-like ``whsec_`` string."""
    timestamped: bool = True
    """Whether the provider signs a time (then ``tolerance`` is written)."""
    signs_url: bool = False
    """Whether the provider signs the URL it posts to (then ``public_url`` is explained)."""
    options: tuple[tuple[str, str, str], ...] = ()
    """Provider options, each read from an environment variable: ``(option, VARIABLE,
    what it is)``."""

    @property
    def source(self) -> str:
        """The source's name in the config (and in ``/hooks/NAME``)."""
        return self.provider

    @property
    def variables(self) -> tuple[str, ...]:
        """Every environment variable the config reads."""
        return (self.secret_env, *(variable for _, variable, _ in self.options))


def _handlers(*pairs: tuple[str, tuple[str, ...]]) -> tuple[StarterHandler, ...]:
    return tuple(StarterHandler(function, events) for function, events in pairs)


_LIST = (
    Starter(
        "bitbucket",
        "Bitbucket",
        "BITBUCKET_WEBHOOK_SECRET",
        _handlers(
            ("on_push", ("repo:push",)),
            ("on_pull_request_created", ("pullrequest:created",)),
            ("on_pull_request_merged", ("pullrequest:fulfilled",)),
        ),
        timestamped=False,
    ),
    Starter(
        "github",
        "GitHub",
        "GITHUB_WEBHOOK_SECRET",
        _handlers(
            ("on_push", ("push",)),
            ("on_issue_opened", ("issues.opened",)),
            ("on_pull_request_opened", ("pull_request.opened",)),
        ),
        timestamped=False,
    ),
    Starter(
        "gitlab",
        "GitLab",
        "GITLAB_WEBHOOK_SECRET",
        _handlers(
            ("on_push", ("push",)),
            ("on_merge_request", ("merge_request",)),
            ("on_pipeline", ("pipeline",)),
        ),
        key_shape="whsec",
    ),
    Starter(
        "hubspot",
        "HubSpot",
        "HUBSPOT_CLIENT_SECRET",
        _handlers(
            ("on_contact_created", ("contact.creation",)),
            ("on_contact_property_changed", ("contact.propertyChange",)),
            ("on_deal_created", ("deal.creation",)),
        ),
        signs_url=True,
    ),
    Starter(
        "intercom",
        "Intercom",
        "INTERCOM_CLIENT_SECRET",
        _handlers(
            ("on_conversation_started", ("conversation.user.created",)),
            ("on_admin_replied", ("conversation.admin.replied",)),
            ("on_contact_created", ("contact.user.created",)),
        ),
        timestamped=False,
    ),
    Starter(
        "jira",
        "Jira",
        "JIRA_WEBHOOK_SECRET",
        _handlers(
            ("on_issue_created", ("jira:issue_created",)),
            ("on_issue_updated", ("jira:issue_updated",)),
            ("on_comment_created", ("comment_created",)),
        ),
        timestamped=False,
    ),
    Starter(
        "linear",
        "Linear",
        "LINEAR_WEBHOOK_SECRET",
        _handlers(
            ("on_issue_created", ("Issue.create",)),
            ("on_issue_updated", ("Issue.update",)),
            ("on_comment_created", ("Comment.create",)),
        ),
    ),
    Starter(
        "mailgun",
        "Mailgun",
        "MAILGUN_WEBHOOK_SIGNING_KEY",
        _handlers(
            ("on_delivered", ("delivered",)),
            ("on_failed", ("failed",)),
            ("on_opened", ("opened",)),
        ),
        key_shape="hex",
    ),
    Starter(
        "meta",
        "Meta",
        "META_APP_SECRET",
        _handlers(
            ("on_whatsapp_message", ("whatsapp_business_account.messages",)),
            ("on_page_feed", ("page.feed",)),
            ("on_instagram_comment", ("instagram.comments",)),
        ),
        key_shape="hex",
        timestamped=False,
        options=(
            (
                "verify_token",
                "META_VERIFY_TOKEN",
                "The token typed into the App Dashboard beside the callback URL (Meta's GET "
                "handshake\n# sends it back).",
            ),
        ),
    ),
    Starter(
        "paddle",
        "Paddle",
        "PADDLE_WEBHOOK_SECRET",
        _handlers(
            ("on_transaction_completed", ("transaction.completed",)),
            ("on_subscription_changed", ("subscription.created", "subscription.updated")),
            ("on_customer_created", ("customer.created",)),
        ),
    ),
    Starter(
        "shopify",
        "Shopify",
        "SHOPIFY_CLIENT_SECRET",
        _handlers(
            ("on_order_created", ("orders/create",)),
            ("on_product_updated", ("products/update",)),
            ("on_customer_created", ("customers/create",)),
        ),
        timestamped=False,
    ),
    Starter(
        "slack",
        "Slack",
        "SLACK_SIGNING_SECRET",
        _handlers(
            ("on_message", ("message",)),
            ("on_app_mention", ("app_mention",)),
            ("on_deploy_command", ("/deploy",)),
        ),
        key_shape="hex",
    ),
    Starter(
        "square",
        "Square",
        "SQUARE_SIGNATURE_KEY",
        _handlers(
            ("on_payment", ("payment.created", "payment.updated")),
            ("on_order_updated", ("order.updated",)),
            ("on_customer_created", ("customer.created",)),
        ),
        timestamped=False,
        signs_url=True,
    ),
    Starter(
        "standard",
        "Standard Webhooks",
        "WEBHOOK_SECRET",
        _handlers(
            ("on_contact_created", ("contact.created",)),
            ("on_invoice_paid", ("invoice.paid",)),
            ("on_subscription_canceled", ("subscription.canceled",)),
        ),
        key_shape="whsec",
    ),
    Starter(
        "stripe",
        "Stripe",
        "STRIPE_WEBHOOK_SECRET",
        _handlers(
            ("on_payment_succeeded", ("payment_intent.succeeded",)),
            ("on_invoice_paid", ("invoice.paid",)),
            ("on_subscription_updated", ("customer.subscription.updated",)),
        ),
        key_shape="stripe",
    ),
    Starter(
        "svix",
        "Svix",
        "SVIX_WEBHOOK_SECRET",
        _handlers(
            ("on_endpoint_disabled", ("endpoint.disabled",)),
            ("on_attempt_failing", ("message.attempt.failing", "message.attempt.exhausted")),
        ),
        key_shape="whsec",
    ),
    Starter(
        "twilio",
        "Twilio",
        "TWILIO_AUTH_TOKEN",
        _handlers(
            ("on_message_received", ("message.received",)),
            ("on_message_status", ("message.delivered",)),
            ("on_call_completed", ("call.completed",)),
        ),
        key_shape="hex",
        timestamped=False,
        signs_url=True,
    ),
    Starter(
        "twitch",
        "Twitch",
        "TWITCH_EVENTSUB_SECRET",
        _handlers(
            ("on_follow", ("channel.follow",)),
            ("on_stream_online", ("stream.online",)),
            ("on_subscribe", ("channel.subscribe",)),
        ),
    ),
    Starter(
        "zoom",
        "Zoom",
        "ZOOM_SECRET_TOKEN",
        _handlers(
            ("on_meeting_started", ("meeting.started",)),
            ("on_meeting_ended", ("meeting.ended",)),
            ("on_recording_completed", ("recording.completed",)),
        ),
    ),
)

STARTERS: Mapping[str, Starter] = MappingProxyType({item.provider: item for item in _LIST})
"""Provider name -> its starter, for the providers that have one."""


@dataclass(frozen=True, slots=True)
class Files:
    """The two files a starter writes."""

    config: str
    handlers: str


def starter(name: str) -> Starter:
    """The starter of provider ``name``; a :class:`~hookwise.ConfigError` listing the
    providers that have one when it has none."""
    from .providers import KNOWN_PROVIDERS

    found = STARTERS.get(name)
    if found is not None:
        return found
    names = ", ".join(sorted(STARTERS))
    if name in KNOWN_PROVIDERS:
        raise ConfigError(
            f"--provider {name}: hookwise supports this provider, but has no starter for it",
            fix=f"run `hookwise init` and set provider = {name!r} in the source (see "
            f"docs/providers.md), or pick a starter: {names}",
        )
    raise ConfigError(
        f"--provider {name}: no such provider",
        fix=f"pick one of: {names}",
    )


def local_secrets(chosen: Starter) -> dict[str, str]:
    """Fresh values for the variables the starter's config reads, for local use:
    shaped like the provider's own (hex digits, a ``whsec_`` key...)."""
    values = {chosen.secret_env: _secret(chosen.key_shape)}
    for _, variable, _ in chosen.options:
        values[variable] = _secret("token")
    return values


def _secret(kind: KeyShape) -> str:
    if kind == "hex":
        return _random.token_hex(16)
    if kind == "whsec":
        return "whsec_" + base64.b64encode(_random.token_bytes(32)).decode("ascii")
    if kind == "stripe":
        return "whsec_" + _random.token_hex(16)
    return _random.token_urlsafe(24)


def render(chosen: Starter, *, secrets: Mapping[str, str]) -> Files:
    """The starter's ``hookwise.toml`` and ``handlers.py``. ``secrets`` (from
    :func:`local_secrets`) are used only to build the source once, to tell its
    ordering key; they are not written."""
    from .providers import provider_spec

    spec = provider_spec(chosen.provider)
    info = spec.info
    credential = info.credential if info is not None else "the signing secret"
    templates = resources.files("hookwise") / "_templates"
    config = Template((templates / "starter.toml.tmpl").read_text("utf-8")).substitute(
        title=chosen.title,
        source=chosen.source,
        provider=chosen.provider,
        description=spec.description,
        credential=credential[:1].upper() + credential[1:],
        secret_env=chosen.secret_env,
        source_extra=_source_extra(chosen, secrets),
        handlers=_handler_blocks(chosen),
    )
    handlers = (templates / "starters" / f"{chosen.provider}.py.tmpl").read_text("utf-8")
    return Files(config=config, handlers=handlers)


def _source_extra(chosen: Starter, secrets: Mapping[str, str]) -> str:
    lines: list[str] = []
    for option, variable, comment in chosen.options:
        lines += [f"# {comment}", f'{option} = "env:{variable}"']
    if chosen.timestamped:
        lines += [
            "# Deliveries whose signed time is further than this from now (either way) are "
            "refused.",
            'tolerance = "5m"',
        ]
    lines += _ordering(chosen, secrets)
    if chosen.signs_url:
        lines += [
            f"# {chosen.title} signs the URL it posts to. hookwise rebuilds it from the request;",
            "# behind a tunnel or a proxy, set the public URL you gave it:",
            f'# public_url = "https://your-tunnel.example.com/hooks/{chosen.source}"',
        ]
    return "\n".join(lines)


def _ordering(chosen: Starter, secrets: Mapping[str, str]) -> list[str]:
    from .providers import build_source

    source = build_source(
        SourceSettings(
            name=chosen.source,
            provider=chosen.provider,
            secrets=(secrets[chosen.secret_env],),
            options={option: secrets[variable] for option, variable, _ in chosen.options},
        )
    )
    rule = source.extraction.ordering_key
    now = time.time()
    keyed = rule is not None or any(
        source.describe(body, {}, now).ordering_key is not None
        for body in source.samples(now).values()
    )
    if not keyed:
        return [
            f"# {chosen.title} events name no object to order them by: they run in parallel.",
            'ordering = "none"',
        ]
    lines = [
        "# One event at a time per object (the ordering key), in arrival order, per handler;",
        '# "latest" would also skip events older than one already handled (docs/ordering.md).',
        'ordering = "serial"',
    ]
    if rule is not None:
        lines.append(f'ordering_key = "{rule}"  # the provider\'s default')
    else:
        from .providers import provider_spec

        info = provider_spec(chosen.provider).info
        what = info.ordering_key if info is not None else "computed from each event"
        lines.append(f"# ordering_key is the provider's default: {what}")
    return lines


def _handler_blocks(chosen: Starter) -> str:
    blocks = []
    for number, handler in enumerate(chosen.handlers):
        events = ", ".join(f'"{name}"' for name in handler.events)
        lines = [
            "[[handlers]]",
            f'name = "{handler.function}"',
            f'source = "{chosen.source}"',
            f"events = [{events}]",
            f'call = "handlers:{handler.function}"  # in handlers.py, beside this file',
        ]
        if number == 0:
            lines += [
                "# Failed deliveries are retried with exponential backoff, then dead-lettered",
                "# (see `hookwise dlq list`) after this many attempts or this long.",
            ]
        lines += ["max_attempts = 25", 'max_age = "3d"']
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
