"""Deploy hooks: kept out of the environment's objects, created fresh in their phase, waited to an end.

A hook (:mod:`mergeway.hooks` says which objects are hooks and when they run) is not a member of the
environment's ApplySet: it carries no part-of label, so it is never pruned, never counted among the
set's kinds, and never diffed as an object. It is labelled ``mergeway.io/hook-of: <set id>`` instead,
so the next deploy finds the previous run of a ``generateName`` hook, and so nothing that is not
this environment's hook is ever deleted to make room for one.

Why create and not apply: a Job's pod template is immutable, so applying a changed migration Job
fails on the next deploy; a hook is a *run*, and each deploy makes a new one (deleting the previous
run first when its delete policy says ``before-hook-creation``, the default). A run is waited for
by :mod:`mergeway.kube.health`'s rules (Job ``Complete``, Pod ``Succeeded``; a ConfigMap or Role is
done once stored), and its failure reason is the Job's condition plus the failing container's
termination message or last log lines.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

from mergeway import hooks as dialects
from mergeway.kube.applyset import PART_OF_LABEL, ApplySet
from mergeway.kube.changeset import ObjectDiff, ObjectRef, PlannedHook, SkippedHook
from mergeway.kube.client import FIELD_MANAGER, KubeClient, KubeError
from mergeway.kube.discovery import Resource, UnknownKind
from mergeway.kube.health import Health, Target, wait_healthy
from mergeway.kube.parallel import map_ordered
from mergeway.kube.secrets import scrub, secret_values
from mergeway.manifest import Manifest

#: The label that ties a hook run to its environment's ApplySet (not the part-of label: never pruned).
HOOK_OF_LABEL = "mergeway.io/hook-of"
#: Lines of a failed container's log shown when it left no termination message.
LOG_LINES = 10

Prepare = Callable[[Manifest, str, dict[str, str]], tuple[Resource, dict[str, Any]]]


class Split(NamedTuple):
    """A render divided for a deploy: the environment's objects, its hooks, hooks not applied, refusals."""

    manifests: list[Manifest]
    hooks: list[PlannedHook]
    skipped: list[SkippedHook]
    errors: list[ObjectDiff]


def _ref(manifest: Manifest) -> ObjectRef:
    meta = manifest.obj.get("metadata") or {}
    return ObjectRef(manifest.group, manifest.kind, manifest.namespace, manifest.name or str(meta.get("generateName")))


def split(
    manifests: Sequence[Manifest], prepare: Prepare, applyset: ApplySet, *, installed: bool, default_namespace: str
) -> Split:
    """Sort each rendered object into the environment's objects, hooks, skipped hooks or refusals.

    ``installed``: the environment already has objects (Helm's install and upgrade hooks depend on it).
    """
    out = Split([], [], [], [])
    for m in manifests:
        found = dialects.classify(m.group, m.kind, m.obj, installed=installed)
        ref = _ref(m)
        if isinstance(found, dialects.Refused):
            out.errors.append(ObjectDiff(ref, "error", m.source, message=found.why))
        elif isinstance(found, dialects.Skipped):
            out.skipped.append(SkippedHook(ref, found.said, found.why, m.source))
        elif isinstance(found, dialects.Normal):
            if not m.name:
                why = "metadata.generateName without metadata.name: only a hook is created under a new name each run"
                out.errors.append(ObjectDiff(ref, "error", m.source, message=why))
            else:
                out.manifests.append(m)
        else:
            try:
                resource, desired = prepare(m, default_namespace, {HOOK_OF_LABEL: applyset.id})
            except (UnknownKind, KubeError) as exc:
                out.errors.append(ObjectDiff(ref, "error", m.source, message=scrub(str(exc), secret_values(m.obj))))
                continue
            desired["metadata"]["labels"].pop(PART_OF_LABEL, None)
            ref = ref._replace(group=resource.group, namespace=desired["metadata"].get("namespace", ""))
            out.hooks.append(
                PlannedHook(ref, found.phases, found.weight, found.policies, found.said, m.source, resource, desired)
            )
    return out


