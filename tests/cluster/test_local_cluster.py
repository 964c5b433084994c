"""The local cluster behaves like a real one for everything Mergeway relies on.

Workloads run on KWOK's simulated nodes: pods are scheduled by the real scheduler, owned by the real
controllers, and their status is written by KWOK instead of a kubelet. The annotation
``mergeway.test/simulate`` on a pod template makes KWOK simulate a broken app (see
tools/cluster/README.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fixtures.cluster import LAUNCHER, SIMULATE_ANNOTATION, KubeCluster, load_launcher
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def api(kube_cluster: KubeCluster) -> Any:
    api_client = kube_cluster.api_client()
    yield api_client
    api_client.close()


def deployment(
    name: str, replicas: int, *, annotations: dict[str, str] | None = None, progress_deadline: int | None = None
) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            progress_deadline_seconds=progress_deadline,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="nginx:1.27")]),
            ),
        ),
    )


def condition(obj: Any, kind: str) -> Any:
    return next((c for c in (obj.status.conditions or []) if c.type == kind), None)


def test_cluster_has_ready_simulated_nodes(api):
    nodes = client.CoreV1Api(api).list_node().items
    ready = [n.metadata.name for n in nodes if condition(n, "Ready") and condition(n, "Ready").status == "True"]
    assert len(ready) >= 2, f"expected at least 2 Ready nodes, got {ready}"
    assert all(n.metadata.annotations.get("kwok.x-k8s.io/node") == "fake" for n in nodes)


def test_deployment_becomes_available_with_running_pods(api, namespace):
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("web", 3))

    def available() -> Any:
        d = apps.read_namespaced_deployment("web", namespace)
        cond = condition(d, "Available")
        done = (
            cond is not None
            and cond.status == "True"
            and d.status.ready_replicas == 3
            and d.status.updated_replicas == 3
            and d.status.observed_generation == d.metadata.generation
        )
        return d if done else None

    d = wait_for(available, timeout=60, message="Deployment web to be Available with 3 ready replicas")
    assert d.status.available_replicas == 3

    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    node_names = {n.metadata.name for n in core.list_node().items}
    for pod in pods:
        assert pod.status.phase == "Running"
        assert pod.spec.node_name in node_names
        assert condition(pod, "Ready").status == "True"
        assert all(cs.ready and cs.state.running for cs in pod.status.container_statuses)
        assert pod.status.pod_ip


def test_crd_becomes_established_and_serves_custom_resources(api, namespace):
    ext, custom = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    group = f"{namespace}.mergeway.test"
    crd_name = f"widgets.{group}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                        }
                    },
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)
    try:

        def established() -> bool:
            got = ext.read_custom_resource_definition(crd_name)
            return any(c.type == "Established" and c.status == "True" for c in got.status.conditions or [])

        wait_for(established, timeout=30, message=f"CRD {crd_name} to be Established")
        widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
        created = custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", widget)
        assert created["metadata"]["uid"]
        fetched = custom.get_namespaced_custom_object(group, "v1", namespace, "widgets", "w1")
        assert fetched["spec"] == {"size": 3}
    finally:
        ext.delete_custom_resource_definition(crd_name)


def kubectl(cluster: KubeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cluster.kubectl, *args], env=cluster.env(), capture_output=True, text=True, timeout=60, check=False
    )


def test_kubectl_server_side_diff_and_apply(kube_cluster, api, namespace, tmp_path):
    def manifest(color: str) -> Path:
        path = tmp_path / f"manifest-{color}.yaml"
        docs = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": namespace},
                "data": {"color": color},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                    },
                },
            },
        ]
        path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
        return path

    blue, green = manifest("blue"), manifest("green")

    first = kubectl(kube_cluster, "diff", "--server-side", "-f", str(blue))
    assert first.returncode == 1, first.stderr  # 1 = differences found
    assert "+  color: blue" in first.stdout and "kind: Deployment" in first.stdout

    applied = kubectl(kube_cluster, "apply", "--server-side", "-f", str(blue))
    assert applied.returncode == 0, applied.stderr
    assert "configmap/settings serverside-applied" in applied.stdout

    cm = client.CoreV1Api(api).read_namespaced_config_map("settings", namespace)
    assert cm.data == {"color": "blue"}
    assert any(f.manager == "kubectl" and f.operation == "Apply" for f in cm.metadata.managed_fields)

    unchanged = kubectl(kube_cluster, "diff", "--server-side", "-f", str(blue))
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert unchanged.stdout == ""

    changed = kubectl(kube_cluster, "diff", "--server-side", "-f", str(green))
    assert changed.returncode == 1, changed.stderr
    assert "-  color: blue" in changed.stdout and "+  color: green" in changed.stdout


def progress_deadline_exceeded(apps: client.AppsV1Api, namespace: str, name: str) -> Any:
    def check() -> Any:
        d = apps.read_namespaced_deployment(name, namespace)
        cond = condition(d, "Progressing")
        return d if cond is not None and cond.reason == "ProgressDeadlineExceeded" else None

    return wait_for(check, timeout=90, interval=0.5, message=f"Deployment {name} to exceed its progress deadline")


@pytest.mark.parametrize("mode", ["not-ready", "crash"])
def test_simulated_bad_rollout_exceeds_progress_deadline(api, namespace, mode):
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(
        namespace, deployment("broken", 2, annotations={SIMULATE_ANNOTATION: mode}, progress_deadline=10)
    )

    d = progress_deadline_exceeded(apps, namespace, "broken")
    assert condition(d, "Progressing").status == "False"
    assert condition(d, "Available").status == "False"
    assert not d.status.ready_replicas

    pods = core.list_namespaced_pod(namespace, label_selector="app=broken").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"  # scheduled and "started", but never Ready
        assert condition(pod, "Ready").status == "False"
        status = pod.status.container_statuses[0]
        assert not status.ready
        if mode == "crash":
            assert status.state.waiting.reason == "CrashLoopBackOff"
            assert status.last_state.terminated.exit_code == 1
            assert status.restart_count >= 1
        else:
            assert status.state.running is not None


def test_bad_update_stalls_while_old_pods_keep_serving(api, namespace):
    """The deploy-job case: a good Deployment updated to a broken version stays Available but stalls."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("web", 2, progress_deadline=10))
    wait_for(
        lambda: apps.read_namespaced_deployment("web", namespace).status.ready_replicas == 2,
        timeout=60,
        message="the first version to be ready",
    )

    apps.patch_namespaced_deployment(
        "web", namespace, {"spec": {"template": {"metadata": {"annotations": {SIMULATE_ANNOTATION: "crash"}}}}}
    )

    d = progress_deadline_exceeded(apps, namespace, "web")
    assert condition(d, "Available").status == "True"  # the old ReplicaSet still serves
    assert d.status.ready_replicas == 2
    assert d.status.unavailable_replicas >= 1


