"""Object names from a pull request become parts of API paths: none may reshape a request.

A manifest's ``metadata.name`` (or ``namespace``) carrying CR/LF could end the request line early
and smuggle a second request onto the bot's authenticated connection (reading another namespace's
objects with the bot's credentials); ``/``, ``..``, ``?`` or ``%`` could point the request at another
path. Names are refused at render with a message naming the field, quoted into paths where the
API server would decide, and the transport refuses any request head with a control character.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mergeway.kube.discovery import Resource
from mergeway.render.manifests import ManifestError, parse_manifests
from tests.fixtures.cluster import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
SMUGGLE = "x HTTP/1.1\r\nHost: a\r\n\r\nGET /api/v1/namespaces/kube-system/configmaps/private"


def _config_map(name: str, namespace: str = "") -> str:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "b"}})


@pytest.mark.parametrize(
    ("name", "namespace", "says"),
    [
        (SMUGGLE, "", "metadata.name 'x HTTP/1.1\\r\\nHost: a"),
        ("a/../../kube-system/configmaps/b", "", "may not contain '/'"),
        ("..", "", "may not be '..'"),
        ("a%2Fb", "", "may not contain '%'"),
        ("ok", "team\nb", "metadata.namespace 'team\\nb' may not contain '\\n'"),
    ],
)
def test_names_that_would_reshape_a_request_are_refused_at_render(name: str, namespace: str, says: str) -> None:
    with pytest.raises(ManifestError) as refused:
        parse_manifests(_config_map(name, namespace), "deploy/cm.yaml")
    assert str(refused.value).startswith("deploy/cm.yaml: ConfigMap ")
    assert says in str(refused.value)


def test_names_and_namespaces_are_quoted_into_paths() -> None:
    configmaps = Resource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True)
    assert configmaps.object_path("a?dryRun=All", "n s") == "/api/v1/namespaces/n%20s/configmaps/a%3FdryRun%3DAll"
    assert configmaps.object_path("system:a.b", "team") == "/api/v1/namespaces/team/configmaps/system%3Aa.b"


@pytest.mark.cluster
def test_preview_of_a_smuggling_name_fails_clearly_and_sends_nothing_for_it(
    kube_cluster: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "cm.yaml").write_text(_config_map(SMUGGLE))
    argv = [sys.executable, "-m", "mergeway.cli", "preview", str(tmp_path), "-n", namespace]
    argv += ["--kubeconfig", str(kube_cluster.kubeconfig)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout
    assert "ConfigMap metadata.name 'x HTTP/1.1\\r\\nHost: a" in done.stderr + done.stdout
    assert "to add" not in done.stdout  # nothing was planned, so nothing was sent about it
