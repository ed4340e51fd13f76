"""Signature schemes as pure functions of bytes, headers and ``now``.

Each module verifies one family of schemes and raises only
:class:`~hookwise.errors.VerificationError` (with a stable ``reason``); none of them
does I/O or reads the clock.

- :mod:`hookwise.signatures.standard`: Standard Webhooks ``v1`` (also Svix, new GitLab).
- :mod:`hookwise.signatures.hmac`: generic HMAC, configured by header, hash, encoding,
  prefix and signed-content template (GitHub, Shopify, Slack-like and many others).
"""
