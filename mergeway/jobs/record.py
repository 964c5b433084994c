"""The deploy job's side of the deployment record (:mod:`mergeway.deployments`): one call per phase.

Writing the record is bookkeeping, never part of the deploy: a failure to write it (Redis down,
say) is logged and the deploy goes on. What a phase records is derived here from what the deploy
already knows (its report and the engine's result), so :mod:`mergeway.jobs.deploy` only says
*when* a phase begins.
"""

from __future__ import annotations

import logging
from typing import Any

from mergeway.deployments import Counts, Deployments, Failure, Phase
from mergeway.events import PullRequestMerged
from mergeway.jobs.applysets import owner_identity
from mergeway.jobs.context import JobContext
from mergeway.kube.apply import DeployResult
from mergeway.report import deploy as texts
from mergeway.report.deploy import Applied, DeployReport, applied_of

log = logging.getLogger("mergeway.jobs.record")


class Recorder:
    """Writes the records of one merge's deploys (every environment it deploys)."""

    def __init__(self, ctx: JobContext, event: PullRequestMerged) -> None:
        self.store = Deployments(ctx.redis) if ctx.redis is not None else None
        self.event = event
        self.repository = owner_identity(event.repo)

    def phase(self, environment: str, commit: str, phase: Phase, *, reason: str = "", **changes: Any) -> None:
        """Enter ``phase`` on (``environment``, ``commit``)'s record; best effort."""
        if self.store is None or not commit:
            return
        try:
            self.store.advance(
                self.repository,
                environment,
                commit,
                phase,
                reason=reason,
                pr=self.event.pr.number,
                **({"merged_by": self.event.merged_by} if self.event.merged_by else {}),  # kept on a re-run
                title=self.event.pr.title,
                repository_url=self.event.repo.web_url,
                **changes,
            )
        except Exception as exc:  # the record is bookkeeping: it never fails a deploy
            log.warning("could not record %s %s of %s: %s", environment, phase, commit[:12], type(exc).__name__)

    def _still(self, environment: str, commit: str, phase: Phase, reason: str) -> bool:
        """Whether the record is already in ``phase`` for ``reason`` (``False`` when it cannot be read)."""
        try:
            record = self.store.get(self.repository, environment, commit) if self.store is not None else None
        except Exception:  # bookkeeping: write the phase again rather than fail
            return False
        return record is not None and record.phase == phase and record.reason == reason

    def applied(self, environment: str, commit: str, result: DeployResult) -> None:
        """Everything is applied and pruned; the rollout wait begins."""
        self.phase(environment, commit, "applied", counts=counts(result))

    def outcome(self, report: DeployReport) -> None:
        """The deploy of ``report.environment`` ended: superseded, failed or healthy (and maybe held)."""
        env, commit = report.environment, report.merge_sha
        applied = report.applied
        extra: dict[str, Any] = {"counts": counts_of(applied)} if applied is not None else {}
        if report.state == "waiting":  # a gate holds it (mergeway.jobs.waiting): not an outcome yet
            if not self._still(env, commit, "held", report.waiting):  # waiting again for the same reason
                self.phase(env, commit, "held", reason=report.waiting)
        elif report.state == "superseded":
            self.phase(env, commit, "superseded", reason=texts.superseded_reason(report.deployed_sha))
        elif report.state != "success":
            reason = (report.failures[0] if report.failures else report.error).split("\n", 1)[0]
            self.phase(env, commit, "failed", reason=reason, failures=failures_of(applied), **extra)
        else:
            self.phase(env, commit, "healthy", healthy_commit=report.deployed_sha, **extra)
            if report.held:
                self.phase(env, commit, "held", reason=texts.held_reason(len(report.held)))


def counts(result: DeployResult) -> Counts:
    """What the engine did so far, as the record counts it (the rollout wait is about to begin)."""
    return counts_of(applied_of(result))


def counts_of(applied: Applied | None) -> Counts:
    if applied is None:
        return Counts()
    return Counts(
        applied.count("added") + applied.count("changed"), applied.count("pruned"), applied.count("unchanged")
    )


def failures_of(applied: Applied | None) -> tuple[Failure, ...]:
    """Each failed object and its reason: rejected by the dry run, by the apply, or not healthy."""
    if applied is None:
        return ()
    return tuple(Failure(ref, reason) for ref, reason in applied.problems)
