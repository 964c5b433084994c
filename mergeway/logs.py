"""Structured JSON logs with secrets scrubbed from every record, for every Mergeway process.

One line of JSON per record, so a log pipeline can filter by delivery id, repository, PR or job id
without regexes. Those fields come from :func:`log_context`, a context-variable scope: the web
service opens one per request and workers one per job, and everything logged inside (including by
libraries) carries them.

Redaction happens in a handler filter, not in the formatter, so it applies to records propagated
from any logger and to exception text as well. What it masks, and the registry of secrets it
masks, are :mod:`mergeway.redaction`'s: ``configure_logging`` registers every secret in
:class:`~mergeway.config.Settings`, forge clients register the tokens they mint at run time, and the
same values are masked in forge and git errors. :func:`install_log_redaction` puts the same filter
on the library loggers that print request details, for processes (and tests) where no Mergeway
handler is installed.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TextIO

from mergeway import jsonfast
from mergeway.config import Settings
from mergeway.redaction import redact, redact_value, register_settings_secrets

#: Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)

#: The record attribute holding the context fields (see :func:`record_context`).
CONTEXT_ATTR: Final = "_mergeway_context"

_NO_CONTEXT: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "mergeway_log_context", default=_NO_CONTEXT
)


class log_context:  # noqa: N801 - used as a function: ``with log_context(repo=...):``
    """Add ``fields`` (e.g. ``delivery_id``, ``repo``, ``pr``, ``job_id``) to every record logged inside.

    A class rather than a generator-based context manager: intake opens two per delivery, and
    ``contextlib``'s machinery cost more than logging the delivery's one line.
    """

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: Any) -> None:
        self._fields = {k: v for k, v in fields.items() if v is not None}
        self._token: contextvars.Token[Mapping[str, Any]] | None = None

    def __enter__(self) -> None:
        self._token = _context.set({**_context.get(), **self._fields})

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _context.reset(self._token)
            self._token = None


class RedactionFilter(logging.Filter):
    """Scrub secrets from a record in place: message, arguments, exception and extra fields.

    Attach it to *handlers* (:func:`make_handler`, :func:`configure_logging`): a logger's own filters
    do not see records propagated from children. :func:`install_log_redaction` also puts it on the
    loggers that print request details, for handlers Mergeway did not configure.
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
        attrs = vars(record)
        for key in attrs.keys() - _STANDARD_ATTRS:
            if not key.startswith("_"):
                attrs[key] = redact_value(attrs[key])
        context = attrs.get(CONTEXT_ATTR)
        if context:
            attrs[CONTEXT_ATTR] = redact_value(context)
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
_installed_lock = threading.Lock()


def install_log_redaction(names: tuple[str, ...] = NOISY_LOGGERS) -> None:
    """Attach a :class:`RedactionFilter` to each named logger (once).

    A logger's own filters see only the records it creates, not its children's, so each logger
    known to print request details gets one. This protects every handler, including those that
    :func:`configure_logging` never saw (a test's capture handler, a library's own).
    """
    with _installed_lock:
        for name in names:
            if name not in _installed:
                logging.getLogger(name).addFilter(RedactionFilter())
                _installed.add(name)


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
    attrs = vars(record)
    fields: dict[str, Any] = dict(attrs.get(CONTEXT_ATTR) or {})
    for key, value in attrs.items():  # in the order given, so a line's fields read alike every time
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
        return jsonfast.dumps(entry, default=str)


def make_handler(stream: TextIO | None = None) -> logging.Handler:
    """A stream handler with context, redaction and JSON formatting, in that order."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter())
    return handler


def _skip_unlogged_record_fields() -> None:
    """The logging HOWTO's "Optimization" settings, for what a Mergeway log line never shows.

    A record otherwise looks up its caller's file and line, its thread and its process (and
    multiprocessing's process name): more than half the cost of logging one line, which intake
    pays for every delivery. The JSON lines carry none of them (the delivery, repository, PR and job
    ids identify a line); the record attributes stay present, as ``None``.
    """
    logging._srcfile = None  # the HOWTO's documented way to skip the caller lookup
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Route all logging through one JSON handler on the root logger; idempotent.

    Console handlers installed earlier (``basicConfig``, a previous call) are replaced, and every
    other root handler (a file handler, a test's capture handler) gets the same context and
    redaction filters: an unfiltered handler would undo the redaction.
    """
    register_settings_secrets(settings)
    _skip_unlogged_record_fields()
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
