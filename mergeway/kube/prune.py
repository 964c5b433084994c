"""Pruning: what leaves an ApplySet when it leaves Git, and how it goes.

Three steps, all here: choosing (members of *our* set that are no longer desired and not annotated
to be kept, :func:`prunable`, which the plan shows), deleting (:func:`prune`, in reverse apply order
with background propagation, after everything else was applied) and retiring a set named the old
way (:func:`retire_legacy`, which never prunes: nothing proves its members are ours).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mergeway.kube.applyset import ApplySet, Identity, Listed, Parent
from mergeway.kube.changeset import ObjectDiff, ObjectRef, unified
from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.discovery import Discovery, Resource, UnknownKind
from mergeway.kube.normalize import normalize
from mergeway.kube.secrets import mask_pair
from mergeway.kube.sort import stages
from mergeway.manifest import Manifest, effective_namespace

#: Users keep an object out of pruning with this annotation (as Flux's ``prune: disabled``).
KEEP_ANNOTATION = "mergeway.io/prune"
KEEP_VALUE = "disabled"


def desired_identities(discovery: Discovery, manifests: Sequence[Manifest], default_namespace: str) -> set[Identity]:
    """The identity of each manifest whose kind the cluster serves, namespace defaulted."""
    out = set()
    for m in manifests:
        try:
            resource = discovery.resource(m.api_version, m.kind)
        except UnknownKind:
            continue
        namespace = effective_namespace(m.namespace, default_namespace, namespaced=resource.namespaced)
        out.add((resource.group, resource.kind, namespace, m.name))
    return out


def kept(live: dict[str, Any]) -> bool:
    """Whether the object asks to be left alone when it leaves Git."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(KEEP_ANNOTATION) == KEEP_VALUE)


def prunable(
    client: KubeClient,
    discovery: Discovery,
    applyset: ApplySet,
    parent: Parent | None,
    manifests: Sequence[Manifest],
    default_namespace: str,
    listed: Listed | None = None,
) -> list[ObjectDiff]:
    """The plan's deletions: members of ``applyset`` that ``manifests`` no longer hold, unless kept."""
    if parent is None:
        return []
    wanted = desired_identities(discovery, manifests, default_namespace)
    stale = applyset.stale(client, discovery, parent, wanted, listed)
    return [deletion(resource, live) for resource, live in stale if not kept(live)]


def deletion(resource: Resource, live: dict[str, Any]) -> ObjectDiff:
    """The plan entry of a pruned object: all of it removed (Secret values masked)."""
    metadata = live.get("metadata") or {}
    ref = ObjectRef(resource.group, resource.kind, metadata.get("namespace", ""), metadata.get("name", ""))
    before, _ = mask_pair(normalize(live), None)
    return ObjectDiff(ref, "delete", "", resource=resource, diff=unified(ref, before, None), before=before)


def prune(client: KubeClient, items: Sequence[ObjectDiff]) -> tuple[list[ObjectDiff], list[tuple[ObjectDiff, str]]]:
    """Delete ``items``, dependents first (reverse stage order); returns (pruned, failed with why).

    Background propagation: the API server removes what the object owns (a Deployment's
    ReplicaSets) without the deploy waiting for it. Already gone counts as pruned.
    """
    pruned: list[ObjectDiff] = []
    failed: list[tuple[ObjectDiff, str]] = []
    for stage in reversed(stages(items)):
        for item in sorted(stage, key=lambda i: i.ref, reverse=True):
            assert item.resource is not None
            path = item.resource.object_path(item.ref.name, item.ref.namespace)
            try:
                client.request("DELETE", path, query={"propagationPolicy": "Background"})
            except KubeError as exc:
                if exc.status != 404:
                    failed.append((item, str(exc)))
                    continue
            pruned.append(item)
    return pruned, failed


def retire_legacy(client: KubeClient, discovery: Discovery, legacy: ApplySet) -> list[tuple[Resource, dict[str, Any]]]:
    """After a deploy under the collision-free name: drop the old-named parent once nothing is left in it.

    Members still desired were relabelled into the new set by the deploy itself. What is still
    labelled with the old id is returned and left alone: the old name may be shared with another
    repository, so nothing proves those objects are ours to prune. The old parent is deleted only
    when its set is empty, so another repository that shares it still finds its members.
    """
    parent = legacy.read(client)
    if parent is None:
        return []
    left = legacy.members(client, discovery, parent)
    if not left:
        legacy.delete(client)
    return left
