"""What the public-key providers (``standard``'s v1a, ``discord``, ``sendgrid``) share:
the ``signing_key`` option, private keys that let ``hookwise send`` and the tests sign
deliveries that the public keys in ``secrets`` verify.
"""

from __future__ import annotations

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError

__all__ = ["signing_key_texts"]


def signing_key_texts(settings: SourceSettings, *, what: str, example: str) -> list[str]:
    """The ``signing_key`` option as a list of texts (empty when it is not set); a
    :class:`ConfigError` when it is neither one text nor a list of them.

    >>> signing_key_texts(settings, what="a whsk_ key", example="env:WEBHOOK_SIGNING_KEY")
    ['whsk_...']
    """
    option = settings.options.get("signing_key")
    if option is None:
        return []
    values = [option] if isinstance(option, str) else option
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ConfigError(
            f"signing_key must be {what} or a list of them",
            key=f"sources.{settings.name}.signing_key",
            fix=f'write it like signing_key = "{example}"',
        )
    return list(values)
