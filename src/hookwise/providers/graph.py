"""Provider ``graph``: Microsoft Graph change notifications delivered to a webhook.

Graph signs nothing. Each notification repeats the ``clientState`` its subscription
was created with; ``secrets`` hold the accepted client states (several: one per
subscription, or old and new), and a delivery is accepted only when *every*
notification in its ``value`` list carries one of them (compared in constant time).
That is weaker than a signature: a captured delivery can be replayed, and the client
state is in every stored body, so anyone who can read stored events can forge
notifications. Rich notifications' ``validationTokens`` (JWTs) are not checked.
Checked against Microsoft's "Receive change notifications through webhooks" page.

- Handshake: when a subscription is created (or its lifecycle URL set), Graph POSTs
  ``?validationToken=<token>`` and wants, within 10 seconds, ``200``, ``text/plain``,
  the token URL-decoded. hookwise answers that without verifying (there is nothing
  to verify), with ``X-Content-Type-Options: nosniff``; a token with HTML markup or
  control characters (Graph sends neither) is refused.
- Answer: Graph counts any ``2xx`` within 3 seconds as delivered; its docs suggest
  ``202`` when processing comes later and ``200`` when it is done, and both are 2xx,
  so hookwise's ``200`` (sent once the delivery is stored) is a delivery. Otherwise
  Graph retries for up to 4 hours, and throttles, then drops, for endpoints that are
  often slow.
- Dedup key: a hash of the body. Graph sends no delivery id, and the natural
  composite (subscription, resource, change type) would merge two real changes of
  one resource; a retry resends the same body.
- Type: the first notification's ``lifecycleEvent`` (``reauthorizationRequired``,
  ``subscriptionRemoved``, ``missed``), else its ``changeType`` (``created``,
  ``updated``, ``deleted``). Ordering key: its ``resource``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Description,
    Extraction,
    Handshake,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    SignedRequest,
    Source,
    build_extraction,
    check_options,
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.providers._computed import Computed, first_text, text_at
from hookwise.providers._extract import parse_body
from hookwise.signatures import graph

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "VALIDATION_PARAMETER", "GraphSource", "build"]

VALIDATION_PARAMETER = "validationToken"
MAX_VALIDATION_TOKEN = 4096
"""Characters; Graph's tokens are far shorter."""

_UNSAFE_TOKEN = re.compile(r"[<>\x00-\x1f\x7f]")


def _type(document: object, headers: Mapping[str, str]) -> str | None:
    return first_text(document, "value.0.lifecycleEvent", "value.0.changeType")


COMPUTED = Computed(
    type=_type, ordering_key=lambda document, headers: text_at(document, "value.0.resource")
)