def dry_run(client: KubeClient, hooks: Sequence[PlannedHook], *, new_namespaces: set[str]) -> list[ObjectDiff]:
    """The API server's verdict on creating each hook (``dryRun=All``): errors the preview shows.

    An existing previous run is no error when the delete policy removes it first; a namespace this
    change creates is not there to validate against yet (as for the environment's own objects).
    """

    def check(hook: PlannedHook) -> ObjectDiff | None:
        path = hook.resource.collection_path(hook.ref.namespace)
        try:
            client.request("POST", path, body=hook.desired, query={"dryRun": "All", "fieldManager": FIELD_MANAGER})
        except KubeError as exc:
            if exc.status == 409 and "before-hook-creation" in hook.policies:
                return None
            if exc.status == 404 and hook.ref.namespace in new_namespaces:
                return None
            why = scrub(str(exc), secret_values(hook.desired))
            if exc.status == 409:
                why += " (a previous run is there and the delete policy has no before-hook-creation)"
            return ObjectDiff(hook.ref, "error", hook.source, message=f"{hook.said}: {why}")
        return None

    return [e for e in map_ordered(check, hooks, workers=8, name="hook-dry-run") if e is not None]


class HookRun(NamedTuple):
    """One hook's run in one phase, as the deploy comment and the deployment record tell it."""

    phase: str
    #: ``Kind/namespace/name`` as created (a ``generateName`` hook's generated name).
    ref: str
    state: Literal["succeeded", "failed"]
    #: Why it failed, in the cluster's words (Secret values of the hook itself masked); "" on success.
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.state == "failed"


class Started(NamedTuple):
    hook: PlannedHook
    #: The object as created, or ``None`` when creating it failed (``error`` says why).
    created: dict[str, Any] | None
    error: str = ""


