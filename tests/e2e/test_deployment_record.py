"""The deployment record and the cluster's truth, after deploys through the real chain.

Merge in the forge simulator → webhook → worker → local cluster; then read the record the worker
wrote (:mod:`mergeway.deployments`), print it with ``mergeway status``, and read the ApplySet parent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client as k8s

from mergeway.deployments import Deployment, Deployments
from mergeway.jobs.applysets import applyset_for, owner_identity
from mergeway.kube.applyset import COMMIT_ANNOTATION, HEALTHY_ANNOTATION
from mergeway.repoconfig import Environment
from tests.fixtures.cluster import SIMULATE_ANNOTATION
from tests.fixtures.e2e import Stack, StackFactory
from tests.fixtures.services import ROOT

pytestmark = pytest.mark.cluster
DEPLOY = "mergeway/deploy/staging"


def checkout(version: int, simulate: str = "") -> str:
    """A small Deployment at ``version``; ``simulate`` makes its new pods fail (tools/cluster/README.md)."""
    template: dict[str, Any] = {"labels": {"app": "checkout"}}
    if simulate:
        template["annotations"] = {SIMULATE_ANNOTATION: simulate}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout"},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 8,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": template,
                "spec": {"containers": [{"name": "app", "image": f"example.com/checkout:{version}"}]},
            },
        },
    }
    return yaml.safe_dump(deployment)


def merged(stack: Stack, repo: Any, branch: str, files: dict[str, str | None]) -> tuple[int, str]:
    pr = stack.sim.open_pr(repo, branch, files=files)
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return pr.number, sha


def final_record(stack: Stack, store: Deployments, repository: str, sha: str) -> Deployment:
    """The record of ``sha`` once it reached a final phase (the status is written right after it)."""

    def final() -> Deployment | None:
        record = store.get(repository, "staging", sha)
        return record if record is not None and record.phase in ("healthy", "failed", "superseded") else None

    return stack.wait(final, message=f"a final deployment record for {sha[:12]}", timeout=120)


def test_a_deploy_records_its_phases_and_mergeway_status_prints_them(stack: Stack, redis_client: redis.Redis):
    repo = stack.repo()
    number, sha = merged(stack, repo, "checkout", {"deploy/checkout.yaml": checkout(1)})
    assert stack.status(repo, sha, DEPLOY).state == "success"
    repository = owner_identity(stack.sim.repository(repo))
    record = final_record(stack, Deployments(redis_client), repository, sha)

    assert [e.phase for e in record.phases] == ["queued", "applying", "applied", "healthy"]
    times = [e.at for e in record.phases]
    assert times == sorted(times) and times[0] > 0
    assert (record.pr, record.applied_commit, record.healthy_commit) == (number, sha, sha)
    assert record.counts.applied == 1 and record.failures == ()
    assert Deployments(redis_client).environments() == [(repository, "staging")]

    out = subprocess.run(
        [
            *(sys.executable, "-m", "mergeway.cli", "status", "--history", "1"),
            *("--repository", repo.full_name, "--environment", "staging"),
        ],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": stack.env["REDIS_URL"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # The page's row: the deployed commit, PR and who merged it, where, the PR's title; then the record.
    assert lines[0].startswith(f"{repository} staging {sha[:7]} #{number} merged by ") and lines[0].endswith(
        ": healthy"
    )
    assert lines[1].split() == ["where:", f"local/{stack.namespace}"]
    assert lines[2].startswith("  title:     ") and lines[2].strip() != "title:"
    phases = lines[
        lines.index(f"  {repository} staging {sha[:12]} #{number} merged by {record.merged_by}: healthy") + 1 :
    ][:4]
    assert [line.split()[1] for line in phases] == ["queued", "applying", "applied", "healthy"]
    assert all(line.split()[0].endswith("Z") for line in phases)


def test_a_failed_rollout_leaves_the_previous_healthy_commit_on_the_applyset_parent(
    make_stack: StackFactory, redis_client: redis.Redis
):
    stack = make_stack(MERGEWAY_HEALTH_TIMEOUT_SECONDS="30")
    repo = stack.repo()
    _, good = merged(stack, repo, "v1", {"deploy/checkout.yaml": checkout(1)})
    assert stack.status(repo, good, DEPLOY).state == "success"
    _, bad = merged(stack, repo, "v2", {"deploy/checkout.yaml": checkout(2, simulate="crash")})
    assert stack.status(repo, bad, DEPLOY, timeout=120).state == "failure"

    applyset = applyset_for(stack.sim.repository(repo), Environment("staging", "deploy", "local", stack.namespace))
    core = k8s.CoreV1Api(stack.cluster.api_client())
    annotations = core.read_namespaced_config_map(applyset.name, applyset.namespace).metadata.annotations
    assert annotations[COMMIT_ANNOTATION] == bad  # applied
    assert annotations[HEALTHY_ANNOTATION] == good  # but the last healthy one is still the first

    record = final_record(stack, Deployments(redis_client), owner_identity(stack.sim.repository(repo)), bad)
    assert [e.phase for e in record.phases] == ["queued", "applying", "applied", "failed"]
    assert record.applied_commit == bad and record.healthy_commit == ""
    assert any(f.object == f"Deployment/{stack.namespace}/checkout" for f in record.failures), record.failures
