"""A repository allowed one namespace cannot reach outside it, not even with a dry run.

Issue 9, finding 4: the policy used to limit only the environment's default namespace, so a PR
could add a ClusterRoleBinding to cluster-admin, plant a Secret in kube-system, and use the preview
(a server-side dry run, ``***`` vs ``*** (before)/(after)``) to test guesses of Secrets in other
namespaces. Through the real chain with a real policy file: every such object is refused before any
request about it, the PR says which and why, and merging creates none of them.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Callable, Iterator

import pytest
import yaml
from kubernetes import client as k8s

from tests.fixtures.cluster import KubeCluster
from tests.fixtures.e2e import Stack
from tests.security.policy_stack import policy_stack

pytestmark = pytest.mark.cluster
__all__ = ["policy_stack"]  # the fixture, imported for this module
PREVIEW, DEPLOY = "mergeway/preview/staging", "mergeway/deploy/staging"
PREVIEW_MARKER, DEPLOY_MARKER = "<!-- mergeway:preview:staging -->", "<!-- mergeway:deploy:staging -->"
POLICY = """
rules:
  - repositories: ["github:acme/shop"]
    clusters: [local]
    namespaces: ["{ns}"]
"""
REAL_PASSWORD = "the-real-db-password-7f3a"
GUESS = "guessed-password-0000"


@pytest.fixture
def victim(kube_cluster: KubeCluster) -> Iterator[str]:
    """Another team's namespace holding a Secret the attacker tries to guess."""
    core = k8s.CoreV1Api(kube_cluster.api_client())
    name = f"t-victim-{uuid.uuid4().hex[:6]}"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    core.create_namespaced_secret(
        name, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="db"), string_data={"password": REAL_PASSWORD})
    )
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def _manifests(namespace: str, victim: str, tag: str) -> dict[str, str | None]:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{tag}-pwn"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
    }
    planted = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{tag}-planted", "namespace": "kube-system"},
        "stringData": {"token": "attacker"},
    }
    guess = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": victim},
        "stringData": {"password": GUESS},
    }
    allowed = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"mode": "prod"}}
    return {
        "deploy/binding.yaml": yaml.safe_dump(binding),
        "deploy/planted.yaml": yaml.safe_dump(planted),
        "deploy/guess.yaml": yaml.safe_dump(guess),
        "deploy/app.yaml": yaml.safe_dump(allowed),
    }


@pytest.fixture
def tag(kube_cluster: KubeCluster, namespace: str) -> Iterator[str]:
    """Names of the cluster-wide objects the attack tries to create; removed if a broken build made them."""
    yield namespace
    api = kube_cluster.api_client()
    with contextlib.suppress(k8s.ApiException):
        k8s.RbacAuthorizationV1Api(api).delete_cluster_role_binding(f"{namespace}-pwn")
    with contextlib.suppress(k8s.ApiException):
        k8s.CoreV1Api(api).delete_namespaced_secret(f"{namespace}-planted", "kube-system")


