"""Celery tasks: thin shells that decode an event and hand it to :func:`mergeway.jobs.dispatch`.

Each job kind is its own task (and queue) so they can be scaled and observed separately. A task
logs start, end and failure with the delivery id, repository, PR and job id; a failure is
re-raised so Celery records it (worker log and result backend) rather than reporting success.
Metrics (``mergeway_jobs_total``, ``mergeway_job_duration_seconds``) are recorded here as well.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

from celery import Task

from mergeway import jobs, metrics
from mergeway.events import Event, from_dict
from mergeway.intake.router import TASK_NAMES, JobKind
from mergeway.logs import log_context
from workers.celery_app import app

log = logging.getLogger("mergeway.jobs")


def run_job(kind: JobKind, job_id: str | None, data: Any) -> None:
    """Decode ``data`` and run the ``kind`` job, logging and timing it; exceptions propagate."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        if not isinstance(data, dict):
            raise TypeError(f"{kind} job expects an event object, got {type(data).__name__}")
        event: Event = from_dict(data)
        pr = getattr(getattr(event, "pr", None), "number", None)
        with log_context(job=kind, job_id=job_id, delivery_id=event.delivery_id, repo=event.repo.full_name, pr=pr):
            log.info("%s job started", kind)
            try:
                jobs.dispatch(kind, event)
            except Exception as exc:
                log.error("%s job failed: %s: %s", kind, type(exc).__name__, exc, exc_info=exc)
                raise
            outcome = "succeeded"
            log.info("%s job succeeded", kind)
    finally:
        elapsed = time.perf_counter() - started
        metrics.JOBS.labels(kind, outcome).inc()
        metrics.JOB_SECONDS.labels(kind, outcome).observe(elapsed)


TaskBody = Callable[[Task, dict[str, Any]], None]


def _task(kind: JobKind) -> Callable[[TaskBody], Any]:
    """``app.task`` with the options every job task shares (Celery itself is untyped)."""
    return cast(Callable[[TaskBody], Any], app.task(name=TASK_NAMES[kind], bind=True))


@_task("preview")
def preview(self: Task, event: dict[str, Any]) -> None:
    run_job("preview", self.request.id, event)


@_task("deploy")
def deploy(self: Task, event: dict[str, Any]) -> None:
    run_job("deploy", self.request.id, event)


@_task("rollback")
def rollback(self: Task, event: dict[str, Any]) -> None:
    run_job("rollback", self.request.id, event)


@_task("help")
def help_(self: Task, event: dict[str, Any]) -> None:
    run_job("help", self.request.id, event)
