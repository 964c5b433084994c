"""A forge that refuses the deploy's comment: the deploy still happens, and nothing is lost silently."""

from __future__ import annotations

import pytest
import redis

from mergeway.deployments import Deployments
from mergeway.jobs.applysets import owner_identity
from tests.fixtures.e2e import Stack

pytestmark = pytest.mark.cluster
DEPLOY = "mergeway/deploy/staging"
MARKER = "<!-- mergeway:deploy:staging -->"
CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n"


def test_a_deploy_whose_comment_cannot_be_written_still_succeeds_sets_its_status_and_says_so(
    stack: Stack, redis_client: redis.Redis
) -> None:
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "settings", files={"deploy/settings.yaml": CONFIG_MAP})
    stack.status(repo, pr.head_sha, "mergeway/preview/staging")  # the preview is done before the forge breaks
    # Every comment write on the pull request fails (422 is not retried by the forge client).
    stack.sim.inject("github", status=422, method="POST", path=r"/issues/\d+/comments$", times=1000)
    stack.sim.inject("github", status=422, method="PATCH", path=r"/issues/comments/\d+$", times=1000)
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha

    # The job ends as a success: the cluster has the commit, whatever the forge said.
    ended = stack.wait(
        lambda: next((w for w in ("deploy job succeeded", "deploy job failed") if w in stack.logs()), None),
        message="the deploy job to end",
        timeout=120,
    )
    assert ended == "deploy job succeeded", stack.log_tails()
    status = stack.status(repo, sha, DEPLOY)
    assert status.state == "success" and "1 added" in status.description, status.description
    assert stack.marked(repo, pr.number, MARKER) == []
    record = Deployments(redis_client).get(owner_identity(stack.sim.repository(repo)), "staging", sha)
    assert record is not None and record.phase == "healthy"
    # Not silently: the lost comment is logged as an error naming the environment and the outcome.
    assert "could not publish the success of the deploy to staging" in stack.logs()
