"""Delivery authentication: GitHub's HMAC-SHA256 signature and GitLab's secret token.

Both comparisons are constant-time (:func:`hmac.compare_digest`) so response timing leaks nothing
about the secret. The GitHub HMAC is computed over the exact received bytes, before any parsing,
as GitHub prescribes. Received signatures and tokens are never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="


def sign_github(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub would send for ``body`` (tests and the bench use it)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_github(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is a valid ``sha256=<hex>`` HMAC of ``body`` keyed with ``secret``."""
    if not secret or not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = sign_github(secret, body)
    return hmac.compare_digest(expected.encode("ascii"), _header_bytes(header.strip().lower()))


def verify_gitlab(secret: str, token: str | None) -> bool:
    """True when the ``X-Gitlab-Token`` header equals the configured secret."""
    if not secret or token is None:
        return False
    return hmac.compare_digest(secret.encode("utf-8"), _header_bytes(token))


def _header_bytes(value: str) -> bytes:
    """The raw bytes of a header value: WSGI servers decode header bytes as latin-1."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")
