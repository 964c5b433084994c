"""Which deletions the policy holds, one decision at a time (test_policy_prune shows them on a real PR).

Issue 24, finding 3, at the level an operator reads a policy: a deletion is checked by the same
rule as an applied object (namespace, cluster scope, denied kinds), allow-all holds nothing, the
destructive-change guard never sees a held deletion, and any object with an ApplySet parent's
identity is recognised.
"""

from __future__ import annotations

from typing import Any

import pytest

from mergeway import policy
from mergeway.events import Repository
from mergeway.jobs.applysets import applyset_for, legacy_applyset_for, parent_impostor
from mergeway.jobs.prunes import PruneCheck
from mergeway.kube.applyset import ID_LABEL, NAMESPACES
from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan
from mergeway.kube.discovery import Resource
from mergeway.render.manifests import Manifest
from mergeway.repoconfig import Environment

POLICY = policy.parse(
    """
rules:
  - repositories: ["github:acme/shop"]
    clusters: [staging]
    namespaces: ["shop"]
    denied_kinds: ["Secret"]
"""
)
ENV = Environment("staging", "deploy", "staging", "shop")
CONFIGMAPS = Resource("", "v1", "ConfigMap", "configmaps", True)
SECRETS = Resource("", "v1", "Secret", "secrets", True)
ROLES = Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False)


def delete(resource: Resource, namespace: str, name: str) -> ObjectDiff:
    ref = ObjectRef(resource.group, resource.kind, namespace, name)
    return ObjectDiff(ref, "delete", resource=resource)


PLAN = Plan(
    [
        ObjectDiff(ObjectRef("", "ConfigMap", "shop", "kept"), "unchanged", resource=CONFIGMAPS),
        delete(CONFIGMAPS, "shop", "gone"),
        delete(CONFIGMAPS, "shop-old", "far"),
        delete(SECRETS, "shop", "token"),
        delete(ROLES, "", "reader"),
    ]
)


def test_deletions_outside_the_current_rule_are_held_with_the_rules_reason() -> None:
    check = PruneCheck(POLICY, "github", "acme/shop", ENV)
    shown = check.split(PLAN)
    assert [(i.ref.name, i.action) for i in shown.items] == [("kept", "unchanged"), ("gone", "delete")]
    assert check.lines() == [
        "ConfigMap/shop-old/far: namespace 'shop-old' is not allowed (namespaces: shop)",
        "Secret/shop/token: kind Secret is denied (denied_kinds: Secret)",
        "ClusterRole/reader: ClusterRole.rbac.authorization.k8s.io is cluster-scoped and not allowed "
        "(cluster_scoped_kinds: none)",
    ]


def test_allow_all_holds_nothing_and_a_repository_without_a_rule_prunes_nothing() -> None:
    assert PruneCheck(policy.Policy.allow_all(), "github", "acme/shop", ENV).split(PLAN).count("delete") == 4
    stranger = PruneCheck(POLICY, "github", "evil/shop", ENV)
    assert stranger.split(PLAN).count("delete") == 0 and len(stranger.held) == 4


def test_the_destructive_guard_never_sees_a_held_deletion() -> None:
    seen: list[ObjectRef] = []

    def guard(plan: Plan) -> set[ObjectRef]:
        seen.extend(i.ref for i in plan.items if i.action == "delete")
        return {i.ref for i in plan.items if i.ref.name == "gone"}

    held = PruneCheck(POLICY, "github", "acme/shop", ENV).holding(guard)(PLAN)
    assert [r.name for r in seen] == ["gone"]
    assert {r.name for r in held} == {"gone", "far", "token", "reader"}


def _configmap(name: str, **metadata: Any) -> Manifest:
    return Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata}}, "x.yaml")


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_every_mergeway_parent_name_and_any_parent_mark_is_recognised(forge: str) -> None:
    repo = Repository(forge=forge, full_name="Acme/Shop.API", clone_url="https://example.com/x.git")
    for applyset in (applyset_for(repo, ENV), legacy_applyset_for(repo, ENV)):
        assert "named like a Mergeway ApplySet parent" in parent_impostor(_configmap(applyset.name))
    assert "named like" in parent_impostor(_configmap("mergeway-cli.deploy"))
    assert ID_LABEL in parent_impostor(_configmap("app", labels={ID_LABEL: "applyset-x-v1"}))
    assert NAMESPACES in parent_impostor(_configmap("app", annotations={NAMESPACES: "kube-system"}))
    for ordinary in ("mergeway", "mergeway-config", "app.v2", "my-mergeway-x.staging"):
        assert parent_impostor(_configmap(ordinary)) == ""
    secret = Manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mergeway-x.staging"}}, "s.yaml")
    assert parent_impostor(secret) == ""  # parents are ConfigMaps; only their marks count on other kinds
