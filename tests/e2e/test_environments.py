"""Environments as a repository configures them, deployed end to end: kustomize and Helm, `branch`
and `auto_deploy`, immutable fields, a rewritten target branch and a manifest that is not YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from mergeway.kube.applyset import COMMIT_ANNOTATION
from tests.conftest import SHARED
from tests.fixtures.e2e import Stack

pytestmark = pytest.mark.cluster
PODINFO = SHARED / "manifests" / "podinfo"


def tree(source: Path, prefix: str) -> dict[str, str | None]:
    return {f"{prefix}/{p.relative_to(source)}": p.read_text() for p in sorted(source.rglob("*")) if p.is_file()}


def cm(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n"


def merged_sha(stack: Stack, repo, pr) -> str:
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return sha


def available(apps: k8s.AppsV1Api, namespace: str, name: str) -> bool:
    dep = apps.read_namespaced_deployment(name, namespace)
    return bool(dep.status.available_replicas) and dep.status.available_replicas == dep.spec.replicas


def test_merging_deploys_a_kustomize_overlay_and_a_helm_chart(stack: Stack):
    ns = stack.namespace
    overlay = {"namespace": ns, "resources": ["../../bases/backend", "../../bases/frontend", "../../bases/cache"]}
    files = {
        **tree(PODINFO / "deploy" / "bases", "apps/podinfo/bases"),
        "apps/podinfo/overlays/test/kustomization.yaml": yaml.safe_dump(overlay),
        **tree(PODINFO / "charts" / "podinfo", "charts/podinfo"),
    }
    envs = [
        # The namespace also keeps the ApplySet parent in the test's namespace (not in a shared "default").
        {"name": "overlay", "path": "apps/podinfo/overlays/test", "cluster": "local", "namespace": ns},
        {"name": "chart", "path": "charts/podinfo", "cluster": "local", "namespace": ns, "helm": {"release": "web"}},
    ]
    repo = stack.repo(environments=envs)
    pr = stack.sim.open_pr(repo, "podinfo", files=files)
    sha = merged_sha(stack, repo, pr)

    kustomized = stack.status(repo, sha, "mergeway/deploy/overlay", timeout=150)
    assert kustomized.state == "success", kustomized.description
    assert "9 added" in kustomized.description
    chart = stack.status(repo, sha, "mergeway/deploy/chart", timeout=150)
    assert chart.state == "success", chart.description
    assert "2 added" in chart.description

    apps, core = k8s.AppsV1Api(stack.cluster.api_client()), k8s.CoreV1Api(stack.cluster.api_client())
    for name in ("backend", "frontend", "cache", "web-podinfo"):
        assert available(apps, ns, name), f"Deployment {name} is not available after a successful deploy"
    generated = [c.metadata.name for c in core.list_namespaced_config_map(ns).items]
    assert any(n.startswith("redis-config-") for n in generated), generated  # kustomize's hashed generator name
    labels = apps.read_namespaced_deployment("web-podinfo", ns).metadata.labels
    assert labels["app.kubernetes.io/managed-by"] == "Helm" and labels["app.kubernetes.io/name"] == "web-podinfo"
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:deploy:overlay -->").body
    assert f"`Deployment/{ns}/backend`" in body


def test_branch_and_auto_deploy_choose_which_merges_deploy(stack: Stack):
    ns = stack.namespace
    envs = [
        {"name": "main", "path": "deploy/main", "cluster": "local", "namespace": ns},
        {"name": "release", "path": "deploy/release", "cluster": "local", "namespace": ns, "branch": "release"},
        {"name": "manual", "path": "deploy/manual", "cluster": "local", "namespace": ns, "auto_deploy": False},
    ]
    repo = stack.repo(
        {
            "deploy/main/a.yaml": cm("on-main", "v0"),
            "deploy/release/a.yaml": cm("on-release", "v0"),
            "deploy/manual/a.yaml": cm("manual", "v0"),
        },
        environments=envs,
    )
    stack.sim.commit(repo, "release", {"NOTES.md": "release branch\n"})
    core = k8s.CoreV1Api(stack.cluster.api_client())

    to_main = stack.sim.open_pr(repo, "bump", files={"README.md": "bumped\n"})
    sha = merged_sha(stack, repo, to_main)
    main = stack.status(repo, sha, "mergeway/deploy/main")
    assert main.state == "success", main.description
    to_release = stack.sim.open_pr(repo, "ship", files={"NOTES.md": "shipped\n"}, base="release")
    release_sha = merged_sha(stack, repo, to_release)
    assert stack.status(repo, release_sha, "mergeway/deploy/release").state == "success"

    # Wait until both merges' deploy jobs have ended (a status for one environment does not mean the
    # job is done with the others); only then may "nothing else was deployed" be checked.
    for merged in (to_main, to_release):
        stack.workers[0].wait_log(
            lambda r, n=merged.number: (
                r.get("pr") == n and r.get("msg") in ("deploy job succeeded", "deploy job failed")
            ),
            timeout=60,
            message=f"the end of #{merged.number}'s deploy job",
        )
    assert stack.sim.list_statuses(repo, sha, "mergeway/deploy/release") == []
    assert stack.sim.list_statuses(repo, release_sha, "mergeway/deploy/main") == []
    for merge in (sha, release_sha):
        assert stack.sim.list_statuses(repo, merge, "mergeway/deploy/manual") == []
    names = {c.metadata.name for c in core.list_namespaced_config_map(ns).items}
    assert {"on-main", "on-release"} <= names
    assert "manual" not in names, "an auto_deploy: false environment was deployed"
    # auto_deploy: false only stops the deploy; pull requests are still previewed for it.
    pr = stack.sim.open_pr(repo, "tweak", files={"deploy/manual/a.yaml": cm("manual", "v1")})
    assert stack.status(repo, pr.head_sha, "mergeway/preview/manual").state == "success"


def api_deployment(selector: dict[str, str], *, recreate: bool = False) -> str:
    metadata: dict = {"name": "api"}
    if recreate:
        metadata["annotations"] = {"mergeway.io/recreate": "true"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "api", "image": "example.com/api:1"}]},
            },
        },
    }
    return yaml.safe_dump(deployment)


def test_an_immutable_change_is_refused_unless_the_object_opts_in_to_recreate(stack: Stack):
    ns = stack.namespace
    repo = stack.repo({"deploy/api.yaml": api_deployment({"app": "api"})})
    apps = k8s.AppsV1Api(stack.cluster.api_client())
    first = stack.sim.open_pr(repo, "touch", files={"README.md": "x\n"})
    assert stack.status(repo, merged_sha(stack, repo, first), "mergeway/deploy/staging").state == "success"
    original = apps.read_namespaced_deployment("api", ns)

    new_selector = {"app": "api", "tier": "web"}
    refused = stack.sim.open_pr(repo, "selector", files={"deploy/api.yaml": api_deployment(new_selector)})
    preview = stack.status(repo, refused.head_sha, "mergeway/preview/staging")
    assert preview.state == "failure", preview.description
    body = stack.only_comment(repo, refused.number, "<!-- mergeway:preview:staging -->").body
    assert "field is immutable" in body
    deploy = stack.status(repo, merged_sha(stack, repo, refused), "mergeway/deploy/staging")
    assert deploy.state == "failure" and f"Deployment/{ns}/api" in deploy.description, deploy.description
    live = apps.read_namespaced_deployment("api", ns)
    assert live.metadata.uid == original.metadata.uid and live.spec.selector.match_labels == {"app": "api"}

    opted_in = stack.sim.open_pr(
        repo, "recreate", files={"deploy/api.yaml": api_deployment(new_selector, recreate=True)}
    )
    # The preview says what merging will do: a change that recreates the object, not a rejection.
    preview = stack.status(repo, opted_in.head_sha, "mergeway/preview/staging")
    assert preview.state == "success" and preview.description.startswith("0 to add, 1 to change"), preview.description
    body = stack.only_comment(repo, opted_in.number, "<!-- mergeway:preview:staging -->").body
    assert "deletes and recreates the object" in body and "field is immutable" in body
    # A recreate is destructive: merging carries it out only when the PR is allowed to (the label).
    stack.sim.label(repo, opted_in, "mergeway/allow-destructive")
    deploy = stack.status(repo, merged_sha(stack, repo, opted_in), "mergeway/deploy/staging", timeout=150)
    assert deploy.state == "success", deploy.description
    live = apps.read_namespaced_deployment("api", ns)
    assert live.metadata.uid != original.metadata.uid, "the Deployment was not recreated"
    assert live.spec.selector.match_labels == new_selector
    assert available(apps, ns, "api")


def test_a_force_pushed_target_branch_is_not_deployed_over(stack: Stack):
    repo = stack.repo({"deploy/app.yaml": cm("app", "one")})
    initial = stack.sim.head(repo)
    pr = stack.sim.open_pr(repo, "two", files={"deploy/app.yaml": cm("app", "two")})
    applied = merged_sha(stack, repo, pr)
    assert stack.status(repo, applied, "mergeway/deploy/staging").state == "success"

    # Someone rewrites main so that the applied commit is no longer in its history.
    stack.sim.force_push(repo, "main", {"deploy/app.yaml": cm("app", "rewritten")}, onto=initial)
    after = stack.sim.open_pr(repo, "three", files={"README.md": "after the rewrite\n"})
    status = stack.status(repo, merged_sha(stack, repo, after), "mergeway/deploy/staging")
    assert status.state == "failure", status.description
    body = stack.only_comment(repo, after.number, "<!-- mergeway:deploy:staging -->").body
    assert "rewritten" in body and applied[:12] in body and "refusing to deploy" in body
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("app", stack.namespace).data == {"value": "two"}
    parent = core.list_namespaced_config_map(stack.namespace, label_selector="applyset.kubernetes.io/id").items
    commits = {(c.metadata.annotations or {}).get(COMMIT_ANNOTATION) for c in parent}
    assert commits == {applied}


def test_a_manifest_that_is_not_yaml_is_reported_on_the_pull_request(stack: Stack):
    repo = stack.repo({"deploy/app.yaml": cm("app", "one")})
    broken = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  key: [unclosed\n"
    pr = stack.sim.open_pr(repo, "broken", files={"deploy/broken.yaml": broken})
    status = stack.status(repo, pr.head_sha, "mergeway/preview/staging")
    assert status.state == "failure", status.description
    assert "Preview failed" in status.description
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:preview:staging -->").body
    assert "Rendering deploy failed" in body and "deploy/broken.yaml" in body
    assert "line 7" in body  # where the flow sequence is left open, as the YAML parser says
    assert "Traceback" not in body
