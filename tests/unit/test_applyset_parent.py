"""The ApplySet parent without a cluster: what it records, whose it is, and when it is rewritten."""

from __future__ import annotations

from mergeway.kube.applyset import (
    COMMIT_ANNOTATION,
    GROUP_KINDS,
    NAMESPACES,
    REPOSITORY_ANNOTATION,
    THIS_TOOLING,
    TOOLING,
    ApplySet,
    Parent,
)

OURS = ApplySet("mergeway-github-acme-shop-0123456789abcdef.staging", "shop", "github:acme/shop", "staging")


def stored(applyset: ApplySet, parent: Parent) -> Parent:
    """The parent as the next read finds it: written as a ConfigMap, parsed back."""
    return Parent.parse(applyset.manifest(parent)["metadata"]["annotations"])


def test_the_parent_lists_kinds_and_other_namespaces_as_kubectl_does() -> None:
    parent = OURS.parent(["Service", "Deployment.apps", "Service"], ["shop", "", "shop-jobs", "cache"], "c1")
    annotations = OURS.manifest(parent)["metadata"]["annotations"]
    assert annotations[GROUP_KINDS] == "Deployment.apps,Service"
    assert annotations[NAMESPACES] == "cache,shop-jobs"  # its own namespace is implied
    assert annotations[TOOLING] == THIS_TOOLING and annotations[COMMIT_ANNOTATION] == "c1"
    assert annotations[REPOSITORY_ANNOTATION] == "github:acme/shop"
    assert stored(OURS, parent) == parent


def test_a_deploy_that_changes_nothing_does_not_rewrite_the_parent() -> None:
    parent = OURS.parent(["ConfigMap"], ["shop"], "c1")
    assert OURS.current(stored(OURS, parent), OURS.parent(["ConfigMap"], [], "c1"))


def test_a_new_commit_kind_namespace_or_version_rewrites_it() -> None:
    was = stored(OURS, OURS.parent(["ConfigMap"], [], "c1"))
    assert not OURS.current(None, OURS.parent(["ConfigMap"], [], "c1"))
    assert not OURS.current(was, OURS.parent(["ConfigMap"], [], "c2"))
    assert not OURS.current(was, OURS.parent(["ConfigMap"], [], ""))  # a commit is never left behind
    assert not OURS.current(was, OURS.parent(["ConfigMap", "Service"], [], "c1"))
    assert not OURS.current(was, OURS.parent(["ConfigMap"], ["cache"], "c1"))
    older = Parent.parse({**OURS.manifest(was)["metadata"]["annotations"], TOOLING: "mergeway/v0.0.1"})
    assert not OURS.current(older, OURS.parent(["ConfigMap"], [], "c1"))


def test_a_parent_records_its_owner_exactly_and_is_ours_whatever_the_case() -> None:
    renamed = ApplySet(OURS.name, OURS.namespace, "github:Acme/Shop", "staging")
    found = stored(renamed, renamed.parent(["ConfigMap"]))
    assert OURS.owns(found)
    assert not OURS.current(found, OURS.parent(["ConfigMap"]))  # rewritten with the current spelling


def test_a_parent_of_another_repository_or_environment_is_not_ours() -> None:
    for owner, env in (("github:evil/shop", "staging"), ("github:acme/shop", "prod")):
        other = ApplySet(OURS.name, OURS.namespace, owner, env)
        assert not OURS.owns(stored(other, other.parent()))


def test_parents_without_an_owner_and_sets_named_by_hand_accept_any_owner() -> None:
    legacy = ApplySet("mergeway-github-acme-shop.staging", "shop")
    assert OURS.owns(stored(legacy, legacy.parent(["ConfigMap"])))
    by_hand = ApplySet(OURS.name, OURS.namespace)
    recorded = stored(OURS, OURS.parent(["ConfigMap"], [], "c1"))
    assert by_hand.owns(recorded)
    assert by_hand.current(recorded, by_hand.parent(["ConfigMap"], [], "c1"))
