"""Structured JSON logs with secrets scrubbed from every record, for every Mergeway process.

One line of JSON per record, so a log pipeline can filter by delivery id, repository, PR or job id
without regexes. Those fields come from :func:`log_context`, a context-variable scope: the web
service opens one per request and workers one per job, and everything logged inside (including by
libraries) carries them.

Redaction happens in a handler filter, not in the formatter, so it applies to records propagated
from any logger and to exception text as well. It scrubs:

- values registered with :func:`register_secret` (``configure_logging`` registers every secret in
  :class:`~mergeway.config.Settings`; forge clients register tokens they mint at run time);
- credentials inside URLs (``https://user:token@host`` → ``https://***@host``);
- well-known token shapes (GitHub ``ghp_``/``ghs_``/``github_pat_``, GitLab ``glpat-``, bearer
  headers, ``X-Gitlab-Token`` and ``token=`` style key/values), in case one arrives unregistered.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TextIO

from mergeway.config import Settings

REDACTED: Final = "***"

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"<>]+@")
_TOKEN_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{16,}"
    r"|gl(?:oas|dt|rt|cbt|ptt|ft|imt|agent|soat)-[A-Za-z0-9_-]{16,})"
)
_KEY_VALUES = re.compile(
    r"(?i)(?P<key>\b(?:authorization|x-gitlab-token|private-token|x-hub-signature(?:-256)?|"
    r"password|passwd|secret|token|api[_-]?key)\b[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<scheme>(?:bearer|token|basic)\s+)?(?P<value>[^\s\"',;&}]+)"
)

#: Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)

#: The record attribute holding the context fields (see :func:`record_context`).
CONTEXT_ATTR: Final = "_mergeway_context"

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_ordered_secrets: tuple[str, ...] = ()

_NO_CONTEXT: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "mergeway_log_context", default=_NO_CONTEXT
)


def register_secret(value: str | None) -> None:
    """Never let ``value`` appear in a log line. Empty values are ignored; registering is idempotent."""
    global _ordered_secrets
    if not value:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # Longest first, so a secret that contains another one is replaced whole.
        _ordered_secrets = tuple(sorted(_secrets, key=len, reverse=True))


def redact(text: str) -> str:
    """Scrub registered secrets, URL credentials and token-shaped strings from ``text``."""
    for secret in _ordered_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "://" in text and "@" in text:
        text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    if "_" in text or "-" in text:
        text = _TOKEN_SHAPES.sub(REDACTED, text)
    if ":" in text or "=" in text:
        text = _KEY_VALUES.sub(lambda m: f"{m.group('key')}{m.group('scheme') or ''}{REDACTED}", text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (e.g. ``delivery_id``, ``repo``, ``pr``, ``job_id``) to every record logged inside."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context without a ``with`` block (e.g. once the job id is known)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def current_context() -> Mapping[str, Any]:
    return _context.get()


class RedactionFilter(logging.Filter):
    """Scrub secrets from a record in place: message, arguments, exception and extra fields.

    Attach it to *handlers*: a logger's own filters do not see records propagated from children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                setattr(record, key, _redact_value(value))
        context = getattr(record, CONTEXT_ATTR, None)
        if context:
            setattr(record, CONTEXT_ATTR, _redact_value(context))
        return True


def _install_record_factory() -> None:
    """Attach the :func:`log_context` fields to every record when it is created.

    Done at record creation (not only in our handler's filter) so every handler sees them: a
    test's capture handler, a file handler a library adds, Celery's own handlers. Idempotent.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_mergeway", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        # One private attribute, not one per field: ``extra=`` may name the same fields, and
        # logging refuses extras that collide with existing record attributes.
        setattr(record, CONTEXT_ATTR, _context.get())
        return record

    factory._mergeway = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()


def record_context(record: logging.LogRecord) -> dict[str, Any]:
    """The context fields and ``extra=`` fields of a record (extras win), as logged."""
    fields: dict[str, Any] = dict(getattr(record, CONTEXT_ATTR, None) or {})
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            fields[key] = value
    return fields


class ContextFilter(logging.Filter):
    """Attach the context to records made before :mod:`mergeway.logs` was imported (rare)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, CONTEXT_ATTR):
            setattr(record, CONTEXT_ATTR, _context.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, context/extra fields, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record_context(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


def make_handler(stream: TextIO | None = None) -> logging.Handler:
    """A stream handler with context, redaction and JSON formatting, in that order."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter())
    return handler


def register_settings_secrets(settings: Settings) -> None:
    for value in (
        settings.github_webhook_secret,
        settings.gitlab_webhook_secret,
        settings.github_token,
        settings.github_app_private_key,
        settings.gitlab_token,
    ):
        register_secret(value)
    # A Redis password travels in REDIS_URL; the URL rule covers it, registering covers bare echoes.
    _, sep, rest = settings.redis_url.partition("://")
    if sep and "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        register_secret(userinfo.partition(":")[2] or userinfo)
    # A PEM key is also logged line by line by some libraries.
    for line in settings.github_app_private_key.splitlines():
        if len(line) >= 16 and not line.startswith("-----"):
            register_secret(line.strip())


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Route all logging through one JSON handler on the root logger; idempotent.

    Console handlers installed earlier (``basicConfig``, a previous call) are replaced, and every
    other root handler (a file handler, a test's capture handler) gets the same context and
    redaction filters: an unfiltered handler would undo the redaction.
    """
    register_settings_secrets(settings)
    root = logging.getLogger()
    for handler in list(root.handlers):
        is_console = type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (
            sys.stderr,
            sys.stdout,
        )
        if getattr(handler, "_mergeway", False) or is_console:
            root.removeHandler(handler)
        elif not any(isinstance(f, RedactionFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
            handler.addFilter(RedactionFilter())
    handler = make_handler(stream)
    handler._mergeway = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Libraries that are chatty at INFO add nothing an operator needs per request.
    for noisy in ("urllib3", "kubernetes.client.rest"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
