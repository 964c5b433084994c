"""Rows of the environments page: one per (repository, environment), built from the deployment records.

The page, its JSON twin and ``mergeway status`` all show these rows, so they agree on what
"deployed", "failed" or "in flight" means. Everything here is read-only and defensive: a record or
drift result written by an older or newer release, or half-written, yields a row with less in it,
never an error page. Every text that came from a pull request or a cluster (titles, reasons) goes
through :func:`mergeway.redaction.redact` once more, so a token that slipped into a reason is
masked here too.
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

import redis

from mergeway.deployments import FINAL, Deployment, Deployments
from mergeway.redaction import redact

#: Records shown on an environment's own page.
ENVIRONMENT_HISTORY = 20
#: Records read per environment for its row: enough for the last ended deploy behind a few in flight
#: (parsing records is most of the index's cost: 200 environments, 10 records each, took ~190 ms).
ROW_HISTORY = 6
#: Failed objects listed per row.
FAILURES_SHOWN = 5
#: Phases of a deploy that has not ended: waiting for its lock, or applying and waiting for the rollout.
IN_FLIGHT = frozenset({"queued", "applying", "applied"})
#: Characters of a commit shown (the link carries the whole one).
SHORT_SHA = 7


def drift_key(repository: str, environment: str) -> str:
    """Where the drift check stores its last result (JSON with ``objects``, ``checked_at``, ``error``).

    Read as plain JSON rather than through the drift module's own classes, so a result written by
    another release (or half-written) never breaks the page: whatever does not fit shows nothing.
    """
    return f"mergeway:drift:last:{repository}:{environment}"


class Drift(NamedTuple):
    """The last drift check of an environment: how many objects differ from the applied commit, and when.

    ``error`` says why the check could not compare (then ``objects`` means nothing).
    """

    objects: int
    checked_at: float
    error: str = ""


def waiting(record: Deployment) -> bool:
    """Whether ``record``'s deploy has not ended: queued, applying, or held before it ever ran.

    ``held`` after ``healthy`` is an ended deploy whose destructive changes wait; ``held`` before
    anything was applied (a lock, a freeze window, an environment it must follow) is a deploy
    still waiting to run.
    """
    if record.phase in IN_FLIGHT:
        return True
    return record.phase == "held" and record.began("applying") is None and record.began("healthy") is None


class Pending(NamedTuple):
    """A deploy of the environment that has not ended: queued, held before it ran, or applying."""

    commit: str
    pr: int
    phase: str
    since: float
    reason: str = ""


class Row(NamedTuple):
    """What the page shows of one (repository, environment)."""

    repository: str
    environment: str
    cluster: str
    namespace: str
    #: The commit the environment runs (healthy, else applied, else merged) and its forge page.
    commit: str
    commit_url: str
    pr: int
    pr_title: str
    pr_url: str
    merged_by: str
    #: healthy / failed / held / applying / queued / superseded (the shown record's current phase).
    phase: str
    reason: str
    #: When the shown phase began (Unix seconds).
    since: float
    failures: tuple[tuple[str, str], ...]
    drift: Drift | None
    pending: tuple[Pending, ...]

    @property
    def short(self) -> str:
        return self.commit[:SHORT_SHA]

    def to_dict(self) -> dict[str, Any]:
        """The JSON twin's shape (times as ISO 8601 UTC)."""
        return {
            "repository": self.repository,
            "environment": self.environment,
            "cluster": self.cluster,
            "namespace": self.namespace,
            "commit": self.commit,
            "commit_url": self.commit_url,
            "pr": self.pr or None,
            "pr_title": self.pr_title,
            "pr_url": self.pr_url,
            "merged_by": self.merged_by,
            "phase": self.phase,
            "reason": self.reason,
            "since": iso(self.since),
            "failures": [{"object": o, "reason": r} for o, r in self.failures],
            "drift": None
            if self.drift is None
            else {
                "objects": self.drift.objects,
                "checked_at": iso(self.drift.checked_at),
                "error": self.drift.error,
            },
            "pending": [
                {"commit": p.commit, "pr": p.pr or None, "phase": p.phase, "since": iso(p.since), "reason": p.reason}
                for p in self.pending
            ],
        }


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at else ""


def _web(url: str) -> str:
    """``url`` if it is an http(s) address, else ``""`` (a link never runs script, whatever was stored)."""
    return url.rstrip("/") if url.startswith(("https://", "http://")) and '"' not in url else ""


def commit_url(repository: str, repository_url: str, commit: str) -> str:
    """The forge's page of ``commit`` (GitLab puts ``/-/`` before it), or ``""`` without a known address."""
    base = _web(repository_url)
    if not base or not commit:
        return ""
    return f"{base}/-/commit/{commit}" if repository.startswith("gitlab:") else f"{base}/commit/{commit}"


def pr_url(repository: str, repository_url: str, number: int) -> str:
    base = _web(repository_url)
    if not base or not number:
        return ""
    return f"{base}/-/merge_requests/{number}" if repository.startswith("gitlab:") else f"{base}/pull/{number}"


