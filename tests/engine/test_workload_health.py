"""A deploy's health wait against the real local cluster, for the workload kinds beyond Deployments:
a Job is waited for until it completes and fails the deploy with its own reason when it fails;
CronJobs, StatefulSets and DaemonSets deploy healthy, also after updates (a partitioned StatefulSet,
an OnDelete DaemonSet) that by design leave some pods on the old template."""

from __future__ import annotations

from typing import Any

import pytest

from mergeway.kube.apply import Applier, DeployResult
from mergeway.kube.applyset import ApplySet
from mergeway.kube.client import KubeClient
from mergeway.render.manifests import Manifest
from tests.fixtures.workloads import cronjob, daemonset, job, statefulset

pytestmark = pytest.mark.cluster


@pytest.fixture
def client(kube_cluster) -> KubeClient:
    return KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))


def deploy(client: KubeClient, namespace: str, *objects: dict[str, Any], timeout: float = 120) -> DeployResult:
    manifests = [Manifest(obj, f"{obj['metadata']['name']}.yaml") for obj in objects]
    return Applier(client).deploy(
        manifests, applyset=ApplySet("workloads", namespace), default_namespace=namespace, health_timeout=timeout
    )


def test_a_job_that_completes_deploys_healthy_with_its_neighbours(client: KubeClient, namespace: str) -> None:
    result = deploy(client, namespace, job("migrate"), cronjob("nightly"), statefulset("db"), daemonset("agent"))
    assert result.ok, result.health
    health = result.health
    assert health[f"Job/{namespace}/migrate"].message == "job complete (1 succeeded)"
    assert health[f"CronJob/{namespace}/nightly"].state == "current"
    assert health[f"StatefulSet/{namespace}/db"].state == "current"
    assert health[f"DaemonSet/{namespace}/agent"].state == "current"
    live = client.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/migrate")
    assert live["status"]["succeeded"] == 1


def test_partitioned_and_on_delete_updates_are_healthy_once_what_they_update_is_ready(
    client: KubeClient, namespace: str
) -> None:
    # Updates that by design leave some pods on the old template: the deploy must not wait for those.
    before = statefulset("db", partition=1), daemonset("agent", strategy="OnDelete")
    assert deploy(client, namespace, *before).ok
    after = statefulset("db", partition=1, image="x/db:2"), daemonset("agent", strategy="OnDelete", image="x/a:2")
    result = deploy(client, namespace, *after)
    assert result.ok, result.health
    sts = client.request("GET", f"/apis/apps/v1/namespaces/{namespace}/statefulsets/db")["status"]
    assert sts["updatedReplicas"] == 1 and sts["readyReplicas"] == 2, sts  # db-1 updated, db-0 kept
    ds = client.request("GET", f"/apis/apps/v1/namespaces/{namespace}/daemonsets/agent")["status"]
    assert ds["numberReady"] == ds["desiredNumberScheduled"] > 0, ds


def test_a_failing_job_fails_the_deploy_with_the_jobs_reason(client: KubeClient, namespace: str) -> None:
    # A timeout far beyond the test's own: only stopping as soon as the Job reports its failure
    # lets this test finish at all (no duration is asserted).
    result = deploy(client, namespace, job("migrate", fail=True), cronjob("nightly"), timeout=3600)
    assert not result.ok
    assert list(result.unhealthy) == [f"Job/{namespace}/migrate"]
    health = result.unhealthy[f"Job/{namespace}/migrate"]
    assert health.state == "failed"
    assert health.message.startswith("job failed (BackoffLimitExceeded)"), health
