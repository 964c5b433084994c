"""Mergeway's own Helm chart renders and is accepted by a real API server (server-side dry run)."""

from __future__ import annotations

import pytest

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
        "Deployment",
        "Deployment",
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


def test_chart_without_cluster_scope_grants_roles_per_namespace(kube_cluster):
    rendered = render(ROOT, "charts/mergeway", namespace="mergeway", release="mw")
    # Nothing cluster-scoped by default: a repository that may create ClusterRoles could grant itself
    # anything. Per-namespace Roles are covered in tests/ship/test_chart_render.py.
    assert not any(m.kind in ("ClusterRole", "ClusterRoleBinding") for m in rendered.manifests)
