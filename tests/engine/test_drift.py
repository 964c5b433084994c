"""Drift detection against the real local cluster: what changed behind Git's back, and who did it.

Each test deploys a set as a merge would, changes the cluster the way people do (``kubectl scale``,
an edit with ``kubectl-edit``'s field manager, ``kubectl delete``), then checks with the desired
objects of the same commit. What the check costs is counted on the real transport.
"""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from mergeway.drift import ObjectDrift
from mergeway.events import Repository
from mergeway.jobs.drift_notes import drift_notes
from mergeway.jobs.engine_options import configured, options_for
from mergeway.kube.apply import Applier
from mergeway.kube.applyset import ApplySet
from mergeway.kube.client import KubeClient
from mergeway.kube.diff import Differ
from mergeway.kube.discovery import Discovery
from mergeway.kube.drift import Detector, counted, overwritten
from mergeway.manifest import Manifest
from mergeway.repoconfig import parse
from tests.fixtures.workloads import deployment_manifest as deployment
from tests.fixtures.workloads import job

pytestmark = pytest.mark.cluster
MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture
def client(kube_cluster) -> KubeClient:
    return KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))


def config_map(name: str) -> Manifest:
    return Manifest(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}, "c.yaml"
    )


def secret(name: str, value: str) -> Manifest:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"token": value}}
    return Manifest(obj, f"{name}.yaml")


def autoscaler(target: str) -> Manifest:
    obj = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 10,
        },
    }
    return Manifest(obj, "hpa.yaml")


def kubectl(kube_cluster, *args: str) -> None:
    subprocess.run([kube_cluster.kubectl, *args], env=kube_cluster.env(), check=True, capture_output=True, timeout=60)


def scale(client: KubeClient, namespace: str, name: str, replicas: int, manager: str) -> None:
    """What an autoscaler or ``kubectl scale`` sends: the scale subresource, under its own field manager."""
    client.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
        body={"spec": {"replicas": replicas}},
        query={"fieldManager": manager},
        content_type=MERGE_PATCH,
    )


def replicas(client: KubeClient, namespace: str, name: str) -> int:
    found = client.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    return int(found["spec"]["replicas"])


def by_ref(found: list[ObjectDrift]) -> dict[str, ObjectDrift]:
    return {d.ref: d for d in found}


def fields(drift: ObjectDrift) -> set[tuple[str, str, str, str]]:
    return {(f.path, f.live, f.git, f.manager) for f in drift.fields}


def test_scale_edit_and_delete_by_hand_are_each_found_with_the_field_and_who_did_it(client, kube_cluster, namespace):
    applyset = ApplySet("drift", namespace)
    manifests = [
        deployment("web"),
        deployment("api"),
        config_map("settings"),
        config_map("flags"),
        secret("creds", "s3cr3t-one"),
    ]
    assert Applier(client).deploy(manifests, applyset=applyset, default_namespace=namespace, wait=False).ok

    kubectl(kube_cluster, "-n", namespace, "scale", "deployment/web", "--replicas=5")
    kubectl(
        kube_cluster,
        "-n",
        namespace,
        "patch",
        "deployment/api",
        "--field-manager=kubectl-edit",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.local/app:hotfix"}]}}}}',
    )
    kubectl(kube_cluster, "-n", namespace, "delete", "configmap/settings")
    kubectl(
        kube_cluster,
        "-n",
        namespace,
        "patch",
        "secret/creds",
        "--field-manager=kubectl-edit",
        "-p",
        '{"stringData":{"token":"s3cr3t-two"}}',
    )

    found = by_ref(Detector(client).detect(manifests, applyset, default_namespace=namespace))
    assert set(found) == {"Deployment/web", "Deployment/api", "ConfigMap/settings", "Secret/creds"}
    web, api, gone, creds = (
        found["Deployment/web"],
        found["Deployment/api"],
        found["ConfigMap/settings"],
        found["Secret/creds"],
    )
    # `kubectl scale` writes the scale subresource under kubectl's own manager name ("kubectl").
    assert web.state == "changed" and fields(web) == {("/spec/replicas", "5", "2", "kubectl")}
    assert api.state == "changed"
    assert fields(api) == {
        ("/spec/template/spec/containers/0/image", "registry.local/app:hotfix", "registry.local/app:1", "kubectl-edit")
    }
    changed = [line for line in api.diff.splitlines() if line[:1] in "+-" and "image:" in line]
    assert [line[0] + line.split("image:")[1] for line in changed] == [
        "- registry.local/app:1",
        "+ registry.local/app:hotfix",
    ]
    assert gone.state == "deleted" and gone.fields == ()
    # A Secret is masked exactly as a preview masks it: that it changed shows, never a value.
    assert fields(creds) == {("/data/token", "'*** (live)'", "'*** (Git)'", "kubectl-edit")}  # YAML text
    text = repr(found) + "".join(d.diff for d in found.values())
    assert "s3cr3t" not in text and "czNjcjN0" not in text  # neither value, nor its base64


