"""Staged server-side apply with pruning: put the cluster in exactly the state of a commit.

Order of a deploy, and why:

1. Dry-run everything first (the same plan the preview showed). If the API server rejects any
   object, nothing is applied: a half-applied change is harder to reason about than none.
2. Record the union of old and new group-kinds on the ApplySet parent *before* applying, so a
   worker killed mid-deploy leaves every new object findable for the next prune.
3. Apply changed objects stage by stage (:mod:`mergeway.kube.sort`), concurrently within a stage;
   after the foundation stage wait for new CRDs to be Established and refresh discovery, so custom
   resources in the same change can be applied.
4. Prune members of the set that left Git, in reverse stage order, with background propagation.
5. Write the final group-kinds and the applied commit to the parent.
6. Wait for the environment's objects to become healthy (:mod:`mergeway.kube.health`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mergeway.kube import applyset as aset
from mergeway.kube.client import APPLY_PATCH, KubeClient, KubeError
from mergeway.kube.diff import (
    Differ,
    ObjectDiff,
    ObjectRef,
    Plan,
    opts_in_to_recreate,
    touches_immutable_field,
)
from mergeway.kube.health import Health, Target, wait_healthy
from mergeway.kube.secrets import scrub, secret_values
from mergeway.kube.sort import stages
from mergeway.render.manifests import Manifest

COMMIT_ANNOTATION = "mergeway.io/commit"


@dataclass
class DeployResult:
    plan: Plan
    applied: list[ObjectDiff] = field(default_factory=list)
    pruned: list[ObjectDiff] = field(default_factory=list)
    failed: list[tuple[ObjectDiff, str]] = field(default_factory=list)
    #: Changes deliberately not executed (destructive ones nobody allowed); they stay set members.
    held: list[ObjectDiff] = field(default_factory=list)
    health: dict[str, Health] = field(default_factory=dict)
    apply_seconds: float = 0.0
    rollout_seconds: float = 0.0
    timed_out: bool = False

    @property
    def unhealthy(self) -> dict[str, Health]:
        return {ref: h for ref, h in self.health.items() if h.state != "current"}

    @property
    def ok(self) -> bool:
        return not self.failed and not self.plan.errors and not self.unhealthy

    def counts(self) -> dict[str, int]:
        """What was done, in the words previews use (add/change/prune), so both read alike."""
        counts = {
            "added": sum(1 for i in self.applied if i.action == "create"),
            "changed": sum(1 for i in self.applied if i.action == "update"),
            "pruned": len(self.pruned),
            "unchanged": self.plan.count("unchanged"),
        }
        failed = len(self.failed) + len(self.plan.errors)
        return {**counts, "failed": failed} if failed else counts


class Applier:
    def __init__(self, client: KubeClient, *, concurrency: int = 16, field_manager: str = "mergeway") -> None:
        self.client = client
        # A deploy reports actions, not diff texts: rendering them is most of the planning CPU.
        self.differ = Differ(client, concurrency=concurrency, field_manager=field_manager, diffs=False)
        self.concurrency = concurrency

    @staticmethod
    def _parent_is(
        annotations: dict[str, str], applyset: aset.ApplySet, gks: set[str], namespaces: set[str], commit: str
    ) -> bool:
        """Whether the parent already records exactly this state (then writing it again is a no-op)."""
        wanted = aset.parent_object(applyset, gks, namespaces)["metadata"]["annotations"]
        if commit:
            wanted[COMMIT_ANNOTATION] = commit
        return (
            bool(annotations)
            and all(annotations.get(k) == v for k, v in wanted.items())
            and (bool(commit) or COMMIT_ANNOTATION not in annotations)
        )

    def _write_parent(self, applyset: aset.ApplySet, gks: set[str], namespaces: set[str], commit: str = "") -> None:
        parent = aset.parent_object(applyset, gks, namespaces)
        if commit:
            parent["metadata"]["annotations"][COMMIT_ANNOTATION] = commit
        self.client.request(
            "PATCH",
            f"/api/v1/namespaces/{applyset.namespace}/configmaps/{applyset.name}",
            body=parent,
            query={"fieldManager": self.differ.field_manager, "force": "true"},
            content_type=APPLY_PATCH,
        )

    def _apply_one(self, item: ObjectDiff) -> tuple[ObjectDiff, str]:
        """Apply one object; returns an error message ('' on success)."""
        secrets = secret_values(item.desired)
        try:
            if item.resource is None:  # a custom resource whose CRD this change just created
                resource, obj = self.differ.prepare(Manifest(item.desired or {}, item.source), "")
                item.resource, item.desired = resource, obj
            assert item.resource is not None and item.desired is not None
            try:
                item.observed = self.differ.apply(item.resource, item.desired, dry_run=False)
            except KubeError as exc:
                if touches_immutable_field(exc) and opts_in_to_recreate(item.desired):
                    item.observed = self._recreate(item)
                else:
                    raise
        except KubeError as exc:
            return item, scrub(str(exc), secrets)
        except LookupError as exc:
            return item, str(exc)
        return item, ""

    def _recreate(self, item: ObjectDiff) -> dict[str, Any]:
        assert item.resource is not None and item.desired is not None
        meta = item.desired["metadata"]
        path = item.resource.object_path(meta["name"], meta.get("namespace", ""))
        self.client.request("DELETE", path, query={"propagationPolicy": "Foreground"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.client.request("GET", path)
            except KubeError as exc:
                if exc.status == 404:
                    break
                raise
            time.sleep(0.2)
        return self.differ.apply(item.resource, item.desired, dry_run=False)

    def _apply_stage(self, items: Sequence[ObjectDiff], result: DeployResult) -> None:
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="apply") as pool:
            for item, error in pool.map(self._apply_one, items):
                if error:
                    result.failed.append((item, error))
                else:
                    result.applied.append(item)

    def _prune(self, items: Sequence[ObjectDiff], result: DeployResult) -> None:
        for stage in reversed(stages(items)):
            for item in sorted(stage, key=lambda i: i.ref, reverse=True):
                assert item.resource is not None
                path = item.resource.object_path(item.ref.name, item.ref.namespace)
                try:
                    self.client.request("DELETE", path, query={"propagationPolicy": "Background"})
                except KubeError as exc:
                    if exc.status != 404:
                        result.failed.append((item, str(exc)))
                        continue
                result.pruned.append(item)

    def deploy(
        self,
        manifests: Sequence[Manifest],
        *,
        applyset: aset.ApplySet,
        default_namespace: str,
        commit: str = "",
        health_timeout: float = 300.0,
        wait: bool = True,
        progress: Callable[[str], None] | None = None,
        hold: Callable[[Plan], Collection[ObjectRef]] | None = None,
    ) -> DeployResult:
        started = time.monotonic()
        plan = self.differ.plan_for(manifests, applyset, default_namespace=default_namespace)
        result = DeployResult(plan=plan)
        if plan.errors:
            return result  # nothing applied: the report lists the rejected objects
        # An object that opted in to be recreated is planned as an update (see Differ.diff_one).
        held = set(hold(plan)) if hold else set()
        result.held = [i for i in plan.items if i.ref in held]
        changes = [i for i in plan.items if i.action in ("create", "update") and i.ref not in held]
        prunes = [i for i in plan.items if i.action == "delete" and i.ref not in held]

        parent = aset.read_parent(self.client, applyset)
        old_annotations = ((parent or {}).get("metadata") or {}).get("annotations") or {}
        old_gks = {g for g in str(old_annotations.get(aset.GROUP_KINDS, "")).split(",") if g}
        old_ns = {n for n in str(old_annotations.get(aset.NAMESPACES, "")).split(",") if n}
        # A held prune stays a member: its kind and namespace stay on the parent so a later run finds it.
        kept = [i for i in plan.items if i.action != "delete" or i.ref in held]
        new_gks = {aset.group_kind(i.ref.group, i.ref.kind) for i in kept}
        new_ns = {i.ref.namespace for i in kept if i.ref.namespace}

        grouped = stages(changes)
        if progress:
            progress(f"applying {len(changes)} object(s), pruning {len(prunes)}")
        # The parent must exist before members so a crash leaves them findable; when the change
        # creates the parent's own namespace, that has to come first.
        union = (old_gks | new_gks, old_ns | new_ns)
        creates_parent_ns = any(i.ref.kind == "Namespace" and i.ref.name == applyset.namespace for i in grouped[0])
        # Skipped when the parent already lists every kind and namespace this run can create.
        covered = parent is not None and union[0] <= old_gks and union[1] - {applyset.namespace} <= old_ns
        if not creates_parent_ns and not covered:
            self._write_parent(applyset, *union)
        for index, stage in enumerate(grouped):
            if stage:
                self._apply_stage(stage, result)
                if result.failed:
                    break
            if index == 0:
                if creates_parent_ns and not covered:
                    self._write_parent(applyset, *union)
                self._settle_foundation(stage, health_timeout)
        if not result.failed:
            self._prune(prunes, result)
        if not result.failed and not self._parent_is(old_annotations, applyset, new_gks, new_ns, commit):
            self._write_parent(applyset, new_gks, new_ns, commit)
        result.apply_seconds = time.monotonic() - started
        if result.failed or not wait:
            return result
        if progress:
            progress("waiting for the rollout")
        # Every object of the environment, not only what this run changed: a redelivered deploy (its
        # first run was killed after applying) must still wait for the rollout that run started.
        targets: dict[Target, str] = {}
        observed: dict[Target, dict[str, Any]] = {}
        for item in [*result.applied, *(i for i in plan.items if i.action == "unchanged")]:
            if item.resource is not None:
                target = (item.resource, item.ref.namespace, item.ref.name)
                targets[target] = str(item.ref)
                if item.observed:
                    observed[target] = item.observed
        rollout_started = time.monotonic()
        states = wait_healthy(
            self.client, list(targets), timeout=health_timeout, concurrency=self.concurrency, observed=observed
        )
        result.rollout_seconds = time.monotonic() - rollout_started
        result.health = {targets[t]: h for t, h in states.items()}
        result.timed_out = any(h.state == "in_progress" for h in states.values())
        return result

    def _settle_foundation(self, stage: Sequence[ObjectDiff], timeout: float) -> None:
        """Wait for new CRDs to be Established, then refresh discovery for their kinds."""
        crds = [
            (i.resource, i.ref.namespace, i.ref.name)
            for i in stage
            if i.ref.kind == "CustomResourceDefinition" and i.resource is not None
        ]
        if crds:
            wait_healthy(self.client, crds, timeout=min(timeout, 120.0), interval=0.2)
            self.differ.discovery.refresh()
