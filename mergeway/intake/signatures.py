"""Delivery authentication: GitHub's HMAC-SHA256 signature and GitLab's secret token.

Both comparisons are constant-time (:func:`hmac.compare_digest`) so response timing leaks nothing
about the secret. GitLab may have one secret per group or project
(``MERGEWAY_GITLAB_WEBHOOK_SECRETS``): a delivery must then carry the secret of the project it is
about, so a leaked group secret cannot speak for another group. The GitHub HMAC is computed over
the exact received bytes, before any parsing, as GitHub prescribes. Received signatures and tokens
are never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE_PREFIX = "sha256="


def sign_github(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub would send for ``body`` (tests and the bench use it)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_github(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is a valid ``sha256=<hex>`` HMAC of ``body`` keyed with ``secret``."""
    return verified_github_signature(secret, body, header) is not None


def verified_github_signature(secret: str, body: bytes, header: str | None) -> str | None:
    """The HMAC of ``body`` (hex) when ``header`` carries it, else ``None``.

    Intake also uses it to recognise a replayed body: it identifies the exact bytes as well as a
    digest of them would, and it is already computed.
    """
    if not secret or not header or not header.startswith(SIGNATURE_PREFIX):
        return None
    expected = sign_github(secret, body)
    if not hmac.compare_digest(expected.encode("ascii"), _header_bytes(header.strip().lower())):
        return None
    return expected[len(SIGNATURE_PREFIX) :]


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


def gitlab_token_scopes(secret: str, scoped: Mapping[str, str], token: str | None) -> frozenset[str | None]:
    """Which secrets ``token`` is: ``None`` for the global one, else the path prefixes it belongs to.

    Every configured secret is compared (no early exit), so timing does not say which one matched.
    An empty set means the token is no configured secret at all.
    """
    matched: set[str | None] = set()
    if verify_gitlab(secret, token):
        matched.add(None)
    for prefix, value in scoped.items():
        if verify_gitlab(value, token):
            matched.add(prefix)
    return frozenset(matched)


def gitlab_scope_for(path: str, scoped: Mapping[str, str]) -> str | None:
    """The prefix whose secret a project at ``path`` must be delivered with (longest wins); ``None``: global."""
    if not scoped:
        return None
    lowered = path.strip("/").lower()
    best: str | None = None
    for prefix in scoped:
        if (lowered == prefix or lowered.startswith(prefix + "/")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best
