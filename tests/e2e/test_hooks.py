"""Deploy hooks and sync waves through the whole chain (forge simulator → web → Redis → worker → local
cluster): the three annotation dialects, as a team would have them in its repository. Orders are read
from the cluster's resourceVersions (tests/fixtures/history.py), never from clocks or sleeps."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from mergeway import binaries
from tests.fixtures.cluster import SIMULATE_ANNOTATION
from tests.fixtures.e2e import Stack
from tests.fixtures.history import Event, condition, recorded

pytestmark = pytest.mark.cluster
DEPLOY, PREVIEW = "mergeway/deploy/staging", "mergeway/preview/staging"
DEPLOY_MARKER, PREVIEW_MARKER = "<!-- mergeway:deploy:staging -->", "<!-- mergeway:preview:staging -->"


def deployment(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def job(name: str, image: str, annotations: dict[str, str], *, fail: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {SIMULATE_ANNOTATION: "fail"} if fail else {}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": image}]},
            },
        },
    }


def files(web: str, migrate: str, *, fail: bool = False) -> dict[str, str | None]:
    hook = {"mergeway.io/hook": "pre-deploy"}
    return {
        "deploy/web.yaml": yaml.safe_dump(deployment(web)),
        "deploy/migrate.yaml": yaml.safe_dump(job("migrate", migrate, hook, fail=fail)),
    }


def merged(stack: Stack, repo, pr) -> str:
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return sha


def image(event: Event) -> str:
    return str(event.obj["spec"]["template"]["spec"]["containers"][0]["image"])


def test_a_migration_job_runs_before_the_rollout_on_every_merge_and_a_failing_one_stops_it(stack: Stack):
    repo = stack.repo()
    first = stack.sim.open_pr(repo, "app", files=files("example.com/web:1", "example.com/migrate:1"))
    assert stack.status(repo, first.head_sha, PREVIEW).state == "success"
    preview = stack.only_comment(repo, first.number, PREVIEW_MARKER).body
    assert f"- runs before the rollout: `Job/{stack.namespace}/migrate` (`mergeway.io/hook: pre-deploy`)" in preview
    assert f"`Job/{stack.namespace}/migrate` |" not in preview  # listed, not diffed as an object
    assert stack.status(repo, merged(stack, repo, first), DEPLOY).state == "success"

    # The next PR changes the Job's pod template (immutable) and the Deployment: a new run, then the rollout.
    second = stack.sim.open_pr(repo, "v2", files=files("example.com/web:2", "example.com/migrate:2"))
    assert stack.status(repo, second.head_sha, PREVIEW).state == "success"
    with recorded(stack.cluster.api_client(), stack.namespace, "Job", "Deployment") as history:
        status = stack.status(repo, merged(stack, repo, second), DEPLOY)
    assert status.state == "success", status.description
    complete = history.first("Job", lambda e: condition(e, "Complete") and image(e) == "example.com/migrate:2")
    rolled = history.first("Deployment", lambda e: e.obj["metadata"]["generation"] == 2, "at generation 2")
    assert complete.version < rolled.version
    body = stack.only_comment(repo, second.number, DEPLOY_MARKER).body
    assert f"✅ runs before the rollout: `Job/{stack.namespace}/migrate` succeeded" in body

    third = stack.sim.open_pr(repo, "v3", files=files("example.com/web:3", "example.com/migrate:3", fail=True))
    status = stack.status(repo, merged(stack, repo, third), DEPLOY)
    assert status.state == "failure"
    assert status.description.startswith(f"Deploy failed: Job/{stack.namespace}/migrate (pre-deploy hook): job failed")
    body = stack.only_comment(repo, third.number, DEPLOY_MARKER).body
    assert "**Nothing was applied: a pre-deploy hook failed; `staging` still runs" in body
    assert "BackoffLimitExceeded" in body and "container migrate exited 1" in body
    web = k8s.AppsV1Api(stack.cluster.api_client()).read_namespaced_deployment("web", stack.namespace)
    assert web.metadata.generation == 2 and web.spec.template.spec.containers[0].image == "example.com/web:2"


def chart_files(tmp_path: Path, tag: str) -> dict[str, str | None]:
    """``helm create``'s chart (with its test-connection test hook) plus a migration and a smoke test hook."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    subprocess.run([binaries.find("helm"), "create", "greeter"], cwd=tmp_path, check=True, capture_output=True)
    chart = tmp_path / "greeter"
    hooks = {
        "migrate": ("pre-install,pre-upgrade", "-5", "before-hook-creation"),
        "smoke": ("post-install,post-upgrade", "0", "hook-succeeded"),
    }
    for name, (when, weight, policy) in hooks.items():
        (chart / "templates" / f"{name}.yaml").write_text(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n"
            f'  name: {{{{ include "greeter.fullname" . }}}}-{name}\n'
            f'  annotations:\n    "helm.sh/hook": {when}\n    "helm.sh/hook-weight": "{weight}"\n'
            f'    "helm.sh/hook-delete-policy": {policy}\n'
            "spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n"
            f"      containers:\n        - name: {name}\n"
            f'          image: "example.com/{name}:{{{{ .Values.image.tag }}}}"\n'
        )
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace('tag: ""', f'tag: "{tag}"'))
    out = {f"deploy/{p.relative_to(chart)}": p.read_text() for p in sorted(chart.rglob("*")) if p.is_file()}
    return out


