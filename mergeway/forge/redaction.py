"""Keep credentials out of logs and error messages.

Tokens reach this process in three ways: from settings, from the GitHub App token exchange (the
response body carries the token, and PyGithub logs response bodies at DEBUG), and from git's
stderr. Each registered secret, and anything that *looks* like a credential (an Authorization
header, a ``"token": "..."`` field, a password in a URL), is replaced by ``***`` before text is logged
or put into an exception, so turning on DEBUG logging to chase a problem never leaks a token.
"""

from __future__ import annotations

import logging
import re
import threading

_MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()

#: Short strings would mask ordinary words; real tokens are far longer than this.
_MIN_SECRET_LENGTH = 8

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JSON bodies such as the installation-token response: {"token": "ghs_..."}
    (
        re.compile(r'("(?:token|access_token|private_token|password)"\s*:\s*")[^"]+(")', re.I),
        rf"\g<1>{_MASK}\g<2>",
    ),
    # Header dumps and git trace output: Authorization: Basic xxx / token xxx / Bearer xxx
    (
        re.compile(r"(authorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer|token)\s+)[^\s'\",}]+", re.I),
        rf"\g<1>{_MASK}",
    ),
    (re.compile(r"(private-token['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+", re.I), rf"\g<1>{_MASK}"),
    # Credentials embedded in a URL: https://user:secret@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.I), rf"\g<1>{_MASK}@"),
    # Well-known token shapes (GitHub ghp_/ghs_/gho_/github_pat_, GitLab glpat-/gldt-...)
    (
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|gl[a-z]{2,4}-[A-Za-z0-9_-]{20,})\b"),
        _MASK,
    ),
)


def register_secret(value: str | None) -> None:
    """Remember a credential so :func:`redact` masks it wherever it appears."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and credential-shaped substring masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, _MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites a record's message through :func:`redact`.

    Filters on a logger only see records created by that logger (not its children), so
    :func:`install_log_redaction` attaches one to each logger known to print request details.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix; let logging report it
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


#: Loggers that print URLs, headers or bodies of forge and git traffic.
NOISY_LOGGERS = (
    "github.Requester",
    "github.GithubRetry",
    "github.GithubIntegration",
    "gitlab",
    "gitlab.client",
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "mergeway.forge",
    "mergeway.forge.retry",
    "mergeway.forge.github",
    "mergeway.forge.gitlab",
    "mergeway.git",
)

_installed: set[str] = set()


def install_log_redaction(names: tuple[str, ...] = NOISY_LOGGERS) -> None:
    """Attach a :class:`RedactingFilter` to each named logger (once)."""
    with _lock:
        for name in names:
            if name in _installed:
                continue
            logging.getLogger(name).addFilter(RedactingFilter())
            _installed.add(name)
