"""The Kubernetes engine against the real local cluster: dry-run diffs, staged apply, prune, health."""

from __future__ import annotations

import base64
import shutil
import uuid
from pathlib import Path

import pytest
import yaml

from mergeway.kube.apply import Applier
from mergeway.kube.applyset import PART_OF_LABEL, ApplySet
from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.diff import Differ
from mergeway.render import render
from mergeway.render.manifests import Manifest, parse_manifests
from tests.conftest import SHARED
from tests.fixtures.cluster import SIMULATE_ANNOTATION

pytestmark = pytest.mark.cluster
GUESTBOOK = SHARED / "manifests" / "kubernetes-examples" / "web" / "guestbook"


@pytest.fixture
def client(kube_cluster) -> KubeClient:
    return KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))


def guestbook(tmp_path: Path) -> Path:
    """The split-file guestbook (one object per file), as a repository would hold it."""
    target = tmp_path / "guestbook"
    shutil.copytree(GUESTBOOK, target, ignore=shutil.ignore_patterns("all-in-one", "legacy"))
    return target


def test_preview_of_new_objects_then_exact_changed_lines(client, namespace, tmp_path):
    root = guestbook(tmp_path)
    applyset = ApplySet("gb", namespace)

    def preview():
        return Differ(client).plan_for(render(root, ".").manifests, applyset, default_namespace=namespace)

    plan = preview()
    assert plan.summary() == "6 to add, 0 to change, 0 to prune, 0 unchanged"
    assert not plan.errors

    Applier(client).deploy(render(root, ".").manifests, applyset=applyset, default_namespace=namespace)
    assert preview().summary() == "0 to add, 0 to change, 0 to prune, 6 unchanged"

    deployment = root / "frontend-deployment.yaml"
    text = deployment.read_text()
    deployment.write_text(text.replace("replicas: 3", "replicas: 5").replace("gb-frontend:v5", "gb-frontend:v6"))
    plan = preview()
    assert plan.summary() == "0 to add, 1 to change, 0 to prune, 5 unchanged"
    [changed] = [i for i in plan.items if i.action == "update"]
    minus = [line for line in changed.diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    plus = [line for line in changed.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert minus == ["-  replicas: 3", "-        image: gcr.io/google-samples/gb-frontend:v5"]
    assert plus == ["+  replicas: 5", "+        image: gcr.io/google-samples/gb-frontend:v6"]


def test_invalid_field_reports_the_api_server_message(client, namespace):
    [bad] = parse_manifests(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec:\n  replicas: -1\n"
        "  selector: {matchLabels: {app: b}}\n  template:\n    metadata: {labels: {app: b}}\n"
        "    spec: {containers: [{name: c, image: nginx}]}\n",
        "broken.yaml",
    )
    plan = Differ(client).plan([bad], default_namespace=namespace)
    [item] = plan.errors
    assert "spec.replicas" in item.message and "must be greater than or equal to 0" in item.message


def test_secret_change_is_masked_in_the_dry_run_diff(client, namespace):
    def secret(value: str) -> Manifest:
        obj = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db"},
            "stringData": {"password": value, "user": "admin"},
        }
        return Manifest(obj, "secret.yaml")

    applyset = ApplySet("s", namespace)
    Applier(client).deploy([secret("old-password-1")], applyset=applyset, default_namespace=namespace)
    plan = Differ(client).plan_for([secret("new-password-2")], applyset, default_namespace=namespace)
    [item] = plan.items
    assert item.action == "update"
    assert "-  password: '*** (before)'" in item.diff and "+  password: '*** (after)'" in item.diff
    for leaked in (
        "old-password-1",
        "new-password-2",
        base64.b64encode(b"new-password-2").decode(),
        base64.b64encode(b"old-password-1").decode(),
        base64.b64encode(b"admin").decode(),
    ):
        assert leaked not in item.diff


def test_deploy_applies_with_field_manager_and_applyset_then_prunes_only_what_left(
    client, namespace, kube_cluster, tmp_path
):
    from kubernetes import client as k8s

    root = guestbook(tmp_path)
    apps = k8s.AppsV1Api(kube_cluster.api_client())
    core = k8s.CoreV1Api(kube_cluster.api_client())
    core.create_namespaced_config_map(namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="unrelated")))
    applyset = ApplySet("mergeway-test.env", namespace)

    result = Applier(client).deploy(
        render(root, ".").manifests, applyset=applyset, default_namespace=namespace, commit="c1", health_timeout=120
    )
    assert result.ok, (result.failed, result.unhealthy)
    assert result.counts() == {"added": 6, "changed": 0, "pruned": 0, "unchanged": 0}
    for name in ("frontend", "redis-master", "redis-replica"):
        dep = apps.read_namespaced_deployment(name, namespace)
        assert dep.metadata.labels[PART_OF_LABEL] == applyset.id
        assert any(m.manager == "mergeway" and m.operation == "Apply" for m in dep.metadata.managed_fields)
        assert dep.status.available_replicas == dep.spec.replicas

    (root / "redis-replica-service.yaml").unlink()
    result = Applier(client).deploy(
        render(root, ".").manifests, applyset=applyset, default_namespace=namespace, commit="c2"
    )
    assert result.ok
    assert [str(i.ref) for i in result.pruned] == [f"Service/{namespace}/redis-replica"]
    services = {s.metadata.name for s in core.list_namespaced_service(namespace).items}
    assert services == {"frontend", "redis-master"}
    assert core.read_namespaced_config_map("unrelated", namespace).metadata.name == "unrelated"
    parent = core.read_namespaced_config_map(applyset.name, namespace)
    assert parent.metadata.annotations["mergeway.io/commit"] == "c2"
    assert parent.metadata.annotations["applyset.kubernetes.io/contains-group-kinds"] == "Deployment.apps,Service"


