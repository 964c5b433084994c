"""``mergeway apply`` from a terminal: what it applies, and the API server's words when it refuses.

The CLI imports its report helpers only when there is something to report (start-up is most of a
small apply's time); these tests pin that both outcomes still print what a user needs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fixtures.cluster import KubeCluster

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


def _apply(kube_cluster: KubeCluster, target: Path, namespace: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mergeway.cli", "apply", str(target), "-n", namespace, "--no-wait"]
    argv += ["--kubeconfig", str(kube_cluster.kubeconfig)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_apply_reports_created_objects_then_the_server_refusal_of_an_invalid_one(
    kube_cluster: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    target = tmp_path / "env"
    target.mkdir()
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"k": "v"}}
    (target / "good.yaml").write_text(yaml.safe_dump(good))
    done = _apply(kube_cluster, target, namespace)
    assert done.returncode == 0, done.stderr
    assert f"ConfigMap/{namespace}/app created" in done.stdout
    assert "failed:" not in done.stderr

    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}, "data": {"not a key!": "v"}}
    (target / "bad.yaml").write_text(yaml.safe_dump(bad))
    done = _apply(kube_cluster, target, namespace)
    assert done.returncode == 2, done.stderr  # refused in the dry run: nothing applied
    assert f"failed: ConfigMap/{namespace}/bad (dry run): " in done.stderr
    assert "not a key!" in done.stderr  # the server's own explanation names the key


def test_cli_preview_lists_hooks_and_apply_stops_on_a_failing_pre_deploy_hook(
    kube_cluster: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    from tests.fixtures.workloads import job

    target = tmp_path / "env"
    target.mkdir()
    migrate = job("migrate", fail=True)
    migrate["metadata"]["annotations"] = {"argocd.argoproj.io/hook": "PreSync"}
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"k": "v"}}
    (target / "migrate.yaml").write_text(yaml.safe_dump(migrate))
    (target / "good.yaml").write_text(yaml.safe_dump(good))
    argv = [sys.executable, "-m", "mergeway.cli", "preview", str(target), "-n", namespace]
    argv += ["--kubeconfig", str(kube_cluster.kubeconfig)]
    shown = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert f"hook, runs before the rollout: Job/{namespace}/migrate (argocd.argoproj.io/hook: PreSync)" in shown.stdout
    assert "add: Job" not in shown.stdout

    done = _apply(kube_cluster, target, namespace)
    assert done.returncode == 1, done.stderr
    assert f"Job/{namespace}/migrate pre-deploy hook failed" in done.stdout
    assert f"failed: Job/{namespace}/migrate (pre-deploy hook): job failed (BackoffLimitExceeded)" in done.stderr
    assert "ConfigMap" not in done.stdout  # nothing else applied
