"""Celery tasks: thin shells that decode an event and hand it to :func:`mergeway.jobs.dispatch`.

One task per entry of the kinds table (:data:`mergeway.jobs.kinds.KINDS`), registered in a loop:
adding a kind adds its task here without an edit. Periodic kinds get :class:`mergeway.events.Tick`
messages from the scheduler (:mod:`workers.beat`) instead of events.

Each job kind is its own task (and queue) so they can be scaled and observed separately. A task
logs start, end and failure with the delivery id, repository, PR and job id; a failure is
re-raised so Celery records it (worker log and result backend) rather than reporting success.
Metrics (``mergeway_jobs_total``, ``mergeway_job_duration_seconds``) are recorded here as well.

Every start of a job is counted (:mod:`workers.outcomes`): a job that keeps killing its worker is
given up after ``MERGEWAY_JOB_MAX_ATTEMPTS`` starts, and a job that ends without its own outcome
(time limit, unexpected error, given up) says so on the pull request.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from mergeway import jobs, metrics
from mergeway.events import Event, Tick, from_dict
from mergeway.forge.identity import IdentityError
from mergeway.jobs.context import JobContext, default_context
from mergeway.jobs.kinds import KINDS, TASK_NAMES, JobKind, kind_of_task, scheduled
from mergeway.logs import log_context
from mergeway.report import unfinished as texts
from mergeway.report.publish import Publisher
from workers import outcomes
from workers.celery_app import app

log = logging.getLogger("mergeway.jobs")


def base_context() -> JobContext | None:
    """The process's job context (clients built once), or ``None`` without Redis or settings.

    Bookkeeping never stops a job: without it the job still runs (it fails on its own if it needs
    what is missing), it is only not counted.
    """
    try:
        ctx = default_context()
    except Exception as exc:  # the job itself will meet (and report) the same problem
        log.debug("no job bookkeeping: %s", type(exc).__name__)
        return None
    return ctx if ctx.redis is not None else None


def report_unfinished(ctx: JobContext | None, kind: str, event: Event, job_id: str | None, why: str) -> None:
    """Best effort: the job already failed; a failure to report is logged, not raised over it.

    No comment lock: the job that died may hold it, and this report must not wait for its expiry.
    """
    if ctx is None or ctx.redis is None or not job_id:
        return
    pr = getattr(event, "pr", None)
    try:
        out = Publisher(ctx.forge(event.repo), pr.number if pr else 0)
        outcomes.report_unfinished(out, ctx.redis, kind, event, job_id, why)
    except Exception as exc:
        log.warning("could not report the unfinished %s job on the pull request: %s", kind, type(exc).__name__)


def _attempt(ctx: JobContext | None, job_id: str | None) -> int:
    if ctx is None or ctx.redis is None or not job_id:
        return 1
    try:
        return outcomes.count_attempt(ctx.redis, job_id)
    except Exception as exc:  # Redis unreachable: run uncounted rather than not at all
        log.warning("could not count the attempts of job %s: %s", job_id, type(exc).__name__)
        return 1


def _job_context(ctx: JobContext | None, job_id: str | None) -> JobContext:
    """The context of one job: the process's clients, and a journal of its pending statuses under its id."""
    base = ctx if ctx is not None else default_context()
    if base.redis is None or not job_id:
        return base
    return base.for_job(outcomes.PendingStatuses(base.redis, job_id))


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
            ctx = base_context()
            attempt = _attempt(ctx, job_id)
            limit = ctx.settings.job_max_attempts if ctx is not None else attempt
            if attempt > limit:
                outcome = "given_up"
                log.error("%s job given up: %d earlier attempts stopped their worker", kind, attempt - 1)
                report_unfinished(ctx, kind, event, job_id, texts.given_up(attempt - 1))
                return
            log.info("%s job started", kind, extra={"attempt": attempt})
            try:
                jobs.dispatch(kind, event, _job_context(ctx, job_id))
            except SoftTimeLimitExceeded:
                log.error("%s job stopped at its time limit", kind)
                report_unfinished(ctx, kind, event, job_id, texts.TIME_LIMIT)
                raise
            except IdentityError as exc:
                # The delivery's repository is not what it claims: nothing is posted anywhere, since
                # the forge would be told about a repository the delivery has no right to speak for.
                log.error("%s job failed: %s: %s", kind, type(exc).__name__, exc)
                raise
            except Exception as exc:
                log.error("%s job failed: %s: %s", kind, type(exc).__name__, exc, exc_info=exc)
                report_unfinished(ctx, kind, event, job_id, texts.unexpected(type(exc).__name__))
                raise
            outcome = "succeeded"
            log.info("%s job succeeded", kind)
    finally:
        elapsed = time.perf_counter() - started
        metrics.JOBS.labels(kind, outcome).inc()
        metrics.JOB_SECONDS.labels(kind, outcome).observe(elapsed)


class JobTask(Task):  # type: ignore[misc]  # celery is untyped
    """Base of the job tasks: a hard time limit (the pool process was killed) is told on the PR."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # Runs in the worker's main process for a hard time limit (the job's process is gone, so it
        # cannot report itself); off the event loop, which must keep renewing leases.
        kind = kind_of_task(self.name)
        if isinstance(exc, TimeLimitExceeded) and kind is not None and args and isinstance(args[0], dict):
            threading.Thread(target=_report_hard_limit, args=(kind, task_id, args[0]), daemon=True).start()


def _report_hard_limit(kind: JobKind, job_id: str, data: dict[str, Any]) -> None:
    try:
        event = from_dict(data)
    except Exception:
        return
    report_unfinished(base_context(), kind, event, job_id, texts.HARD_TIME_LIMIT)


def run_tick(kind: JobKind, job_id: str | None, data: Any) -> None:
    """Run the periodic ``kind`` job for one tick of the scheduler, logging and timing it.

    No repository and no pull request stand behind a tick: there is nothing to verify with a forge
    and no one to tell; a failure is logged (and recorded by Celery), and the next tick runs again.
    """
    started = time.perf_counter()
    outcome = "failed"
    try:
        if not isinstance(data, dict):
            raise TypeError(f"{kind} job expects a tick object, got {type(data).__name__}")
        with log_context(job=kind, job_id=job_id):
            log.info("%s job started", kind)
            try:
                jobs.handler(kind)(Tick.from_dict(data), default_context())
            except Exception as exc:
                log.error("%s job failed: %s: %s", kind, type(exc).__name__, exc, exc_info=exc)
                raise
            outcome = "succeeded"
            log.info("%s job succeeded", kind)
    finally:
        elapsed = time.perf_counter() - started
        metrics.JOBS.labels(kind, outcome).inc()
        metrics.JOB_SECONDS.labels(kind, outcome).observe(elapsed)


def _register(kind: JobKind) -> Any:
    """The Celery task of ``kind``: a periodic kind runs ticks, every other kind events."""
    body = run_tick if scheduled(kind) else run_job

    def task(self: Task, data: dict[str, Any]) -> None:
        body(kind, self.request.id, data)

    task.__name__ = task.__qualname__ = kind.replace("-", "_")
    return app.task(name=TASK_NAMES[kind], bind=True, base=JobTask)(task)


#: One task per job kind in the table (:data:`mergeway.jobs.kinds.KINDS`), by kind.
TASKS: dict[JobKind, Any] = {kind: _register(kind) for kind in KINDS}
preview, deploy, rollback, help_ = (TASKS[kind] for kind in ("preview", "deploy", "rollback", "help"))
