"""Server-side dry-run diffs: what the API server *would* store, compared with what it stores now.

Each object is sent as a server-side apply with ``dryRun=All`` and Mergeway's own field manager,
exactly as the real apply will be, so defaulting, admission webhooks, validation and field
ownership are all the server's: fields removed from Git show as removed, and invalid manifests fail
here with the server's own message, before anyone merges. Requests run concurrently (bounded), so
one slow object does not serialise the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from mergeway.kube import hooks, prune
from mergeway.kube.applyset import ApplySet, Listed, Parent, list_collection
from mergeway.kube.changeset import Action, ObjectDiff, ObjectRef, Plan, unified
from mergeway.kube.client import FIELD_MANAGER, KubeClient, KubeError
from mergeway.kube.discovery import Discovery, Resource, UnknownKind
from mergeway.kube.normalize import CONFIG_HASH, normalize
from mergeway.kube.options import ApplyOptions
from mergeway.kube.parallel import map_ordered
from mergeway.kube.patch import server_side_apply
from mergeway.kube.prepare import prepare, yield_to_managers
from mergeway.kube.secrets import is_secret, mask_pair, scrub, secret_values, stored_form
from mergeway.manifest import Manifest, effective_namespace

#: Objects opt in to delete-and-recreate when a change touches an immutable field.
RECREATE_ANNOTATION = "mergeway.io/recreate"


def leaf_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> set[tuple[Any, ...]]:
    """Every leaf of a nested object as a path of keys and list indexes (for counting fields)."""
    if isinstance(obj, dict) and obj:
        return set().union(*(leaf_paths(v, (*prefix, k)) for k, v in obj.items()))
    if isinstance(obj, list) and obj:
        return set().union(*(leaf_paths(v, (*prefix, i)) for i, v in enumerate(obj)))
    return {prefix}


def touches_immutable_field(exc: KubeError) -> bool:
    """Whether the API server refused a change because it touches an immutable field."""
    return exc.status == 422 and "is immutable" in exc.message


def opts_in_to_recreate(obj: dict[str, Any] | None) -> bool:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(RECREATE_ANNOTATION, "")).lower() == "true"


def contains(live: Any, desired: Any) -> bool:
    """Whether every value ``desired`` sets is present, unchanged, in ``live`` (lists must match in length)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(contains, live, desired))
    return type(live) is type(desired) and live == desired


def defined_kind(obj: dict[str, Any]) -> tuple[str, str]:
    """The (group, kind) of the custom resources a CustomResourceDefinition defines."""
    spec = obj.get("spec") or {}
    return str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))


def _crd_kinds(manifests: Iterable[Manifest]) -> set[tuple[str, str]]:
    """(group, kind) of every CRD in the change: their custom resources cannot be dry-run yet."""
    return {
        defined_kind(m.obj)
        for m in manifests
        if m.kind == "CustomResourceDefinition" and m.group == "apiextensions.k8s.io"
    }


class _Planned(NamedTuple):
    """What the server would store for one object, and what the reviewer must be told about it."""

    obj: dict[str, Any]
    unvalidated: bool = False
    note: str = ""
    recreate: bool = False


