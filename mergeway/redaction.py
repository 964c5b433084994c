"""One registry of secrets and one scrubber, for log records, forge and git errors alike.

Secrets reach a Mergeway process from its settings (webhook secrets, forge tokens, the App's key,
a Redis password), from the GitHub App token exchange (minted installation tokens) and as git
credentials built from those. All of them go into one registry, so whatever scrubs a log line also
scrubs a :class:`~mergeway.git.GitError` or a :class:`~mergeway.forge.ForgeError` whose text may end
up in a pull request comment or a commit status; a secret known to one path is known to all.

:func:`redact` masks, in this order:

- every registered value (longest first, so a secret that contains another is replaced whole);
- JSON fields that carry a token (``{"token": "ghs_..."}``, the installation-token response that
  PyGithub logs at DEBUG);
- the user-info of a URL (``https://user:token@host`` → ``https://***@host``);
- well-known token shapes (GitHub ``ghp_``/``ghs_``/``github_pat_``..., GitLab ``glpat-``/``gldt-``...),
  in case one arrives unregistered;
- ``key: value`` / ``key=value`` pairs whose key names a credential (``password``, ``token``,
  ``X-Gitlab-Token``, ``X-Hub-Signature-256``...), up to a separator (``&``, ``;``, a quote);
- ``Authorization`` and ``PRIVATE-TOKEN`` header values, up to a quote, a comma or a brace (header
  dumps, git trace output).

Each rule is cheap to skip: it runs only when the text holds the characters it needs, because every
log record of every process passes through here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from mergeway.config import Settings

MASK: Final = "***"

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
#: The registry, longest first; replaced whole (never mutated) so :func:`redact` reads it without a lock.
_ordered_secrets: tuple[str, ...] = ()

_JSON_FIELDS = re.compile(r'("(?:token|access_token|private_token|password)"\s*:\s*")[^"]+(")', re.I)
_AUTHORIZATION = re.compile(r"(authorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer|token)\s+)[^\s'\",}]+", re.I)
_PRIVATE_TOKEN = re.compile(r"(private-token['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+", re.I)
#: User-info up to the ``@``: either anything without quotes or angle brackets, or ``user:password``
#: where the password may hold them.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?:[^/\s@'\"<>]+|[^/\s:@]*:[^@\s/]+)@")
_TOKEN_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|gl(?:pat|oas|dt|rt|cbt|ptt|ft|imt|agent|soat)-[A-Za-z0-9_-]{16,}|gl[a-z]{2,4}-[A-Za-z0-9_-]{20,})"
)
_KEY_VALUES = re.compile(
    r"(?i)(?P<key>\b(?:authorization|x-gitlab-token|private-token|x-hub-signature(?:-256)?|"
    r"password|passwd|secret|token|api[_-]?key)\b[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<scheme>(?:bearer|token|basic)\s+)?(?P<value>[^\s\"',;&}]+)"
)


def register_secret(value: str | None) -> None:
    """Never let ``value`` appear in a log line or an error. Empty values are ignored; idempotent."""
    global _ordered_secrets
    if not value:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        _ordered_secrets = tuple(sorted(_secrets, key=len, reverse=True))


def register_settings_secrets(settings: Settings) -> None:
    """Register every secret :class:`~mergeway.config.Settings` holds (each edge does so at start-up)."""
    for value in (
        settings.github_webhook_secret,
        settings.gitlab_webhook_secret,
        *settings.gitlab_webhook_secrets.values(),
        settings.github_token,
        settings.github_app_private_key,
        settings.gitlab_token,
    ):
        register_secret(value)
    # A Redis password travels in REDIS_URL; the URL rule covers it, registering covers bare echoes.
    _, sep, rest = settings.redis_url.partition("://")
    if sep and "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        password = userinfo.partition(":")[2] or userinfo
        register_secret(password)
        register_secret(unquote(password))  # as given in MERGEWAY_REDIS_PASSWORD, before quoting
    # A PEM key is also logged line by line by some libraries.
    for line in settings.github_app_private_key.splitlines():
        if len(line) >= 16 and not line.startswith("-----"):
            register_secret(line.strip())


def redact(text: str) -> str:
    """``text`` with every registered secret and credential-shaped substring replaced by :data:`MASK`."""
    if not text:
        return text
    for secret in _ordered_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if '"' in text and ":" in text:
        text = _JSON_FIELDS.sub(rf"\g<1>{MASK}\g<2>", text)
    if "://" in text and "@" in text:
        text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    if "_" in text or "-" in text:
        text = _TOKEN_SHAPES.sub(MASK, text)
    if ":" in text or "=" in text:
        text = _KEY_VALUES.sub(lambda m: f"{m.group('key')}{m.group('scheme') or ''}{MASK}", text)
        # Last: a header's value runs to the next quote, comma or brace, so masking it first could
        # swallow the key of a following pair and leave that pair's value unmasked.
        lowered = text.lower()
        if "authorization" in lowered:
            text = _AUTHORIZATION.sub(rf"\g<1>{MASK}", text)
        if "private-token" in lowered:
            text = _PRIVATE_TOKEN.sub(rf"\g<1>{MASK}", text)
    return text


_FLAT: Final = frozenset({int, bool, float, type(None)})


def redact_value(value: Any) -> Any:
    """:func:`redact` applied to every string inside ``value`` (mappings and sequences, as logged)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        # Flat values (a log context: ids, names, numbers) without a call per value.
        return {
            str(k): redact(v) if type(v) is str else v if type(v) in _FLAT else redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))
