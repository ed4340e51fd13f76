"""Microsoft Graph change notifications: a shared ``clientState`` instead of a signature.

Graph signs nothing. Each notification in a delivery (``{"value": [...]}``) repeats the
``clientState`` its subscription was created with; a delivery is accepted only when
every notification in it carries one of the configured client states. That proves
the sender knew a client state, and nothing more: a captured delivery can be replayed,
and anyone who can read a stored body can read the client state in it.

>>> ClientStates(["SecretClientState"]).verify(b'{"value": [{"clientState": "SecretClientState"}]}')

Client states are compared by their SHA-256 digests with :func:`hmac.compare_digest`,
against every configured value without stopping at the first match.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

from hookwise.errors import VerificationError
from hookwise.signatures._common import as_bytes

__all__ = ["ClientStates", "notifications"]


def notifications(body: bytes) -> list[object]:
    """The ``value`` list of a delivery; a ``VerificationError`` (``malformed_body``)
    when the body is not a JSON object with a non-empty ``value`` list."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise VerificationError(
            "malformed_body", 'the body is not JSON; Graph posts {"value": [...]}'
        ) from None
    items = document.get("value") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        raise VerificationError(
            "malformed_body", 'the body has no non-empty "value" list of notifications'
        )
    return items


class ClientStates:
    """The accepted client states, kept as digests.

    Raises only :class:`~hookwise.errors.VerificationError` from :meth:`verify`:
    ``malformed_body``, ``missing_field`` (a notification without ``clientState``) or
    ``bad_token`` (a ``clientState`` that is none of the configured ones).
    """

    __slots__ = ("_digests",)

    def __init__(self, states: Sequence[str]) -> None:
        self._digests = tuple(hashlib.sha256(as_bytes(state)).digest() for state in states)

    def match(self, state: str) -> bool:
        """Whether ``state`` is one of the configured client states."""
        given = hashlib.sha256(as_bytes(state)).digest()
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(digest, given)
        return found

    def verify(self, body: bytes) -> None:
        """Return if every notification in ``body`` carries a configured client state."""
        for position, item in enumerate(notifications(body), start=1):
            if not isinstance(item, dict):
                raise VerificationError(
                    "malformed_body", f"notification number {position} is not a JSON object"
                )
            state = item.get("clientState")
            if not isinstance(state, str) or not state:
                raise VerificationError(
                    "missing_field", f"notification number {position} has no clientState"
                )
            if not self.match(state):
                raise VerificationError(
                    "bad_token",
                    f"the clientState of notification number {position} is none of the "
                    f"{len(self._digests)} configured client state(s)",
                )