def job(name: str, annotations: dict[str, str] | None = None) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(annotations=annotations),
                spec=client.V1PodSpec(
                    restart_policy="Never", containers=[client.V1Container(name="task", image="busybox:1.36")]
                ),
            ),
        ),
    )


def test_jobs_complete_or_fail_as_simulated(api, namespace):
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, job("ok"))
    batch.create_namespaced_job(namespace, job("broken", {SIMULATE_ANNOTATION: "fail"}))

    def finished(name: str, kind: str) -> Any:
        j = batch.read_namespaced_job(name, namespace)
        cond = condition(j, kind)
        return j if cond is not None and cond.status == "True" else None

    wait_for(lambda: finished("ok", "Complete"), timeout=60, message="Job ok to complete")
    failed = wait_for(lambda: finished("broken", "Failed"), timeout=60, message="Job broken to fail")
    assert condition(failed, "Failed").reason == "BackoffLimitExceeded"


def test_rbac_is_enforced(api, namespace):
    """A ServiceAccount with no bindings is authenticated but forbidden: RBAC is really on."""
    core = client.CoreV1Api(api)
    token = core.create_namespaced_service_account_token(
        "default",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=600
            )
        ),
    ).status.token
    config = client.Configuration()
    config.host = api.configuration.host
    config.ssl_ca_cert = api.configuration.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(config) as restricted, pytest.raises(ApiException) as denied:
        client.CoreV1Api(restricted).list_namespaced_pod(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:default" in denied.value.body


def test_up_again_is_a_no_op(kube_cluster):
    launcher = load_launcher()
    supervisor = launcher.supervisor_pid()
    result = subprocess.run(
        [sys.executable, str(LAUNCHER), "up"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"KUBECONFIG={kube_cluster.kubeconfig}"
    assert launcher.supervisor_pid() == supervisor


# Its waits add up past the suite's 300 s: a private cluster is started (up to 240 s on a loaded
# machine), then waited on to stop (60 s) after its owners are killed.
@pytest.mark.timeout(450)
def test_owned_cluster_stops_when_its_last_owner_is_killed(tmp_path):
    """A private cluster shared by two owners that die without cleaning up leaves nothing behind.

    This is what happens when a test session is killed (SIGKILL, CI timeout): no teardown runs, and
    the cluster's supervisor must notice by itself, but only once no other session still uses it.
    """
    launcher = load_launcher()
    state = tmp_path / "cluster"
    env = {**os.environ, "MERGEWAY_CLUSTER_DIR": str(state)}

    def up(owner: subprocess.Popen[bytes]) -> str:
        result = subprocess.run(
            [sys.executable, str(LAUNCHER), "up", "--owner-pid", str(owner.pid)],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    first, second = subprocess.Popen(["sleep", "600"]), subprocess.Popen(["sleep", "600"])
    try:
        assert up(first) == f"KUBECONFIG={state / 'kubeconfig'}"
        pids = [int((state / "pids" / name).read_text()) for name in launcher.COMPONENTS]
        pids.append(int((state / "supervisor.pid").read_text()))
        assert up(second) == f"KUBECONFIG={state / 'kubeconfig'}"  # joins, does not restart
        assert launcher.owners(state) == sorted([first.pid, second.pid])

        first.kill()
        first.wait(timeout=10)
        wait_for(
            lambda: not (state / "owners" / str(first.pid)).exists(),
            timeout=10,
            message="the supervisor to notice the first owner exited",
        )
        assert all(launcher.pid_alive(pid) for pid in pids), "the cluster stopped while an owner remained"
        assert launcher.is_up(state)
    finally:
        for owner in (first, second):
            owner.kill()
            owner.wait(timeout=10)

    wait_for(
        lambda: not any(launcher.pid_alive(pid) for pid in pids),
        timeout=60,
        message="every process of the owned cluster to exit",
    )
    wait_for(lambda: not state.exists(), timeout=10, message="the owned cluster's state to be removed")
