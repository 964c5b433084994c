"""Gunicorn settings for the webhook service, tuned for a small (2-core) pod.

Why these values:

- ``gthread`` workers: deliveries spend part of their time waiting on Redis, and threads overlap
  that wait; keep-alive (load balancers, the benchmark) needs a non-``sync`` worker class.
  Precisely, :class:`webhook_service.buffered_worker.BufferedThreadWorker`: ``gthread`` with every
  request read whole by the event loop before a thread runs it, within
  ``MERGEWAY_REQUEST_TIMEOUT_SECONDS`` (408 after), so slow or stalled clients hold no thread
  (plain ``gthread`` gave each one a thread, blocked without a deadline: issue 24).
- ``worker_connections`` bounds the connections (idle, being read, being answered) per process;
  past it, new ones wait in the listen backlog.
- ``WEB_CONCURRENCY`` processes (default: the CPU count) times ``MERGEWAY_WEB_THREADS`` threads
  (default 4). Python threads do not add CPU, so processes track cores; see bench/README.md for
  the measurements behind the defaults.
- ``reuse_port``: each worker listens on its own ``SO_REUSEPORT`` socket, so the kernel spreads
  connections evenly. With one shared socket, whichever worker wakes first accepts a burst of
  keep-alive connections (from an ingress or load balancer) and keeps them, leaving the other
  core idle: measured at 2/3 vs 1/3 of the work, and sometimes all of it on one worker.
- ``timeout`` 30 s is far above a normal request (milliseconds) and bounds a stuck worker; it is
  a heartbeat, not a deadline on clients (that is ``MERGEWAY_REQUEST_TIMEOUT_SECONDS``).
- Prometheus multiprocess mode: every worker writes its metrics to a shared directory so
  ``/metrics`` reports the sum. The directory is created here when ``PROMETHEUS_MULTIPROC_DIR`` is
  not set, and stale files from an earlier run are removed at start.
- Gunicorn's own log lines are JSON with the same redaction as the app's; its access log is off
  unless ``MERGEWAY_ACCESS_LOG`` is set (intake logs each delivery anyway).

Environment (read by :class:`mergeway.config.Settings`, documented in ``.env.example``): ``PORT``
(default 8080) or ``MERGEWAY_BIND`` (e.g. ``127.0.0.1:9000``), ``WEB_CONCURRENCY``,
``MERGEWAY_WEB_THREADS``, ``MERGEWAY_ACCESS_LOG``, ``MERGEWAY_REQUEST_TIMEOUT_SECONDS``; and
prometheus_client's own ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from mergeway.config import ConfigError, Settings


def _settings() -> Settings:
    """The settings gunicorn itself needs; a malformed one stops it before it binds anything."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"mergeway-web refuses to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


_web = _settings()
_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

bind = _web.web_bind or f"0.0.0.0:{_web.web_port}"
worker_class = "webhook_service.buffered_worker.BufferedThreadWorker"
worker_connections = 1000
workers = _web.web_processes or _cpus
threads = _web.web_threads
keepalive = 5
timeout = 30
graceful_timeout = 20
backlog = 2048
reuse_port = True
# Headers are small for webhooks; these are gunicorn's defaults, stated so nobody loosens them by accident.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = None
errorlog = "-"
proc_name = "mergeway-web"
# Gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), which
# several instances on one machine (tests, benchmarks, sidecars) would fight over; nothing uses it.
control_socket_disable = True

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mergeway-metrics-")

logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "mergeway.logs.ContextFilter"},
        "redact": {"()": "mergeway.logs.RedactionFilter"},
    },
    "formatters": {"json": {"()": "mergeway.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["context", "redact"],
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        # Off unless MERGEWAY_ACCESS_LOG is set: intake already logs every delivery with its delivery
        # id, and a line per probe or scrape costs CPU and says nothing.
        "gunicorn.access": {
            "level": "INFO" if _web.access_log else "WARNING",
            "handlers": ["console"],
            "propagate": False,
        },
    },
    "root": {"level": "INFO", "handlers": []},
}


def on_starting(server: Any) -> None:
    """Refuse to start, with a clear one-line reason, before any worker is forked."""
    try:
        Settings.from_env(role="web")
    except ConfigError as exc:
        server.log.error("mergeway-web refuses to start: %s", exc)
        raise SystemExit(2) from None
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges must stop counting in /metrics."""
    # Not at the top: prometheus_client picks its mode at import, after this file sets up the directory.
    from mergeway.metrics import mark_process_dead

    mark_process_dead(worker.pid)
