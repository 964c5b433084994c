"""Deploy hooks and sync waves against the real local cluster (KWOK completes Job pods, or fails those
annotated ``mergeway.test/simulate: fail``): pre-deploy hooks complete before anything else is
applied, a failing one stops the deploy with nothing changed, post-deploy hooks run once the rollout
is healthy, hooks are new runs each deploy (a changed Job template is no immutable-field error) and
never members of the ApplySet, and waves apply in order. Orders come from the cluster's own
resourceVersions (tests/fixtures/history.py), never from clocks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mergeway.kube.apply import Applier, DeployResult
from mergeway.kube.applyset import PART_OF_LABEL, ApplySet
from mergeway.kube.client import KubeClient
from mergeway.kube.diff import Differ
from mergeway.kube.hooks import HOOK_OF_LABEL
from mergeway.render.manifests import Manifest
from tests.fixtures.history import condition, recorded
from tests.fixtures.workloads import job

pytestmark = pytest.mark.cluster


@pytest.fixture
def client(kube_cluster) -> KubeClient:
    return KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))


def deployment(name: str, image: str = "", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image or f"example.com/{name}:1"}]},
            },
        },
    }


def configmap(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "annotations": annotations or {}}}


def hook(obj: dict[str, Any], **annotations: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].setdefault("annotations", {}).update({k.replace("_", "/", 1): v for k, v in annotations.items()})
    return out


def migrate(image: str = "example.com/migrate:1", *, fail: bool = False, phase: str = "pre-deploy") -> dict[str, Any]:
    out = hook(job("migrate", fail=fail), **{"mergeway.io_hook": phase})
    out["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return out


def deploy(client: KubeClient, namespace: str, *objects: dict[str, Any], timeout: float = 120) -> DeployResult:
    manifests = [Manifest(obj, f"{obj['metadata'].get('name') or 'x'}.yaml") for obj in objects]
    return Applier(client).deploy(
        manifests, applyset=ApplySet("hooks", namespace), default_namespace=namespace, health_timeout=timeout
    )


def image(event) -> str:
    return str(event.obj["spec"]["template"]["spec"]["containers"][0]["image"])


def generation(n: int):
    return lambda e: e.obj["metadata"].get("generation") == n


def test_a_pre_deploy_job_completes_before_the_deployments_new_generation_exists(client, namespace, kube_cluster):
    first = deploy(client, namespace, deployment("web"), migrate())
    assert first.ok, (first.failed, first.unhealthy, first.hooks)
    with recorded(kube_cluster.api_client(), namespace, "Job", "Deployment") as history:
        # The hook's pod template changed too: a new run, not an apply (which the API server would refuse).
        second = deploy(client, namespace, deployment("web", "example.com/web:2"), migrate("example.com/migrate:2"))
    assert second.ok, (second.failed, second.unhealthy, second.hooks)
    assert [(r.phase, r.ref, r.state) for r in second.hooks] == [
        ("pre-deploy", f"Job/{namespace}/migrate", "succeeded")
    ]
    complete = history.first("Job", lambda e: condition(e, "Complete") and image(e) == "example.com/migrate:2")
    rolled = history.first("Deployment", generation(2), "at generation 2")
    assert complete.version < rolled.version
    assert [e.type for e in history.of("Job") if e.type != "MODIFIED"][:2] == ["DELETED", "ADDED"]

    live = client.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/migrate")
    assert PART_OF_LABEL not in live["metadata"]["labels"]
    assert live["metadata"]["labels"][HOOK_OF_LABEL] == ApplySet("hooks", namespace).id
    assert "Job" not in str(ApplySet("hooks", namespace).read(client))
    # A hook is never pruned: the next deploy without it leaves the last run alone.
    third = deploy(client, namespace, deployment("web", "example.com/web:2"))
    assert third.ok and not third.pruned
    client.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/migrate")


def test_a_failing_pre_deploy_job_stops_the_deploy_with_nothing_else_applied(client, namespace, kube_cluster):
    assert deploy(client, namespace, deployment("web")).ok
    result = deploy(
        client, namespace, deployment("web", "example.com/web:2"), configmap("new"), migrate(fail=True), timeout=3600
    )
    assert not result.ok
    [run] = result.hooks
    assert (run.phase, run.state) == ("pre-deploy", "failed")
    assert run.reason.startswith("job failed (BackoffLimitExceeded)"), run.reason
    assert "container app exited 1" in run.reason, run.reason
    assert not result.applied and not result.pruned
    web = client.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
    assert web["metadata"]["generation"] == 1
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "example.com/web:1"
    configmaps = client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")["items"]
    assert "new" not in {c["metadata"]["name"] for c in configmaps}


def test_a_post_deploy_job_runs_once_the_rollout_is_healthy(client, namespace, kube_cluster):
    # A rollout that takes a few seconds, so a hook created any earlier would be seen before it.
    slow = deployment("web")
    slow["spec"]["template"]["metadata"]["annotations"] = {"mergeway.test/ready-after": "3s"}
    with recorded(kube_cluster.api_client(), namespace, "Job", "Deployment") as history:
        result = deploy(client, namespace, slow, migrate(phase="post-deploy"))
    assert result.ok, (result.failed, result.unhealthy, result.hooks)
    available = history.first("Deployment", lambda e: condition(e, "Available"), "Available")
    created = history.first("Job", lambda e: e.type == "ADDED", "added")
    assert available.version < created.version


def test_a_failing_post_deploy_hook_fails_the_deploy_after_applying(client, namespace):
    result = deploy(client, namespace, deployment("web"), migrate(phase="post-deploy", fail=True), timeout=3600)
    assert not result.ok and result.applied
    assert [(r.phase, r.state) for r in result.hooks] == [("post-deploy", "failed")]
    assert result.health[f"Deployment/{namespace}/web"].state == "current"


def test_argo_cd_hooks_with_generate_name_delete_policies_and_waves(client, namespace, kube_cluster):
    presync = job("seed")
    presync["metadata"] = {
        "generateName": "seed-",
        "annotations": {
            "argocd.argoproj.io/hook": "PreSync",
            "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation,HookSucceeded",
        },
    }
    waves = [
        deployment("db", annotations={"argocd.argoproj.io/sync-wave": "-1"}),
        configmap("app-config", {"argocd.argoproj.io/sync-wave": "1"}),
        deployment("web"),
    ]
    with recorded(kube_cluster.api_client(), namespace, "Job", "Deployment", "ConfigMap") as history:
        result = deploy(client, namespace, presync, *waves)
    assert result.ok, (result.failed, result.unhealthy, result.hooks)
    [run] = result.hooks
    assert run.ref.startswith(f"Job/{namespace}/seed-") and run.ref != f"Job/{namespace}/seed-"
    # HookSucceeded: the run is gone once it succeeded.
    jobs = client.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert [j for j in jobs if not j["metadata"].get("deletionTimestamp")] == []
    seeded = history.first("Job", lambda e: condition(e, "Complete"), "Complete")
    db = history.first("Deployment", lambda e: e.name == "db" and e.type == "ADDED", "db added")
    db_ready = history.first("Deployment", lambda e: e.name == "db" and condition(e, "Available"), "db Available")
    web = history.first("Deployment", lambda e: e.name == "web" and e.type == "ADDED", "web added")
    web_ready = history.first("Deployment", lambda e: e.name == "web" and condition(e, "Available"), "web Available")
    config = history.first("ConfigMap", lambda e: e.name == "app-config" and e.type == "ADDED", "app-config added")
    assert seeded.version < db.version < db_ready.version < web.version < web_ready.version < config.version


def test_unsupported_hooks_fail_the_preview_and_are_never_applied(client, namespace):
    post_delete = hook(job("cleanup"), **{"argocd.argoproj.io_hook": "PostDelete"})
    as_hook = hook(deployment("warmup"), **{"mergeway.io_hook": "pre-deploy"})
    skipped = hook(job("smoke"), **{"argocd.argoproj.io_hook": "Skip"})
    manifests = [Manifest(o, "x.yaml") for o in (post_delete, as_hook, skipped, configmap("fine"))]
    applyset = ApplySet("hooks", namespace)
    plan = Differ(client).plan_for(manifests, applyset, default_namespace=namespace)
    errors = {str(i.ref): i.message for i in plan.errors}
    assert "PostDelete is not supported" in errors["Job/cleanup"]
    assert "a Deployment would never be waited for to an end" in errors["Deployment/warmup"]
    assert [(str(s.ref), s.said) for s in plan.skipped] == [("Job/smoke", "argocd.argoproj.io/hook: Skip")]
    result = Applier(client).deploy(manifests, applyset=applyset, default_namespace=namespace)
    assert not result.ok and not result.applied and not result.hooks
    configmaps = client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")["items"]
    assert "fine" not in {c["metadata"]["name"] for c in configmaps}


def test_a_hook_the_api_server_would_refuse_fails_the_preview_with_its_words(client, namespace):
    bad = migrate()
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"  # a Job's pods may not restart forever
    manifests = [Manifest(bad, "migrate.yaml"), Manifest(configmap("fine"), "fine.yaml")]
    applyset = ApplySet("hooks", namespace)
    plan = Differ(client).plan_for(manifests, applyset, default_namespace=namespace)
    [error] = plan.errors
    assert str(error.ref) == f"Job/{namespace}/migrate"
    assert error.message.startswith("mergeway.io/hook: pre-deploy: ") and "restartPolicy" in error.message
    result = Applier(client).deploy(manifests, applyset=applyset, default_namespace=namespace)
    assert not result.ok and not result.applied and not result.hooks


def test_argo_cd_sync_hooks_run_with_the_rollout_and_sync_fail_hooks_only_when_it_fails(client, namespace):
    def argo(name: str, when: str, *, fail: bool = False) -> dict[str, Any]:
        return hook(job(name, fail=fail), **{"argocd.argoproj.io_hook": when})

    result = deploy(client, namespace, deployment("web"), argo("during", "Sync"), argo("cleanup", "SyncFail"))
    assert result.ok, (result.failed, result.unhealthy, result.hooks)
    assert [(r.phase, r.ref, r.state) for r in result.hooks] == [("sync", f"Job/{namespace}/during", "succeeded")]

    failing = deploy(
        client, namespace, deployment("web"), argo("during", "PreSync", fail=True), argo("cleanup", "SyncFail")
    )
    assert [(r.phase, r.ref, r.state) for r in failing.hooks] == [
        ("pre-deploy", f"Job/{namespace}/during", "failed"),
        ("on-failure", f"Job/{namespace}/cleanup", "succeeded"),
    ]


def test_a_pre_deploy_hook_in_a_namespace_the_change_creates_gets_that_namespace_first(client, namespace):
    new = f"{namespace}-new"
    space = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": new}}
    run = migrate()
    run["metadata"]["namespace"] = new
    web = deployment("web")
    web["metadata"]["namespace"] = new
    try:
        result = deploy(client, namespace, space, run, web)
        assert result.ok, (result.failed, result.unhealthy, result.hooks)
        assert [(r.ref, r.state) for r in result.hooks] == [(f"Job/{new}/migrate", "succeeded")]
        assert sorted(str(i.ref) for i in result.applied) == [f"Deployment/{new}/web", f"Namespace/{new}"]
    finally:
        client.request("DELETE", f"/api/v1/namespaces/{new}")
