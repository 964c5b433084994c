"""What in a plan deserves a reviewer's attention before anything else, and which fields change.

A prune of a PersistentVolumeClaim deletes data; a prune of a Namespace or a CRD deletes everything
in it or of it; a pod-template change restarts pods. Some updates delete as surely as a prune, only
later and by Kubernetes itself: an ``ownerReferences`` entry makes the garbage collector delete the
object once its owner is missing (an owner written in Git is never the live object's uid), a removed
finalizer lets a pending deletion finish, and a StatefulSet whose claims are retained ``Delete``
deletes the claims of the pods it scales away (or of all its pods when pruned).

In a table of objects these look like any other row, so the preview lists them first, with the
reason in words (image ``a`` → ``b``), and the deploy holds the destructive ones back unless someone
allowed them (:mod:`mergeway.jobs.allowance`).
Everything here works on the masked, normalised sides of each diff, so no Secret value can leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan

#: Objects may opt in to the same care as storage: pruning them needs an explicit allowance.
PROTECT_ANNOTATION = "mergeway.io/protect"
_WHY_DELETE = {
    "PersistentVolumeClaim": "its volume and the data on it may be deleted with it",
    "PersistentVolume": "the volume may be deleted with it, depending on its reclaim policy",
    "Namespace": "every object in the namespace is deleted with it",
    "CustomResourceDefinition": "every custom resource of this kind is deleted with it",
}
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
_TEMPLATE_PREFIX = "spec.template.spec."
_SMALL = 60
_MISSING: Any = object()

RiskKind = Literal["destroy", "delete", "recreate", "restart", "scale"]
ICONS: dict[str, str] = {"destroy": "🔥", "delete": "🗑️", "recreate": "♻️", "restart": "🔄", "scale": "📏"}
_VERBS = {
    "destroy": "prunes",
    "delete": "lets Kubernetes delete",
    "recreate": "recreates",
    "restart": "restarts pods of",
    "scale": "scales",
}


@dataclass(frozen=True)
class Risk:
    kind: RiskKind
    ref: ObjectRef
    why: str

    @property
    def destructive(self) -> bool:
        """Deletes something that cannot simply be applied back (data, a namespace's objects)."""
        return self.kind in ("destroy", "delete", "recreate")

    @property
    def verb(self) -> str:
        return _VERBS[self.kind]


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any

    def describe(self) -> str:
        """``spec.replicas 3→5``; ``path +value`` when added, ``path removed`` when removed."""
        path = self.path[len(_TEMPLATE_PREFIX) :] if self.path.startswith(_TEMPLATE_PREFIX) else self.path
        if self.old is _MISSING:
            return f"{path} +{_show(self.new)}" if _small(self.new) else f"{path} added"
        if self.new is _MISSING:
            return f"{path} removed"
        if _small(self.old) and _small(self.new):
            return f"{path} {_show(self.old)}→{_show(self.new)}"
        return f"{path} changed"


def _small(value: Any) -> bool:
    return not isinstance(value, dict | list) and len(_show(value)) <= _SMALL


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """A list of named objects (containers, env, ports) keyed ``[name]``, or None when not all are."""
    names = [i.get("name") for i in items if isinstance(i, dict)]
    if len(names) != len(items) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return {f"[{n}]": i for n, i in zip(names, items, strict=True)}


def field_changes(before: Any, after: Any, path: str = "") -> list[Change]:
    """Changed leaves between two objects, lists of named items matched by name, not position."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[Change] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += field_changes(before.get(key, _MISSING), after.get(key, _MISSING), sub)
        return out
    if isinstance(before, list) and isinstance(after, list):
        old, new = _keyed(before), _keyed(after)
        if old is None or new is None:
            old = {f"[{i}]": v for i, v in enumerate(before)}
            new = {f"[{i}]": v for i, v in enumerate(after)}
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            out += field_changes(old.get(key, _MISSING), new.get(key, _MISSING), f"{path}{key}")
        return out
    return [] if before == after else [Change(path, before, after)]


def _annotations(obj: dict[str, Any] | None) -> dict[str, Any]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def _spec(obj: dict[str, Any] | None) -> dict[str, Any]:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _metadata_list(obj: dict[str, Any] | None, key: str) -> list[Any]:
    value = ((obj or {}).get("metadata") or {}).get(key)
    return value if isinstance(value, list) else []


def _retention(obj: dict[str, Any] | None, when: str) -> str:
    policy = _spec(obj).get("persistentVolumeClaimRetentionPolicy")
    return str(policy.get(when) or "") if isinstance(policy, dict) else ""


def _replicas(obj: dict[str, Any] | None) -> int:
    value = _spec(obj).get("replicas", 1)
    return value if isinstance(value, int) else 1


def _deletion_reasons(item: ObjectDiff) -> list[str]:
    """Why applying this change lets Kubernetes delete the object or its data later (empty: it does not)."""
    reasons: list[str] = []
    if item.action != "update":
        return reasons
    old_owners = _metadata_list(item.before, "ownerReferences")
    added = [o for o in _metadata_list(item.after, "ownerReferences") if o not in old_owners]
    if added:
        owner = added[0] if isinstance(added[0], dict) else {}
        reasons.append(
            f"an `ownerReferences` entry ({owner.get('kind', '?')}/{owner.get('name', '?')}) is added: the garbage "
            "collector deletes the object when that owner (by uid) does not exist or is deleted"
        )
    kept = _metadata_list(item.after, "finalizers")
    gone = [f for f in _metadata_list(item.before, "finalizers") if f not in kept]
    if gone:
        reasons.append(f"finalizer `{gone[0]}` is removed: what it protects may be deleted without it")
    old, new = _replicas(item.before), _replicas(item.after)
    if item.ref.kind == "StatefulSet" and _retention(item.after, "whenScaled") == "Delete" and new < old:
        reasons.append(
            f"replicas {old} → {new} with claims retained `whenScaled: Delete`: "
            "the volume claims of the removed pods are deleted"
        )
    return reasons


def _restart_reasons(item: ObjectDiff) -> list[str]:
    """Why updating this workload rolls its pods: images, env, or other pod-template fields."""
    old, new = _spec(item.before).get("template"), _spec(item.after).get("template")
    if item.action != "update" or item.ref.kind not in _WORKLOADS or old == new:
        return []
    reasons: list[str] = []
    other: list[str] = []
    for change in field_changes(old, new, "spec.template"):
        short = change.describe()
        parts = change.path.split(".")
        container = next((p for p in parts if p.startswith(("containers[", "initContainers["))), "")
        name = container[container.index("[") + 1 : -1] if container else ""
        if name and parts[-1] == "image":
            reasons.append(f"image of `{name}` {_show(change.old)} → {_show(change.new)}")
        elif name and any(p.startswith(("env", "envFrom")) for p in parts):
            var = next((p[p.index("[") + 1 : -1] for p in parts if p.startswith("env[")), "")
            reasons.append(f"env of `{name}` changed" + (f" ({var})" if var and not var.isdigit() else ""))
        else:
            other.append(short)
    if other:
        more = f" and {len(other) - 3} more" if len(other) > 3 else ""
        reasons.append("pod template: " + ", ".join(other[:3]) + more)
    return list(dict.fromkeys(reasons))


def risks(plan: Plan) -> list[Risk]:
    """The risky changes of a plan, destructive ones first."""
    out: list[Risk] = []
    for item in sorted(plan.items, key=lambda i: i.ref):
        protected = str(_annotations(item.before).get(PROTECT_ANNOTATION, "")).lower() not in ("", "false")
        sts_claims = item.ref.kind == "StatefulSet" and _retention(item.before, "whenDeleted") == "Delete"
        if item.action == "delete" and (item.ref.kind in _WHY_DELETE or protected or sts_claims):
            why = _WHY_DELETE.get(item.ref.kind, f"it is annotated `{PROTECT_ANNOTATION}`")
            if sts_claims and not protected:
                why = "its pods' volume claims are retained `whenDeleted: Delete`: they are deleted with it"
            out.append(Risk("destroy", item.ref, why))
        elif item.recreate:
            out.append(Risk("recreate", item.ref, "an immutable field changed: it is deleted and created again"))
        for reason in _deletion_reasons(item):
            out.append(Risk("delete", item.ref, reason))
        for reason in _restart_reasons(item):
            out.append(Risk("restart", item.ref, reason))
        old, new = _spec(item.before).get("replicas"), _spec(item.after).get("replicas")
        if item.action == "update" and old != new:
            out.append(Risk("scale", item.ref, f"replicas {_show(old)} → {_show(new)}"))
    return sorted(out, key=lambda r: (not r.destructive, list(ICONS).index(r.kind), r.ref))


def destructive(plan: Plan) -> list[Risk]:
    return [r for r in risks(plan) if r.destructive]
