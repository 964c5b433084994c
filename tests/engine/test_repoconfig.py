import re
from pathlib import Path

import pytest

from mergeway import policy, repoconfig
from mergeway.repoconfig import Environment, RepoConfigError, parse

GOOD = """
environments:
  - name: staging
    path: deploy/staging
    cluster: staging
    namespace: shop
  - name: production
    path: deploy/production
    cluster: prod
    helm: {values: [deploy/prod-values.yaml]}
"""


def test_design_example_parses():
    config = repoconfig.parse(GOOD)
    assert [e.name for e in config.environments] == ["staging", "production"]
    assert config.environment("staging") == Environment("staging", "deploy/staging", "staging", "shop")
    assert config.environment("production").helm.values == ("deploy/prod-values.yaml",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("environments: []", "non-empty list"),
        ("environments:\n  - name: Staging\n    path: x\n    cluster: c", "lowercase DNS label"),
        ("environments:\n  - name: a\n    path: ../x\n    cluster: c", "without '..'"),
        ("environments:\n  - name: a\n    path: /etc\n    cluster: c", "relative"),
        ("environments:\n  - name: a\n    path: x\n    cluster: c\n    kubeconfig: /x", "unknown key(s): kubeconfig"),
        ("environments:\n  - name: a\n    path: x\n  - name: a\n    path: y\n    cluster: c", "cluster"),
        ("environments:\n  - {name: a, path: x, cluster: c}\n  - {name: a, path: y, cluster: c}", "declared twice"),
        ("environments: [", "not valid YAML"),
        ("envs: []", "unknown top-level key"),
    ],
)
def test_invalid_configs_name_the_problem(text, message):
    with pytest.raises(RepoConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        repoconfig.parse(text)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://shop.example.com", "https://", "shop.example.com", "https://a b.example"]
)
def test_an_environment_url_must_be_an_http_link(url: str) -> None:
    text = f"environments:\n  - {{name: a, path: x, cluster: c, url: {url!r}}}"
    with pytest.raises(RepoConfigError, match=r"environment 'a'\.url must be an http:// or https:// URL"):
        repoconfig.parse(text)


def test_an_environment_url_carries_no_credentials() -> None:
    text = "environments:\n  - {name: a, path: x, cluster: c, url: 'https://ops:hunter2@shop.example.com/'}"
    with pytest.raises(RepoConfigError, match="must not carry a user name or password") as refused:
        repoconfig.parse(text)
    assert "hunter2" not in str(refused.value)


def test_an_environment_url_is_kept() -> None:
    text = (
        "environments:\n  - {name: a, path: x, cluster: c, url: 'https://shop.example.com/'}\n"
        "  - {name: b, path: y, cluster: c}"
    )
    config = repoconfig.parse(text)
    assert [e.url for e in config.environments] == ["https://shop.example.com/", ""]


def test_missing_config_explains_what_to_add(tmp_path: Path):
    with pytest.raises(RepoConfigError, match="no .mergeway.yaml"):
        repoconfig.load(tmp_path)


def test_symlinked_config_is_refused(tmp_path: Path):
    (tmp_path / "real.yaml").write_text(GOOD)
    (tmp_path / ".mergeway.yaml").symlink_to(tmp_path / "real.yaml")
    with pytest.raises(RepoConfigError, match="symlink"):
        repoconfig.load(tmp_path)


POLICY = """
rules:
  - repositories: ["github:acme/shop"]
    clusters: [staging]
    namespaces: ["shop", "shop-*"]
  - repositories: ["gitlab:acme/*"]
    clusters: [staging, prod]
    namespaces: ["*"]
"""


def test_policy_limits_clusters_and_namespaces():
    p = policy.parse(POLICY)
    known = {"staging", "prod"}
    ok = Environment("s", "x", "staging", "shop-eu")
    assert p.check("github", "acme/shop", ok, known).allowed
    denied = p.check("github", "acme/shop", Environment("p", "x", "prod", "shop"), known)
    assert not denied.allowed and "may not deploy to cluster 'prod'" in denied.reason
    other_ns = p.check("github", "acme/shop", Environment("s", "x", "staging", "kube-system"), known)
    assert not other_ns.allowed and "namespace 'kube-system'" in other_ns.reason
    assert p.check("gitlab", "acme/anything", Environment("p", "x", "prod", "x"), known).allowed
    stranger = p.check("github", "evil/repo", ok, known)
    assert not stranger.allowed and "not allowed to deploy anywhere" in stranger.reason


def test_unknown_cluster_is_refused_even_without_policy():
    decision = policy.load("").check("github", "a/b", Environment("s", "x", "nowhere"), {"staging"})
    assert not decision.allowed and "not configured" in decision.reason


def _with_ignore(ignore: str) -> str:
    return f"environments: [{{name: prod, path: k8s, cluster: c1, namespace: shop, ignore: {ignore}}}]"


def test_ignore_rules_parse_into_managers_and_fields():
    env = parse(
        _with_ignore(
            "{managers: [kube-controller-manager], fields: [{kind: Deployment, name: 'web-*', paths: [/spec/replicas, "
            "/metadata/annotations/a~1b]}, {kind: ConfigMap, group: '', paths: /data/x}]}"
        )
    ).environments[0]
    assert env.ignore.managers == ("kube-controller-manager",)
    assert [(r.pointer, r.kind, r.group, r.name) for r in env.ignore.fields] == [
        ("/spec/replicas", "Deployment", None, "web-*"),
        ("/metadata/annotations/a~1b", "Deployment", None, "web-*"),
        ("/data/x", "ConfigMap", None, ""),
    ]
    assert parse(_with_ignore("{}")).environments[0].ignore.fields == ()


@pytest.mark.parametrize(
    ("ignore", "message"),
    [
        ("[a]", "environment 'prod'.ignore must be a mapping with 'managers' and/or 'fields'"),
        ("{manager: [x]}", "environment 'prod'.ignore: unknown key(s): manager (known: fields, managers)"),
        ("{managers: kube}", "environment 'prod'.ignore.managers must be a list of field manager names"),
        ("{fields: [{name: web, paths: [/spec/replicas]}]}", "environment 'prod'.ignore.fields[0].kind is required"),
        (
            "{fields: [{kind: Deployment, paths: []}]}",
            "ignore.fields[0].paths must be a non-empty list",
        ),
        (
            "{fields: [{kind: Deployment, paths: [spec.replicas]}]}",
            "paths[0]: 'spec.replicas' is not a JSON pointer",
        ),
        ("{fields: [{kind: Deployment, paths: [/metadata/name]}]}", "names what identifies an object"),
        ("{fields: [{kind: Deployment, path: [/spec/replicas]}]}", "ignore.fields[0]: unknown key(s): path"),
    ],
)
def test_invalid_ignore_rules_name_the_entry_at_fault(ignore: str, message: str):
    with pytest.raises(RepoConfigError, match=re.escape(message)):
        parse(_with_ignore(ignore))
