"""The worker's ServiceAccount, with the chart's RBAC, really can deploy — where allowed, and only there.

The test acts as the worker: it gets a token for the release's ServiceAccount (TokenRequest API,
as the kubelet would mount it) and runs ``mergeway preview``/``apply`` of the guestbook with it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import SHARED
from tests.ship.chart import CHART, helm
from tests.ship.conftest import create_documented_secrets

pytestmark = pytest.mark.cluster

GUESTBOOK = SHARED / "manifests" / "kubernetes-examples" / "web" / "guestbook"


def _service_account_kubeconfig(kube, admin_kubeconfig: Path, namespace: str, name: str, path: Path) -> Path:
    from kubernetes import client

    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=900))
    token = kube.core().create_namespaced_service_account_token(name, namespace, request).status.token
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "worker", "user": {"token": token}}],
                "contexts": [{"name": "worker", "context": {"cluster": "c", "user": "worker"}}],
                "current-context": "worker",
            }
        )
    )
    return path


def _mergeway(*args: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    cli = str(Path(sys.executable).parent / "mergeway")
    return subprocess.run(
        [cli, *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(kubeconfig.parent)},
    )


def test_worker_service_account_deploys_only_into_allowed_namespaces(
    kube_cluster, kube, namespace, make_namespace, tmp_path
):
    allowed, elsewhere = make_namespace("allowed"), make_namespace("elsewhere")
    release = "mw-id"
    create_documented_secrets(kube, namespace)
    installed = helm(
        "install", release, str(CHART), "--namespace", namespace,
        "--set", f"rbac.namespaces={{{allowed}}}",
        "--set", "policy.rules[0].repositories={github:acme/*}",
        "--set", f"policy.rules[0].namespaces={{{allowed}}}",
        "--set", "policy.rules[0].clusters={in-cluster}",
        kubeconfig=kube_cluster.kubeconfig,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    try:
        app = tmp_path / "guestbook"
        app.mkdir()
        for manifest in sorted(GUESTBOOK.glob("*.yaml")):
            shutil.copy(manifest, app)
        config = _service_account_kubeconfig(kube, kube_cluster.kubeconfig, namespace, release, tmp_path / "kubeconfig")

        preview = _mergeway("preview", str(app), "-n", allowed, "--color", "never", kubeconfig=config)
        assert preview.returncode == 1, preview.stdout + preview.stderr  # 1: changes, as kubectl diff
        assert "frontend" in preview.stdout and "redis-master" in preview.stdout
        applied = _mergeway("apply", str(app), "-n", allowed, "--timeout", "120", kubeconfig=config)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        live = {d.metadata.name for d in kube.apps().list_namespaced_deployment(allowed).items}
        assert {"frontend", "redis-master", "redis-replica"} <= live

        refused = _mergeway("preview", str(app), "-n", elsewhere, "--color", "never", kubeconfig=config)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "forbidden" in (refused.stdout + refused.stderr).lower()
        refused_apply = _mergeway("apply", str(app), "-n", elsewhere, "--timeout", "30", kubeconfig=config)
        assert refused_apply.returncode != 0
        assert not kube.apps().list_namespaced_deployment(elsewhere).items
        # Not even in the allowed namespace may the worker read Secrets (rbac.allowSecrets is off).
        from kubernetes import client
        from kubernetes import config as kconfig
        from kubernetes.client.exceptions import ApiException

        as_worker = kconfig.new_client_from_config(config_file=str(config))
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(as_worker).list_namespaced_secret(allowed)
        assert denied.value.status == 403
        as_worker.close()
    finally:
        helm("uninstall", release, "--namespace", namespace, kubeconfig=kube_cluster.kubeconfig)
