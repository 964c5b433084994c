"""Mergeway's own Helm chart renders and is accepted by a real API server (server-side dry run)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from mergeway.kube.client import KubeClient
from mergeway.kube.diff import Differ
from mergeway.render import render
from tests.conftest import ROOT

pytestmark = pytest.mark.cluster


def test_chart_renders_and_dry_runs_cleanly(kube_cluster, namespace):
    rendered = render(ROOT, "charts/mergeway", namespace=namespace, release="mergeway")
    kinds = sorted(m.kind for m in rendered.manifests)
    # The defaults grant nothing cluster-wide (and no namespace until rbac.namespaces lists one).
    assert kinds == [
        "ConfigMap",
        "Deployment",  # beat
        "Deployment",  # web
        "Deployment",  # worker
        "NetworkPolicy",
        "NetworkPolicy",
        "NetworkPolicy",
        "Service",
        "ServiceAccount",
    ]
    web = next(m for m in rendered.manifests if m.kind == "Deployment" and m.name == "mergeway-web")
    # The web edge never holds cluster credentials.
    assert web.obj["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    plan = Differ(KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))).plan(
        rendered.manifests, default_namespace=namespace
    )
    assert not plan.errors, [(str(i.ref), i.message) for i in plan.errors]
    assert plan.count("create") == len(rendered.manifests)


def test_chart_without_cluster_scope_grants_roles_per_namespace(kube_cluster, namespace, tmp_path):
    # The chart as an operator installs it, with the namespaces the worker may deploy into.
    shutil.copytree(ROOT / "charts" / "mergeway", tmp_path / "chart")
    (tmp_path / "values.yaml").write_text(yaml.safe_dump({"rbac": {"namespaces": [namespace, "payments"]}}))
    rendered = render(tmp_path, "chart", namespace="mergeway", release="mw", values=["values.yaml"])
    # Nothing cluster-scoped by default: a repository that may create ClusterRoles could grant itself
    # anything.
    assert not any(m.kind in ("ClusterRole", "ClusterRoleBinding") for m in rendered.manifests)
    roles = {m.namespace: m.obj for m in rendered.manifests if m.kind == "Role"}
    bindings = {m.namespace: m.obj for m in rendered.manifests if m.kind == "RoleBinding"}
    assert sorted(roles) == sorted(bindings) == sorted([namespace, "payments"])
    worker = next(m for m in rendered.manifests if m.kind == "ServiceAccount")
    for ns, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[ns]["metadata"]["name"],
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": worker.name, "namespace": "mergeway"}]
        resources = {r for rule in roles[ns]["rules"] for r in rule.get("resources", [])}
        assert {"deployments", "configmaps"} <= resources
        assert not resources & {"secrets", "roles", "rolebindings", "*"}
    # The API server accepts the Role and its binding where the namespace exists.
    here = [m for m in rendered.manifests if m.kind in ("Role", "RoleBinding") and m.namespace == namespace]
    plan = Differ(KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))).plan(here, default_namespace=namespace)
    assert not plan.errors, [(str(i.ref), i.message) for i in plan.errors]
    assert plan.count("create") == 2
