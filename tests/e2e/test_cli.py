"""``mergeway preview`` / ``mergeway apply`` from a terminal, against the local cluster: the exit
codes scripts rely on (preview: 0 no changes, 1 changes, 2 error; apply: 0 healthy, 1 applied but
failed or unhealthy, 2 error before applying)."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from tests.fixtures.admission import MESSAGE, echoing_secret_policy
from tests.fixtures.cluster import KubeCluster

pytestmark = pytest.mark.cluster
MERGEWAY = str(Path(sys.executable).parent / "mergeway")


def mergeway(cluster: KubeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**cluster.env(), "NO_COLOR": "1"}
    return subprocess.run([MERGEWAY, *args], capture_output=True, text=True, timeout=180, env=env)


def said(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout:\n{proc.stdout[-3000:]}\n--- stderr:\n{proc.stderr[-3000:]}"


def deployment(name: str, *, replicas: int = 1, annotations: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "app", "image": f"example.com/{name}:1"}]},
            },
        },
    }


def write(directory: Path, **objects: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    for name, obj in objects.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(obj))
    return directory


def test_preview_and_apply_exit_codes(kube_cluster: KubeCluster, namespace: str, tmp_path: Path):
    app = write(tmp_path / "app", web=deployment("web"))
    ns = ["-n", namespace]

    changes = mergeway(kube_cluster, "preview", str(app), *ns)
    assert changes.returncode == 1, said(changes)
    assert f"Deployment/{namespace}/web" in changes.stdout
    applied = mergeway(kube_cluster, "apply", str(app), *ns, "--timeout", "60")
    assert applied.returncode == 0, said(applied)
    assert f"Deployment/{namespace}/web created" in applied.stdout
    apps = k8s.AppsV1Api(kube_cluster.api_client())
    assert apps.read_namespaced_deployment("web", namespace).status.available_replicas == 1
    unchanged = mergeway(kube_cluster, "preview", str(app), *ns)
    assert unchanged.returncode == 0, said(unchanged)

    # Rejected by the API server: an error for both, and apply changes nothing.
    write(app, web=deployment("web", replicas=-3))
    rejected = mergeway(kube_cluster, "preview", str(app), *ns)
    assert rejected.returncode == 2, said(rejected)
    assert "spec.replicas" in rejected.stdout + rejected.stderr
    refused = mergeway(kube_cluster, "apply", str(app), *ns)
    assert refused.returncode == 2, said(refused)
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 1

    # Not YAML: nothing can be rendered.
    (app / "web.yaml").write_text("kind: [unclosed\n")
    for command in ("preview", "apply"):
        broken = mergeway(kube_cluster, command, str(app), *ns)
        assert broken.returncode == 2, said(broken)
        assert "web.yaml" in broken.stderr and "Traceback" not in broken.stderr

    # Applied, but the rollout does not become healthy within --timeout.
    slow = deployment("web", annotations={"mergeway.test/ready-after": "600s"})
    write(app, web=slow)
    unhealthy = mergeway(kube_cluster, "apply", str(app), *ns, "--timeout", "5")
    assert unhealthy.returncode == 1, said(unhealthy)
    assert f"Deployment/{namespace}/web" in unhealthy.stderr and "timed out" in unhealthy.stderr


def test_preview_piped_into_head_ends_quietly(kube_cluster: KubeCluster, namespace: str, tmp_path: Path):
    """``mergeway preview DIR | head``: the reader leaves after a few lines. Like kubectl, the
    command ends with a SIGPIPE death's status (141) and says nothing, not a BrokenPipeError traceback."""
    data = {f"key-{i:03}": f"value {i} " + "x" * 60 for i in range(100)}
    objects = {
        f"cm{n}": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{n}"}, "data": data}
        for n in range(40)
    }
    app = write(tmp_path / "app", **objects)  # ~300 KB of plan: far more than a pipe and stdout's buffer hold
    env = {**kube_cluster.env(), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [MERGEWAY, "preview", str(app), "-n", namespace],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what head does once it has its lines
    stderr = proc.stderr.read().decode()
    code = proc.wait(timeout=180)
    assert first, stderr
    assert stderr == ""
    assert code == 141


def test_secret_values_never_reach_the_terminal(kube_cluster: KubeCluster, namespace: str, tmp_path: Path):
    """``mergeway preview``/``apply`` of a Secret, created then rotated (``stringData:`` and ``data:``):
    the terminal shows that it changes, never a value, in plain text or base64."""
    values = {
        "one": ("pw-one-5a1c", "tok-one-9e2f", "gen-one-41aa"),
        "two": ("pw-two-77b0", "tok-two-c3d4", "gen-two-0f93"),
    }

    def secrets(version: str) -> dict[str, dict]:
        password, token, generated = values[version]
        encoded = base64.b64encode(token.encode()).decode()
        return {
            "db": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"pw": password}},
            "token": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "data": {"t": encoded}},
            # A kustomize secretGenerator: a new name (hash suffix) per value, the old one pruned.
            "kustomization": {
                "resources": ["db.yaml", "token.yaml"],
                "secretGenerator": [{"name": "gen", "literals": [f"g={generated}"]}],
            },
        }

    app = tmp_path / "app"
    ns = ["-n", namespace]
    said_all = []
    for version in ("one", "two"):
        write(app, **secrets(version))
        preview = mergeway(kube_cluster, "preview", str(app), *ns)
        assert preview.returncode == 1, said(preview)
        assert f"Secret/{namespace}/db" in preview.stdout and f"Secret/{namespace}/token" in preview.stdout
        assert f"Secret/{namespace}/gen-" in preview.stdout
        applied = mergeway(kube_cluster, "apply", str(app), *ns, "--timeout", "60")
        assert applied.returncode == 0, said(applied)
        said_all += [preview.stdout, preview.stderr, applied.stdout, applied.stderr]
    assert "***" in preview.stdout, "the rotation's preview shows a masked change"
    secret = [v for pair in values.values() for v in pair]
    forms = secret + [base64.b64encode(v.encode()).decode() for v in secret]
    for text in said_all:
        for form in forms:
            assert form not in text


def test_an_api_server_rejection_that_echoes_a_secret_is_masked(
    kube_cluster: KubeCluster, namespace: str, tmp_path: Path
):
    """A ValidatingAdmissionPolicy whose message quotes the Secret's value (as a careless policy
    could): ``mergeway preview``/``apply`` report the rejection with the value masked."""
    value = "pin-7c1e-d04a"
    encoded = base64.b64encode(value.encode()).decode()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pin"}, "data": {"pin": encoded}}
    app = write(tmp_path / "app", pin=secret)
    with echoing_secret_policy(kube_cluster, namespace):
        for command in ("preview", "apply"):
            rejected = mergeway(kube_cluster, command, str(app), "-n", namespace)
            text = rejected.stdout + rejected.stderr
            assert rejected.returncode == 2, said(rejected)
            assert f"{MESSAGE}***" in text, said(rejected)
            assert value not in text and encoded not in text
