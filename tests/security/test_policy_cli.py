"""``mergeway apply --policy`` refuses what the service would refuse, before any request about an object.

Issue 9, finding 4, for the break-glass CLI: an operator applying a repository's directory by hand
with the same policy gets the same refusal, and the cluster gets nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from tests.fixtures.cluster import KubeCluster

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


def test_cli_apply_with_a_policy_refuses_objects_outside_it(
    kube_cluster: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    target = tmp_path / "deploy"
    target.mkdir()
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {}}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": f"{namespace}-r"}}
    (target / "cm.yaml").write_text(yaml.safe_dump(cm))
    (target / "role.yaml").write_text(yaml.safe_dump(role))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"rules:\n  - repositories: ['github:acme/shop']\n    clusters: [local]\n    namespaces: [{namespace}]\n"
    )
    argv = [sys.executable, "-m", "mergeway.cli", "apply", str(target), "-n", namespace, "--no-wait"]
    argv += ["--kubeconfig", str(kube_cluster.kubeconfig), "--policy", str(policy)]
    argv += ["--repository", "github:acme/shop", "--cluster", "local"]
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "not allowed by the policy: 1 object(s) are outside what github:acme/shop may deploy" in done.stderr
        assert f"ClusterRole.rbac.authorization.k8s.io/{namespace}-r (role.yaml): " in done.stderr
        api = kube_cluster.api_client()
        assert "app" not in {c.metadata.name for c in k8s.CoreV1Api(api).list_namespaced_config_map(namespace).items}
        names = {r.metadata.name for r in k8s.RbacAuthorizationV1Api(api).list_cluster_role().items}
        assert f"{namespace}-r" not in names
    finally:
        subprocess.run(
            [kube_cluster.kubectl, "delete", "clusterrole", f"{namespace}-r", "--ignore-not-found"],
            env=kube_cluster.env(),
            capture_output=True,
            timeout=60,
        )
