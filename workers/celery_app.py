"""The Celery application: Redis broker and result backend, JSON only, one queue per job kind.

Settings that matter for correctness, and why:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a job is acknowledged only after it ran, and
  a worker killed mid-job (OOM, node drain) gives the job back, so it is redelivered
  (docs/DECISIONS.md, "Failures: what happens, and what may be lost").
  Jobs are idempotent, which makes the second run safe.
- ``worker_prefetch_multiplier=1``: a worker holds one job at a time; long deploys do not sit
  on a prefetched preview.
- ``visibility_timeout`` is the job *lease* (``MERGEWAY_JOB_LEASE_SECONDS``, 60 s): with Redis, an
  unacknowledged job is redelivered once it is that old. The worker renews the lease of every job
  it holds (:mod:`workers.lease`), so a long deploy is never redelivered while its worker lives,
  and a job whose worker host died is picked up by another worker about one lease later. Every
  worker sweeps for such jobs every few seconds (``unacked_restore_interval``, throttle 1).
- Time limits per job kind (the kinds table, :data:`mergeway.jobs.kinds.KINDS`; most are
  ``MERGEWAY_*_TIME_LIMIT_SECONDS``): the soft limit, 30 s before the
  hard one, lets the job report on the PR; the hard limit bounds a hung pool process.
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
from mergeway.jobs.kinds import KINDS, QUEUES, TASK_NAMES, time_limit

#: kombu ships no type hints; name the constructors once so every call below is typed.
Queue: Any = _Queue
Exchange: Any = _Exchange


#: Seconds between two sweeps for jobs whose lease expired (each worker sweeps; a mutex in Redis
#: keeps two sweeps from overlapping).
RESTORE_INTERVAL = 5


def time_limits(settings: Settings) -> dict[str, dict[str, float]]:
    """Hard and soft time limits per task (from the kinds table): soft first, so the job can still report."""
    hard = {kind: time_limit(kind, settings) for kind in KINDS}
    return {
        TASK_NAMES[kind]: {"time_limit": seconds, "soft_time_limit": max(seconds - 30.0, seconds / 2)}
        for kind, seconds in hard.items()
    }


def create_celery(settings: Settings) -> Celery:
    app = Celery("mergeway", broker=settings.redis_url, backend=settings.redis_url, include=["workers.tasks"])
    visibility = int(settings.job_lease_seconds)
    broker_options = {
        "visibility_timeout": visibility,
        "unacked_restore_interval": RESTORE_INTERVAL,
        "unacked_restore_throttle": 1,
        # A sweep is quick; a worker that dies holding the sweep mutex blocks sweeps this long.
        "unacked_mutex_expire": 30,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # One direct exchange per queue, named alike: nothing else is bound to it.
        # Kinds may share a queue (the release sweep runs on the deploy queue): one Queue per name.
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in dict.fromkeys(QUEUES.values())],
        task_default_queue=QUEUES["preview"],
        task_routes={TASK_NAMES[kind]: {"queue": QUEUES[kind]} for kind in KINDS},
        task_create_missing_queues=False,
        task_track_started=True,
        result_expires=24 * 3600,
        result_extended=True,
        broker_transport_options=broker_options,
        result_backend_transport_options={"visibility_timeout": visibility},
        task_annotations=time_limits(settings),
        broker_connection_retry_on_startup=True,
        # Redis restarts: keep reconnecting rather than exiting after 100 attempts.
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    # Here: workers.lease imports Celery's worker state, which only a worker needs (beat creates this app too).
    from workers.lease import LeaseRenewal

    app.steps["consumer"].add(LeaseRenewal)
    return app


#: The app used by workers and by anyone calling ``send_task``; broker URL from ``REDIS_URL``.
app = create_celery(Settings.from_env(role="cli"))
