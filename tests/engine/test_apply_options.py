"""ApplyOptions against the real local cluster: fields Mergeway leaves alone stay as others set them.

A field set by someone else (an operator's hand edit, ``kubectl scale``) is a change a preview
would show and a deploy would take back. Ignored by pointer (for the objects a rule selects), or
owned by a field manager Mergeway respects, it is neither shown nor taken back; everything else in
the same deploy is applied as usual.
"""

from __future__ import annotations

from typing import Any

import pytest

from mergeway.kube.apply import Applier
from mergeway.kube.applyset import ApplySet
from mergeway.kube.client import KubeClient
from mergeway.kube.diff import Differ
from mergeway.kube.options import ApplyOptions, IgnoreRule
from tests.fixtures.waiting import wait_for
from tests.fixtures.workloads import deployment_manifest as deployment

pytestmark = pytest.mark.cluster
MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture
def client(kube_cluster) -> KubeClient:
    return KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))


def path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def live(client: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    found = client.request("GET", path(namespace, name))
    assert isinstance(found, dict)
    return found


def settled(client: KubeClient, namespace: str, *names: str) -> None:
    """Wait until the deployment controller has written what it writes after a change (the revision
    annotation, the observed generation): otherwise a plan read between the live GET and the dry run
    sees the controller's own write as a change. The subject here is the options, not that race."""

    def done() -> bool:
        for name in names:
            obj = live(client, namespace, name)
            if "deployment.kubernetes.io/revision" not in (obj["metadata"].get("annotations") or {}):
                return False
            if (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
                return False
        return True

    wait_for(lambda: done() or None, timeout=60, message=f"the deployment controller to settle {names}")


def actions(plan: Any) -> dict[str, str]:
    return {item.ref.name: item.action for item in plan.items}


def test_an_ignored_field_is_neither_previewed_nor_taken_back_on_the_objects_its_rule_selects(client, namespace):
    applyset = ApplySet("ignore", namespace)
    manifests = [deployment("web"), deployment("api")]
    Applier(client).deploy(manifests, applyset=applyset, default_namespace=namespace, wait=False)
    for name in ("web", "api"):  # someone scales both by hand
        client.request(
            "PATCH",
            path(namespace, name),
            body={"spec": {"replicas": 4}},
            query={"fieldManager": "ops-by-hand"},
            content_type=MERGE_PATCH,
        )

    settled(client, namespace, "web", "api")
    options = ApplyOptions(ignore=(IgnoreRule("/spec/replicas", kind="Deployment", name="web"),))
    plan = Differ(client, options=options).plan_for(manifests, applyset, default_namespace=namespace)
    assert actions(plan) == {"web": "unchanged", "api": "update"}  # the rule selects web only
    [api] = [i for i in plan.items if i.ref.name == "api"]
    assert "-  replicas: 4" in api.diff and "+  replicas: 2" in api.diff

    result = Applier(client, options=options).deploy(
        manifests, applyset=applyset, default_namespace=namespace, wait=False
    )
    assert result.ok, result.failed
    assert live(client, namespace, "web")["spec"]["replicas"] == 4
    assert live(client, namespace, "api")["spec"]["replicas"] == 2
    again = Differ(client, options=options).plan_for(manifests, applyset, default_namespace=namespace)
    assert actions(again) == {"web": "unchanged", "api": "unchanged"}


def test_fields_a_respected_manager_owns_stay_while_the_rest_of_the_change_is_applied(client, namespace):
    applyset = ApplySet("respect", namespace)
    Applier(client).deploy([deployment("web")], applyset=applyset, default_namespace=namespace, wait=False)
    # What `kubectl scale deployment web --replicas=5` sends: the scale subresource, its own manager.
    client.request(
        "PATCH",
        path(namespace, "web") + "/scale",
        body={"spec": {"replicas": 5}},
        query={"fieldManager": "kubectl-scale"},
        content_type=MERGE_PATCH,
    )
    settled(client, namespace, "web")
    options = ApplyOptions(respect_managers=frozenset({"kubectl-scale"}))

    unchanged = Differ(client, options=options).plan_for([deployment("web")], applyset, default_namespace=namespace)
    assert actions(unchanged) == {"web": "unchanged"}

    newer = [deployment("web", image="registry.local/app:2")]
    plan = Differ(client, options=options).plan_for(newer, applyset, default_namespace=namespace)
    [web] = plan.items
    assert web.action == "update"
    assert "replicas" not in web.diff  # only the image is a change
    result = Applier(client, options=options).deploy(newer, applyset=applyset, default_namespace=namespace, wait=False)
    assert result.ok, result.failed
    stored = live(client, namespace, "web")
    assert stored["spec"]["replicas"] == 5
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/app:2"


def test_without_force_a_field_another_manager_owns_is_a_conflict_the_preview_reports(client, namespace):
    applyset = ApplySet("noforce", namespace)
    Applier(client).deploy([deployment("web")], applyset=applyset, default_namespace=namespace, wait=False)
    client.request(
        "PATCH",
        path(namespace, "web"),
        body={"spec": {"replicas": 4}},
        query={"fieldManager": "ops-by-hand"},
        content_type=MERGE_PATCH,
    )
    careful = ApplyOptions(force_conflicts=False)
    plan = Differ(client, options=careful).plan_for([deployment("web")], applyset, default_namespace=namespace)
    [web] = plan.items
    assert web.action == "error"
    assert "conflict" in web.message.lower() and "ops-by-hand" in web.message

    result = Applier(client, options=careful).deploy(
        [deployment("web")], applyset=applyset, default_namespace=namespace, wait=False
    )
    assert not result.ok
    assert live(client, namespace, "web")["spec"]["replicas"] == 4
    # The default (force) takes it back, as Mergeway always has.
    Applier(client).deploy([deployment("web")], applyset=applyset, default_namespace=namespace, wait=False)
    assert live(client, namespace, "web")["spec"]["replicas"] == 2