def test_a_check_without_drift_lists_once_per_kind_and_namespace_and_writes_nothing(client, namespace):
    applyset = ApplySet("quiet", namespace)
    manifests = [
        *(deployment(f"web-{i}") for i in range(3)),
        *(config_map(f"cm-{i}") for i in range(5)),
        *(secret(f"s-{i}", f"value-{i}") for i in range(3)),
    ]
    assert Applier(client).deploy(manifests, applyset=applyset, default_namespace=namespace, wait=False).ok
    discovery = Discovery(client)
    discovery.known("v1", "ConfigMap")  # discovery warm, as in a worker that already ran a job

    spied, spy = counted(client)
    assert Detector(spied, discovery).detect(manifests, applyset, default_namespace=namespace) == []
    assert spy.sent == {"GET": 3}  # Deployments, ConfigMaps and Secrets of one namespace: one LIST each
    assert spy.total == 3


def test_hooks_are_runs_not_drift_whether_deleted_by_their_policy_kept_or_never_applied(client, namespace):
    """A deployed environment with hooks is in sync: a pre-deploy Job deleted once it succeeded, a
    post-deploy Job kept as its last run (labelled ``hook-of``, not a member) and a Helm test Pod a
    deploy never applies are none of them "deleted by hand"."""
    applyset = ApplySet("hooked", namespace)

    def hook(obj: dict, **annotations: str) -> Manifest:
        obj["metadata"]["annotations"] = annotations
        return Manifest(obj, f"{obj['metadata']['name']}.yaml")

    test_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "smoke"},
        "spec": job("smoke")["spec"]["template"]["spec"],
    }
    manifests = [
        deployment("web"),
        hook(job("migrate"), **{"mergeway.io/hook": "pre-deploy", "mergeway.io/hook-delete-policy": "hook-succeeded"}),
        hook(job("warm"), **{"argocd.argoproj.io/hook": "PostSync"}),
        hook(test_pod, **{"helm.sh/hook": "test"}),
    ]
    result = Applier(client).deploy(manifests, applyset=applyset, default_namespace=namespace, health_timeout=120)
    assert result.ok, (result.failed, result.unhealthy, result.hooks)
    assert [(r.phase, r.state) for r in result.hooks] == [("pre-deploy", "succeeded"), ("post-deploy", "succeeded")]

    assert Detector(client).detect(manifests, applyset, default_namespace=namespace) == []