def test_keep_annotation_prevents_pruning(client, namespace):
    applyset = ApplySet("keep", namespace)

    def cm(name: str, keep: bool = False) -> Manifest:
        meta: dict = {"name": name}
        if keep:
            meta["annotations"] = {"mergeway.io/prune": "disabled"}
        return Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "b"}}, "x.yaml")

    applier = Applier(client)
    assert applier.deploy([cm("a"), cm("kept", keep=True)], applyset=applyset, default_namespace=namespace).ok
    result = applier.deploy([cm("b")], applyset=applyset, default_namespace=namespace)
    assert [i.ref.name for i in result.pruned] == ["a"]
    client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/kept")
    with pytest.raises(KubeError):
        client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/a")


def test_crd_and_custom_resource_in_one_deploy(client, namespace):
    group = f"{namespace}.mergeway.test"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
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
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    manifests = [Manifest(widget, "widget.yaml"), Manifest(crd, "crd.yaml")]
    plan = Differ(client).plan(manifests, default_namespace=namespace)
    assert plan.count("create") == 2 and not plan.errors
    result = Applier(client).deploy(manifests, applyset=ApplySet("crd", namespace), default_namespace=namespace)
    try:
        assert result.ok, result.failed
        live = client.request("GET", f"/apis/{group}/v1/namespaces/{namespace}/widgets/w1")
        assert live["spec"] == {"size": 3}
    finally:
        client.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")


def test_bad_rollout_fails_naming_the_deployment(client, namespace):
    deployment = yaml.safe_load(f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: never-ready}}
spec:
  replicas: 2
  progressDeadlineSeconds: 5
  selector: {{matchLabels: {{app: never-ready}}}}
  template:
    metadata:
      labels: {{app: never-ready}}
      annotations: {{{SIMULATE_ANNOTATION}: not-ready}}
    spec: {{containers: [{{name: c, image: example/app:1}}]}}
""")
    result = Applier(client).deploy(
        [Manifest(deployment, "d.yaml")],
        applyset=ApplySet("bad", namespace),
        default_namespace=namespace,
        # Far beyond the test's own timeout: only stopping as soon as Kubernetes reports the
        # failure lets this test finish at all (no duration is asserted).
        health_timeout=3600,
    )
    assert not result.ok
    failing = result.unhealthy
    assert list(failing) == [f"Deployment/{namespace}/never-ready"]
    health = failing[f"Deployment/{namespace}/never-ready"]
    assert health.state == "failed"
    assert "ProgressDeadlineExceeded" in health.message and "never-ready" in health.message
    assert not [ref for ref, h in result.health.items() if h.state == "in_progress"]  # no timeout


def test_kustomize_overlay_that_creates_its_namespace_previews(client, kube_cluster, tmp_path):
    # The staging overlay, creating a namespace of its own that cannot exist yet in a shared cluster.
    podinfo = shutil.copytree(SHARED / "manifests" / "podinfo" / "deploy", tmp_path / "podinfo")
    fresh = f"t-overlay-{uuid.uuid4().hex[:8]}"
    for name in ("kustomization.yaml", "namespace.yaml"):
        path = podinfo / "overlays" / "staging" / name
        path.write_text(path.read_text().replace("staging", fresh))
    rendered = render(tmp_path, "podinfo/overlays/staging")
    assert {m.obj["kind"] for m in rendered.manifests if m.obj["metadata"].get("name") == fresh} == {"Namespace"}
    plan = Differ(client).plan(rendered.manifests)
    assert not plan.errors, [(str(i.ref), i.message) for i in plan.errors]
    assert plan.count("create") == 10
    notes = [i for i in plan.items if i.unvalidated]
    assert len(notes) == 9 and all("created by this change" in i.message for i in notes)


def test_helm_chart_previews(client, namespace):
    rendered = render(SHARED / "manifests", "podinfo/charts/podinfo", namespace=namespace, release="podinfo")
    plan = Differ(client).plan(rendered.manifests, default_namespace=namespace)
    assert not plan.errors
    assert sorted(str(i.ref) for i in plan.items) == [f"Deployment/{namespace}/podinfo", f"Service/{namespace}/podinfo"]


def test_unchanged_fast_path_never_hides_drift(client, namespace, kube_cluster, tmp_path):
    from kubernetes import client as k8s

    root = guestbook(tmp_path)
    applyset = ApplySet("drift", namespace)
    Applier(client).deploy(render(root, ".").manifests, applyset=applyset, default_namespace=namespace)

    def preview():
        return Differ(client).plan_for(render(root, ".").manifests, applyset, default_namespace=namespace)

    assert preview().summary() == "0 to add, 0 to change, 0 to prune, 6 unchanged"
    # Someone scales a Deployment and edits a Service label by hand: the next apply would undo both.
    apps = k8s.AppsV1Api(kube_cluster.api_client())
    apps.patch_namespaced_deployment_scale("frontend", namespace, {"spec": {"replicas": 1}})
    core = k8s.CoreV1Api(kube_cluster.api_client())
    core.patch_namespaced_service("redis-master", namespace, {"metadata": {"labels": {"tier": "edited"}}})
    plan = preview()
    assert plan.summary() == "0 to add, 2 to change, 0 to prune, 4 unchanged"
    changed = {str(i.ref): i.diff for i in plan.items if i.action == "update"}
    assert "-  replicas: 1\n+  replicas: 3\n" in changed[f"Deployment/{namespace}/frontend"]
    assert "-    tier: edited\n+    tier: backend\n" in changed[f"Service/{namespace}/redis-master"]