class HookRunner:
    """Runs the hooks of one phase: weight by weight, each weight's hooks together, stopping at a failure."""

    def __init__(
        self, client: KubeClient, applyset: ApplySet, *, field_manager: str = FIELD_MANAGER, concurrency: int = 8
    ) -> None:
        self.client = client
        self.applyset = applyset
        self.field_manager = field_manager
        self.concurrency = concurrency

    def run(self, hooks: Sequence[PlannedHook], phase: str, *, timeout: float) -> list[HookRun]:
        """Run the hooks of ``phase`` in ascending weight; a failed weight stops the ones after it."""
        runs: list[HookRun] = []
        deadline = time.monotonic() + timeout
        for _, group in itertools.groupby(of_phase(hooks, phase), key=lambda h: h.weight):
            runs += self.finish(phase, self.start(list(group)), timeout=max(1.0, deadline - time.monotonic()))
            if any(r.failed for r in runs):
                break
        return runs

    def start(self, hooks: Sequence[PlannedHook]) -> list[Started]:
        """Create each hook (in order), the previous run deleted first when its policy says so."""
        return [self._create(h) for h in hooks]

    def finish(self, phase: str, started: Sequence[Started], *, timeout: float) -> list[HookRun]:
        """Wait for the created hooks to end, then delete each as its policy says."""
        targets: dict[Target, Started] = {}
        for s in started:
            if s.created is not None:
                meta = s.created["metadata"]
                targets[(s.hook.resource, meta.get("namespace", ""), meta["name"])] = s
        states = wait_healthy(
            self.client,
            list(targets),
            timeout=timeout,
            concurrency=self.concurrency,
            observed={t: s.created for t, s in targets.items() if s.created is not None},
        )
        failed_first = next((t for t, h in states.items() if h.state in ("failed", "not_found")), None)
        runs = [HookRun(phase, str(s.hook.ref), "failed", s.error) for s in started if s.created is None]
        for target, s in targets.items():
            ref = str(s.hook.ref._replace(name=target[2]))
            health = states[target]
            if health.state == "current":
                runs.append(HookRun(phase, ref, "succeeded"))
                self._delete_if(s, "hook-succeeded")
                continue
            runs.append(HookRun(phase, ref, "failed", self._reason(s, target, health, failed_first)))
            self._delete_if(s, "hook-failed")
        return runs

    # -- creating ------------------------------------------------------------------------------------

    def _create(self, hook: PlannedHook) -> Started:
        secrets = secret_values(hook.desired)
        namespace = hook.ref.namespace
        try:
            if "before-hook-creation" in hook.policies:
                self._delete_previous(hook)
            created = self.client.request(
                "POST",
                hook.resource.collection_path(namespace),
                body=hook.desired,
                query={"fieldManager": self.field_manager},
            )
        except KubeError as exc:
            why = scrub(str(exc), secrets)
            if exc.status == 409:
                why += (
                    " (a previous run is still there and its delete policy has no before-hook-creation: "
                    "delete it, or add that policy)"
                )
            return Started(hook, None, why)
        except _NotOurs as exc:
            return Started(hook, None, str(exc))
        return Started(hook, created)

    def _delete_previous(self, hook: PlannedHook) -> None:
        """Delete the previous run: by name, or (``generateName``) every run of this hook of this set."""
        resource, namespace = hook.resource, hook.ref.namespace
        meta = hook.desired["metadata"]
        if meta.get("name"):
            path = resource.object_path(meta["name"], namespace)
            try:
                live = self.client.request("GET", path)
            except KubeError as exc:
                if exc.status == 404:
                    return
                raise
            labels = (live.get("metadata") or {}).get("labels") or {}
            if self.applyset.id not in (labels.get(HOOK_OF_LABEL), labels.get(PART_OF_LABEL)):
                raise _NotOurs(
                    f"{hook.ref} exists and is neither a hook nor an object of this environment: not replaced"
                )
            self._delete(path)
            self._gone(path, deadline=time.monotonic() + 120)
            return
        listed = self.client.request(
            "GET", resource.collection_path(namespace), query={"labelSelector": f"{HOOK_OF_LABEL}={self.applyset.id}"}
        )
        for item in listed.get("items") or []:
            if (item.get("metadata") or {}).get("generateName") == meta.get("generateName"):
                self._delete(resource.object_path(item["metadata"]["name"], namespace))

    def _delete(self, path: str) -> None:
        try:
            self.client.request("DELETE", path, query={"propagationPolicy": "Background"})
        except KubeError as exc:
            if exc.status != 404:
                raise

    def _gone(self, path: str, *, deadline: float) -> None:
        """Wait until the object at ``path`` no longer exists (its name is free again)."""
        while time.monotonic() < deadline:
            try:
                self.client.request("GET", path)
            except KubeError as exc:
                if exc.status == 404:
                    return
                raise
            time.sleep(0.2)
        raise KubeError(0, "Timeout", f"{path}: the previous run of this hook was not deleted in time")

    def _delete_if(self, started: Started, policy: str) -> None:
        if policy in started.hook.policies and started.created is not None:
            meta = started.created["metadata"]
            # Best effort: the next run's before-hook-creation, or a person, removes it.
            with contextlib.suppress(KubeError):
                self._delete(started.hook.resource.object_path(meta["name"], meta.get("namespace", "")))

    # -- why it failed -------------------------------------------------------------------------------

    def _reason(self, started: Started, target: Target, health: Health, failed_first: Target | None) -> str:
        secrets = secret_values(started.hook.desired)
        if health.state == "in_progress":
            if failed_first is not None and failed_first != target:
                return f"not waited for to an end: a hook of the same weight failed ({health.message})"
            return f"{health.message} (timed out)"
        why = health.message
        detail = self._pod_detail(started, target)
        return scrub(f"{why}; {detail}" if detail else why, secrets)

    def _pod_detail(self, started: Started, target: Target) -> str:
        """The failing container's termination message (or exit code) and its last log lines."""
        resource, namespace, name = target
        created = started.created or {}
        try:
            if resource.kind == "Pod" and resource.group == "":
                pods = [self.client.request("GET", resource.object_path(name, namespace))]
            else:
                uid = (created.get("metadata") or {}).get("uid", "")
                listed = self.client.request(
                    "GET",
                    f"/api/v1/namespaces/{namespace}/pods",
                    query={"labelSelector": f"batch.kubernetes.io/controller-uid={uid}"},
                )
                pods = listed.get("items") or []
        except KubeError:
            return ""
        for pod in pods:
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                term = ((container.get("state") or {}).get("terminated")) or {}
                if not term or not term.get("exitCode"):
                    continue
                said = f"container {container.get('name')} exited {term.get('exitCode')}"
                if term.get("reason"):
                    said += f" ({term['reason']})"
                message = str(term.get("message") or "").strip()
                if message:
                    return f"{said}: {message[-1000:]}"
                logs = self._log_tail(namespace, pod["metadata"]["name"], str(container.get("name")))
                return f"{said}; last log lines:\n{logs}" if logs else said
        return ""

    def _log_tail(self, namespace: str, pod: str, container: str) -> str:
        try:
            text = self.client.text(
                f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                query={"container": container, "tailLines": str(LOG_LINES)},
            )
        except KubeError:
            return ""  # logs are a courtesy: a node that serves none must not hide the reason above
        return text.strip()[-2000:]


class _NotOurs(Exception):
    """An object with the hook's name exists and belongs to neither this environment's set nor its hooks."""


def of_phase(hooks: Sequence[PlannedHook], phase: str) -> list[PlannedHook]:
    """The hooks that run in ``phase``, in the order they run (weight, then kind and name)."""
    return sorted((h for h in hooks if phase in h.phases), key=lambda h: (h.weight, h.ref))
