"""The policy's rules, one decision at a time (the end-to-end tests show them on a real PR).

Finding 4 (objects), 8 (branches) and 10 (ApplySet names) of issue 9, at the level an operator
writes a policy file: which rule decides, what each key allows, and that the refusal says why.
"""

from __future__ import annotations

import re

import pytest

from mergeway import policy
from mergeway.events import Repository
from mergeway.jobs.applysets import applyset_for, legacy_applyset_for
from mergeway.policy import PolicyError, PolicyObject
from mergeway.repoconfig import Environment

POLICY = policy.parse(
    """
rules:
  - repositories: ["github:acme/shop"]
    clusters: [prod]
    namespaces: [shop]
  - repositories: ["github:acme/shop"]
    clusters: [staging]
    namespaces: ["shop", "shop-*"]
    cluster_scoped_kinds: [Namespace, "ClusterRole.rbac.authorization.k8s.io"]
    denied_kinds: ["RoleBinding.rbac.authorization.k8s.io"]
    branches: ["release/*"]
"""
)
STAGING = Environment("staging", "deploy", "staging", "shop")
PROD = Environment("prod", "deploy", "prod", "shop")
KNOWN = {"staging", "prod", "dev"}


def refusals(env: Environment, *objects: PolicyObject) -> list[str]:
    return POLICY.check_objects("github", "acme/shop", env, objects)


def test_the_first_rule_matching_repository_and_cluster_decides() -> None:
    assert POLICY.check("github", "acme/shop", PROD, KNOWN).allowed
    assert POLICY.check("github", "acme/shop", STAGING, KNOWN).rule == POLICY.rules[1]  # type: ignore[index]
    dev = POLICY.check("github", "acme/shop", Environment("dev", "d", "dev", "shop"), KNOWN)
    assert not dev.allowed and dev.reason == "acme/shop may not deploy to cluster 'dev' (allowed: prod, staging)"
    assert "not allowed to deploy anywhere" in POLICY.check("github", "evil/shop", STAGING, KNOWN).reason


def test_objects_need_an_allowed_namespace_and_cluster_scope_needs_listing() -> None:
    ns = PolicyObject("", "Secret", "s", "kube-system", False, "deploy/s.yaml")
    crb = PolicyObject("rbac.authorization.k8s.io", "ClusterRoleBinding", "admin", "", True)
    role = PolicyObject("rbac.authorization.k8s.io", "ClusterRole", "reader", "", True)
    mine = PolicyObject("", "Namespace", "shop-eu", "", True)
    theirs = PolicyObject("", "Namespace", "payments", "", True)
    assert refusals(STAGING, role, mine, PolicyObject("apps", "Deployment", "web", "shop-eu", False)) == []
    assert refusals(STAGING, ns, crb, theirs) == [
        "Secret/kube-system/s (deploy/s.yaml): namespace 'kube-system' is not allowed (namespaces: shop, shop-*)",
        "ClusterRoleBinding.rbac.authorization.k8s.io/admin: ClusterRoleBinding.rbac.authorization.k8s.io is "
        "cluster-scoped and not allowed (cluster_scoped_kinds: Namespace, ClusterRole.rbac.authorization.k8s.io)",
        "Namespace/payments: namespace 'payments' is not allowed (namespaces: shop, shop-*)",
    ]
    # The prod rule lists no cluster-scoped kinds: not even a Namespace of an allowed name.
    assert refusals(PROD, PolicyObject("", "Namespace", "shop", "", True))


def test_denied_kinds_and_kinds_of_unknown_scope_are_refused() -> None:
    binding = PolicyObject("rbac.authorization.k8s.io", "RoleBinding", "b", "shop", False)
    unknown = PolicyObject("example.com", "Widget", "w", "", None)
    assert "kind RoleBinding.rbac.authorization.k8s.io is denied" in refusals(STAGING, binding)[0]
    assert "scope cannot be checked" in refusals(STAGING, unknown)[0]
    assert refusals(PROD, binding) == []


def test_refusal_names_the_rule_and_caps_the_list() -> None:
    objs = [PolicyObject("", "Secret", f"s{i}", "other", False) for i in range(60)]
    text = POLICY.refusal("github", "acme/shop", STAGING, refusals(STAGING, *objs))
    assert text.startswith("60 object(s) are outside what github:acme/shop may deploy on cluster 'staging' by policy")
    assert "rules[1] (namespaces: shop, shop-*;" in text
    assert "- … and 10 more" in text and "Nothing was sent to the cluster" in text


def test_branches_are_pinned_by_the_operator() -> None:
    def env(branch: str, cluster: str = "staging") -> Environment:
        return Environment("e", "deploy", cluster, "shop", branch=branch)

    assert POLICY.check("github", "acme/shop", env(""), KNOWN, default_branch="main").allowed
    assert POLICY.check("github", "acme/shop", env("main"), KNOWN, default_branch="main").allowed
    assert POLICY.check("github", "acme/shop", env("release/2"), KNOWN, default_branch="main").allowed
    dev = POLICY.check("github", "acme/shop", env("dev"), KNOWN, default_branch="main")
    assert not dev.allowed and "deploys from branch 'dev'" in dev.reason and "allowed: main, release/*" in dev.reason
    assert not POLICY.check("github", "acme/shop", env("release/2", "prod"), KNOWN, default_branch="main").allowed
    # allow-all is the explicit opt-out: anything the config names.
    assert policy.Policy.allow_all().check("github", "x/y", env("dev"), KNOWN).allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules:\n  - repositories: [a]\n    cluster_scoped_kind: [Namespace]\n",
            "unknown key(s): cluster_scoped_kind",
        ),
        ("rules:\n  - clusters: [a]\n", "rules[0].repositories is required"),
        ("rules:\n  - repositories: [a]\n    branches: [1]\n", "rules[0].branches must be a list of strings"),
        ("rule: []\n", "must be a mapping with a 'rules' list"),
    ],
)
def test_mistakes_in_the_policy_file_are_refused(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        policy.parse(text)


def test_applyset_names_are_distinct_for_colliding_repository_names() -> None:
    env = Environment("staging", "deploy", "local", "shop")
    names = ["acme/shop-api", "acme/shop.api", "acme-shop/api", "Acme/Shop-Api"]
    sets = [applyset_for(Repository("github", n, ""), env) for n in names]
    assert len({s.name for s in sets[:3]}) == 3
    assert sets[3].name == sets[0].name  # forges compare names case-insensitively
    for s in sets:
        assert len(s.name) <= 253 and re.fullmatch(
            r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", s.name
        )
        assert s.name.endswith(".staging") and s.name.count(".") == 1
    long = applyset_for(Repository("gitlab", "g/" + "sub/" * 80 + "p", ""), Environment("e" * 63, "d", "c"))
    assert len(long.name) <= 253
    legacy = {legacy_applyset_for(Repository("github", n, ""), env).name for n in names[:3]}
    assert len(legacy) == 1  # what the old naming did