def test_an_autoscaled_deployment_is_not_drift_not_a_change_and_keeps_its_replicas_across_a_deploy(client, namespace):
    applyset = ApplySet("hpa", namespace)
    manifests = [deployment("web"), autoscaler("web"), deployment("api")]
    env = parse(f"environments: [{{name: prod, path: k8s, cluster: local, namespace: {namespace}}}]").environments[0]
    discovery = Discovery(client)
    options, targets = options_for(env, client, discovery, manifests)
    assert [(t.kind, t.name, t.autoscaler) for t in targets] == [("Deployment", "web", "web")]
    assert (
        Applier(client, options=options)
        .deploy(manifests, applyset=applyset, default_namespace=namespace, wait=False)
        .ok
    )
    scale(client, namespace, "web", 4, "horizontal-pod-autoscaler")  # as the HPA controller would
    scale(client, namespace, "api", 3, "kubectl-scale")  # api has no HPA: that is drift

    found = by_ref(
        Detector(client, discovery, options=options).detect(manifests, applyset, default_namespace=namespace)
    )
    assert set(found) == {"Deployment/api"}

    newer = [deployment("web", image="registry.local/app:2"), autoscaler("web"), deployment("api")]
    plan = Differ(client, discovery, options=options).plan_for(newer, applyset, default_namespace=namespace)
    [web] = [i for i in plan.items if i.ref.name == "web" and i.ref.kind == "Deployment"]
    assert web.action == "update" and "replicas" not in web.diff and "app:2" in web.diff
    assert overwritten(web) == []  # the autoscaler's replicas are not overwritten: not a drift note either
    [api] = [i for i in plan.items if i.ref.name == "api"]
    assert [(f.path, f.live, f.git, f.manager) for f in overwritten(api)] == [
        ("/spec/replicas", "3", "2", "kubectl-scale")
    ]
    # What the preview says above its table: the autoscaled replicas once, the overwritten live change.
    shop = Repository(forge="github", full_name="acme/shop", clone_url="")
    notes = drift_notes(SimpleNamespace(redis=None), shop, env, plan, targets)  # type: ignore[arg-type]
    assert notes[0] == "Deployment/web: replicas managed by HorizontalPodAutoscaler/web"
    assert len(notes) == 2 and "<code>Deployment/api</code> <code>spec.replicas</code>: live <code>3</code>" in notes[1]

    assert Applier(client, options=options).deploy(newer, applyset=applyset, default_namespace=namespace, wait=False).ok
    assert replicas(client, namespace, "web") == 4
    assert replicas(client, namespace, "api") == 2  # taken back: it was drift


@pytest.mark.parametrize(
    "ignore",
    [
        "{managers: [ops-by-hand]}",
        "{fields: [{kind: Deployment, name: web, paths: [/spec/replicas]}]}",
    ],
    ids=["by-manager", "by-pointer"],
)
def test_an_ignore_rule_holds_for_drift_preview_and_deploy(client, namespace, ignore: str):
    text = f"environments: [{{name: prod, path: k8s, cluster: local, namespace: {namespace}, ignore: {ignore}}}]"
    options = configured(parse(text).environments[0])
    applyset = ApplySet("ignored", namespace)
    manifests = [deployment("web")]
    assert (
        Applier(client, options=options)
        .deploy(manifests, applyset=applyset, default_namespace=namespace, wait=False)
        .ok
    )
    scale(client, namespace, "web", 6, "ops-by-hand")

    assert Detector(client, options=options).detect(manifests, applyset, default_namespace=namespace) == []
    assert Detector(client).detect(manifests, applyset, default_namespace=namespace) != []  # drift without the rule
    newer = [deployment("web", image="registry.local/app:2")]
    plan = Differ(client, options=options).plan_for(newer, applyset, default_namespace=namespace)
    [web] = plan.items
    assert web.action == "update" and "replicas" not in web.diff and overwritten(web) == []
    assert Applier(client, options=options).deploy(newer, applyset=applyset, default_namespace=namespace, wait=False).ok
    assert replicas(client, namespace, "web") == 6


def test_an_autoscaler_added_later_does_not_scale_its_target_down_before_it_takes_over(client, namespace):
    applyset = ApplySet("hpa-later", namespace)
    env = parse(f"environments: [{{name: prod, path: k8s, cluster: local, namespace: {namespace}}}]").environments[0]
    assert Applier(client).deploy([deployment("web", replicas=3)], applyset=applyset, default_namespace=namespace).ok
    # Git adds an HPA: Mergeway still owns replicas, so it keeps sending them (dropping them would
    # make the API server remove the field, and the Deployment would be defaulted to 1 replica).
    manifests = [deployment("web", replicas=3), autoscaler("web")]
    options, targets = options_for(env, client, Discovery(client), manifests)
    assert targets == []
    assert Applier(client, options=options).deploy(manifests, applyset=applyset, default_namespace=namespace).ok
    assert replicas(client, namespace, "web") == 3
    # Once the autoscaler has written them, they are its own.
    scale(client, namespace, "web", 5, "horizontal-pod-autoscaler")
    options, targets = options_for(env, client, Discovery(client), manifests)
    assert [t.name for t in targets] == ["web"]
    assert Applier(client, options=options).deploy(manifests, applyset=applyset, default_namespace=namespace).ok
    assert replicas(client, namespace, "web") == 5
