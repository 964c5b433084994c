"""Apply order without a cluster: what a deploy applies before what (``mergeway.kube.sort``)."""

from __future__ import annotations

from mergeway.kube.changeset import ObjectDiff, ObjectRef
from mergeway.kube.sort import STAGES, stages


def item(kind: str, name: str = "x", namespace: str = "app", group: str = "") -> ObjectDiff:
    return ObjectDiff(ObjectRef(group, kind, namespace, name), "create")


def order(items: list[ObjectDiff]) -> list[list[str]]:
    return [[f"{i.ref.kind}/{i.ref.name}" for i in stage] for stage in stages(items)]


def test_prerequisites_come_before_what_needs_them_and_webhooks_last() -> None:
    items = [
        item("ValidatingWebhookConfiguration", "guard", ""),
        item("Deployment", "web"),
        item("Widget", "w", group="example.com"),
        item("ConfigMap", "settings"),
        item("StorageClass", "fast", ""),
        item("Namespace", "app", ""),
        item("CustomResourceDefinition", "widgets.example.com", ""),
    ]
    assert order(items) == [
        ["CustomResourceDefinition/widgets.example.com", "Namespace/app"],
        ["StorageClass/fast"],
        ["ConfigMap/settings"],
        ["Deployment/web", "Widget/w"],
        ["ValidatingWebhookConfiguration/guard"],
    ]


def test_every_stage_is_there_even_when_empty() -> None:
    assert order([]) == [[] for _ in STAGES]
    assert len(stages([item("Service")])) == len(STAGES) == 5


def test_what_workloads_read_at_start_up_is_applied_in_a_fixed_kind_order() -> None:
    items = [item("Service"), item("ConfigMap"), item("Secret"), item("ServiceAccount"), item("PriorityClass", "p", "")]
    # PriorityClass ends in "Class" but pods name it, so it is configuration, not a class stage kind.
    assert order(items)[1:3] == [[], ["PriorityClass/p", "ServiceAccount/x", "Secret/x", "ConfigMap/x", "Service/x"]]


def test_within_a_kind_objects_are_ordered_by_namespace_then_name_whatever_the_input_order() -> None:
    items = [item("ConfigMap", "b", "one"), item("ConfigMap", "a", "two"), item("ConfigMap", "a", "one")]
    forward = [(i.ref.namespace, i.ref.name) for i in stages(items)[2]]
    backward = [(i.ref.namespace, i.ref.name) for i in stages(list(reversed(items)))[2]]
    assert forward == backward == [("one", "a"), ("one", "b"), ("two", "a")]


def test_custom_resources_follow_the_known_workloads_in_kind_order() -> None:
    items = [item("Zebra", group="z.io"), item("Apple", group="a.io"), item("Job"), item("Deployment")]
    assert order(items)[3] == ["Deployment/x", "Job/x", "Apple/x", "Zebra/x"]
