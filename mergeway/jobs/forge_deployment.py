"""The deploy job's side of the forge's own deployments (GitHub Deployments, GitLab deployments).

Fed at the phases the deployment record follows (:mod:`mergeway.jobs.record`): ``queued`` before
the environment lock, ``in_progress`` when the apply begins, then the outcome. What each phase says
is :mod:`mergeway.report.forge_deployment`'s; the forge calls are the publisher's (retried, and a
failure never fails the deploy). So :mod:`mergeway.jobs.deploy` only says *when*.
"""

from __future__ import annotations

from mergeway.events import PullRequestMerged
from mergeway.forge.base import DeploymentUpdate
from mergeway.repoconfig import Environment
from mergeway.report.deploy import DeployReport
from mergeway.report.forge_deployment import update_for
from mergeway.report.publish import Publisher


class ForgeDeployment:
    """The forge deployments of one merge's deploys (one per environment it deploys)."""

    def __init__(self, event: PullRequestMerged, out: Publisher) -> None:
        self.out = out
        self.ref = event.pr.base_ref
        self.pr = event.pr.number
        #: Each environment's ``url:`` as the merge configured it.
        self.urls: dict[str, str] = {}

    def configure(self, env: Environment) -> None:
        self.urls[env.name] = env.url

    def progress(self, report: DeployReport) -> None:
        """``queued`` or ``in_progress``: best effort (the outcome is retried)."""
        self.out.deployment_progress(self._update(report))

    def outcome(self, report: DeployReport) -> None:
        """The final state: after the deploy comment, whose URL is the deployment's log."""
        self.out.deployment_outcome(self._update(report))

    def _update(self, report: DeployReport) -> DeploymentUpdate:
        return update_for(report, ref=self.ref, pr=self.pr, environment_url=self.urls.get(report.environment, ""))
