"""What hookwise knows about common providers and APIs, for ``hookwise advise --provider``.

>>> facts = provider_facts("stripe")
>>> facts.webhooks, facts.retry_window / 86400, facts.reconcile_preset
(True, 3.0, 'stripe-events')
>>> provider_facts("github").retry_window
0.0

Every provider hookwise verifies has an entry (a test keeps it so), plus a few APIs
that offer no webhooks at all. Each entry says where its facts come from (``source``):
the provider's own documentation as summarized in ``docs/providers.md`` and in the
provider modules of :mod:`hookwise.providers`. A fact that is not documented is
``None`` ("unknown"), never a guess; the command then asks, or the flags fill it in.

``retry_window`` is how long after the first failed attempt the provider still sends a
delivery again (seconds): ``0`` means it never retries on its own, ``None`` that the
window is unknown (or set by whoever runs the sender).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Inputs

__all__ = [
    "DEFAULT_SEND_DELAY",
    "FACTS",
    "GENERIC",
    "ProviderFacts",
    "facts_for_host",
    "known_facts",
    "provider_facts",
]

DEFAULT_SEND_DELAY = 2.0
"""Seconds from a change to its webhook arriving, when the provider publishes no figure:
webhooks are sent from a queue, typically within a second or two."""

_MINUTE = 60.0
_HOUR = 3600.0
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """The facts about one provider that decide between a webhook and a poll.

    >>> ProviderFacts(name="acme", title="Acme", webhooks=False).hookwise_provider is None
    True

    ``hookwise_provider`` is the ``provider`` a ``[sources.NAME]`` takes for its webhooks
    (``None``: no webhooks to receive). ``reconcile`` names the provider's list of
    deliveries or events to catch up from, ``reconcile_preset`` the poll preset that
    reads it (at ``reconcile_url`` when the preset needs one), ``reconcile_retention``
    how long that list keeps them (seconds).
    ``rate_limit_per_day`` is the API's limit in requests per day (``None``: unknown);
    ``counts_304`` whether a ``304 Not Modified`` counts against it; ``conditional``
    whether the API answers ``If-None-Match``/``If-Modified-Since`` with ``304``.
    ``list_endpoint`` says that one listing shows the changes of many resources (an
    events list, an ``updated_since`` filter), so polling costs one request per page,
    not one per resource. ``poll`` holds the keys of a ``[polls.NAME]`` table that
    polls the provider's data directly (with a placeholder ``url`` to fill in);
    ``auth_header`` is the header the API's credential goes in (``None``: no credential,
    or not in a header) and ``auth_example`` what its value looks like.
    """

    name: str
    title: str
    webhooks: bool
    signing: str | None = None
    retry_window: float | None = None
    retries: str = "unknown"
    reconcile: str | None = None
    reconcile_preset: str | None = None
    reconcile_retention: float | None = None
    reconcile_url: str | None = None
    rate_limit_per_day: float | None = None
    rate_limit: str | None = None
    counts_304: bool = True
    conditional: bool = False
    list_endpoint: bool = False
    send_delay: float = DEFAULT_SEND_DELAY
    hookwise_provider: str | None = None
    poll: Mapping[str, object] = field(default_factory=dict)
    auth_header: str | None = "Authorization"
    auth_example: str | None = None
    source: str = ""
    notes: str = ""
    uses_secrets: bool = True
    """Whether the source's ``secrets`` hold its credential (PayPal's does not)."""
    source_keys: Mapping[str, str] = field(default_factory=dict)
    """Keys besides ``provider`` and ``secrets`` a ``[sources.NAME]`` of this provider
    needs; a value ``"env:SUFFIX"`` becomes ``"env:NAME_SUFFIX"``, read from the
    environment."""
    api_hosts: tuple[str, ...] = ()
    """The hosts of the provider's API (a leading ``.`` matches any subdomain), so a
    configured poll's url tells which provider it polls."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("provider facts need a name")
        if self.retry_window is not None and self.retry_window < 0:
            raise ValueError(f"{self.name}: retry_window can't be negative")
        if self.rate_limit_per_day is not None and self.rate_limit_per_day <= 0:
            raise ValueError(f"{self.name}: rate_limit_per_day must be positive")
        if self.webhooks and self.hookwise_provider is None:
            object.__setattr__(self, "hookwise_provider", self.name)
        if self.reconcile_preset is not None and self.reconcile is None:
            raise ValueError(f"{self.name}: a reconcile_preset needs the reconcile list named")

    @property
    def known(self) -> bool:
        """False for :data:`GENERIC`, the stand-in when no provider is named."""
        return self.name != "generic"

    def inputs(self, **given: Any) -> Inputs:
        """:class:`~hookwise.advise.model.Inputs` with these facts filled in; ``given``
        adds what only the user knows (``latency``, ``changes_per_day``...) and overrides
        any fact.

        >>> provider_facts("github").inputs(latency=60, changes_per_day=10).retry_window
        0.0
        """
        from .model import Inputs

        known: dict[str, Any] = {
            "webhooks": self.webhooks,
            "retry_window": self.retry_window,
            "reconcile": self.reconcile,
            "reconcile_retention": self.reconcile_retention,
            "list_endpoint": self.list_endpoint,
            "rate_limit_per_day": self.rate_limit_per_day,
            "counts_304": self.counts_304,
            "conditional": self.conditional,
            "send_delay": self.send_delay,
            "provider": self.title if self.known else "",
        }
        return Inputs(**{**known, **given})


