"""CRDs in a deploy, against the real local cluster: what they cost and the order they keep.

Install bundles (operators, cert managers, monitoring stacks) carry CRDs of hundreds of KB whose
every request costs the API server real CPU. The guarantees are kept (everything validated before
anything is applied; a custom resource applied only once its CRD is Established), and nothing
else is paid for: an unchanged CRD is not sent at all, and a CRD whose custom resources are not
in the change is not waited on, nor does it hold back the objects after it (it is applied beside
the later stages, and still before the admission webhooks).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from mergeway.kube.apply import Applier
from mergeway.kube.applyset import ApplySet
from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.transport import Request, Response, Transport
from mergeway.render.manifests import Manifest

pytestmark = pytest.mark.cluster
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class Sent(NamedTuple):
    method: str
    path: str
    dry_run: bool
    #: For an answer that is a CRD: whether it says the CRD is Established.
    established: bool


Hook = tuple[str, str, bool]  # method, path, dry run


class Recorder:
    """The real transport, with every request it sent recorded in order (when its answer came).

    ``before`` and ``after`` run a function of the test's just before a matching request is sent
    and just after its answer is recorded: to hold a request back until something else happened.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.host = inner.host
        self.sent: list[Sent] = []
        self.lock = threading.Lock()
        self.before: dict[Hook, Callable[[], None]] = {}
        self.after: dict[Hook, Callable[[], None]] = {}

    def send(self, request: Request) -> Response:
        hook = (request.method, request.path, "dryRun" in (request.query or {}))
        if hook in self.before:
            self.before[hook]()
        answer = self.inner.send(request)
        established = False
        if request.path.startswith(CRDS) and answer.status < 300:
            conditions = (json.loads(answer.data).get("status") or {}).get("conditions") or []
            established = any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
        with self.lock:
            self.sent.append(Sent(request.method, request.path, "dryRun" in (request.query or {}), established))
        if hook in self.after:
            self.after[hook]()
        return answer

    def to(self, path: str) -> list[Sent]:
        with self.lock:
            return [s for s in self.sent if s.path == path]


@pytest.fixture
def recorded(kube_cluster) -> tuple[KubeClient, Recorder]:
    client = KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))
    spy = Recorder(client.transport)
    client.transport = spy
    return client, spy


@pytest.fixture
def group(kube_cluster, namespace) -> Any:
    """A CRD group of this test's own (CRDs are cluster-wide); its CRDs are deleted afterwards."""
    name = f"{namespace}.mergeway.test"
    yield name
    client = KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))
    for plural in ("widgets", "gadgets"):
        try:
            client.request("DELETE", f"{CRDS}/{plural}.{name}")
        except KubeError as exc:
            if exc.status != 404:
                raise


def crd(group: str, kind: str = "Widget") -> Manifest:
    """A CRD written as install bundles write them: descriptions, printer columns, defaults, int-or-string."""
    plural = kind.lower() + "s"
    schema = {
        "type": "object",
        "description": f"{kind} is an example resource.",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "format": "int64", "minimum": 1, "description": "How many."},
                    "ratio": {"type": "number", "default": 0.5},
                    "port": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True},
                    "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "items": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                        },
                    },
                },
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    obj = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {"app.kubernetes.io/part-of": "example"}},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                }
            ],
        },
    }
    return Manifest(obj, f"{plural}.yaml")


def config(name: str) -> Manifest:
    return Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}, "c.yaml")


def test_an_unchanged_crd_is_not_sent_again(recorded, namespace, group) -> None:
    client, spy = recorded
    applyset = ApplySet("crd-unchanged", namespace)
    bundle = [crd(group), crd(group, "Gadget"), config("settings")]
    first = Applier(client).deploy(bundle, applyset=applyset, default_namespace=namespace, wait=False)
    assert first.ok, first.failed
    assert first.counts() == {"added": 3, "changed": 0, "pruned": 0, "unchanged": 0}

    spy.sent.clear()
    again = Applier(client).deploy(bundle, applyset=applyset, default_namespace=namespace, wait=False)
    assert again.counts() == {"added": 0, "changed": 0, "pruned": 0, "unchanged": 3}
    assert [s for s in spy.sent if s.method == "PATCH"] == []  # no dry run, no apply, no parent write


def test_a_crd_changed_by_someone_else_is_applied_again(recorded, namespace, group) -> None:
    client, spy = recorded
    applyset = ApplySet("crd-drift", namespace)
    bundle = [crd(group)]
    assert Applier(client).deploy(bundle, applyset=applyset, default_namespace=namespace, wait=False).ok
    path = f"{CRDS}/widgets.{group}"
    # Someone edits the printer column by hand: the next deploy must put Git's back.
    edit = [{"op": "replace", "path": "/spec/versions/0/additionalPrinterColumns/0/jsonPath", "value": ".spec.ratio"}]
    client.request("PATCH", path, body=edit, content_type="application/json-patch+json")

    spy.sent.clear()
    again = Applier(client).deploy(bundle, applyset=applyset, default_namespace=namespace, wait=False)
    assert again.counts() == {"added": 0, "changed": 1, "pruned": 0, "unchanged": 0}
    assert [(s.method, s.dry_run) for s in spy.to(path) if s.method == "PATCH"] == [("PATCH", True), ("PATCH", False)]
    columns = client.request("GET", path)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert columns[0]["jsonPath"] == ".spec.size"