class GraphSource(Source):
    """A source for Microsoft Graph subscriptions created with these client states.

    >>> source = build(SourceSettings(name="graph", provider="graph",
    ...                               secrets=("SecretClientState",)))
    >>> source.verify(b'{"value": [{"clientState": "SecretClientState"}]}', {}, now=0)
    """

    provider = "graph"

    def __init__(self, name: str, extraction: Extraction, *, states: tuple[str, ...]) -> None:
        super().__init__(name, extraction, secret_values=states)
        self._states = states
        self._checker = graph.ClientStates(states)

    def verify_request(self, request: Inbound, now: float) -> None:
        """Validation requests pass (:meth:`handshake` answers them); notifications must
        carry configured client states."""
        if VALIDATION_PARAMETER in request.params:
            return
        self._checker.verify(request.body)

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        """The validation token, URL-decoded, as plain text."""
        token = request.params.get(VALIDATION_PARAMETER)
        if token is None:
            return None
        if not token or len(token) > MAX_VALIDATION_TOKEN or _UNSAFE_TOKEN.search(token):
            raise VerificationError(
                "bad_token",
                "the validationToken is empty, too long, or holds markup or control "
                "characters, which Graph never sends",
            )
        return Handshake(
            body=token.encode("utf-8", "surrogatepass"),
            content_type="text/plain; charset=utf-8",
            headers=(("x-content-type-options", "nosniff"),),
        )

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        return COMPUTED.describe(self.extraction, parse_body(body), body, headers)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        """API-key lookalikes and Graph's own checks (no re-verification: nothing is signed)."""
        from hookwise.providers._diagnose import api_key_hints

        hints = api_key_hints(self.secret_values)
        reason = error.reason if isinstance(error, VerificationError) else ""
        if reason == "bad_token":
            subscriptions = sorted(self._foreign_subscriptions(request.body))
            named = ", ".join(subscriptions[:5]) or "?"
            hints.append(
                f"notifications of subscription(s) {named} carry a clientState that is none "
                "of the configured ones: each subscription repeats the clientState given "
                "when it was created; add it to secrets (old and new during a change)"
            )
        elif reason == "missing_field":
            hints.append(
                "a notification has no clientState: create the subscription with a "
                "clientState (a secret only you and Graph know) and put it in secrets"
            )
        elif reason == "malformed_body":
            lowered = {name.lower() for name in request.params}
            if VALIDATION_PARAMETER.lower() in lowered:
                hints.append(
                    "the query has validationToken spelled in another case: Graph sends "
                    "?validationToken=...; something between Graph and hookwise rewrote it"
                )
            else:
                hints.append(
                    'Graph posts notifications as JSON {"value": [...]}, and validation '
                    "requests with ?validationToken=...; this request is neither"
                )
        return tuple(hints)

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """Graph's proof lives in the body: use :meth:`sign_request`."""
        raise ValueError("Graph puts the clientState in the body; use sign_request()")

    def sign_request(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> SignedRequest:
        """``body`` with ``secrets[secret_index]`` as every notification's ``clientState``."""
        state = pick_secret(self._states, secret_index)
        document = json.loads(body)
        items = document.get("value") if isinstance(document, dict) else None
        if not isinstance(items, list):
            raise ValueError('a Graph body is a JSON object with a "value" list')
        for item in items:
            if isinstance(item, dict):
                item["clientState"] = state
        return SignedRequest(
            json.dumps(document, separators=(",", ":")).encode(),
            {"content-type": "application/json"},
        )

    def samples(self, now: float) -> dict[str, bytes]:
        return _samples(now, self._states[0])

    def _foreign_subscriptions(self, body: bytes) -> set[str]:
        document = parse_body(body)
        items = document.get("value") if isinstance(document, dict) else None
        found: set[str] = set()
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            state = item.get("clientState")
            if isinstance(state, str) and not self._checker.match(state):
                found.add(str(item.get("subscriptionId", "?"))[:40])
        return found


def build(settings: SourceSettings) -> GraphSource:
    """Build a Microsoft Graph source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    states = require_secrets(settings)
    return GraphSource(
        settings.name, build_extraction(settings, dedup=None, type=None), states=states
    )


# Samples: the shapes Graph sends, with fresh ids and times.


def _samples(now: float, state: str) -> dict[str, bytes]:
    from datetime import UTC, datetime

    tenant, user = str(uuid.uuid4()), str(uuid.uuid4())
    expires = datetime.fromtimestamp(int(now) + 3 * 86_400, UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.0000000Z"
    )

    def change(kind: str) -> bytes:
        message = "AAMkAGUwNjQ4ZjIxLTQ3Y2YtNDViMi1iZjc4LTMA" + uuid.uuid4().hex.upper()
        resource = f"Users/{user}/Messages/{message}"
        notification = {
            "subscriptionId": str(uuid.uuid4()),
            "subscriptionExpirationDateTime": expires,
            "changeType": kind,
            "resource": resource,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Message",
                "@odata.id": resource,
                "@odata.etag": 'W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf"',
                "id": message,
            },
            "clientState": state,
            "tenantId": tenant,
        }
        return json.dumps({"value": [notification]}, separators=(",", ":")).encode()

    lifecycle = {
        "subscriptionId": str(uuid.uuid4()),
        "subscriptionExpirationDateTime": expires,
        "tenantId": tenant,
        "clientState": state,
        "lifecycleEvent": "reauthorizationRequired",
    }
    return {
        "created": change("created"),
        "updated": change("updated"),
        "deleted": change("deleted"),
        "reauthorizationRequired": json.dumps(
            {"value": [lifecycle]}, separators=(",", ":")
        ).encode(),
    }


PROVIDER = ProviderSpec(
    "graph",
    "Microsoft Graph change notifications: clientState in the body (no signature); "
    "validationToken handshake",
    build,
    info=ProviderInfo(
        scheme="none: every notification's clientState must be one of secrets "
        "(constant-time); not a signature",
        headers="none (validation: ?validationToken= query)",
        dedup_key="a body hash (Graph sends no delivery id)",
        ordering_key="value[0].resource",
        handshake="POST ?validationToken=...: 200 text/plain with the decoded token within 10 s",
        retries="any 2xx within 3 s counts (202 suggested, 200 accepted); else retried "
        "for up to 4 h; slow endpoints throttled, then dropped",
        credential="the subscriptions' clientState values",
        signs_body=False,
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("SecretClientState",)}
"""Settings the generic provider tests build this provider with."""