class Differ:
    """Plans one environment against one cluster."""

    def __init__(
        self,
        client: KubeClient,
        discovery: Discovery | None = None,
        *,
        concurrency: int = 16,
        field_manager: str = FIELD_MANAGER,
        diffs: bool = True,
        options: ApplyOptions | None = None,
    ) -> None:
        self.client = client
        self.options = options or ApplyOptions()
        self.discovery = discovery or Discovery(client)
        self.concurrency = concurrency
        self.field_manager = field_manager
        #: Render unified diff texts (previews show them; a deploy only needs actions and before/after).
        self.diffs = diffs

    def prepare(
        self, manifest: Manifest, default_namespace: str, labels: Mapping[str, str] | None = None
    ) -> tuple[Resource, dict[str, Any]]:
        """Resolve the resource and make the desired object (:func:`mergeway.kube.prepare.prepare`)."""
        resource = self.discovery.resource(manifest.api_version, manifest.kind)
        desired = prepare(
            manifest.obj,
            namespaced=resource.namespaced,
            default_namespace=default_namespace,
            labels=labels,
            options=self.options,
        )
        return resource, desired

    def get(self, resource: Resource, name: str, namespace: str) -> dict[str, Any] | None:
        try:
            live = self.client.request("GET", resource.object_path(name, namespace))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return live if isinstance(live, dict) else None

    @staticmethod
    def _unchanged_since_applied(live: dict[str, Any], desired: dict[str, Any]) -> bool:
        """Skip the dry run when applying ``desired`` provably changes nothing.

        Mergeway's intent is identical to what it last applied (same config hash), and every field it
        sets still holds that value live (nobody changed or removed one since), so a server-side
        apply would add, change and remove nothing. Any doubt (no hash, drift, a value the server
        canonicalised, like ``0.5`` CPU stored as ``500m``) falls back to the dry run. Not covered: a
        mutating admission webhook that rewrites objects on every write.
        """
        live_hash = ((live.get("metadata") or {}).get("annotations") or {}).get(CONFIG_HASH)
        return (
            bool(live_hash)
            and live_hash == desired["metadata"]["annotations"][CONFIG_HASH]
            # A Secret's stringData is write-only: the server stores it folded into base64 data.
            and contains(live, stored_form(desired) if is_secret(desired) else desired)
        )

    def dry_run(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """What the API server would store if ``obj`` were applied (the apply itself is the applier's)."""
        metadata = obj["metadata"]
        path = resource.object_path(metadata["name"], metadata.get("namespace", ""))
        return server_side_apply(
            self.client,
            path,
            obj,
            field_manager=self.field_manager,
            force=self.options.force_conflicts,
            dry_run=True,
        )

    def diff_one(
        self,
        manifest: Manifest,
        default_namespace: str,
        *,
        new_namespaces: set[str],
        new_kinds: set[tuple[str, str]],
        listed: Listed | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObjectDiff:
        secrets = secret_values(manifest.obj)
        ref = ObjectRef(manifest.group, manifest.kind, manifest.namespace, manifest.name)
        try:
            resource, desired = self.prepare(manifest, default_namespace, labels)
        except UnknownKind as exc:
            if (manifest.group, manifest.kind) in new_kinds:
                return _new_custom_resource(manifest, default_namespace, labels, self.options)
            return ObjectDiff(ref, "error", manifest.source, message=str(exc))
        except KubeError as exc:
            return ObjectDiff(ref, "error", manifest.source, message=scrub(str(exc), secrets))
        metadata = desired["metadata"]
        ref = ObjectRef(resource.group, resource.kind, metadata.get("namespace", ""), metadata["name"])
        try:
            collection = (listed or {}).get((resource.group, resource.plural, ref.namespace))
            live = collection.get(ref.name) if collection is not None else self.get(resource, ref.name, ref.namespace)
            desired = yield_to_managers(desired, live, self.options.respect_managers)
            if live is not None and self._unchanged_since_applied(live, desired):
                return ObjectDiff(ref, "unchanged", manifest.source, desired=desired, resource=resource, observed=live)
            planned = self._planned(ref, resource, desired, live, new_namespaces, secrets)
        except KubeError as exc:
            return ObjectDiff(
                ref, "error", manifest.source, desired=desired, resource=resource, message=scrub(str(exc), secrets)
            )
        return _compared(ref, manifest.source, resource, desired, live, planned, secrets, diffs=self.diffs)

    def _planned(
        self,
        ref: ObjectRef,
        resource: Resource,
        desired: dict[str, Any],
        live: dict[str, Any] | None,
        new_namespaces: set[str],
        secrets: set[str],
    ) -> _Planned:
        """The dry run's answer, or ``desired`` itself where the server cannot validate it yet."""
        try:
            return _Planned(self.dry_run(resource, desired))
        except KubeError as exc:
            if live is None and exc.status == 404 and ref.namespace in new_namespaces:
                return _Planned(
                    desired,
                    unvalidated=True,
                    note=f"namespace {ref.namespace} is created by this change, so the API server "
                    "validates this object at apply time",
                )
            if live is not None and touches_immutable_field(exc) and opts_in_to_recreate(desired):
                # What merging does (the deploy deletes and recreates it), not an error; the
                # recreated object is validated when it is created.
                return _Planned(
                    desired,
                    unvalidated=True,
                    recreate=True,
                    note=f"this change touches an immutable field, so the deploy deletes and recreates the object "
                    f'({RECREATE_ANNOTATION}: "true"): {scrub(exc.message, secrets)}',
                )
            raise

    def plan(
        self,
        manifests: Sequence[Manifest],
        *,
        default_namespace: str = "",
        prune: Sequence[ObjectDiff] = (),
        listed: Listed | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Plan:
        """Diff every manifest; ``prune`` (from :func:`mergeway.kube.prune.prunable`) is appended as is."""
        self.discovery.known("v1", "Namespace")  # warm discovery once, before the threads start
        new_namespaces = {m.name for m in manifests if m.kind == "Namespace" and m.api_version == "v1"}
        new_kinds = _crd_kinds(manifests)
        live = self._prefetch(manifests, default_namespace) if listed is None else listed
        items = map_ordered(
            lambda m: self.diff_one(
                m, default_namespace, new_namespaces=new_namespaces, new_kinds=new_kinds, listed=live, labels=labels
            ),
            manifests,
            workers=self.concurrency,
            name="dry-run",
        )
        return Plan([*items, *prune])

    def _prefetch(self, manifests: Sequence[Manifest], default_namespace: str) -> Listed:
        """Live objects by LIST, one request per resource and namespace holding several of ours.

        A GET per object costs the API server as much as the dry run itself; listing the few
        collections a change touches halves the requests. Collections we may not list (RBAC) or
        that hold one or two of our objects are left to per-object GETs.
        """
        counts: dict[tuple[str, str, str], tuple[Resource, int]] = {}
        for m in manifests:
            resource = self.discovery.known(m.api_version, m.kind)
            if resource is None:
                continue
            namespace = effective_namespace(m.namespace, default_namespace, namespaced=resource.namespaced)
            key = (resource.group, resource.plural, namespace)
            counts[key] = (resource, counts.get(key, (resource, 0))[1] + 1)

        def fetch(key: tuple[str, str, str]) -> tuple[tuple[str, str, str], dict[str, Any] | None]:
            try:
                return key, list_collection(self.client, counts[key][0], key[2])
            except KubeError:
                return key, None

        wanted = [key for key, (_, count) in counts.items() if count >= 3]
        fetched = map_ordered(fetch, wanted, workers=self.concurrency, name="list")
        return {key: found for key, found in fetched if found is not None}

    def plan_for(self, manifests: Sequence[Manifest], applyset: ApplySet, *, default_namespace: str = "") -> Plan:
        """The plan a deploy would execute: members labelled for ``applyset``, stale members pruned.

        Preview and deploy both plan through here, so what a pull request shows is what merging it applies.
        """
        return self.plan_from(manifests, applyset, applyset.read(self.client), default_namespace=default_namespace)

    def plan_from(
        self, manifests: Sequence[Manifest], applyset: ApplySet, parent: Parent | None, *, default_namespace: str = ""
    ) -> Plan:
        """:meth:`plan_for` with the set's parent as the caller already read it."""
        self.discovery.known("v1", "Namespace")  # warm discovery once
        # Hooks are runs, not members: never diffed, applied or pruned as the environment's objects.
        found = hooks.split(
            manifests,
            lambda m, ns, labels: self.prepare(m, ns, labels),
            applyset,
            installed=parent is not None,
            default_namespace=default_namespace,
        )
        manifests = found.manifests
        listed = self._prefetch(manifests, default_namespace)
        prunes = prune.prunable(self.client, self.discovery, applyset, parent, manifests, default_namespace, listed)
        # A member that became a hook is replaced by the hook's first run, not pruned after it.
        runs = {h.ref for h in found.hooks}
        prunes = [p for p in prunes if p.ref not in runs]
        plan = self.plan(
            manifests, default_namespace=default_namespace, prune=prunes, listed=listed, labels=applyset.labels()
        )
        new_namespaces = {m.name for m in manifests if m.kind == "Namespace" and m.api_version == "v1"}
        plan.items.extend([*found.errors, *hooks.dry_run(self.client, found.hooks, new_namespaces=new_namespaces)])
        plan.hooks, plan.skipped = found.hooks, found.skipped
        return plan


def _new_custom_resource(
    manifest: Manifest, default_namespace: str, labels: Mapping[str, str] | None, options: ApplyOptions
) -> ObjectDiff:
    """A custom resource whose CRD this change adds: shown as Git has it, validated at apply time.

    Its scope is not known yet: it takes a namespace only if it or the environment names one.
    """
    namespaced = bool(manifest.namespace or default_namespace)
    obj = prepare(
        manifest.obj, namespaced=namespaced, default_namespace=default_namespace, labels=labels, options=options
    )
    ref = ObjectRef(manifest.group, manifest.kind, obj["metadata"].get("namespace", ""), manifest.name)
    _, shown = mask_pair(None, normalize(obj))
    return ObjectDiff(
        ref,
        "create",
        manifest.source,
        desired=obj,
        diff=unified(ref, None, shown),
        message="its CustomResourceDefinition is added by this change, so the API server validates it at apply time",
        unvalidated=True,
        after=shown,
    )


def _compared(
    ref: ObjectRef,
    source: str,
    resource: Resource,
    desired: dict[str, Any],
    live: dict[str, Any] | None,
    planned: _Planned,
    secrets: set[str],
    *,
    diffs: bool = True,
) -> ObjectDiff:
    """The entry for one object: live against planned, normalised, Secret values masked.

    Without ``diffs`` (a deploy) the unified diff texts are not rendered: two YAML dumps per new
    object were most of a deploy's planning CPU, and a deploy reports actions, not diffs.
    """
    before, after = mask_pair(normalize(live), normalize(planned.obj))
    full, defaults = "", 0
    if live is None:
        action: Action = "create"
        # Reviewers read what Git asks for; what the server adds is counted and kept collapsed.
        _, asked = mask_pair(None, normalize(desired))
        defaults = len(leaf_paths(after) - leaf_paths(asked)) if diffs else 0
        full = scrub(unified(ref, None, after), secrets) if diffs else ""
        text = (unified(ref, None, asked) if defaults else full) if diffs else ""
    else:
        action = "unchanged" if before == after else "update"
        text = "" if action == "unchanged" or not diffs else unified(ref, before, after)
    return ObjectDiff(
        ref,
        action,
        source,
        desired=desired,
        resource=resource,
        diff=scrub(text, secrets),
        message=planned.note,
        unvalidated=planned.unvalidated,
        observed=live,
        before=before,
        after=after,
        defaults=defaults,
        full_diff=full if defaults else "",
        recreate=planned.recreate,
    )
