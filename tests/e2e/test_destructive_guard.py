"""The destructive-change guard as users meet it (issue 26): allowing before the merge, answers to
allowances that do not count, and the prunes it holds (a Namespace, a CRD, a ``mergeway.io/protect``
object), on GitHub and GitLab, through the whole chain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from tests.fixtures.e2e import Stack
from tests.security.guard_support import (
    DEPLOY,
    DEPLOY_MARKER,
    PREVIEW,
    PREVIEW_MARKER,
    allow,
    configmap_exists,
    deploy_status,
    deployed,
    head,
    merge,
    protected,
    reply,
)
from tests.security.identity_support import held_webhooks

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_a_writers_allowance_before_the_merge_prunes_on_merge(stack: Stack, forge: str) -> None:
    repo = deployed(
        stack, {"deploy/keep.yaml": protected("keep"), "deploy/other.yaml": protected("other")}, forge=forge
    )
    stack.sim.set_permission(repo, "carol", "write")
    pr = stack.sim.open_pr(repo, "drop", files={"deploy/keep.yaml": None})  # previewed
    assert stack.status(repo, head(stack, repo, pr), PREVIEW).state == "success"
    preview = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    command = f"/allow-destructive staging {head(stack, repo, pr)[:12]}"
    assert f"comments `{command}`" in preview

    allow(stack, repo, pr, "carol")
    noted = reply(stack, repo, pr, "Noted")
    assert f"merging !{pr.number}" in noted or f"merging #{pr.number}" in noted
    assert f"`{head(stack, repo, pr)[:12]}`" in noted and "@carol" in noted
    description = deploy_status(stack, repo, merge(stack, repo, pr))

    assert "1 pruned" in description and "held back" not in description, description
    assert not configmap_exists(stack, "keep") and configmap_exists(stack, "other")


def test_allowances_that_do_not_count_are_answered_and_the_prune_stays_held(stack: Stack) -> None:
    repo = deployed(stack, {"deploy/keep.yaml": protected("keep")})
    stack.sim.set_permission(repo, "carol", "write")
    stack.sim.set_permission(repo, "rita", "read")
    with held_webhooks(stack, "github"):
        pr = stack.sim.open_pr(repo, "drop", files={"deploy/keep.yaml": None})
    sha12 = head(stack, repo, pr)[:12]

    stack.sim.comment(repo, pr, "/allow-destructive", author="carol")
    text = reply(stack, repo, pr, "name one environment and the commit you reviewed")
    assert f"`/allow-destructive <environment> {sha12}`" in text and "Nothing was changed." in text
    allow(stack, repo, pr, "carol", env="prod")
    text = reply(stack, repo, pr, "is not an environment")
    assert "`prod` is not an environment of this repository (`staging`)" in text
    allow(stack, repo, pr, "rita")
    text = reply(stack, repo, pr, "only users with write access")
    assert "@rita" in text and "`/allow-destructive`" in text

    description = deploy_status(stack, repo, merge(stack, repo, pr))
    assert "1 destructive held back" in description, description
    assert configmap_exists(stack, "keep")
    held = stack.only_comment(repo, pr.number, DEPLOY_MARKER).body
    assert f"`/allow-destructive staging {sha12}`" in held


CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
"""


@pytest.fixture
def extra(stack: Stack) -> Iterator[tuple[str, str]]:
    """A namespace and a CRD group of this test's own, removed afterwards if the test left them."""
    names = (f"{stack.namespace}-extra", f"{stack.namespace}.guard.mergeway.test")
    yield names
    api = stack.cluster.api_client()
    for delete in (
        lambda: k8s.CoreV1Api(api).delete_namespace(names[0]),
        lambda: k8s.ApiextensionsV1Api(api).delete_custom_resource_definition(f"widgets.{names[1]}"),
    ):
        try:
            delete()
        except k8s.ApiException as exc:
            if exc.status != 404:
                raise


def _gone_or_going(read) -> bool:  # type: ignore[no-untyped-def]
    try:
        obj = read()
    except k8s.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return obj.metadata.deletion_timestamp is not None


def test_prunes_of_a_namespace_a_crd_and_a_protected_object_are_held_until_allowed(
    stack: Stack, extra: tuple[str, str]
) -> None:
    namespace, group = extra
    files: dict[str, str | None] = {
        "deploy/ns.yaml": f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n",
        "deploy/crd.yaml": CRD.format(group=group),
        "deploy/keep.yaml": protected("keep"),
    }
    repo = deployed(stack, files)
    stack.sim.set_permission(repo, "carol", "write")
    pr = stack.sim.open_pr(repo, "drop-all", files=dict.fromkeys(files))
    assert stack.status(repo, head(stack, repo, pr), PREVIEW).state == "success"
    preview = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    risks = preview[preview.index("Look at these first") : preview.index("| | object |")]
    assert f"🔥 **prunes** `Namespace/{namespace}`: every object in the namespace is deleted with it" in risks
    assert f"🔥 **prunes** `CustomResourceDefinition/widgets.{group}`: every custom resource" in risks
    assert f"🔥 **prunes** `ConfigMap/{stack.namespace}/keep`: it is annotated `mergeway.io/protect`" in risks

    sha = merge(stack, repo, pr)
    description = deploy_status(stack, repo, sha)
    assert "3 destructive held back" in description, description
    api = stack.cluster.api_client()
    read_ns = lambda: k8s.CoreV1Api(api).read_namespace(namespace)  # noqa: E731
    read_crd = lambda: k8s.ApiextensionsV1Api(api).read_custom_resource_definition(f"widgets.{group}")  # noqa: E731
    assert not _gone_or_going(read_ns) and not _gone_or_going(read_crd) and configmap_exists(stack, "keep")

    allow(stack, repo, pr, "carol")  # after the merge: the deploy runs again, with them
    stack.wait(
        lambda: (s := stack.sim.latest_status(repo, sha, DEPLOY)) and "3 pruned" in s.description and s,
        timeout=150,
        message="the deploy after /allow-destructive",
    )
    assert _gone_or_going(read_ns) and _gone_or_going(read_crd) and not configmap_exists(stack, "keep")
