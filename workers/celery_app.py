"""The Celery application: Redis broker and result backend, JSON only, one queue per job kind.

Settings that matter for correctness, and why:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a job is acknowledged only after it ran, and
  a worker killed mid-job (OOM, node drain) gives the job back, so it is redelivered (DESIGN §3).
  Jobs are idempotent, which makes the second run safe.
- ``worker_prefetch_multiplier=1``: a worker holds one job at a time; long deploys do not sit
  on a prefetched preview.
- ``visibility_timeout``: with Redis, an unacknowledged job is redelivered after this long. It
  must exceed the longest job (a deploy waits up to MERGEWAY_HEALTH_TIMEOUT_SECONDS for health),
  or a slow job would run twice concurrently.
- JSON only (``accept_content``): never unpickle anything that came through Redis.
- Messages are published by the web service's light publisher (:mod:`mergeway.intake.publish`)
  as well as by ``send_task``; both produce Celery protocol-2 messages on the queues named here.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.entity import Exchange as _Exchange
from kombu.entity import Queue as _Queue

from mergeway.config import Settings
from mergeway.intake.router import JOB_KINDS, QUEUES, TASK_NAMES

#: kombu ships no type hints; name the constructors once so every call below is typed.
Queue: Any = _Queue
Exchange: Any = _Exchange


def create_celery(settings: Settings) -> Celery:
    app = Celery("mergeway", broker=settings.redis_url, backend=settings.redis_url, include=["workers.tasks"])
    visibility = int(max(3600.0, settings.health_timeout_seconds * 4 + 600))
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # One direct exchange per queue, named alike: nothing else is bound to it.
        task_queues=[Queue(QUEUES[k], Exchange(QUEUES[k], type="direct"), routing_key=QUEUES[k]) for k in JOB_KINDS],
        task_default_queue=QUEUES["preview"],
        task_routes={TASK_NAMES[kind]: {"queue": QUEUES[kind]} for kind in JOB_KINDS},
        task_create_missing_queues=False,
        task_track_started=True,
        result_expires=24 * 3600,
        result_extended=True,
        broker_transport_options={"visibility_timeout": visibility},
        result_backend_transport_options={"visibility_timeout": visibility},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


#: The app used by workers and by anyone calling ``send_task``; broker URL from ``REDIS_URL``.
app = create_celery(Settings.from_env(role="cli"))