GENERIC = ProviderFacts(
    name="generic",
    title="an API hookwise has no facts about",
    webhooks=False,
    hookwise_provider=None,
    conditional=True,
    source="no facts: every figure comes from the flags",
    notes="give --webhooks/--no-webhooks, --retry-window and --rate-limit for a sharper answer",
)
"""The facts used without ``--provider``: nothing known, every figure from the flags."""


def _generic_sender(
    name: str, title: str, *, uses_secrets: bool = True, keys: Mapping[str, str] | None = None
) -> ProviderFacts:
    return ProviderFacts(
        name=name,
        title=title,
        webhooks=True,
        signing=title,
        retry_window=None,
        retries="the sender's",
        uses_secrets=uses_secrets,
        source_keys=keys or {},
        source="a signing scheme, not a service: the sender decides how it retries",
    )


_ENTRIES: tuple[ProviderFacts, ...] = (
    # -- payments ----------------------------------------------------------------------
    ProviderFacts(
        name="stripe",
        api_hosts=("api.stripe.com",),
        title="Stripe",
        webhooks=True,
        signing="HMAC-SHA256 over {t}.{body} (Stripe-Signature)",
        retry_window=3 * _DAY,
        retries="live mode: up to 3 days with exponential backoff (sandbox: 3 times over a "
        "few hours); no order guarantee",
        reconcile="GET /v1/events?delivery_success=false (events still pending or failed at "
        "an endpoint)",
        reconcile_preset="stripe-events",
        reconcile_retention=30 * _DAY,
        rate_limit_per_day=100 * _DAY,
        rate_limit="100 read requests/s in live mode (25 in sandbox)",
        conditional=False,
        list_endpoint=True,
        poll={"preset": "stripe-events", "url": "https://api.stripe.com/v1/events"},
        auth_example="Bearer sk_live_...",
        source="docs.stripe.com/webhooks (retries, best practices), /api/events (list "
        "events, going back up to 30 days; delivery_success filter), /rate-limits",
    ),
    ProviderFacts(
        name="paddle",
        api_hosts=("api.paddle.com", "sandbox-api.paddle.com"),
        title="Paddle Billing",
        webhooks=True,
        signing="HMAC-SHA256 over {ts}:{body} (Paddle-Signature)",
        retry_window=3 * _DAY,
        retries="live: up to 60 times over 3 days with exponential backoff (sandbox: 3 "
        "times over 15 minutes); answer within 5 s",
        reconcile="GET /notifications?status=failed, then replay each (kept 90 days)",
        reconcile_retention=90 * _DAY,
        list_endpoint=True,
        auth_example="Bearer pdl_live_apikey_...",
        source="developer.paddle.com webhooks (retry policy); api-reference/notifications "
        "(list, replay; notifications older than 90 days are not retained)",
    ),
    ProviderFacts(
        name="paypal",
        api_hosts=("api-m.paypal.com", "api.paypal.com", "api-m.sandbox.paypal.com"),
        title="PayPal",
        webhooks=True,
        signing="SHA256withRSA over id|time|webhook id|CRC-32 (PayPal's certificate)",
        retry_window=3 * _DAY,
        retries="up to 25 retries over 3 days on non-2xx or no answer",
        reconcile="GET /v1/notifications/webhooks-events (list event notifications; resend one)",
        list_endpoint=True,
        uses_secrets=False,
        source_keys={"webhook_id": "env:WEBHOOK_ID"},
        auth_example="Bearer A21AA...",
        source="developer.paypal.com/api/rest/webhooks/rest (delivery and retries), "
        "/docs/api/webhooks/v1 (list and resend event notifications)",
    ),
    ProviderFacts(
        name="square",
        api_hosts=("connect.squareup.com", "connect.squareupsandbox.com"),
        title="Square",
        webhooks=True,
        signing="HMAC-SHA256 over notification URL + body (x-square-hmacsha256-signature)",
        retry_window=1 * _DAY,
        retries="retried with backoff for up to 24 h (another version of the docs says "
        "72 h); answer within 10 s",
        reconcile="POST /v2/events (Events API: search the events of the past 28 days, "
        "meant for reconciling missed webhooks)",
        reconcile_retention=28 * _DAY,
        list_endpoint=True,
        auth_example="Bearer EAAA...",
        source="developer.squareup.com/docs/webhooks/troubleshooting (the shorter of the two "
        "documented windows is used); /docs/events-api/overview",
    ),
    # -- code hosting and CI -------------------------------------------------------------
    ProviderFacts(
        name="github",
        api_hosts=("api.github.com",),
        title="GitHub",
        webhooks=True,
        signing="HMAC-SHA256 of the body (X-Hub-Signature-256)",
        retry_window=0.0,
        retries="no automatic retries; failed deliveries can be redelivered by hand or "
        "through the API for 3 days; 10 s to answer",
        reconcile="GET .../hooks/HOOK_ID/deliveries (the webhook's recent deliveries, "
        "with their status codes)",
        reconcile_preset="github-deliveries",
        reconcile_retention=3 * _DAY,
        reconcile_url="https://api.github.com/repos/OWNER/REPO/hooks/HOOK_ID/deliveries",
        rate_limit_per_day=5000 * 24.0,
        rate_limit="5,000 requests/h for a user or app token (more for large "
        "installations and Enterprise Cloud)",
        counts_304=False,
        conditional=True,
        list_endpoint=False,
        poll={
            "url": "https://api.github.com/repos/OWNER/REPO/issues?state=all&sort=updated"
            "&direction=desc&per_page=100",
            "version": "updated_at",
            "headers": {"Accept": "application/vnd.github+json"},
        },
        auth_example="Bearer github_pat_...",
        source="docs.github.com: webhooks/using-webhooks/handling-failed-webhook-deliveries "
        "(no automatic redelivery, 3 days), rest/using-the-rest-api/rate-limits-for-the-rest"
        "-api, best-practices-for-using-the-rest-api (a 304 to an authorized conditional "
        "request does not count against the primary rate limit)",
    ),
    ProviderFacts(
        name="gitlab",
        api_hosts=("gitlab.com",),
        title="GitLab",
        webhooks=True,
        signing="signing token (Standard Webhooks v1) or a plain secret token",
        retry_window=0.0,
        retries="no automatic redelivery (resend by hand); 10 s timeout; 4 failures in a "
        "row disable the hook for a while (up to 24 h), 40 for good",
        conditional=True,
        source="docs.gitlab.com/user/project/integrations/webhooks (delivery, auto-disabling)",
    ),
    ProviderFacts(
        name="bitbucket",
        api_hosts=("api.bitbucket.org",),
        title="Bitbucket Cloud",
        webhooks=True,
        signing="HMAC-SHA256 of the body (X-Hub-Signature)",
        retry_window=None,
        retries="5xx answers resent up to 2 more times (timing not documented); 10 s to answer",
        source="support.atlassian.com: Manage webhooks / Event payloads (X-Attempt-Number)",
    ),
    ProviderFacts(
        name="jira",
        api_hosts=(".atlassian.net",),
        title="Jira Cloud",
        webhooks=True,
        signing="HMAC-SHA256 of the body (X-Hub-Signature)",
        retry_window=30 * _MINUTE,
        retries="408/409/425/429/5xx and timeouts retried, up to about 30 minutes late",
        list_endpoint=True,
        poll={
            "url": "https://SITE.atlassian.net/rest/api/3/search/jql?jql=updated%3E%3D-1h",
            "items": "issues",
            "version": "fields.updated",
        },
        source="developer.atlassian.com/cloud/jira/platform/webhooks (retry policy)",
    ),
    ProviderFacts(
        name="linear",
        api_hosts=("api.linear.app",),
        title="Linear",
        webhooks=True,
        signing="HMAC-SHA256 of the body (Linear-Signature)",
        retry_window=6 * _HOUR,
        retries="up to 3 retries: after 1 minute, 1 hour and 6 hours; 5 s to answer with 200",
        source="linear.app/developers/webhooks (delivery and retries)",
    ),
    # -- commerce, CRM, support ----------------------------------------------------------
    ProviderFacts(
        name="shopify",
        api_hosts=(".myshopify.com",),
        title="Shopify",
        webhooks=True,
        signing="base64 HMAC-SHA256 of the body (X-Shopify-Hmac-Sha256)",
        retry_window=4 * _HOUR,
        retries="8 retries over 4 hours with exponential backoff (since 2024-09-10), then "
        "dropped; persistent failures remove the subscription; 5 s to answer",
        rate_limit_per_day=2 * _DAY,
        rate_limit="REST Admin API: 2 requests/s (a bucket of 40) on standard plans",
        list_endpoint=True,
        poll={
            "url": "https://SHOP.myshopify.com/admin/api/2024-10/orders.json?status=any&limit=250",
            "items": "orders",
            "version": "updated_at",
        },
        auth_header="X-Shopify-Access-Token",
        auth_example="shpat_...",
        source="shopify.dev/changelog/updates-to-webhook-retry-mechanism (8 times over 4 "
        "hours), shopify.dev/docs/apps/build/webhooks (reconciliation jobs recommended), "
        "shopify.dev/docs/api/usage/limits",
    ),
    ProviderFacts(
        name="hubspot",
        api_hosts=("api.hubapi.com",),
        title="HubSpot",
        webhooks=True,
        signing="HMAC-SHA256 over method + URL + body + timestamp (X-HubSpot-Signature-v3)",
        retry_window=1 * _DAY,
        retries="up to 10 retries over 24 h on errors and timeouts (5 s)",
        list_endpoint=True,
        source="developers.hubspot.com webhooks API (retries)",
    ),
    ProviderFacts(
        name="intercom",
        api_hosts=("api.intercom.io",),
        title="Intercom",
        webhooks=True,
        signing="HMAC-SHA1 of the body (X-Hub-Signature)",
        retry_window=None,
        retries="errors retried (schedule not documented); a subscription is suspended "
        "after 7 days of errors",
        source="developers.intercom.com webhooks (delivery, suspension)",
    ),
    # -- messaging, mail, voice ----------------------------------------------------------
    ProviderFacts(
        name="slack",
        api_hosts=("slack.com",),
        title="Slack",
        webhooks=True,
        signing="HMAC-SHA256 over v0:{timestamp}:{body} (X-Slack-Signature)",
        retry_window=6 * _MINUTE,
        retries="Events API: 3 retries (about immediately, after 1 minute, after 5 "
        "minutes), 3 s to answer; commands and interactivity are not retried",
        rate_limit_per_day=50 * 24 * 60.0,
        rate_limit="Web API tier 3 (about 50/min) for conversations.history; far less for "
        "some newer non-Marketplace apps",
        list_endpoint=False,
        poll={
            "url": "https://slack.com/api/conversations.history?channel=CHANNEL_ID&limit=200",
            "items": "messages",
            "id": "ts",
            "pages": "cursor",
            "cursor_field": "response_metadata.next_cursor",
            "cursor_param": "cursor",
        },
        auth_example="Bearer xoxb-...",
        source="api.slack.com/apis/events-api (retries, X-Slack-Retry-Num), "
        "api.slack.com/docs/rate-limits",
    ),
    ProviderFacts(
        name="discord",
        api_hosts=("discord.com",),
        title="Discord interactions",
        webhooks=True,
        signing="Ed25519 over {timestamp}{body} (X-Signature-Ed25519)",
        retry_window=0.0,
        retries="none: an interaction not answered within 3 s fails for the user",
        source="discord.com/developers/docs/interactions/receiving-and-responding",
        notes="interactions are requests a user waits for, not changes to catch up on",
    ),
    ProviderFacts(
        name="twilio",
        api_hosts=("api.twilio.com",),
        title="Twilio",
        webhooks=True,
        signing="HMAC-SHA1 over the URL and POST parameters (X-Twilio-Signature)",
        retry_window=0.0,
        retries="only connection failures are retried, once by default (#rc up to 5); an "
        "error answer is not retried; 15 s timeout",
        list_endpoint=True,
        source="twilio.com/docs/usage/webhooks/webhooks-connection-overrides",
        notes="the Messages and Calls lists of the REST API can be polled to reconcile",
    ),
    ProviderFacts(
        name="sendgrid",
        api_hosts=("api.sendgrid.com",),
        title="SendGrid Event Webhook",
        webhooks=True,
        signing="ECDSA P-256 over timestamp + body",
        retry_window=1 * _DAY,
        retries="non-2xx answers retried for up to 24 h",
        source="twilio.com/docs/sendgrid/for-developers/tracking-events/event",
    ),
    ProviderFacts(
        name="mailgun",
        api_hosts=("api.mailgun.net", "api.eu.mailgun.net"),
        title="Mailgun",
        webhooks=True,
        signing="HMAC-SHA256 over {timestamp}{token} in the body",
        retry_window=8 * _HOUR,
        retries="200 = done, 406 = rejected for good; else retried after 5, 10, 15 min, 1, "
        "2 and 4 h (8 h in all)",
        reconcile="GET /v3/DOMAIN/events (the Events API; kept a few days, by plan)",
        list_endpoint=True,
        source="documentation.mailgun.com: webhooks (retries), events API",
    ),
    ProviderFacts(
        name="zoom",
        api_hosts=("api.zoom.us",),
        title="Zoom",
        webhooks=True,
        signing="HMAC-SHA256 over v0:{timestamp}:{body} (x-zm-signature)",
        retry_window=85 * _MINUTE,
        retries="3 s to answer; 3 retries: 5 min, then 20 min, then 60 min later",
        source="developers.zoom.us/docs/api/webhooks (delivery and retries)",
    ),
    ProviderFacts(
        name="meta",
        api_hosts=("graph.facebook.com",),
        title="Meta (Facebook, Instagram, Messenger, WhatsApp)",
        webhooks=True,
        signing="HMAC-SHA256 of the body (X-Hub-Signature-256)",
        retry_window=36 * _HOUR,
        retries="retried with decreasing frequency for about 36 h (WhatsApp: up to 7 days)",
        source_keys={"verify_token": "env:VERIFY_TOKEN"},
        source="developers.facebook.com/docs/graph-api/webhooks (delivery); WhatsApp "
        "Business webhooks",
    ),
    ProviderFacts(
        name="twitch",
        api_hosts=("api.twitch.tv",),
        title="Twitch EventSub",
        webhooks=True,
        signing="HMAC-SHA256 over id + timestamp + body (Twitch-Eventsub-Message-Signature)",
        retry_window=None,
        retries="resent until answered 2xx (schedule not documented); too many failures "
        "revoke the subscription",
        source="dev.twitch.tv/docs/eventsub/handling-webhook-events",
    ),
    # -- files and platforms -------------------------------------------------------------
    ProviderFacts(
        name="dropbox",
        api_hosts=("api.dropboxapi.com",),
        title="Dropbox",
        webhooks=True,
        signing="HMAC-SHA256 of the body (X-Dropbox-Signature)",
        retry_window=10 * _MINUTE,
        retries="non-200 answers and timeouts (10 s) retried with backoff for about 10 minutes",
        reconcile="POST files/list_folder/continue with the saved cursor (a notification "
        "only names the accounts that changed)",
        list_endpoint=True,
        source="dropbox.com/developers/reference/webhooks",
        notes="a notification is a hint to fetch; the cursor is the truth",
    ),
    ProviderFacts(
        name="graph",
        api_hosts=("graph.microsoft.com",),
        title="Microsoft Graph change notifications",
        webhooks=True,
        signing="no signature: clientState in the body (validation tokens for rich notifications)",
        retry_window=4 * _HOUR,
        retries="any 2xx within 3 s counts; else retried for up to 4 h; slow endpoints are "
        "throttled, then dropped",
        reconcile="GET .../delta with the saved deltaLink (delta query)",
        list_endpoint=True,
        source="learn.microsoft.com/graph/change-notifications-delivery-webhooks, "
        "learn.microsoft.com/graph/delta-query-overview",
    ),
    # -- generic senders (a scheme; the sender sets the retries) ---------------------------
    ProviderFacts(
        name="svix",
        title="Svix (and services that deliver through it)",
        webhooks=True,
        signing="HMAC-SHA256 over {id}.{timestamp}.{body} (svix-signature)",
        retry_window=27 * _HOUR + 35 * _MINUTE,
        retries="immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; 2xx within 15 s; "
        "endpoint disabled after 5 days of failures",
        source="docs.svix.com/retries",
    ),
    _generic_sender("standard", "Standard Webhooks (webhook-signature)"),
    _generic_sender(
        "hmac", "a generic HMAC signature header", keys={"header": "X-Signature", "prefix": ""}
    ),
    _generic_sender("basic", "HTTP Basic auth (no body signature)"),
    _generic_sender("bearer", "a static bearer token (no body signature)"),
    _generic_sender("none", "no verification (local experiments only)", uses_secrets=False),
    # -- APIs without webhooks -----------------------------------------------------------
    ProviderFacts(
        name="rss",
        title="an RSS or Atom feed",
        webhooks=False,
        conditional=True,
        list_endpoint=True,
        poll={"url": "https://example.com/feed.json", "items": "items"},
        auth_header=None,
        source="RFC 9110 conditional requests; feeds rarely offer push (WebSub is rare)",
        notes="most feed servers answer If-None-Match/If-Modified-Since with 304",
    ),
    ProviderFacts(
        name="hackernews",
        api_hosts=("hacker-news.firebaseio.com",),
        title="the Hacker News API",
        webhooks=False,
        list_endpoint=True,
        poll={"url": "https://hacker-news.firebaseio.com/v0/updates.json", "items": "items"},
        auth_header=None,
        source="github.com/HackerNews/API (v0; 'there is currently no rate limit'; "
        "/v0/updates lists changed items and profiles)",
        notes="no documented rate limit: poll politely anyway",
    ),
    ProviderFacts(
        name="openweathermap",
        api_hosts=("api.openweathermap.org",),
        title="OpenWeatherMap",
        webhooks=False,
        rate_limit_per_day=1_000_000 / 30,
        rate_limit="free plan: 60 calls/min and 1,000,000 calls/month",
        auth_header=None,
        source="openweathermap.org/price (free plan limits)",
        notes="the data itself changes about every 10 minutes; the API key goes in the "
        "appid query parameter, not a header",
    ),
    ProviderFacts(
        name="google-sheets",
        api_hosts=("sheets.googleapis.com",),
        title="the Google Sheets API",
        webhooks=False,
        rate_limit_per_day=60 * 24 * 60.0,
        rate_limit="read requests: 60/min per user per project (300/min per project)",
        source="developers.google.com/sheets/api/limits",
        notes="the Drive API can push file-change notifications (files.watch), but channels "
        "expire and must be renewed",
    ),
)