def test_a_helm_chart_runs_its_hooks_in_order_and_never_applies_its_test(stack: Stack, tmp_path: Path):
    env = {"name": "staging", "path": "deploy", "cluster": "local", "namespace": stack.namespace}
    repo = stack.repo(environments=[{**env, "helm": {"release": "shop"}}])
    first = stack.sim.open_pr(repo, "chart", files=chart_files(tmp_path / "a", "1.0"))
    assert stack.status(repo, first.head_sha, PREVIEW, timeout=120).state == "success"
    preview = stack.only_comment(repo, first.number, PREVIEW_MARKER).body
    ns = stack.namespace
    assert (
        f"runs before the rollout: `Job/{ns}/shop-greeter-migrate` (`helm.sh/hook: pre-install,pre-upgrade`" in preview
    )
    assert f"runs after the environment is healthy: `Job/{ns}/shop-greeter-smoke`" in preview
    with recorded(stack.cluster.api_client(), ns, "Job", "Deployment", "Pod") as history:
        status = stack.status(repo, merged(stack, repo, first), DEPLOY, timeout=150)
    assert status.state == "success", status.description
    migrated = history.first("Job", lambda e: e.name.endswith("-migrate") and condition(e, "Complete"))
    created = history.first("Deployment", lambda e: e.type == "ADDED", "added")
    available = history.first("Deployment", lambda e: condition(e, "Available"), "Available")
    smoke = history.first("Job", lambda e: e.name.endswith("-smoke") and e.type == "ADDED", "smoke added")
    assert migrated.version < created.version and available.version < smoke.version
    assert not [e for e in history.of("Pod") if "test-connection" in e.name]
    pods = k8s.CoreV1Api(stack.cluster.api_client()).list_namespaced_pod(ns).items
    assert not [p for p in pods if "test-connection" in p.metadata.name]
    jobs = {j.metadata.name for j in k8s.BatchV1Api(stack.cluster.api_client()).list_namespaced_job(ns).items}
    assert "shop-greeter-migrate" in jobs  # before-hook-creation: kept until the next run
    body = stack.only_comment(repo, first.number, DEPLOY_MARKER).body
    assert f"✅ runs after the environment is healthy: `Job/{ns}/shop-greeter-smoke` succeeded" in body

    # An upgrade: pre-upgrade runs again, fresh, though its template changed.
    second = stack.sim.open_pr(
        repo, "bump", files={"deploy/values.yaml": chart_files(tmp_path / "b", "1.1")["deploy/values.yaml"]}
    )
    status = stack.status(repo, merged(stack, repo, second), DEPLOY, timeout=150)
    assert status.state == "success", status.description
    migrate = k8s.BatchV1Api(stack.cluster.api_client()).read_namespaced_job("shop-greeter-migrate", ns)
    assert migrate.spec.template.spec.containers[0].image == "example.com/migrate:1.1"


