"""What the forge's own Environments view says about one deploy: its state and a short description.

A deploy's report (:class:`~mergeway.report.deploy.DeployReport`) becomes a
:class:`~mergeway.forge.base.DeploymentUpdate`, the same way it becomes a commit status: the words
are written here (no pull request text in jobs), the forge calls in the publisher.

Every deploy ends in a state that says how it ended, so none is left open (``queued`` or
``in_progress``) on the forge:

* ``success``: applied and healthy. The forge marks the environment's earlier deployments inactive.
* ``failure``: something was applied and the rollout or an apply failed; the description names it.
* ``error``: the deploy never reached the cluster (policy refusal, render error, lock), or it applied
  everything but destructive changes that wait for an allowance ("held"). A held deploy is not
  the environment's whole state, so it does not become the active deployment.
* ``inactive``: superseded: a newer commit that includes this merge is (or is being) deployed,
  whether another job deployed it or this one did (it found a newer head under the lock). Either
  way the newer merge's own deployment is the one that shows it, so a late success of an older
  merge never retires the newer one's.
"""

from __future__ import annotations

import dataclasses

from mergeway.forge.base import DeploymentState, DeploymentUpdate
from mergeway.report import deploy as texts
from mergeway.report.deploy import DeployReport
from mergeway.report.markdown import clip

#: GitHub documents 140 characters for a deployment status description.
LIMIT = 139


def update_for(report: DeployReport, *, ref: str, pr: int = 0, environment_url: str = "") -> DeploymentUpdate:
    """The forge deployment state of ``report`` (progress or outcome) on the merge commit."""
    state, description = _state(report)
    return DeploymentUpdate(
        environment=report.environment,
        sha=report.merge_sha,
        ref=ref,
        state=state,
        description=clip(description, LIMIT),
        environment_url=environment_url,
        pr=pr,
    )


def _state(report: DeployReport) -> tuple[DeploymentState, str]:
    _, description = report.status()
    if report.state == "queued":
        return "queued", "Queued: waiting for the environment lock"
    if report.state == "waiting":  # held at a gate (a lock, a freeze, an environment it follows)
        return "queued", description
    if report.state == "applying":
        return "in_progress", f"Applying {report.deployed_sha[:12] or report.merge_sha[:12]}"
    if report.state == "superseded":
        return "inactive", description
    newer = report.deployed_sha and report.deployed_sha != report.merge_sha
    if report.state == "success" and newer and not report.held:
        # The newest merge wins: its own deployment shows the commit running; this one is retired.
        return "inactive", f"Superseded by {report.deployed_sha[:12]}, which includes this merge (deployed)"
    if report.state == "failure":
        reached_cluster = report.applied is not None
        return ("failure" if reached_cluster else "error"), description
    if report.held:
        return "error", f"Held: {texts.held_reason(len(report.held))}; {_allow(report)}"
    return "success", description


def _allow(report: DeployReport) -> str:
    return f"/allow-destructive {report.environment} {report.pr_head[:12] or '<head commit>'}"


def duplicate(update: DeploymentUpdate, kept: int) -> DeploymentUpdate:
    """A deployment another job created for the same merge at the same time: closed, pointing at the one kept."""
    return dataclasses.replace(update, state="inactive", description=f"Duplicate of deployment {kept}")


def replaced(update: DeploymentUpdate, by: int) -> DeploymentUpdate:
    """The environment's previous successful deployment, once ``by`` succeeded (where the forge keeps it active)."""
    return dataclasses.replace(update, state="inactive", description=f"Replaced by deployment {by}", log_url="")
