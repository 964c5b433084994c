"""Wait for applied objects to become healthy, by kstatus rules, with a timeout.

The rules follow kstatus (``pkg/kstatus/status`` in cli-utils, the status library Flux and kpt use)
kind by kind, and README.md ("What healthy means") lists every kind with the few places where we
differ and why. An object is *current* when its controller has observed the latest generation and
reports the desired state, *failed* when a controller says it cannot get there (a Deployment past
its progress deadline, a failed Job, a crash-looping Pod, a ``Stalled`` custom resource), and *in
progress* otherwise. The wait stops early as soon as everything is current or anything has failed,
so a bad rollout is reported as soon as Kubernetes knows, not at the timeout.

Rules are keyed by API group and kind, as kstatus keys them: a custom resource that happens to be
called ``Job`` or ``Service`` is judged by its conditions, not by a built-in kind's fields.
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
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or [] if isinstance(c, dict)}


def _true(conds: dict[str, dict[str, Any]], type_: str) -> dict[str, Any] | None:
    """The condition ``type_`` when its status is ``True``, else None."""
    cond = conds.get(type_)
    return cond if cond is not None and cond.get("status") == "True" else None


def _said(prefix: str, cond: dict[str, Any]) -> str:
    """``prefix`` and a condition in its controller's own words: "prefix (Reason): message"."""
    reason, message = str(cond.get("reason") or "").strip(), str(cond.get("message") or "").strip()
    return prefix + (f" ({reason})" if reason else "") + (f": {message}" if message else "")


def _int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _replicas(obj: dict[str, Any]) -> int:
    """``spec.replicas``, which the controllers default to 1."""
    return _int((obj.get("spec") or {}).get("replicas"), 1)


def _deployment(obj: dict[str, Any]) -> Health:
    spec, status, conds = obj.get("spec") or {}, obj.get("status") or {}, _conditions(obj)
    progressing = conds.get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(
            "failed",
            f"rollout did not finish in time (ProgressDeadlineExceeded): {progressing.get('message', '')}".strip(),
        )
    wanted = _replicas(obj)
    total, updated = _int(status.get("replicas")), _int(status.get("updatedReplicas"))
    ready, available = _int(status.get("readyReplicas")), _int(status.get("availableReplicas"))
    paused = " (rollout paused: spec.paused)" if spec.get("paused") else ""
    if total < wanted:
        return Health("in_progress", f"{total} of {wanted} replicas created{paused}")
    if updated < wanted:
        return Health("in_progress", f"{updated} of {wanted} replicas updated{paused}")
    if total > wanted:
        return Health("in_progress", f"{total - wanted} old replica(s) pending termination")
    if available < updated:
        return Health("in_progress", f"{available} of {updated} updated replicas available")
    if ready < wanted:
        return Health("in_progress", f"{ready} of {wanted} replicas ready")
    # Without a progress deadline the controller never says a rollout is complete (kstatus: same);
    # a paused Deployment never will either, so its replica counts are all there is to go by.
    deadline = spec.get("progressDeadlineSeconds") is not None
    if deadline and not spec.get("paused") and progressing.get("reason") != "NewReplicaSetAvailable":
        return Health("in_progress", "the controller has not reported the rollout complete yet")
    if not _true(conds, "Available"):
        return Health("in_progress", "not available yet")
    return Health("current", f"{wanted} of {wanted} replicas available")


