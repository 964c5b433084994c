"""Replicas an autoscaler owns: never a change, never drift, never taken back by a deploy.

The commonest field another controller owns is ``spec.replicas`` of a workload a
HorizontalPodAutoscaler targets. Git usually still sets it (the first deploy needs a number), so
without this rule every scale-up would show in the next preview as a change back, be reported as
drift, and be undone by the next deploy. With it, the target's ``/spec/replicas`` is an
:class:`~mergeway.kube.options.IgnoreRule` for preview, deploy and drift alike, whether the HPA is
rendered in the environment or was created in the namespace by someone else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from mergeway.kube.applyset import list_collection
from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.discovery import Discovery
from mergeway.kube.drift import is_own_manager, owner
from mergeway.kube.options import ApplyOptions, IgnoreRule
from mergeway.manifest import Manifest, effective_namespace

KIND = "HorizontalPodAutoscaler"
#: Kinds with ``spec.replicas`` an HPA may scale (the built-in ones; a custom resource's scale
#: subresource is found the same way: by the HPA's ``scaleTargetRef``).
_SCALED = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")


class Scaled(NamedTuple):
    """An object whose replicas an HPA owns: ``(group, kind, namespace, name)`` and the HPA's name."""

    group: str
    kind: str
    namespace: str
    name: str
    autoscaler: str

    def rule(self) -> IgnoreRule:
        return IgnoreRule("/spec/replicas", kind=self.kind, group=self.group, name=self.name, namespace=self.namespace)


def _targets(hpas: Iterable[dict[str, Any]]) -> list[Scaled]:
    out = []
    for hpa in hpas:
        if hpa.get("kind") != KIND:
            continue
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        api_version, kind, name = str(target.get("apiVersion", "")), str(target.get("kind", "")), target.get("name")
        if not kind or not name:
            continue
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        metadata = hpa.get("metadata") or {}
        out.append(Scaled(group, kind, str(metadata.get("namespace", "")), str(name), str(metadata.get("name", ""))))
    return out


def scaled(
    client: KubeClient, discovery: Discovery, manifests: Sequence[Manifest], default_namespace: str
) -> list[Scaled]:
    """The objects among ``manifests`` an HPA targets, rendered beside them or live in their namespace.

    One LIST of HPAs per namespace that holds a scalable object (none when there is none); a
    namespace whose HPAs cannot be listed (not allowed, or the API is not served) counts the
    rendered ones only.
    """
    wanted = {
        (m.group, m.kind, effective_namespace(m.namespace, default_namespace, namespaced=True), m.name)
        for m in manifests
        if m.kind in _SCALED
    }
    if not wanted:
        return []
    rendered = [
        {
            **m.obj,
            "metadata": {
                **m.obj.get("metadata", {}),
                "namespace": effective_namespace(m.namespace, default_namespace, namespaced=True),
            },
        }
        for m in manifests
        if m.kind == KIND
    ]
    live: list[dict[str, Any]] = []
    resource = discovery.known("autoscaling/v2", KIND)
    if resource is not None:
        for namespace in sorted({ns for _, _, ns, _ in wanted}):
            try:
                live.extend(list_collection(client, resource, namespace).values())
            except KubeError as exc:
                if exc.status not in (401, 403, 404, 405):
                    raise
    found = {s for s in _targets([*rendered, *live]) if (s.group, s.kind, s.namespace, s.name) in wanted}
    return [s for s in sorted(found) if not _replicas_still_ours(client, discovery, s)]


def _replicas_still_ours(client: KubeClient, discovery: Discovery, target: Scaled) -> bool:
    """Whether Mergeway alone still owns the target's live ``spec.replicas`` (one GET per target).

    Then the field is still sent: server-side apply removes a field its only owner stops sending,
    and a Deployment without ``replicas`` is defaulted to 1, so leaving it out before the
    autoscaler has taken it over would scale the workload down. Sending it changes nothing (the
    live value is the one Mergeway applied); once the autoscaler writes it, it owns it and the
    rule holds.
    """
    resource = discovery.by_group_kind(target.group, target.kind)
    if resource is None:
        return False
    try:
        live = client.request("GET", resource.object_path(target.name, target.namespace))
    except KubeError as exc:
        if exc.status == 404:
            return False
        raise
    manager, _ = owner(live if isinstance(live, dict) else {}, ("spec", "replicas"), guess=False)
    return is_own_manager(manager)


def with_autoscalers(options: ApplyOptions, targets: Iterable[Scaled]) -> ApplyOptions:
    """``options`` with each target's ``/spec/replicas`` ignored."""
    rules = tuple(dict.fromkeys(t.rule() for t in targets))
    return options._replace(ignore=(*options.ignore, *rules)) if rules else options