def test_a_crd_without_its_custom_resources_in_the_change_is_not_waited_on(recorded, namespace, group) -> None:
    client, spy = recorded
    applyset = ApplySet("crd-alone", namespace)
    result = Applier(client).deploy(
        [crd(group), config("settings")], applyset=applyset, default_namespace=namespace, wait=False
    )
    assert result.ok, result.failed
    assert result.counts() == {"added": 2, "changed": 0, "pruned": 0, "unchanged": 0}
    path = f"{CRDS}/widgets.{group}"
    sent = [(s.method, s.dry_run) for s in spy.to(path)]
    # Validated, then applied; never polled for Established, since nothing here needs it to be.
    assert sent == [("GET", False), ("PATCH", True), ("PATCH", False)], sent
    client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/settings")


def test_a_custom_resource_is_applied_only_once_its_crd_is_established(recorded, namespace, group) -> None:
    client, spy = recorded
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    bundle = [Manifest(widget, "widget.yaml"), crd(group), crd(group, "Gadget")]
    result = Applier(client).deploy(
        bundle, applyset=ApplySet("crd-and-cr", namespace), default_namespace=namespace, wait=False
    )
    assert result.ok, result.failed
    widget_path = f"/apis/{group}/v1/namespaces/{namespace}/widgets/w1"
    with spy.lock:
        order = list(spy.sent)
    applied = order.index(Sent("PATCH", widget_path, False, False))
    seen = [s for s in order[:applied] if s.path == f"{CRDS}/widgets.{group}" and s.established]
    assert seen, "the Widget was applied before its CRD was seen Established"
    # Gadget's CRD has no custom resource here: applied, never waited on.
    assert [s.method for s in spy.to(f"{CRDS}/gadgets.{group}")] == ["GET", "PATCH", "PATCH"]
    assert client.request("GET", widget_path)["spec"]["size"] == 3


def test_a_crd_nothing_uses_is_applied_beside_the_later_stages_and_before_webhooks(recorded, namespace, group) -> None:
    """An install bundle's CRD (a second of API server work) does not hold back its other objects.

    The CRD's apply is held until the ConfigMap (a later stage) has been applied: only an engine
    that applies the two side by side gets past that. The admission webhook still comes last.
    """
    client, spy = recorded
    crd_path = f"{CRDS}/widgets.{group}"
    config_path = f"/api/v1/namespaces/{namespace}/configmaps/settings"
    hook_name = f"{namespace}-guard"
    hook_path = f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{hook_name}"
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": hook_name},
        "webhooks": [
            {
                "name": f"guard.{group}",
                "clientConfig": {"url": "https://127.0.0.1:9/never"},
                "rules": [
                    {
                        "apiGroups": [group],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["nothing"],
                    }
                ],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    }
    config_applied, crd_applied, hook_sent = threading.Event(), threading.Event(), threading.Event()
    overlapped: list[bool] = []
    hook_after_crd: list[bool] = []

    def hold_the_crd() -> None:
        overlapped.append(config_applied.wait(timeout=15))
        # A window in which the webhook configuration must not be sent: an engine that does not
        # wait for the CRD before the webhooks sends it at once, and the check below sees it.
        hook_sent.wait(timeout=2)

    spy.before[("PATCH", crd_path, False)] = hold_the_crd
    spy.after[("PATCH", config_path, False)] = config_applied.set
    spy.after[("PATCH", crd_path, False)] = crd_applied.set

    def send_the_hook() -> None:
        hook_after_crd.append(crd_applied.is_set())
        hook_sent.set()

    spy.before[("PATCH", hook_path, False)] = send_the_hook
    try:
        result = Applier(client).deploy(
            [Manifest(webhook, "hook.yaml"), config("settings"), crd(group)],
            applyset=ApplySet("crd-beside", namespace),
            default_namespace=namespace,
            wait=False,
        )
        assert result.ok, result.failed
        assert overlapped == [True], "the ConfigMap waited for the CRD that nothing in the change uses"
        assert hook_after_crd == [True], "the webhook configuration was sent before the CRD was applied"
        assert str(result.applied[0].ref) == f"CustomResourceDefinition/widgets.{group}"  # reported first
    finally:
        try:
            client.request("DELETE", hook_path)
        except KubeError as exc:
            if exc.status != 404:
                raise