def test_objects_outside_the_allowed_namespace_are_refused_and_never_reach_the_cluster(
    policy_stack: Callable[[str], Stack], victim: str, tag: str
) -> None:
    stack = policy_stack(POLICY)
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "escalate", files=_manifests(stack.namespace, victim, tag), title="Add app")

    status = stack.status(repo, pr.head_sha, PREVIEW)
    assert status.state == "failure", status.description
    assert status.description.startswith("Preview failed: Not allowed by this server's policy: 3 object(s)")
    body = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    assert f"ClusterRoleBinding.rbac.authorization.k8s.io/{tag}-pwn (deploy/binding.yaml): " in body
    assert "is cluster-scoped and not allowed (cluster_scoped_kinds: none)" in body
    assert f"Secret/kube-system/{tag}-planted (deploy/planted.yaml): namespace 'kube-system' is not allowed" in body
    assert f"Secret/{victim}/db (deploy/guess.yaml): namespace '{victim}' is not allowed" in body
    assert f"policy rules[0] (namespaces: {stack.namespace}; cluster_scoped_kinds: none)" in body
    assert "ConfigMap/" not in body  # the allowed object is not listed as an offender
    # No dry run happened, so no masked before/after rows that would confirm or refute the guess.
    assert "***" not in body and "(before)" not in body

    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    deployed = stack.status(repo, sha, DEPLOY)
    assert deployed.state == "failure"
    assert "Not allowed by this server's policy" in deployed.description
    assert f"Secret/{victim}/db" in stack.only_comment(repo, pr.number, DEPLOY_MARKER).body

    api = stack.cluster.api_client()
    rbac, core = k8s.RbacAuthorizationV1Api(api), k8s.CoreV1Api(api)
    assert f"{tag}-pwn" not in {b.metadata.name for b in rbac.list_cluster_role_binding().items}
    assert f"{tag}-planted" not in {s.metadata.name for s in core.list_namespaced_secret("kube-system").items}
    live = core.read_namespaced_secret("db", victim)
    assert not any(m.manager == "mergeway" for m in live.metadata.managed_fields or [])
    assert base64.b64decode(live.data["password"]).decode() == REAL_PASSWORD
    # One offender refuses the whole environment: not even the allowed ConfigMap was applied.
    assert "app" not in {c.metadata.name for c in core.list_namespaced_config_map(stack.namespace).items}


DENYING_POLICY = """
rules:
  - repositories: ["github:acme/shop"]
    clusters: [local]
    namespaces: ["{ns}"]
    denied_kinds: ["Secret"]
"""


def test_a_denied_kind_is_refused_in_preview_and_deploy_and_never_applied(
    policy_stack: Callable[[str], Stack],
) -> None:
    """``denied_kinds`` end to end: a Secret in the rule's own namespace is still refused."""
    stack = policy_stack(DENYING_POLICY)
    repo = stack.repo()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"k": "v"}}
    allowed = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"mode": "prod"}}
    files = {"deploy/creds.yaml": yaml.safe_dump(secret), "deploy/app.yaml": yaml.safe_dump(allowed)}
    pr = stack.sim.open_pr(repo, "creds", files=files, title="Add creds")

    status = stack.status(repo, pr.head_sha, PREVIEW)
    assert status.state == "failure", status.description
    assert status.description.startswith("Preview failed: Not allowed by this server's policy: 1 object(s)")
    body = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    assert f"Secret/{stack.namespace}/creds (deploy/creds.yaml): kind Secret is denied (denied_kinds: Secret)" in body
    assert "ConfigMap/" not in body
    assert "rendered with plain" in body  # refused after rendering: the comment still says what rendered

    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    deployed = stack.status(repo, sha, DEPLOY)
    assert deployed.state == "failure", deployed.description
    assert "Not allowed by this server's policy" in deployed.description
    assert "kind Secret is denied" in stack.only_comment(repo, pr.number, DEPLOY_MARKER).body
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert "creds" not in {s.metadata.name for s in core.list_namespaced_secret(stack.namespace).items}
    assert "app" not in {c.metadata.name for c in core.list_namespaced_config_map(stack.namespace).items}


def test_a_hook_outside_the_allowed_namespace_is_refused_and_never_runs(
    policy_stack: Callable[[str], Stack], victim: str
) -> None:
    """A hook runs before anything is applied: it passes the policy like every other object, or nothing runs."""
    stack = policy_stack(POLICY)
    repo = stack.repo()
    hook = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "exfiltrate", "namespace": victim, "annotations": {"mergeway.io/hook": "pre-deploy"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "registry.local/x:1"}]}
            },
        },
    }
    files: dict[str, str | None] = {"deploy/hook.yaml": yaml.safe_dump(hook)}
    pr = stack.sim.open_pr(repo, "hook", files=files, title="Add a migration")

    status = stack.status(repo, pr.head_sha, PREVIEW)
    assert status.state == "failure", status.description
    body = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    assert f"Job.batch/{victim}/exfiltrate (deploy/hook.yaml): namespace '{victim}' is not allowed" in body

    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    assert stack.status(repo, sha, DEPLOY).state == "failure"
    jobs = k8s.BatchV1Api(stack.cluster.api_client()).list_namespaced_job(victim).items
    assert "exfiltrate" not in {j.metadata.name for j in jobs}
