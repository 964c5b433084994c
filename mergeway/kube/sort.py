"""Apply order: what must exist before what, as stages.

Server-side apply has no dependency graph, but the cluster does: a custom resource needs its CRD
established, namespaced objects need their Namespace, pods need their ConfigMaps and
ServiceAccounts, and an admission webhook applied first could reject everything after it. Objects
in one stage do not depend on each other, so a stage is applied concurrently.
"""

from __future__ import annotations

from collections.abc import Sequence

from mergeway.kube.changeset import ObjectDiff

#: Cluster prerequisites: applied first; CRDs are then waited on until Established.
FOUNDATION = ("CustomResourceDefinition", "Namespace", "ClusterRole")
#: What workloads read at start-up: applied before them.
CONFIG = (
    "ResourceQuota",
    "LimitRange",
    "PriorityClass",
    "ServiceAccount",
    "Role",
    "ClusterRoleBinding",
    "RoleBinding",
    "Secret",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Service",
    "Endpoints",
    "EndpointSlice",
)
WORKLOADS = (
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
    "NetworkPolicy",
)
#: Admission webhooks last, so they cannot block the objects of the same change.
LAST = (
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)

STAGES = ("foundation", "classes", "config", "workloads", "webhooks")


def stage_of(kind: str) -> int:
    if kind in FOUNDATION:
        return 0
    if kind.endswith("Class") and kind != "PriorityClass":
        return 1
    if kind in CONFIG:
        return 2
    if kind in LAST:
        return 4
    return 3  # workloads and custom resources


def kind_rank(kind: str) -> tuple[int, int, str]:
    """A stable total order: stage, then the kind's position in its list, then its name."""
    for group in (FOUNDATION, CONFIG, WORKLOADS, LAST):
        if kind in group:
            return (stage_of(kind), group.index(kind), kind)
    return (stage_of(kind), 999, kind)


def stages(items: Sequence[ObjectDiff]) -> list[list[ObjectDiff]]:
    """Group planned objects into the five ordered stages, each in a stable kind and name order."""
    grouped: list[list[ObjectDiff]] = [[] for _ in STAGES]
    for item in items:
        grouped[stage_of(item.ref.kind)].append(item)
    for group in grouped:
        group.sort(key=lambda i: (kind_rank(i.ref.kind), i.ref))
    return grouped
