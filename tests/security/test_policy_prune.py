"""Prunes pass the policy like writes; no rendered object may stand in for an ApplySet parent.

Issue 24, finding 3: the policy checked only rendered objects, while a deploy deleted every stale
member its ApplySet parent listed, in every namespace and kind the parent recorded. An operator
granted a repository two namespaces, it deployed a ConfigMap into the second, the operator revoked
that namespace and restarted the worker, and the repository's next merge (removing the file)
deleted the ConfigMap there. Through the real chain (forge simulator, web service, Redis, worker,
local cluster): the deletion is held, the preview and the deploy say which object and why, the
object stays, and it is pruned once the operator grants the namespace again. A manifest with the
identity of an ApplySet parent (named like one, or carrying its label) is refused before anything
is sent, whatever the policy.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from mergeway.jobs.applysets import applyset_for
from mergeway.kube.applyset import GROUP_KINDS, ID_LABEL, NAMESPACES
from mergeway.repoconfig import Environment
from tests.fixtures.cluster import KubeCluster
from tests.fixtures.e2e import Stack
from tests.security.policy_stack import policy_stack

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
__all__ = ["policy_stack"]  # the fixture, imported for this module
PREVIEW, DEPLOY = "mergeway/preview/staging", "mergeway/deploy/staging"
PREVIEW_MARKER, DEPLOY_MARKER = "<!-- mergeway:preview:staging -->", "<!-- mergeway:deploy:staging -->"
POLICY = """
rules:
  - repositories: ["github:acme/shop"]
    clusters: [local]
    namespaces: [{namespaces}]
