"""A lost worker host, and long deploys on live workers: leases, not an hour of "applying"."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s

from mergeway.jobs.applysets import applyset_for
from mergeway.kube.applyset import COMMIT_ANNOTATION
from mergeway.repoconfig import Environment
from tests.faults.conftest import (
    DEPLOY,
    DEPLOY_MARKER,
    PREVIEW,
    PREVIEW_MARKER,
    Chain,
    config_map,
    job_records,
    slow_deployment,
)
from tests.fixtures.waiting import absent_as_none, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.cluster]


def applied_commit(chain: Chain, repo) -> str:
    env = Environment("staging", "deploy", "local", chain.namespace)
    applyset = applyset_for(chain.sim.repository(repo), env)
    core = k8s.CoreV1Api(chain.cluster.api_client())
    parent = core.read_namespaced_config_map(applyset.name, chain.namespace)
    return str((parent.metadata.annotations or {}).get(COMMIT_ANNOTATION, ""))


def test_deploy_survives_the_loss_of_its_worker_host(chain_factory, record_property):
    # The default lease (60 s); a rollout that takes a minute, longer than the deploy runs before the kill.
    chain = chain_factory(workers=1, MERGEWAY_HEALTH_TIMEOUT_SECONDS="240")
    repo = chain.repo()
    pr = chain.sim.open_pr(repo, "slow", files={"deploy/slow.yaml": slow_deployment("slow", "60s")})
    assert chain.status(repo, pr.head_sha, PREVIEW).state == "success"
    chain.sim.merge(repo, pr)
    sha = chain.sim.pr(repo, pr.number).merge_commit_sha
    apps = k8s.AppsV1Api(chain.cluster.api_client())
    # The deploy has applied and is waiting for the rollout ("applying" on the PR) ...
    wait_for(
        absent_as_none(lambda: apps.read_namespaced_deployment("slow", chain.namespace)),
        timeout=60,
        message="the apply",
    )
    wait_for(
        lambda: "applying" in chain.only_comment(repo, pr.number, DEPLOY_MARKER).body.lower(),
        timeout=30,
        message="the applying comment",
    )
    # ... when its host dies: main process and pool, all at once, no chance to give the job back.
    lost = chain.workers[0]
    chain.kill_host(lost)
    killed_at = time.monotonic()
    chain.worker("replacement")

    status = chain.status(repo, sha, DEPLOY, timeout=120)
    recovery = time.monotonic() - killed_at
    record_property("host_loss_recovery_seconds", round(recovery, 1))
    print(f"host loss: deploy reported {status.state} {recovery:.1f}s after the kill")
    assert status.state == "success", status.description
    assert "✅ Deployed" in chain.only_comment(repo, pr.number, DEPLOY_MARKER).body
    assert applied_commit(chain, repo) == sha
    dep = apps.read_namespaced_deployment("slow", chain.namespace)
    assert dep.status.available_replicas == 1
    # The replacement ran the job, once; the dead host's run never finished.
    starts = job_records(chain.workers, "deploy job started")
    assert [r["worker"] for r in starts] == [lost.name, chain.workers[-1].name]
    assert not job_records([lost], "deploy job succeeded")
    assert [s.state for s in chain.sim.list_statuses(repo, sha, DEPLOY)][-1] == "success"


def test_long_deploy_on_a_live_worker_is_never_handed_to_another(chain_factory):
    # A lease of 6 s and a rollout of 25 s: without renewal the idle second worker would take the
    # job over after 6 s and apply the environment while the first still deploys it.
    # A forge timeout longer than the hold below: the held preview's client waits for the answer.
    chain = chain_factory(
        workers=2,
        MERGEWAY_JOB_LEASE_SECONDS="6",
        MERGEWAY_HEALTH_TIMEOUT_SECONDS="120",
        MERGEWAY_FORGE_TIMEOUT_SECONDS="90",
    )
    repo = chain.repo()
    other = chain.repo({"deploy/cm.yaml": config_map("other", team="b")}, name="acme/other")
    # Two previews, one per worker (own cache directory, shared Redis), made so: the first preview is
    # held at its first forge request until the second has been previewed. A worker holds one job
    # at a time (prefetch 1, acks late), so only the other worker can have taken the second.
    held = chain.sim.inject(
        "github", method="GET", path=rf"/repos/{re.escape(repo.full_name)}/pulls/\d+$", times=1, hold=True
    )
    try:
        first = chain.sim.open_pr(repo, "slow", files={"deploy/slow.yaml": slow_deployment("slow", "25s")})
        wait_for(lambda: held.hits == 1, timeout=60, message="the first preview to be held on a worker")
        second = chain.sim.open_pr(other, "more", files={"deploy/cm2.yaml": config_map("more", team="b")})
        assert chain.status(other, second.head_sha, PREVIEW).state == "success"
    finally:
        held.release()
    prs = [first, second]
    for r, pr in zip([repo, other], prs, strict=True):
        assert chain.status(r, pr.head_sha, PREVIEW).state == "success"
        chain.only_comment(r, pr.number, PREVIEW_MARKER)
    used = [c for c in Path(chain.extra["tmp"]).glob("cache-host*") if any(c.rglob("*"))]
    assert len(used) == 2, f"both workers should have done a preview, caches used: {used}"

    chain.sim.merge(repo, prs[0])
    sha = chain.sim.pr(repo, prs[0].number).merge_commit_sha
    status = chain.status(repo, sha, DEPLOY, timeout=150)
    assert status.state == "success", status.description
    assert applied_commit(chain, repo) == sha
    starts = job_records(chain.workers, "deploy job started")
    assert len(starts) == 1, f"the deploy was started {len(starts)} times: {starts}"
    chain.only_comment(repo, prs[0].number, DEPLOY_MARKER)
