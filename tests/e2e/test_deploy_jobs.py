"""Deploys holding a Job, through the whole chain (forge simulator → webhook → worker → local
cluster): a merge whose environment runs a one-off Job deploys green once the Job completes; a Job
that fails fails the deploy, and the PR comment gives the Job's own reason."""

from __future__ import annotations

import pytest
import yaml

from tests.fixtures.e2e import Stack
from tests.fixtures.workloads import job
from tools.forgesim import SimPR, SimRepo

pytestmark = pytest.mark.cluster
DEPLOY = "mergeway/deploy/staging"
MARKER = "<!-- mergeway:deploy:staging -->"
SETTINGS = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"LOG": "info"}}


def merged(stack: Stack, files: dict[str, str | None]) -> tuple[SimRepo, SimPR, str]:
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "migrate", files=files, title="Add the migration")
    stack.sim.merge(repo, pr, method="merge")
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return repo, pr, sha


def test_a_merge_with_a_job_that_completes_deploys_green(stack: Stack) -> None:
    files = {"deploy/migrate.yaml": yaml.safe_dump(job("migrate")), "deploy/settings.yaml": yaml.safe_dump(SETTINGS)}
    repo, pr, sha = merged(stack, files)
    status = stack.status(repo, sha, DEPLOY)
    assert status.state == "success", status.description
    assert "2 added" in status.description
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "✅ Deployed" in body, body


def test_a_merge_with_a_job_that_fails_fails_the_deploy_with_the_jobs_reason(stack: Stack) -> None:
    repo, pr, sha = merged(stack, {"deploy/migrate.yaml": yaml.safe_dump(job("migrate", fail=True))})
    status = stack.status(repo, sha, DEPLOY)
    assert status.state == "failure"
    assert f"Job/{stack.namespace}/migrate" in status.description, status.description
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "❌ Deploy failed" in body, body
    assert f"Job/{stack.namespace}/migrate" in body and "job failed (BackoffLimitExceeded)" in body, body
    assert "timed out" not in body, body