"""


@pytest.fixture
def second_namespace(kube_cluster: KubeCluster, namespace: str) -> Iterator[str]:
    """A second namespace the operator first grants to the repository, then revokes."""
    core = k8s.CoreV1Api(kube_cluster.api_client())
    name = f"{namespace}-b"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def configmap(name: str, namespace: str = "", **metadata: Any) -> str:
    meta: dict[str, Any] = {"name": name, **metadata}
    if namespace:
        meta["namespace"] = namespace
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}})


def configmaps(stack: Stack, namespace: str) -> set[str]:
    core = k8s.CoreV1Api(stack.cluster.api_client())
    return {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}


def merged(stack: Stack, repo: Any, pr: Any) -> str:
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return sha


def restart_worker(stack: Stack, policy_file: Path, namespaces: str) -> None:
    """What an operator does to change the policy: edit the file, restart the worker."""
    for worker in stack.workers:
        worker.stop()
    policy_file.write_text(POLICY.format(namespaces=namespaces).replace("{ns}", stack.namespace))
    stack.workers = [stack.services.worker(stack.env, concurrency=2)]


def test_a_prune_in_a_revoked_namespace_is_held_and_reported(
    policy_stack: Callable[[str], Stack], second_namespace: str
) -> None:
    stack = policy_stack(POLICY.format(namespaces='"{ns}", "{ns}-b"'))
    ns, other = stack.namespace, second_namespace
    repo = stack.repo()
    first = stack.sim.open_pr(
        repo,
        "add",
        files={
            "deploy/app.yaml": configmap("app"),
            "deploy/gone.yaml": configmap("gone"),
            "deploy/far.yaml": configmap("far", other),
        },
    )
    deployed = stack.status(repo, merged(stack, repo, first), DEPLOY)
    assert deployed.state == "success", deployed.description
    assert {"app", "gone"} <= configmaps(stack, ns) and "far" in configmaps(stack, other)

    policy_file = Path(stack.env["MERGEWAY_POLICY_FILE"])
    restart_worker(stack, policy_file, '"{ns}"')  # the operator revokes the second namespace

    second = stack.sim.open_pr(repo, "drop", files={"deploy/far.yaml": None, "deploy/gone.yaml": None})
    why = f"namespace '{other}' is not allowed (namespaces: {ns})"
    preview = stack.status(repo, second.head_sha, PREVIEW)
    assert preview.state == "success", preview.description
    assert preview.description.startswith("0 to add, 0 to change, 1 to prune"), preview.description
    assert preview.description.endswith(f"; 1 not pruned (policy): ConfigMap/{other}/far"), preview.description
    body = stack.only_comment(repo, second.number, PREVIEW_MARKER).body
    assert "Not pruned: 1 object(s) outside this repository's policy" in body
    assert f"- `ConfigMap/{other}/far`: {why}" in body
    assert "Merging leaves them in the cluster" in body

    deployed = stack.status(repo, merged(stack, repo, second), DEPLOY)
    assert deployed.state == "success", deployed.description
    assert "1 pruned" in deployed.description  # the ConfigMap in the granted namespace goes as before
    # The status names the first held object (clipped here: test namespaces are long); the comment all.
    assert "; 1 not pruned (policy): ConfigMap/t-" in deployed.description, deployed.description
    body = stack.only_comment(repo, second.number, DEPLOY_MARKER).body
    assert f"- `ConfigMap/{other}/far`: {why}" in body
    assert "This deploy left them in the cluster" in body
    assert "far" in configmaps(stack, other), "the policy no longer covers this namespace: it must not be pruned"
    assert "gone" not in configmaps(stack, ns) and "app" in configmaps(stack, ns)

    # The object stayed a member of the set: granted again, the next deploy prunes it.
    restart_worker(stack, policy_file, '"{ns}", "{ns}-b"')
    third = stack.sim.open_pr(repo, "touch", files={"README.md": "touched\n"})
    deployed = stack.status(repo, merged(stack, repo, third), DEPLOY)
    assert deployed.state == "success" and "1 pruned" in deployed.description, deployed.description
    assert "not pruned" not in deployed.description
    assert "far" not in configmaps(stack, other)


def test_a_manifest_with_the_identity_of_an_applyset_parent_is_refused(stack: Stack) -> None:
    """Whatever the policy (this stack allows everything): a parent is written only by Mergeway."""
    repo = stack.repo()
    env = Environment("staging", "deploy", "local", stack.namespace)
    parent = applyset_for(stack.sim.repository(repo), env)
    # Its own parent, rewritten to send the next prune into kube-system, and a parent of another set.
    forged = configmap(parent.name, annotations={GROUP_KINDS: "Secret", NAMESPACES: "kube-system"})
    other = configmap("another-parent", labels={ID_LABEL: "applyset-abc-v1"})
    pr = stack.sim.open_pr(
        repo,
        "forge",
        files={"deploy/parent.yaml": forged, "deploy/other.yaml": other, "deploy/ok.yaml": configmap("ok")},
    )
    preview = stack.status(repo, pr.head_sha, PREVIEW)
    assert preview.state == "failure", preview.description
    body = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    assert "2 object(s) have the identity of an ApplySet parent" in body
    assert f"ConfigMap/{parent.name} (deploy/parent.yaml): named like a Mergeway ApplySet parent" in body
    assert f"ConfigMap/another-parent (deploy/other.yaml): carries the ApplySet parent label `{ID_LABEL}`" in body

    deployed = stack.status(repo, merged(stack, repo, pr), DEPLOY)
    assert deployed.state == "failure", deployed.description
    assert "have the identity of an ApplySet parent" in stack.only_comment(repo, pr.number, DEPLOY_MARKER).body
    assert not {parent.name, "another-parent", "ok"} & configmaps(stack, stack.namespace)


def test_cli_apply_with_a_policy_holds_the_same_prunes(
    kube_cluster: KubeCluster, namespace: str, second_namespace: str, tmp_path: Path
) -> None:
    """``mergeway apply --policy`` (the break-glass path) holds what the service holds."""
    target = tmp_path / "deploy"
    target.mkdir()
    (target / "far.yaml").write_text(configmap("far", second_namespace))
    (target / "app.yaml").write_text(configmap("app"))
    policy = tmp_path / "policy.yaml"
    argv = [sys.executable, "-m", "mergeway.cli", "apply", str(target), "-n", namespace, "--no-wait"]
    argv += ["--kubeconfig", str(kube_cluster.kubeconfig), "--policy", str(policy)]
    argv += ["--repository", "github:acme/shop", "--cluster", "local", "--applyset", "mergeway-cli.prune-test"]

    def apply(namespaces: str) -> subprocess.CompletedProcess[str]:
        policy.write_text(POLICY.format(namespaces=namespaces))
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)

    done = apply(f"{namespace}, {second_namespace}")
    assert done.returncode == 0, done.stdout + done.stderr
    (target / "far.yaml").unlink()
    done = apply(namespace)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f"not pruned (outside the policy): ConfigMap/{second_namespace}/far: namespace '{second_namespace}' "
        f"is not allowed (namespaces: {namespace})"
    ) in done.stdout
    core = k8s.CoreV1Api(kube_cluster.api_client())
    assert "far" in {c.metadata.name for c in core.list_namespaced_config_map(second_namespace).items}
