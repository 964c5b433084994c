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
pending are recorded as it sets them (:class:`StatusTracker`), because a crashed job cannot say.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, cast

import redis

from mergeway.events import Event
from mergeway.forge.base import Forge
from mergeway.report.markdown import marker, status_kind, status_name

log = logging.getLogger("mergeway.jobs")

#: How long per-job bookkeeping is kept (a job is redelivered within minutes; a week is plenty).
KEY_TTL = 7 * 24 * 3600
#: Status contexts whose environment has a sticky comment of the same kind.
_COMMENTED_KINDS = ("preview", "deploy")


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


class _Current:
    """The job this process is running (prefork: one at a time), shared with the job's threads."""

    lock = threading.Lock()
    job_id: str | None = None


def set_current_job(job_id: str | None) -> None:
    with _Current.lock:
        _Current.job_id = job_id


def current_job() -> str | None:
    with _Current.lock:
        return _Current.job_id


class StatusTracker:
    """A forge wrapper that records, per running job, which commit statuses are left ``pending``."""

    def __init__(self, forge: Forge, client: redis.Redis) -> None:
        self._forge = forge
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._forge, name)

    def set_status(self, sha: str, state: str, context: str, description: str = "", target_url: str = "") -> None:
        self._forge.set_status(sha, state, context, description, target_url)  # type: ignore[arg-type]
        job_id = current_job()
        if job_id is None:
            return
        field = f"{sha}\n{context}"
        try:
            if state == "pending":
                pipe = self._client.pipeline()
                pipe.hset(pending_key(job_id), field, "1")
                pipe.expire(pending_key(job_id), KEY_TTL)
                pipe.execute()
            else:
                self._client.hdel(pending_key(job_id), field)
        except redis.RedisError:
            log.warning("could not record the %s status of job %s", context, job_id)


def tracking(factory: Callable[[Any], Forge], client: redis.Redis) -> Callable[[Any], Forge]:
    """Wrap a forge factory so its forges record pending statuses (see :class:`StatusTracker`)."""
    return lambda repo: cast(Forge, StatusTracker(factory(repo), client))


def _fallback_sha(event: Event) -> str:
    pr = getattr(event, "pr", None)
    if pr is None:
        return ""
    return str(getattr(pr, "merge_commit_sha", "") or pr.head_sha)


def report_unfinished(forge: Forge, client: redis.Redis, kind: str, event: Event, job_id: str, why: str) -> None:
    """Tell the pull request that the ``kind`` job ``job_id`` ended without its outcome, and why.

    ``why`` is Mergeway's own sentence (never an exception message, which could quote anything).
    """
    pr = getattr(event, "pr", None)
    if pr is None:
        return
    raw: dict[bytes, bytes] = client.hgetall(pending_key(job_id))  # type: ignore[assignment]
    pending = sorted({(sha, context) for sha, _, context in (k.decode().partition("\n") for k in raw)})
    description = f"Not finished: {why}"
    body = (
        f"⚠️ **Mergeway could not finish this {kind}**: {why}.\n\n"
        f"Job `{job_id}`: an operator finds the details in the worker logs under this id. "
        + (
            "Push a new commit or comment `/preview` to try again."
            if kind == "preview"
            else "Fix the cause, then merge a new change (or redeploy by hand with `mergeway apply`)."
        )
    )
    # Comments first, statuses last (as the jobs themselves do): once a status is final, its
    # comment already says why.
    commented = False
    for _, context in pending:
        ckind, env = status_kind(context)
        if ckind in _COMMENTED_KINDS and env:
            forge.upsert_comment(pr.number, marker(ckind, env), f"{marker(ckind, env)}\n{body}")
            commented = True
    if not commented:
        forge.upsert_comment(pr.number, marker(kind, "job"), f"{marker(kind, 'job')}\n{body}")
    for sha, context in pending:
        forge.set_status(sha, "error", context, description)
    if not pending and (sha := _fallback_sha(event)):
        forge.set_status(sha, "error", status_name(kind), description)
    client.delete(pending_key(job_id))