def test_argo_cd_hooks_and_sync_waves(stack: Stack):
    ns = stack.namespace
    schema = job("schema", "example.com/schema:1", {"argocd.argoproj.io/hook": "PreSync"})
    schema["metadata"] = {"generateName": "schema-", "annotations": schema["metadata"]["annotations"]}
    notify = job("notify", "example.com/notify:1", {"argocd.argoproj.io/hook": "PostSync"})
    db = deployment("example.com/db:1")
    db["metadata"] = {"name": "db", "annotations": {"argocd.argoproj.io/sync-wave": "-1"}}
    db["spec"]["selector"]["matchLabels"] = db["spec"]["template"]["metadata"]["labels"] = {"app": "db"}
    late = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}, "data": {"a": "b"}}
    late["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "2"}
    cleanup = job("cleanup", "example.com/cleanup:1", {"argocd.argoproj.io/hook": "PostDelete"})
    repo = stack.repo()
    content = {
        "deploy/schema.yaml": yaml.safe_dump(schema),
        "deploy/notify.yaml": yaml.safe_dump(notify),
        "deploy/db.yaml": yaml.safe_dump(db),
        "deploy/web.yaml": yaml.safe_dump(deployment("example.com/web:1")),
        "deploy/late.yaml": yaml.safe_dump(late),
        "deploy/cleanup.yaml": yaml.safe_dump(cleanup),
    }
    pr = stack.sim.open_pr(repo, "argo", files=content)
    refused = stack.status(repo, pr.head_sha, PREVIEW)
    assert refused.state == "failure"
    body = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    assert "argocd.argoproj.io/hook: PostDelete is not supported" in body
    head = stack.sim.push(repo, pr, {"deploy/cleanup.yaml": None})
    assert stack.status(repo, head, PREVIEW).state == "success"
    with recorded(stack.cluster.api_client(), ns, "Job", "Deployment", "ConfigMap") as history:
        status = stack.status(repo, merged(stack, repo, pr), DEPLOY, timeout=120)
    assert status.state == "success", status.description
    schema_done = history.first("Job", lambda e: e.name.startswith("schema-") and condition(e, "Complete"))
    db_added = history.first("Deployment", lambda e: e.name == "db" and e.type == "ADDED", "db added")
    db_ready = history.first("Deployment", lambda e: e.name == "db" and condition(e, "Available"), "db Available")
    web_added = history.first("Deployment", lambda e: e.name == "web" and e.type == "ADDED", "web added")
    web_ready = history.first("Deployment", lambda e: e.name == "web" and condition(e, "Available"))
    late_added = history.first("ConfigMap", lambda e: e.name == "late" and e.type == "ADDED", "late added")
    notified = history.first("Job", lambda e: e.name == "notify" and e.type == "ADDED", "notify added")
    assert schema_done.version < db_added.version < db_ready.version < web_added.version
    assert web_ready.version < late_added.version < notified.version


def test_a_rollbacks_revert_runs_the_hooks_like_any_deploy(stack: Stack):
    """Argo CD runs no hooks on rollback (argo-cd#1927); a Mergeway `/rollback` is a revert merged like
    any change, so the revert's migration runs before the Deployment goes back."""
    repo = stack.repo(files("example.com/web:1", "example.com/migrate:1"))
    stack.sim.set_permission(repo, "alice", "write")
    pr = stack.sim.open_pr(repo, "v2", files=files("example.com/web:2", "example.com/migrate:2"), title="Ship v2")
    assert stack.status(repo, merged(stack, repo, pr), DEPLOY).state == "success"
    stack.sim.comment(repo, pr, "/rollback", author="alice")
    [revert] = stack.wait(
        lambda: [p for p in stack.sim.list_prs(repo) if p.head_ref.startswith("mergeway/revert-")],
        timeout=60,
        message="the revert PR",
    )
    assert stack.status(repo, revert.head_sha, PREVIEW).state == "success"
    preview = stack.only_comment(repo, revert.number, PREVIEW_MARKER).body
    assert f"runs before the rollout: `Job/{stack.namespace}/migrate`" in preview
    with recorded(stack.cluster.api_client(), stack.namespace, "Job", "Deployment") as history:
        status = stack.status(repo, merged(stack, repo, revert), DEPLOY)
    assert status.state == "success", status.description
    migrated = history.first("Job", lambda e: condition(e, "Complete") and image(e) == "example.com/migrate:1")
    back = history.first("Deployment", lambda e: image(e) == "example.com/web:1", "back on web:1")
    assert migrated.version < back.version
