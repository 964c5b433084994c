"""Jobs that end without reporting: counted, capped, and always told on the pull request.

A job can end without writing its own outcome in three ways: its pool process dies (the OOM killer,
a segfault in a renderer's library), it exceeds its time limit, or it raises something the job did
not expect. With ``acks_late`` + ``reject_on_worker_lost`` the first one is redelivered at once, so
a repository whose content kills the worker every time (a *poison message*) would be run forever.

So every start of a job is counted in Redis under its id (stable across redeliveries). A delivery
past ``MERGEWAY_JOB_MAX_ATTEMPTS`` is not run again: it is *given up*. In every case the pull
request is told: each commit status the job had left ``pending`` becomes ``error``, and the sticky
comment of that environment (``mergeway/preview/<env>`` → the preview comment, and so on) says what
happened, so the PR never shows "applying" for a job that will not finish. The statuses a job left
pending are recorded as it sets them (:class:`PendingStatuses`: the status journal the worker puts
in the job's context and the publisher calls), because a crashed job cannot say. The words are
:mod:`mergeway.report.unfinished`'s and the publisher (:mod:`mergeway.report.publish`) writes them.
"""

from __future__ import annotations

import logging

import redis

from mergeway.events import Event
from mergeway.forge.base import StatusState
from mergeway.report.publish import Publisher

log = logging.getLogger("mergeway.jobs")

#: How long per-job bookkeeping is kept (a job is redelivered within minutes; a week is plenty).
KEY_TTL = 7 * 24 * 3600


def attempts_key(job_id: str) -> str:
    return f"mergeway:job:{job_id}:attempts"


def pending_key(job_id: str) -> str:
    return f"mergeway:job:{job_id}:pending"


def count_attempt(client: redis.Redis, job_id: str) -> int:
    """Record that ``job_id`` starts (again) and return how many times it has started."""
    pipe = client.pipeline()
    pipe.incr(attempts_key(job_id))
    pipe.expire(attempts_key(job_id), KEY_TTL)
    count, _ = pipe.execute()
    return int(count)


class PendingStatuses:
    """The status journal of one job (see :data:`mergeway.report.publish.StatusJournal`): which are pending.

    Kept in Redis under the job's id, so the worker's main process can read it after the job's own
    process died. Bookkeeping only: a Redis failure is logged, and the job goes on.
    """

    def __init__(self, client: redis.Redis, job_id: str) -> None:
        self.client = client
        self.job_id = job_id

    def __call__(self, sha: str, state: StatusState, context: str) -> None:
        field = f"{sha}\n{context}"
        try:
            if state == "pending":
                pipe = self.client.pipeline()
                pipe.hset(pending_key(self.job_id), field, "1")
                pipe.expire(pending_key(self.job_id), KEY_TTL)
                pipe.execute()
            else:
                self.client.hdel(pending_key(self.job_id), field)
        except redis.RedisError:
            log.warning("could not record the %s status of job %s", context, self.job_id)


def _fallback_sha(event: Event) -> str:
    pr = getattr(event, "pr", None)
    if pr is None:
        return ""
    return str(getattr(pr, "merge_commit_sha", "") or pr.head_sha)


def report_unfinished(out: Publisher, client: redis.Redis, kind: str, event: Event, job_id: str, why: str) -> None:
    """Tell the pull request that the ``kind`` job ``job_id`` ended without its outcome, and why.

    ``why`` is Mergeway's own sentence (never an exception message, which could quote anything).
    """
    raw: dict[bytes, bytes] = client.hgetall(pending_key(job_id))  # type: ignore[assignment]
    pending = sorted({(sha, context) for sha, _, context in (k.decode().partition("\n") for k in raw)})
    if getattr(event, "pr", None) is None and not pending:
        return  # no pull request to tell, no status to correct (a merge queue group has statuses only)
    out.unfinished(kind, job_id, why, pending, _fallback_sha(event))
    client.delete(pending_key(job_id))
