"""The destructive-change guard releases only what a second person allowed (finding 5 of issue 24).

Before these tests, any ``/allow-destructive <env>`` comment from someone with write access released
every destructive change of the deploy: written before a later push, by the pull request's own
author, malformed (``/allow-destructive a b staging``), and including changes held from another pull
request; the label counted whoever set it (GitHub Triage, GitLab Reporter); and an added
``ownerReferences`` entry, which makes the garbage collector delete the object, was not flagged.
Each test merges through the whole chain and shows the deletion held.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from tests.e2e.test_comments import storage, volume_cleanup  # noqa: F401  (a fixture)
from tests.fixtures.e2e import Stack
from tests.security.guard_support import (
    ALLOW_LABEL,
    PREVIEW,
    PREVIEW_MARKER,
    allow,
    configmap_exists,
    deploy_status,
    deployed,
    head,
    merge,
    protected,
)
from tests.security.identity_support import held_webhooks

pytestmark = pytest.mark.cluster


def test_allowances_from_before_the_last_push_from_the_author_or_malformed_do_not_count(stack: Stack) -> None:
    repo = deployed(stack, {"deploy/keep.yaml": protected("keep")})
    stack.sim.set_permission(repo, "carol", "write")
    with held_webhooks(stack, "github"):  # the deploy reads the comments from the forge: no need to send them
        pr = stack.sim.open_pr(repo, "drop", files={"deploy/keep.yaml": None})  # by alice, a writer
        allow(stack, repo, pr, "carol")  # reviewed, then...
        stack.sim.push(repo, pr, {"README.md": "pushed after the review\n"})
        allow(stack, repo, pr, "alice")  # the author allowing her own change
        stack.sim.comment(repo, pr, "/allow-destructive a b staging", author="carol")  # refused by the handler
        stack.sim.comment(repo, pr, "/allow-destructive staging", author="carol")  # names no commit

    description = deploy_status(stack, repo, merge(stack, repo, pr))

    assert "1 destructive held back" in description, description
    assert configmap_exists(stack, "keep")


def test_an_allowance_releases_only_its_own_pull_requests_changes(stack: Stack) -> None:
    repo = deployed(stack, {"deploy/a.yaml": protected("a"), "deploy/b.yaml": protected("b")})
    stack.sim.set_permission(repo, "carol", "write")
    with held_webhooks(stack, "github"):
        first = stack.sim.open_pr(repo, "drop-a", files={"deploy/a.yaml": None})
    assert "1 destructive held back" in deploy_status(stack, repo, merge(stack, repo, first))
    with held_webhooks(stack, "github"):
        second = stack.sim.open_pr(repo, "drop-b", files={"deploy/b.yaml": None})
        allow(stack, repo, second, "carol")

    description = deploy_status(stack, repo, merge(stack, repo, second))

    assert "1 pruned" in description and "1 destructive held back" in description, description
    assert not configmap_exists(stack, "b")  # allowed: the second pull request's own prune
    assert configmap_exists(stack, "a")  # still held: the first pull request was never allowed


@pytest.mark.parametrize(("forge", "role"), [("github", "triage"), ("gitlab", "reporter")])
def test_a_label_set_by_someone_without_write_access_does_not_count(stack: Stack, forge: str, role: str) -> None:
    repo = deployed(stack, {"deploy/keep.yaml": protected("keep")}, forge=forge)
    stack.sim.set_permission(repo, "trish", role)  # may set labels, may not push
    with held_webhooks(stack, forge):
        pr = stack.sim.open_pr(repo, "drop", files={"deploy/keep.yaml": None})
    stack.sim.label(repo, pr, ALLOW_LABEL, by="trish")

    description = deploy_status(stack, repo, merge(stack, repo, pr))

    assert "1 destructive held back" in description, description
    assert configmap_exists(stack, "keep")


OWNED = """  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: gone
    uid: 6f1d3b2a-0000-4000-8000-000000000000
"""


def test_an_owner_reference_added_to_a_deployed_claim_is_flagged_and_held(stack: Stack, volume_cleanup) -> None:  # noqa: F811
    ns = stack.namespace
    files = storage(ns)
    repo = deployed(stack, files)
    claim = files["deploy/pvc.yaml"]
    assert claim
    owned = claim.replace("  name: data\n", f"  name: data\n{OWNED}")
    pr = stack.sim.open_pr(repo, "own", files={"deploy/pvc.yaml": owned})  # previewed

    assert stack.status(repo, head(stack, repo, pr), PREVIEW).state == "success"
    body = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    risks = body[body.index("Look at these first") : body.index("| | object |")]
    assert f"🗑️ **lets Kubernetes delete** `PersistentVolumeClaim/{ns}/data`: an `ownerReferences` entry" in risks
    description = deploy_status(stack, repo, merge(stack, repo, pr))

    assert "1 destructive held back" in description, description
    live = k8s.CoreV1Api(stack.cluster.api_client()).read_namespaced_persistent_volume_claim("data", ns)
    assert not live.metadata.owner_references and live.metadata.deletion_timestamp is None
