"""Wait for applied objects to become healthy, by kstatus rules, with a timeout.

The rules follow kstatus (the status library Flux and kpt use) for the kinds it knows: an object is
*current* when its controller has observed the latest generation and reports the desired state,
*failed* when a controller says it cannot get there (a Deployment past its progress deadline, a
failed Job), and *in progress* otherwise. The wait stops early as soon as everything is current or
anything has failed, so a bad rollout is reported as soon as Kubernetes knows, not at the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.discovery import Resource
from mergeway.kube.parallel import map_ordered

State = Literal["current", "in_progress", "failed", "not_found"]


class Health(NamedTuple):
    state: State
    message: str = ""


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or []}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _deployment(obj: dict[str, Any]) -> Health:
    spec, status, conds = obj.get("spec") or {}, obj.get("status") or {}, _conditions(obj)
    progressing = conds.get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(
            "failed",
            f"rollout did not finish in time (ProgressDeadlineExceeded): {progressing.get('message', '')}".strip(),
        )
    replicas = _int(spec.get("replicas", 1))
    updated, ready = _int(status.get("updatedReplicas")), _int(status.get("readyReplicas"))
    available, total = _int(status.get("availableReplicas")), _int(status.get("replicas"))
    if updated < replicas:
        return Health("in_progress", f"{updated} of {replicas} replicas updated")
    if total > updated:
        return Health("in_progress", f"{total - updated} old replica(s) pending termination")
    if available < replicas or ready < replicas:
        return Health("in_progress", f"{available} of {replicas} replicas available")
    if conds.get("Available", {}).get("status") == "False":
        return Health("in_progress", "not available yet")
    return Health("current", f"{replicas} of {replicas} replicas available")


def _statefulset(obj: dict[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    replicas = _int(spec.get("replicas", 1))
    if _int(status.get("readyReplicas")) < replicas:
        return Health("in_progress", f"{_int(status.get('readyReplicas'))} of {replicas} replicas ready")
    strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy == "RollingUpdate":
        if _int(status.get("updatedReplicas")) < replicas:
            return Health("in_progress", f"{_int(status.get('updatedReplicas'))} of {replicas} replicas updated")
        if status.get("currentRevision") != status.get("updateRevision"):
            return Health("in_progress", "rolling update in progress")
    return Health("current", f"{replicas} replicas ready")


def _daemonset(obj: dict[str, Any]) -> Health:
    status = obj.get("status") or {}
    desired = _int(status.get("desiredNumberScheduled"))
    for field in ("updatedNumberScheduled", "numberAvailable", "numberReady"):
        if _int(status.get(field)) < desired:
            return Health("in_progress", f"{_int(status.get(field))} of {desired} pods {field[6:].lower()}")
    return Health("current", f"{desired} pods available")


def _replicas(obj: dict[str, Any]) -> Health:
    replicas = _int((obj.get("spec") or {}).get("replicas", 1))
    ready = _int((obj.get("status") or {}).get("readyReplicas"))
    available = _int((obj.get("status") or {}).get("availableReplicas"))
    if min(ready, available) < replicas:
        return Health("in_progress", f"{min(ready, available)} of {replicas} replicas ready")
    return Health("current", f"{replicas} replicas ready")


def _job(obj: dict[str, Any]) -> Health:
    conds = _conditions(obj)
    if conds.get("Failed", {}).get("status") == "True":
        return Health("failed", f"job failed: {conds['Failed'].get('message') or conds['Failed'].get('reason')}")
    if conds.get("Complete", {}).get("status") == "True":
        return Health("current", "job complete")
    return Health("in_progress", "job running")


def _pod(obj: dict[str, Any]) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Failed":
        return Health("failed", "pod failed")
    if phase == "Succeeded" or _conditions(obj).get("Ready", {}).get("status") == "True":
        return Health("current", "pod ready")
    return Health("in_progress", f"pod {phase or 'pending'}")


def _crd(obj: dict[str, Any]) -> Health:
    if _conditions(obj).get("Established", {}).get("status") == "True":
        return Health("current", "established")
    return Health("in_progress", "not established yet")


def _pvc(obj: dict[str, Any]) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    return Health("current", "bound") if phase == "Bound" else Health("in_progress", f"{phase or 'pending'}")


def _generic(obj: dict[str, Any]) -> Health:
    conds = _conditions(obj)
    if conds.get("Stalled", {}).get("status") == "True":
        return Health("failed", str(conds["Stalled"].get("message") or "stalled"))
    ready = conds.get("Ready")
    if ready is not None and ready.get("status") != "True":
        return Health("in_progress", str(ready.get("message") or "not ready"))
    return Health("current")


_RULES: dict[str, Callable[[dict[str, Any]], Health]] = {
    "Deployment": _deployment,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "ReplicaSet": _replicas,
    "ReplicationController": _replicas,
    "Job": _job,
    "Pod": _pod,
    "CustomResourceDefinition": _crd,
    "PersistentVolumeClaim": _pvc,
}


def assess(obj: dict[str, Any]) -> Health:
    """The kstatus-style state of one live object."""
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return Health("in_progress", "being deleted")
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and _int(observed) < _int(generation):
        return Health("in_progress", "controller has not observed the latest change yet")
    kind = str(obj.get("kind", ""))
    rule = _RULES.get(kind)
    if rule is not None:
        if kind not in ("CustomResourceDefinition", "PersistentVolumeClaim", "Pod") and observed is None:
            return Health("in_progress", "waiting for the controller")
        return rule(obj)
    return _generic(obj)


Target = tuple[Resource, str, str]  # resource, namespace, name


def wait_healthy(
    client: KubeClient,
    targets: Sequence[Target],
    *,
    timeout: float,
    interval: float = 0.5,
    concurrency: int = 8,
    observed: Mapping[Target, dict[str, Any]] | None = None,
) -> dict[Target, Health]:
    """Poll until every target is current or one has failed, or ``timeout`` passes.

    ``observed`` holds objects as the caller last saw them (the apply response, the plan's list):
    they are assessed without a request, so kinds that are current as soon as they are stored
    (ConfigMaps, Services, RBAC: most objects of an environment) cost no GET at all, and only the
    rest are polled. Returns the last state of each target; a target still in progress at the
    deadline keeps its last message, which the report shows next to "timed out".
    """
    deadline = time.monotonic() + timeout
    states: dict[Target, Health] = {t: Health("in_progress", "not checked yet") for t in targets}
    for target, obj in (observed or {}).items():
        if target in states:
            states[target] = assess({"kind": target[0].kind, **obj})
    if any(h.state == "failed" for h in states.values()):
        return states
    pending = [t for t in targets if states[t].state == "in_progress"]

    def check(target: Target) -> tuple[Target, Health]:
        resource, namespace, name = target
        try:
            live = client.request("GET", resource.object_path(name, namespace))
        except KubeError as exc:
            if exc.status == 404:
                return target, Health("not_found", "object disappeared")
            return target, Health("in_progress", f"cannot read status: {exc}")
        live.setdefault("kind", resource.kind)
        return target, assess(live)

    while pending:
        for target, health in map_ordered(check, pending, workers=concurrency, name="health"):
            states[target] = health
        pending = [t for t in pending if states[t].state == "in_progress"]
        if any(h.state in ("failed", "not_found") for h in states.values()):
            break
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    return states
