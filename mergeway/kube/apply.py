"""Staged server-side apply with pruning: put the cluster in exactly the state of a commit.

Order of a deploy, and why:

1. Dry-run everything first (the same plan the preview showed). If the API server rejects any
   object, nothing is applied: a half-applied change is harder to reason about than none.
2. Record the union of old and new group-kinds on the ApplySet parent *before* applying, so a
   worker killed mid-deploy leaves every new object findable for the next prune.
3. Apply changed objects stage by stage (:mod:`mergeway.kube.sort`), concurrently within a stage;
   after the foundation stage wait for the CRDs of custom resources in the same change to be
   Established and refresh discovery, so those custom resources can be applied. CRDs that no
   object of the change uses are applied beside the later stages instead of before them.
   Objects in sync waves (``argocd.argoproj.io/sync-wave``, :mod:`mergeway.hooks`) go wave by
   wave, lowest first, each wave healthy before the next is applied; the stages apply within a wave.
4. Prune members of the set that left Git (:mod:`mergeway.kube.prune`).
5. Write the final group-kinds and the applied commit to the parent.
6. Wait for the environment's objects to become healthy (:mod:`mergeway.kube.health`).

Hooks (:mod:`mergeway.kube.hooks`) run around these steps: pre-deploy hooks after the dry run and
before step 2 (one failing stops the deploy with nothing applied), Argo CD ``Sync`` hooks are created
just before step 3 and waited for after step 6, post-deploy hooks after step 6 once everything is
healthy, and on-failure hooks when any of it failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from mergeway.hooks import wave_of
from mergeway.kube import prune
from mergeway.kube.applyset import ApplySet, Parent, group_kind
from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan, PlannedHook
from mergeway.kube.client import FIELD_MANAGER, KubeClient, KubeError
from mergeway.kube.diff import Differ, defined_kind, opts_in_to_recreate, touches_immutable_field
from mergeway.kube.discovery import Resource
from mergeway.kube.health import Health, Target, wait_healthy
from mergeway.kube.hooks import HookRun, HookRunner, of_phase
from mergeway.kube.options import ApplyOptions
from mergeway.kube.parallel import map_ordered
from mergeway.kube.patch import server_side_apply
from mergeway.kube.secrets import scrub, secret_values
from mergeway.kube.sort import stages
from mergeway.manifest import Manifest


class DeployResult:
    """What one deploy did: filled in as it goes, so a failure part-way reports what happened before."""

    def __init__(
        self,
        plan: Plan,
        *,
        applied: list[ObjectDiff] | None = None,
        pruned: list[ObjectDiff] | None = None,
        failed: list[tuple[ObjectDiff, str]] | None = None,
        held: list[ObjectDiff] | None = None,
        health: dict[str, Health] | None = None,
    ) -> None:
        self.plan = plan
        self.applied: list[ObjectDiff] = applied or []
        self.pruned: list[ObjectDiff] = pruned or []
        self.failed: list[tuple[ObjectDiff, str]] = failed or []
        #: Changes deliberately not executed (destructive ones nobody allowed); they stay set members.
        self.held: list[ObjectDiff] = held or []
        self.health: dict[str, Health] = health or {}
        #: Every hook run, in the order the phases ran them (:mod:`mergeway.kube.hooks`).
        self.hooks: list[HookRun] = []
        self.apply_seconds = 0.0
        self.rollout_seconds = 0.0

    def __repr__(self) -> str:
        return f"DeployResult({self.counts()}, failed={len(self.failed)}, unhealthy={len(self.unhealthy)})"

    @property
    def unhealthy(self) -> dict[str, Health]:
        return {ref: h for ref, h in self.health.items() if h.state != "current"}

    @property
    def ok(self) -> bool:
        return not self.failed and not self.plan.errors and not self.unhealthy and not self.hook_failed

    @property
    def hook_failed(self) -> bool:
        return any(r.failed for r in self.hooks)

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
    """Deploys one environment: plans exactly as a preview does (same options), then applies and prunes."""

    def __init__(
        self,
        client: KubeClient,
        *,
        concurrency: int = 16,
        field_manager: str = FIELD_MANAGER,
        options: ApplyOptions | None = None,
    ) -> None:
        self.client = client
        self.field_manager = field_manager
        self.options = options or ApplyOptions()
        # A deploy reports actions, not diff texts: rendering them is most of the planning CPU.
        self.differ = Differ(
            client, concurrency=concurrency, field_manager=field_manager, diffs=False, options=self.options
        )
        self.concurrency = concurrency

    def deploy(
        self,
        manifests: Sequence[Manifest],
        *,
        applyset: ApplySet,
        default_namespace: str,
        commit: str = "",
        health_timeout: float = 300.0,
        wait: bool = True,
        progress: Callable[[str], None] | None = None,
        hold: Callable[[Plan], Collection[ObjectRef]] | None = None,
        applied: Callable[[DeployResult], None] | None = None,
    ) -> DeployResult:
        """Apply and prune ``manifests`` as ``applyset``, then wait for the rollout.

        ``applied`` is told when everything is applied and pruned, before the rollout wait; once the
        rollout is healthy, ``commit`` is recorded on the parent as the healthy one.
        """
        started = time.monotonic()
        stored = applyset.read(self.client)
        plan = self.differ.plan_from(manifests, applyset, stored, default_namespace=default_namespace)
        result = DeployResult(plan=plan)
        if plan.errors:
            return result  # nothing applied: the report lists the rejected objects
        # An object that opted in to be recreated is planned as an update (see Differ.diff_one).
        held = set(hold(plan)) if hold else set()
        result.held = [i for i in plan.items if i.ref in held]
        changes = [i for i in plan.items if i.action in ("create", "update") and i.ref not in held]
        prunes = [i for i in plan.items if i.action == "delete" and i.ref not in held]
        if progress:
            progress(f"applying {len(changes)} object(s), pruning {len(prunes)}")
        final = _final_parent(applyset, plan, held, commit)
        runner = HookRunner(self.client, applyset, field_manager=self.field_manager, concurrency=self.concurrency)
        # A pre-deploy hook in a namespace this change creates needs that namespace first (nothing else).
        early = _namespaces_for(of_phase(plan.hooks, "pre-deploy"), changes)
        if early:
            self._apply_stage(early, result)
            if result.failed:
                return result
            changes = [i for i in changes if i not in early]
        if not self._run_hooks(runner, result, "pre-deploy", health_timeout, progress):
            return result  # nothing else applied
        sync = runner.start(of_phase(plan.hooks, "sync"))
        recorded = self._apply_changes(changes, applyset, stored, final, result, health_timeout)
        if not result.failed and not result.unhealthy:
            pruned, failed = prune.prune(self.client, prunes)
            result.pruned.extend(pruned)
            result.failed.extend(failed)
        if not result.failed and not result.unhealthy and not applyset.current(recorded, final):
            applyset.write(self.client, final, field_manager=self.field_manager)
        result.apply_seconds = time.monotonic() - started
        if applied and not result.failed and not result.unhealthy:
            applied(result)
        stopped = bool(result.failed or result.unhealthy)
        if stopped or not wait:
            result.hooks += runner.finish("sync", sync, timeout=health_timeout) if wait and sync else []
            if stopped:
                self._run_hooks(runner, result, "on-failure", health_timeout, progress)
            return result
        if progress:
            progress("waiting for the rollout")
        self._wait_healthy(result, health_timeout)
        result.hooks += runner.finish("sync", sync, timeout=health_timeout) if sync else []
        if result.ok:
            self._run_hooks(runner, result, "post-deploy", health_timeout, progress)
        elif not result.hook_failed:  # a failed hook ran them already
            self._run_hooks(runner, result, "on-failure", health_timeout, progress)
        if result.ok and commit and (stored is None or stored.healthy != commit):
            applyset.record_healthy(self.client, commit, field_manager=self.field_manager)
        return result

    def _run_hooks(
        self,
        runner: HookRunner,
        result: DeployResult,
        phase: str,
        timeout: float,
        progress: Callable[[str], None] | None,
    ) -> bool:
        """Run ``phase``'s hooks into ``result``; False when one failed (then the on-failure hooks ran too)."""
        due = of_phase(result.plan.hooks, phase)
        if not due:
            return True
        if progress:
            progress(f"running {len(due)} {phase} hook(s)")
        runs = runner.run(due, phase, timeout=timeout)
        result.hooks += runs
        if any(r.failed for r in runs):
            if phase != "on-failure":
                self._run_hooks(runner, result, "on-failure", timeout, progress)
            return False
        return True

    def _apply_changes(
        self,
        changes: Sequence[ObjectDiff],
        applyset: ApplySet,
        stored: Parent | None,
        final: Parent,
        result: DeployResult,
        timeout: float,
    ) -> Parent | None:
        """Apply stage by stage, the parent first recording every kind and namespace this run can create.

        The parent must exist before members so a crash leaves them findable; when the change
        creates the parent's own namespace, that has to come first. Not written when the parent
        already lists every kind and namespace this run can create. Returns what the parent now
        records, so a deploy whose final record is the same (a first deploy without a commit to
        record) does not write it twice.
        """
        old = stored or Parent()
        union = applyset.parent(old.group_kinds | final.group_kinds, old.namespaces | final.namespaces)
        covered = stored is not None and union.group_kinds <= old.group_kinds and union.namespaces <= old.namespaces
        recorded = stored
        numbers = sorted({_wave(i) for i in changes})
        for index, number in enumerate(numbers):
            if index and not self._settle_wave(result, numbers[index - 1], timeout):
                break  # the previous wave is not healthy: nothing after it is applied
            wave = [i for i in changes if _wave(i) == number]
            recorded, covered = self._apply_wave(wave, applyset, union, covered, recorded, result, timeout)
            if result.failed:
                break
        return recorded

    def _settle_wave(self, result: DeployResult, number: int, timeout: float) -> bool:
        """Wait for wave ``number`` (its applied and unchanged objects) to be healthy; False when it is not."""
        done = {id(i) for i in result.applied}
        members = [i for i in result.plan.items if _wave(i) == number and (id(i) in done or i.action == "unchanged")]
        self._wait_healthy(result, timeout, members)
        return not result.unhealthy

    def _apply_wave(
        self,
        changes: Sequence[ObjectDiff],
        applyset: ApplySet,
        union: Parent,
        covered: bool,
        recorded: Parent | None,
        result: DeployResult,
        timeout: float,
    ) -> tuple[Parent | None, bool]:
        """Apply one wave stage by stage (see :meth:`_apply_changes`); returns what the parent records."""
        grouped = stages(changes)
        later = [i for stage in grouped[1:] for i in stage]
        # CRDs whose custom resources are not in this change have nothing here to come before.
        used = {(i.ref.group, i.ref.kind) for i in later}
        unused = [i for i in grouped[0] if _is_crd(i) and defined_kind(i.desired or {}) not in used]
        grouped[0] = [i for i in grouped[0] if i not in unused]
        creates_parent_ns = any(i.ref.kind == "Namespace" and i.ref.name == applyset.namespace for i in grouped[0])
        if not creates_parent_ns and not covered:
            applyset.write(self.client, union, field_manager=self.field_manager)
            recorded, covered = union, True
        beside = _Beside(self._apply_stage, unused, result)
        try:
            for index, stage in enumerate(grouped):
                if index == len(grouped) - 1:
                    beside.join()  # admission webhooks come after everything else, those CRDs included
                if stage:
                    self._apply_stage(stage, result)
                if result.failed:
                    break
                if index == 0:
                    if creates_parent_ns and not covered:
                        applyset.write(self.client, union, field_manager=self.field_manager)
                        recorded, covered = union, True
                    self._settle_foundation(stage, later, timeout)
                    beside.start()
        finally:
            beside.join()
        return recorded, covered

    def _apply(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply one object; returns what the API server stored."""
        metadata = obj["metadata"]
        path = resource.object_path(metadata["name"], metadata.get("namespace", ""))
        return server_side_apply(
            self.client, path, obj, field_manager=self.field_manager, force=self.options.force_conflicts
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
                item.observed = self._apply(item.resource, item.desired)
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
        return self._apply(item.resource, item.desired)

    def _apply_stage(self, items: Sequence[ObjectDiff], result: DeployResult) -> None:
        for item, error in map_ordered(self._apply_one, items, workers=self.concurrency, name="apply"):
            if error:
                result.failed.append((item, error))
            else:
                result.applied.append(item)

    def _wait_healthy(self, result: DeployResult, timeout: float, items: Sequence[ObjectDiff] | None = None) -> None:
        """Wait for the environment's objects (or ``items``, a wave) to be healthy, judging first from
        what the apply returned.

        Every object of the environment, not only what this run changed: a redelivered deploy (its
        first run was killed after applying) must still wait for the rollout that run started.
        """
        targets: dict[Target, str] = {}
        observed: dict[Target, dict[str, Any]] = {}
        if items is None:
            items = [*result.applied, *(i for i in result.plan.items if i.action == "unchanged")]
        for item in items:
            if item.resource is not None:
                target = (item.resource, item.ref.namespace, item.ref.name)
                targets[target] = str(item.ref)
                if item.observed:
                    observed[target] = item.observed
        rollout_started = time.monotonic()
        states = wait_healthy(
            self.client, list(targets), timeout=timeout, concurrency=self.concurrency, observed=observed
        )
        result.rollout_seconds += time.monotonic() - rollout_started
        result.health.update({targets[t]: h for t, h in states.items()})

    def _settle_foundation(self, stage: Sequence[ObjectDiff], later: Sequence[ObjectDiff], timeout: float) -> None:
        """Before custom resources of this change are applied, wait for their CRDs to be Established.

        The stage holds only CRDs whose custom resources come later in this run (the others are
        applied beside the later stages, see :class:`_Beside`); each is judged first by what its
        apply returned, so an updated CRD that stays Established costs no request. Discovery is
        refreshed only when a custom resource's kind was unknown when planned, until it is known.
        """
        deadline = time.monotonic() + min(timeout, 120.0)
        crds = {(i.resource, i.ref.namespace, i.ref.name): i.observed for i in stage if _is_crd(i) and i.resource}
        if crds:
            observed = {target: obj for target, obj in crds.items() if obj}
            wait_healthy(self.client, list(crds), timeout=deadline - time.monotonic(), interval=0.2, observed=observed)
        # An Established CRD's kind reaches discovery a moment later (the API server's discovery
        # controller): wait for it too, or the custom resource's apply finds no such kind.
        unknown = {(str((i.desired or {}).get("apiVersion", "")), i.ref.kind) for i in later if i.resource is None}
        discovery = self.differ.discovery
        while unknown:
            discovery.refresh()
            unknown = {kind for kind in unknown if discovery.known(*kind) is None}
            if not unknown or time.monotonic() >= deadline:
                break
            time.sleep(0.2)


class _Beside:
    """CRDs that nothing in the change depends on, applied while the later stages are.

    A CRD of an install bundle can cost the API server a second to apply (decoding, validating and
    storing hundreds of KB of schema), and waiting for it before the ConfigMaps and Deployments it
    has nothing to do with made that second part of every deploy. Started once the foundation stage
    and the ApplySet parent are in place, joined before the admission webhooks and at the end; its
    outcome joins the deploy's (docs/DECISIONS.md, "Performance").
    """

    def __init__(
        self,
        apply_stage: Callable[[Sequence[ObjectDiff], DeployResult], None],
        items: Sequence[ObjectDiff],
        result: DeployResult,
    ) -> None:
        self.apply_stage = apply_stage
        self.items = items
        self.result = result
        self.own = DeployResult(result.plan)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        if self.items and self.thread is None:
            self.thread = threading.Thread(target=self._run, name="apply-crds", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            self.apply_stage(self.items, self.own)
        except BaseException as exc:  # raised in the deploy's own thread by join(), as a stage's would be
            self.error = exc

    def join(self) -> None:
        """Wait for the CRDs; their outcome goes first in the deploy's, where the foundation stage's goes."""
        if self.thread is None:
            return
        self.thread.join()
        self.thread = None
        self.result.applied[:0] = self.own.applied
        self.result.failed[:0] = self.own.failed
        if self.error is not None:
            raise self.error


def _namespaces_for(hooks: Sequence[PlannedHook], changes: Sequence[ObjectDiff]) -> list[ObjectDiff]:
    """The Namespaces this change creates that ``hooks`` run in."""
    wanted = {h.ref.namespace for h in hooks}
    return [i for i in changes if i.action == "create" and i.ref[:2] == ("", "Namespace") and i.ref.name in wanted]


def _wave(item: ObjectDiff) -> int:
    """The object's sync wave (:mod:`mergeway.hooks`); 0 for a pruned object, which has no desired form."""
    return wave_of(item.desired or {})


def _is_crd(item: ObjectDiff) -> bool:
    return item.ref.kind == "CustomResourceDefinition" and item.ref.group == "apiextensions.k8s.io"


def _final_parent(applyset: ApplySet, plan: Plan, held: Collection[ObjectRef], commit: str) -> Parent:
    """What the parent records once this deploy is done: every member's kind and namespace, and the commit."""
    # A held prune stays a member: its kind and namespace stay on the parent so a later run finds it.
    kept = [i for i in plan.items if i.action != "delete" or i.ref in held]
    return applyset.parent({group_kind(i.ref.group, i.ref.kind) for i in kept}, {i.ref.namespace for i in kept}, commit)