def _statefulset(obj: dict[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    wanted, total = _replicas(obj), _int(status.get("replicas"))
    ready, updated = _int(status.get("readyReplicas")), _int(status.get("updatedReplicas"))
    if total < wanted:
        return Health("in_progress", f"{total} of {wanted} replicas created")
    if ready < wanted:
        return Health("in_progress", f"{ready} of {wanted} replicas ready")
    if total > wanted:
        return Health("in_progress", f"{total - wanted} replica(s) pending termination")
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        # Pods take a new template only when someone deletes them: nothing more to wait for.
        return Health("current", f"{wanted} replicas ready (OnDelete: pods update when deleted)")
    partition = (strategy.get("rollingUpdate") or {}).get("partition")
    if partition is not None:
        # Only ordinals >= partition are updated; the API server defaults the partition to 0.
        due = max(0, wanted - _int(partition))
        if updated < due:
            return Health("in_progress", f"{updated} of {due} replicas updated (partition {_int(partition)})")
        return Health("current", f"{wanted} replicas ready, {updated} updated")
    if _int(status.get("currentReplicas")) < wanted:
        return Health("in_progress", f"{_int(status.get('currentReplicas'))} of {wanted} replicas current")
    if status.get("currentRevision") != status.get("updateRevision"):
        return Health("in_progress", "rolling update in progress")
    return Health("current", f"{wanted} replicas ready")


def _daemonset(obj: dict[str, Any]) -> Health:
    status = obj.get("status") or {}
    if status.get("desiredNumberScheduled") is None:
        return Health("in_progress", "the controller has not counted the nodes yet")
    desired = _int(status.get("desiredNumberScheduled"))
    fields = ["currentNumberScheduled", "updatedNumberScheduled", "numberAvailable", "numberReady"]
    if ((obj.get("spec") or {}).get("updateStrategy") or {}).get("type") == "OnDelete":
        fields.remove("updatedNumberScheduled")  # pods take the new template only when deleted
    words = {"currentNumberScheduled": "scheduled", "updatedNumberScheduled": "updated"}
    for name in fields:
        if _int(status.get(name)) < desired:
            word = words.get(name, name.removeprefix("number").lower())
            return Health("in_progress", f"{_int(status.get(name))} of {desired} pods {word}")
    return Health("current", f"{desired} pods available")


def _replicaset(obj: dict[str, Any]) -> Health:
    status = obj.get("status") or {}
    failure = _true(_conditions(obj), "ReplicaFailure")
    if failure is not None:  # quota, admission: it may clear, so kstatus keeps waiting, and so do we
        return Health("in_progress", _said("cannot create pods", failure))
    wanted = _replicas(obj)
    for name, word in (("fullyLabeledReplicas", "labelled"), ("availableReplicas", "available")):
        if _int(status.get(name)) < wanted:
            return Health("in_progress", f"{_int(status.get(name))} of {wanted} replicas {word}")
    if _int(status.get("readyReplicas")) < wanted:
        return Health("in_progress", f"{_int(status.get('readyReplicas'))} of {wanted} replicas ready")
    if _int(status.get("replicas")) > wanted:
        return Health("in_progress", f"{_int(status.get('replicas')) - wanted} replica(s) pending termination")
    return Health("current", f"{wanted} replicas ready")


def _job(obj: dict[str, Any]) -> Health:
    """A Job is done when it says so: it never reports ``observedGeneration``, only conditions.

    kstatus calls a Job current once it has started; a deploy that holds a Job (a migration, a seed)
    wants its outcome, so it waits for ``Complete`` and fails on ``Failed``. ``FailureTarget`` is the
    controller's decision to fail, set before it has finished terminating the pods.
    """
    spec, status, conds = obj.get("spec") or {}, obj.get("status") or {}, _conditions(obj)
    for type_ in ("Failed", "FailureTarget"):
        failed = _true(conds, type_)
        if failed is not None:
            return Health("failed", _said("job failed", failed))
    succeeded = _int(status.get("succeeded"))
    if _true(conds, "Complete"):
        return Health("current", f"job complete ({succeeded} succeeded)")
    if spec.get("suspend") or _true(conds, "Suspended"):
        return Health("in_progress", "job suspended (spec.suspend: true): it will not run until resumed")
    if not status.get("startTime"):
        return Health("in_progress", "job not started yet")
    active, failures = _int(status.get("active")), _int(status.get("failed"))
    return Health("in_progress", f"job running: {active} active, {succeeded} succeeded, {failures} failed")


def _pod(obj: dict[str, Any]) -> Health:
    status = obj.get("status") or {}
    phase, conds = str(status.get("phase") or ""), _conditions(obj)
    if phase == "Succeeded":
        return Health("current", "pod completed")
    if phase == "Failed":
        if status.get("reason") or status.get("message"):  # the kubelet's words (Evicted, DeadlineExceeded…)
            return Health("failed", _said("pod failed", status))
        exits = [
            f"{c.get('name')} exited {term.get('exitCode')}"
            for c in status.get("containerStatuses") or []
            if (term := ((c.get("state") or {}).get("terminated") or {})) and term.get("exitCode")
        ]
        return Health("failed", "pod failed" + (f": {', '.join(exits)}" if exits else ""))
    if phase == "Running":
        if _true(conds, "Ready"):
            return Health("current", "pod ready")
        looping = [
            str(c.get("name"))
            for c in status.get("containerStatuses") or []
            if ((c.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        ]
        if looping:
            return Health("failed", f"container(s) crash looping (CrashLoopBackOff): {', '.join(looping)}")
        return Health("in_progress", "pod running, not ready")
    scheduled = conds.get("PodScheduled") or {}
    if phase == "Pending" and scheduled.get("status") == "False":
        # kstatus calls this failed after 15 s; a cluster autoscaler may still add a node, so we wait.
        return Health("in_progress", _said("pod not scheduled", scheduled))
    return Health("in_progress", f"pod {phase.lower() or 'pending'}")


def _crd(obj: dict[str, Any]) -> Health:
    conds = _conditions(obj)
    names = conds.get("NamesAccepted") or {}
    if names.get("status") == "False":
        return Health("failed", _said("names not accepted", names))
    established = conds.get("Established") or {}
    if established.get("status") == "True":
        return Health("current", "established")
    if established.get("status") == "False" and established.get("reason") != "Installing":
        return Health("failed", _said("not established", established))
    return Health("in_progress", "not established yet")


def _pvc(obj: dict[str, Any]) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Bound":
        return Health("current", "bound")
    if phase == "Lost":  # its volume is gone: nothing will bind it again (kstatus: in progress)
        return Health("failed", "claim lost its volume (phase Lost)")
    return Health("in_progress", f"claim {str(phase or 'pending').lower()}")


def _service(obj: dict[str, Any]) -> Health:
    spec = obj.get("spec") or {}
    if spec.get("type") == "LoadBalancer" and not spec.get("clusterIP"):
        return Health("in_progress", "no cluster IP assigned yet")
    return Health("current")


class Rule(NamedTuple):
    check: Callable[[dict[str, Any]], Health]
    #: The kind's controller writes ``status.observedGeneration``: until it has, the status describes
    #: nothing (a new object's empty status would pass for "0 of 0 replicas").
    needs_observed: bool = False


_WORKLOADS = {
    "Deployment": Rule(_deployment, True),
    "StatefulSet": Rule(_statefulset, True),
    "DaemonSet": Rule(_daemonset, True),
    "ReplicaSet": Rule(_replicaset, True),
}

#: (API group, kind) -> rule. Every other kind is judged by its conditions alone (``_conditions_only``).
_RULES: dict[tuple[str, str], Rule] = {
    **{("apps", kind): rule for kind, rule in _WORKLOADS.items()},
    **{("extensions", kind): rule for kind, rule in _WORKLOADS.items() if kind != "StatefulSet"},
    ("", "ReplicationController"): Rule(_replicaset, True),
    ("batch", "Job"): Rule(_job),
    ("", "Pod"): Rule(_pod),
    ("", "PersistentVolumeClaim"): Rule(_pvc),
    ("", "Service"): Rule(_service),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): Rule(_crd),
}


def _conditions_only(obj: dict[str, Any]) -> Health:
    """Kinds without a rule (CronJob, Ingress, PDB, HPA, ConfigMap, custom resources): ``Ready`` if
    they have one, else current once stored."""
    ready = _conditions(obj).get("Ready")
    if ready is None or ready.get("status") == "True":
        return Health("current", "ready" if ready is not None else "")
    return Health("in_progress", _said("not ready", ready))


def group_of(obj: dict[str, Any]) -> str:
    api_version = str(obj.get("apiVersion") or "")
    return api_version.rpartition("/")[0]


def assess(obj: dict[str, Any]) -> Health:
    """The kstatus-style state of one live object (with its ``apiVersion`` and ``kind``)."""
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return Health("in_progress", "being deleted")
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and _int(observed) < _int(generation):
        return Health("in_progress", "controller has not observed the latest change yet")
    rule = _RULES.get((group_of(obj), str(obj.get("kind", ""))))
    if rule is not None and rule.needs_observed and observed is None:
        return Health("in_progress", "waiting for the controller")
    # The standard conditions speak for any kind that sets them, built-in or custom (as in kstatus).
    conds = _conditions(obj)
    stalled, reconciling = _true(conds, "Stalled"), _true(conds, "Reconciling")
    if stalled is not None:
        return Health("failed", _said("stalled", stalled))
    if reconciling is not None:
        return Health("in_progress", _said("reconciling", reconciling))
    return rule.check(obj) if rule is not None else _conditions_only(obj)


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
            states[target] = assess({"apiVersion": target[0].api_version, "kind": target[0].kind, **obj})
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
        live.setdefault("apiVersion", resource.api_version)
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