FACTS: Mapping[str, ProviderFacts] = MappingProxyType({f.name: f for f in _ENTRIES})
"""Every known provider or API by name."""


def facts_for_host(host: str) -> ProviderFacts | None:
    """The provider whose API lives at ``host`` (``host:port`` is fine), if known.

    >>> facts_for_host("api.github.com").name, facts_for_host("x.myshopify.com").name
    ('github', 'shopify')
    >>> facts_for_host("api.example.com") is None
    True
    """
    name = host.lower().rsplit("@", 1)[-1].split(":", 1)[0]
    for facts in _ENTRIES:
        for known in facts.api_hosts:
            if name == known or (known.startswith(".") and name.endswith(known)):
                return facts
    return None


def known_facts() -> tuple[str, ...]:
    """The names ``--provider`` takes, sorted.

    >>> "stripe" in known_facts()
    True
    """
    return tuple(sorted(FACTS))


def provider_facts(name: str) -> ProviderFacts:
    """The facts about ``name``; a ``ValueError`` naming the closest known one.

    >>> provider_facts("strpe")
    Traceback (most recent call last):
    ...
    ValueError: no facts about 'strpe'; did you mean 'stripe'? ...
    """
    key = name.strip().lower()
    found = FACTS.get(key)
    if found is not None:
        return found
    close = difflib.get_close_matches(key, FACTS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(
        f"no facts about {name!r}; {hint}known: {', '.join(known_facts())} "
        "(or leave out --provider and give the facts as flags)"
    )
