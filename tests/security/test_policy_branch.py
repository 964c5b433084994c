"""``branch:`` in ``.mergeway.yaml`` cannot point an environment at a branch the operator did not pin.

Issue 9, finding 8: anyone with write access could add ``branch: dev`` (an unprotected branch) to
the config and deploy without review by merging into it. With a policy that pins nothing, only the
repository's default branch deploys: the preview says so, and a merge into ``dev`` deploys nothing
and says why.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes import client as k8s

from tests.fixtures.e2e import Stack
from tests.security.policy_stack import policy_stack

pytestmark = pytest.mark.cluster
__all__ = ["policy_stack"]
POLICY = """
rules:
  - repositories: ["github:acme/shop"]
    clusters: [local]
    namespaces: ["{ns}"]
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unreviewed\ndata:\n  from: dev\n"


def test_merge_into_an_unpinned_branch_deploys_nothing_and_says_why(policy_stack: Callable[[str], Stack]) -> None:
    stack = policy_stack(POLICY)
    env = {"name": "staging", "path": "deploy", "cluster": "local", "namespace": stack.namespace, "branch": "dev"}
    repo = stack.repo(environments=[env])
    stack.sim.commit(repo, "dev", {"README.md": "# dev\n"})
    pr = stack.sim.open_pr(repo, "sneak", base="dev", files={"deploy/cm.yaml": CONFIGMAP}, title="Sneak in")

    preview = stack.status(repo, pr.head_sha, "mergeway/preview/staging")
    assert preview.state == "failure"
    assert "deploys from branch 'dev'" in preview.description

    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    deployed = stack.status(repo, sha, "mergeway/deploy/staging")
    assert deployed.state == "failure"
    assert deployed.description.startswith("Deploy failed: Not allowed by this server's policy")
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:deploy:staging -->").body
    assert "environment 'staging' deploys from branch 'dev', which the operator has not allowed" in body
    assert "(allowed: main;" in body

    core = k8s.CoreV1Api(stack.cluster.api_client())
    names = {c.metadata.name for c in core.list_namespaced_config_map(stack.namespace).items}
    assert "unreviewed" not in names
    assert not any(n.startswith("mergeway-") for n in names)  # not even an ApplySet parent was written