def shown(history: list[Deployment]) -> Deployment | None:
    """The record the row is about: the newest that ended (a superseded one only when nothing else did).

    A superseded deploy changed nothing (a newer commit was already applied), so the environment
    runs what the newest other ended record says; a deploy still in flight is listed as pending.
    """
    ended = [r for r in history if not waiting(r)]
    for record in ended:
        if record.phase != "superseded":
            return record
    return ended[0] if ended else (history[0] if history else None)


def label(record: Deployment) -> str:
    """The phase a person reads: ``applied`` (the rollout wait) is still applying."""
    phase = record.phase or "unknown"
    return "applying" if phase == "applied" else phase


def row(repository: str, environment: str, history: list[Deployment], drift: Drift | None) -> Row | None:
    """The row of one environment from its records, newest first (``None`` without any)."""
    record = shown(history)
    if record is None:
        return None
    commit = record.healthy_commit or record.applied_commit or record.commit
    pending = tuple(
        Pending(r.commit, r.pr, label(r), r.phases[-1].at if r.phases else 0.0, redact(r.reason))
        for r in history
        if waiting(r) and r is not record
    )
    where = next((r for r in history if r.cluster), record)  # older records may predate the field
    return Row(
        repository=repository,
        environment=environment,
        cluster=where.cluster,
        namespace=where.namespace,
        commit=commit,
        commit_url=commit_url(repository, record.repository_url, commit),
        pr=record.pr,
        pr_title=redact(record.title),
        pr_url=pr_url(repository, record.repository_url, record.pr),
        merged_by=record.merged_by,
        phase=label(record),
        reason=redact(record.reason),
        since=record.phases[-1].at if record.phases else 0.0,
        failures=tuple(
            (redact(f.object), redact(f.reason))
            for f in record.failures[:FAILURES_SHOWN]
            if f"{f.object}: {f.reason}" != record.reason  # already the row's reason
        ),
        drift=drift,
        pending=pending,
    )


def read_drift(client: redis.Redis, repository: str, environment: str) -> Drift | None:
    """The last drift result, or ``None`` when there is none or it cannot be read as expected."""
    try:
        return drift_of(client.get(drift_key(repository, environment)))
    except redis.ResponseError:
        return None


def drift_of(raw: bytes | str | None) -> Drift | None:
    """A stored drift result as the page shows it; ``None`` when absent or not as expected."""
    try:
        data = json.loads(raw) if raw else None
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
            return None
        return Drift(len(data["objects"]), float(data.get("checked_at") or 0.0), redact(str(data.get("error") or "")))
    except (ValueError, TypeError):
        return None


def _matches(repository: str, environment: str, want_repo: str, want_env: str) -> bool:
    """``want_repo`` as ``forge:owner/name`` or ``owner/name``; empty filters match everything."""
    repo_ok = not want_repo or want_repo.lower() in (repository.lower(), repository.partition(":")[2].lower())
    return repo_ok and (not want_env or want_env == environment)


class Board:
    """The page's reads from Redis: every row, or one environment's row and history."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.store = Deployments(client)

    def rows(self, repository: str = "", environment: str = "", *, history: int = ROW_HISTORY) -> list[Row]:
        """A row per known environment (filtered), sorted by repository then environment.

        ``history`` records are read per environment to find the last ended one and those in flight,
        all in four round trips to Redis however many environments there are.
        """
        pairs = [(r, e) for r, e in self.store.environments() if _matches(r, e, repository, environment)]
        if not pairs:
            return []
        drifts = self.redis.mget([drift_key(r, e) for r, e in pairs])
        histories = self.store.histories(pairs, limit=history)
        found = (row(r, e, h, drift_of(d)) for (r, e), h, d in zip(pairs, histories, drifts, strict=True))
        return [r for r in found if r is not None]

    def environment(self, repository: str, environment: str) -> tuple[Row, list[Deployment]] | None:
        """One environment's row and its last :data:`ENVIRONMENT_HISTORY` records, newest first."""
        if (repository, environment) not in self.store.environments():
            return None
        history = self.store.history(repository, environment, limit=ENVIRONMENT_HISTORY)
        found = row(repository, environment, history, read_drift(self.redis, repository, environment))
        return None if found is None else (found, history)


def record_dict(record: Deployment) -> dict[str, Any]:
    """One record of an environment's history for the JSON twin (texts redacted, times ISO 8601)."""
    return {
        "commit": record.commit,
        "commit_url": commit_url(record.repository, record.repository_url, record.commit),
        "pr": record.pr or None,
        "pr_title": redact(record.title),
        "pr_url": pr_url(record.repository, record.repository_url, record.pr),
        "merged_by": record.merged_by,
        "phase": label(record),
        "reason": redact(record.reason),
        "phases": [{"phase": e.phase, "at": iso(e.at), "reason": redact(e.reason)} for e in record.phases],
        "failures": [{"object": redact(f.object), "reason": redact(f.reason)} for f in record.failures],
        "final": record.phase in FINAL,
    }
