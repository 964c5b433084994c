"""prepare(): the one step from a rendered object to the desired object (namespace, labels, ignored fields, hash)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mergeway.kube.normalize import CONFIG_HASH
from mergeway.kube.options import ApplyOptions, IgnoreRule
from mergeway.kube.prepare import prepare, yield_to_managers
from mergeway.manifest import effective_namespace


def deployment(name: str = "web", namespace: str = "", replicas: int = 3) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "annotations": {"team": "shop"}}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {"containers": [{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}]}
            },
        },
    }


def test_namespace_is_the_objects_own_else_the_environments_else_default() -> None:
    assert effective_namespace("mine", "env") == "mine"
    assert effective_namespace("", "env") == "env"
    assert effective_namespace("", "") == "default"
    assert effective_namespace("mine", "env", namespaced=False) == ""
    assert effective_namespace("mine", "env", namespaced=None) == ""  # scope unknown: no namespace claimed

    assert prepare(deployment(), namespaced=True, default_namespace="shop")["metadata"]["namespace"] == "shop"
    cluster_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "r", "namespace": "x"},
    }
    assert "namespace" not in prepare(cluster_role, namespaced=False, default_namespace="shop")["metadata"]


def test_prepare_adds_ownership_labels_and_a_hash_and_leaves_the_rendered_object_alone() -> None:
    rendered = deployment()
    before = copy.deepcopy(rendered)
    desired = prepare(
        rendered, namespaced=True, default_namespace="shop", labels={"applyset.kubernetes.io/part-of": "id"}
    )
    assert desired["metadata"]["labels"] == {"applyset.kubernetes.io/part-of": "id"}
    assert desired["metadata"]["annotations"]["team"] == "shop"
    assert len(desired["metadata"]["annotations"][CONFIG_HASH]) == 32
    assert rendered == before


def test_an_ignored_field_is_dropped_before_hashing_so_its_value_never_counts() -> None:
    ignore = ApplyOptions(ignore=(IgnoreRule("/spec/replicas", kind="Deployment", name="web*"),))
    three = prepare(deployment(replicas=3), namespaced=True, options=ignore)
    five = prepare(deployment(replicas=5), namespaced=True, options=ignore)
    assert "replicas" not in three["spec"]
    assert three["metadata"]["annotations"][CONFIG_HASH] == five["metadata"]["annotations"][CONFIG_HASH]
    # Without the rule the replica count is Mergeway's, and part of the hash.
    assert prepare(deployment(replicas=3), namespaced=True)["spec"]["replicas"] == 3
    assert (
        prepare(deployment(replicas=3), namespaced=True)["metadata"]["annotations"][CONFIG_HASH]
        != prepare(deployment(replicas=5), namespaced=True)["metadata"]["annotations"][CONFIG_HASH]
    )


@pytest.mark.parametrize(
    ("rule", "dropped"),
    [
        (IgnoreRule("/spec/replicas", kind="Deployment"), True),
        (IgnoreRule("/spec/replicas", kind="StatefulSet"), False),
        (IgnoreRule("/spec/replicas", group="apps"), True),
        (IgnoreRule("/spec/replicas", group=""), False),
        (IgnoreRule("/spec/replicas", name="api"), False),
        (IgnoreRule("/spec/replicas", namespace="shop-*"), True),
        (IgnoreRule("/spec/replicas", namespace="prod"), False),
    ],
)
def test_ignore_rules_select_by_kind_group_name_and_namespace(rule: IgnoreRule, dropped: bool) -> None:
    desired = prepare(deployment(namespace="shop-eu"), namespaced=True, options=ApplyOptions(ignore=(rule,)))
    assert ("replicas" not in desired["spec"]) is dropped


def test_pointers_reach_escaped_keys_and_list_items_and_missing_paths_are_no_error() -> None:
    obj = deployment()
    obj["metadata"]["annotations"]["example.com/owner"] = "ops"
    rules = (
        IgnoreRule("/metadata/annotations/example.com~1owner"),
        IgnoreRule("/spec/template/spec/containers/0/image"),
        IgnoreRule("/spec/not/there"),
        IgnoreRule("/spec/template/spec/containers/7/image"),
    )
    desired = prepare(obj, namespaced=True, options=ApplyOptions(ignore=rules))
    assert "example.com/owner" not in desired["metadata"]["annotations"]
    assert desired["spec"]["template"]["spec"]["containers"][0] == {"name": "app", "env": [{"name": "A", "value": "1"}]}
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1"  # the rendered object is untouched


@pytest.mark.parametrize(
    "pointer", ["spec/replicas", "", "/", "/kind", "/apiVersion", "/metadata", "/metadata/name", "/metadata/namespace"]
)
def test_a_rule_cannot_remove_what_identifies_an_object(pointer: str) -> None:
    with pytest.raises(ValueError):
        IgnoreRule(pointer)


def managed(manager: str, fields: dict[str, Any], operation: str = "Update") -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "fieldsType": "FieldsV1", "fieldsV1": fields}


def test_fields_a_respected_manager_owns_are_dropped_and_the_hash_follows() -> None:
    desired = prepare(deployment(namespace="shop"), namespaced=True)
    live = copy.deepcopy(desired)
    live["metadata"]["managedFields"] = [
        managed("mergeway", {"f:spec": {"f:template": {}}}, "Apply"),
        managed("kubectl-scale", {"f:spec": {"f:replicas": {}}}),
        managed(
            "hpa-sidecar",
            {
                "f:spec": {
                    "f:template": {
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"app"}': {
                                    ".": {},
                                    "f:name": {},
                                    "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}},
                                }
                            }
                        }
                    }
                }
            },
        ),
    ]
    scaled = yield_to_managers(desired, live, frozenset({"kubectl-scale"}))
    assert "replicas" not in scaled["spec"]
    assert scaled["metadata"]["name"] == "web" and scaled["metadata"]["namespace"] == "shop"
    assert scaled["metadata"]["annotations"][CONFIG_HASH] != desired["metadata"]["annotations"][CONFIG_HASH]
    assert desired["spec"]["replicas"] == 3  # not modified in place

    both = yield_to_managers(desired, live, frozenset({"kubectl-scale", "hpa-sidecar"}))
    [container] = both["spec"]["template"]["spec"]["containers"]
    assert container == {"name": "app", "image": "app:1"}  # the keyed env item went whole; the key "name" stayed

    # A manager not respected, or no live object: the desired object as it was.
    assert yield_to_managers(desired, live, frozenset({"someone-else"})) is desired
    assert yield_to_managers(desired, None, frozenset({"kubectl-scale"})) is desired


def test_a_respected_manager_never_takes_the_objects_identity() -> None:
    desired = prepare(deployment(namespace="shop"), namespaced=True)
    live = copy.deepcopy(desired)
    live["metadata"]["managedFields"] = [
        managed(
            "grabby",
            {
                "f:apiVersion": {},
                "f:kind": {},
                "f:metadata": {"f:name": {}, "f:namespace": {}, "f:annotations": {"f:team": {}}},
            },
        )
    ]
    out = yield_to_managers(desired, live, frozenset({"grabby"}))
    assert (out["apiVersion"], out["kind"], out["metadata"]["name"], out["metadata"]["namespace"]) == (
        "apps/v1",
        "Deployment",
        "web",
        "shop",
    )
    assert "team" not in out["metadata"]["annotations"]
