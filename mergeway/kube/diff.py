"""Server-side dry-run diffs: what the API server *would* store, compared with what it stores now.

Each object is sent as a server-side apply with ``dryRun=All`` and Mergeway's own field manager,
exactly as the real apply will be, so defaulting, admission webhooks, validation and field
ownership are all the server's: fields removed from Git show as removed, and invalid manifests fail
here with the server's own message, before anyone merges. Requests run concurrently (bounded), so
one slow object does not serialise the rest.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from mergeway.kube import applyset as aset
from mergeway.kube.client import APPLY_PATCH, FIELD_MANAGER, KubeClient, KubeError
from mergeway.kube.discovery import Discovery, Resource, UnknownKind
from mergeway.kube.normalize import CONFIG_HASH, normalize
from mergeway.kube.secrets import is_secret, mask_pair, scrub, secret_values, stored_form
from mergeway.render.manifests import Manifest

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
#: Objects opt in to delete-and-recreate when a change touches an immutable field.
RECREATE_ANNOTATION = "mergeway.io/recreate"
Action = Literal["create", "update", "unchanged", "delete", "error"]


@dataclass(frozen=True, order=True)
class ObjectRef:
    """The identity of an object: group, kind, namespace and name (version is not identity)."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


@dataclass
class ObjectDiff:
    ref: ObjectRef
    action: Action
    source: str = ""
    #: The object to apply, namespace defaulted. Holds raw Secret data: never render it.
    desired: dict[str, Any] | None = None
    resource: Resource | None = None
    diff: str = ""
    message: str = ""
    #: True when the API server has not validated this object (its namespace or CRD is new).
    unvalidated: bool = False
    #: The live object as last seen (listed, read, or returned by the apply), for the health check.
    observed: dict[str, Any] | None = field(default=None, repr=False)
    #: Both sides of the diff, normalised and with Secret values masked: safe to show.
    before: dict[str, Any] | None = field(default=None, repr=False)
    after: dict[str, Any] | None = field(default=None, repr=False)
    #: For a new object: fields the API server filled in that Git did not ask for, and the diff of
    #: the whole server-defaulted object (``diff`` then shows only what Git asked for).
    defaults: int = 0
    full_diff: str = ""
    #: Applying deletes and recreates the object (an immutable field changed; it opted in).
    recreate: bool = False

    @property
    def changed(self) -> bool:
        return self.action in ("create", "update", "delete")


@dataclass
class Plan:
    items: list[ObjectDiff] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for item in self.items if item.action == action)

    @property
    def errors(self) -> list[ObjectDiff]:
        return [i for i in self.items if i.action == "error"]

    @property
    def has_changes(self) -> bool:
        return any(i.changed for i in self.items)

    def summary(self) -> str:
        parts = [
            f"{self.count('create')} to add",
            f"{self.count('update')} to change",
            f"{self.count('delete')} to prune",
            f"{self.count('unchanged')} unchanged",
        ]
        if self.errors:
            parts.append(f"{len(self.errors)} failed")
        return ", ".join(parts)


def to_yaml(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return ""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=10_000)


def unified(ref: ObjectRef, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """A unified diff of two (already normalised and masked) objects."""
    lines = difflib.unified_diff(
        to_yaml(before).splitlines(keepends=True),
        to_yaml(after).splitlines(keepends=True),
        fromfile=f"live/{ref}" if before is not None else "/dev/null",
        tofile=f"planned/{ref}" if after is not None else "/dev/null",
        n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


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


def config_hash(obj: dict[str, Any]) -> str:
    """A hash of what Mergeway asks for (the object as sent, without this annotation)."""
    metadata = dict(obj.get("metadata") or {})
    metadata["annotations"] = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != CONFIG_HASH}
    clean = {**obj, "metadata": metadata}
    return hashlib.sha256(json.dumps(clean, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def contains(live: Any, desired: Any) -> bool:
    """Whether every value ``desired`` sets is present, unchanged, in ``live`` (lists must match in length)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(contains, live, desired))
    return type(live) is type(desired) and live == desired


def _crd_kinds(manifests: Iterable[Manifest]) -> set[tuple[str, str]]:
    """(group, kind) of every CRD in the change: their custom resources cannot be dry-run yet."""
    kinds = set()
    for m in manifests:
        if m.kind == "CustomResourceDefinition" and m.group == "apiextensions.k8s.io":
            spec = m.obj.get("spec") or {}
            kinds.add((str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))))
    return kinds


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
    ) -> None:
        self.client = client
        self.discovery = discovery or Discovery(client)
        self.concurrency = concurrency
        self.field_manager = field_manager
        #: Render unified diff texts (previews show them; a deploy only needs actions and before/after).
        self.diffs = diffs

    def prepare(self, manifest: Manifest, default_namespace: str) -> tuple[Resource, dict[str, Any]]:
        """Resolve the resource and default the namespace, as ``kubectl apply -n`` would."""
        resource = self.discovery.resource(manifest.api_version, manifest.kind)
        metadata = dict(manifest.obj.get("metadata") or {})  # only metadata changes: copy that, not the spec
        obj = {**manifest.obj, "metadata": metadata}
        if resource.namespaced:
            metadata["namespace"] = metadata.get("namespace") or default_namespace or "default"
        else:
            metadata.pop("namespace", None)
        metadata["annotations"] = {**(metadata.get("annotations") or {}), CONFIG_HASH: config_hash(obj)}
        return resource, obj

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

    def apply(self, resource: Resource, obj: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
        """Server-side apply (or its dry run) with our field manager, taking ownership (force)."""
        metadata = obj["metadata"]
        query = {"fieldManager": self.field_manager, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        result = self.client.request(
            "PATCH",
            resource.object_path(metadata["name"], metadata.get("namespace", "")),
            body=obj,
            query=query,
            content_type=APPLY_PATCH,
        )
        return result if isinstance(result, dict) else {}

    def diff_one(
        self,
        manifest: Manifest,
        default_namespace: str,
        *,
        new_namespaces: set[str],
        new_kinds: set[tuple[str, str]],
        listed: dict[tuple[str, str, str], dict[str, dict[str, Any]]] | None = None,
    ) -> ObjectDiff:
        secrets = secret_values(manifest.obj)
        ref = ObjectRef(manifest.group, manifest.kind, manifest.namespace, manifest.name)
        try:
            resource, desired = self.prepare(manifest, default_namespace)
        except UnknownKind as exc:
            if (manifest.group, manifest.kind) in new_kinds:
                obj = copy.deepcopy(manifest.obj)
                if not manifest.namespace and default_namespace:
                    obj["metadata"]["namespace"] = default_namespace
                ref = ObjectRef(manifest.group, manifest.kind, obj["metadata"].get("namespace", ""), manifest.name)
                _, shown = mask_pair(None, normalize(obj))
                return ObjectDiff(
                    ref,
                    "create",
                    manifest.source,
                    desired=obj,
                    diff=unified(ref, None, shown),
                    message="its CustomResourceDefinition is added by this change, so the API "
                    "server validates it at apply time",
                    unvalidated=True,
                    after=shown,
                )
            return ObjectDiff(ref, "error", manifest.source, message=str(exc))
        except KubeError as exc:
            return ObjectDiff(ref, "error", manifest.source, message=scrub(str(exc), secrets))
        metadata = desired["metadata"]
        ref = ObjectRef(resource.group, resource.kind, metadata.get("namespace", ""), metadata["name"])
        try:
            collection = (listed or {}).get((resource.group, resource.plural, ref.namespace))
            live = collection.get(ref.name) if collection is not None else self.get(resource, ref.name, ref.namespace)
            if live is not None and self._unchanged_since_applied(live, desired):
                return ObjectDiff(ref, "unchanged", manifest.source, desired=desired, resource=resource, observed=live)
            try:
                planned: dict[str, Any] | None = self.apply(resource, desired, dry_run=True)
                unvalidated, note, recreate = False, "", False
            except KubeError as exc:
                if live is None and exc.status == 404 and ref.namespace in new_namespaces:
                    planned, unvalidated, recreate = desired, True, False
                    note = (
                        f"namespace {ref.namespace} is created by this change, so the API server "
                        "validates this object at apply time"
                    )
                elif live is not None and touches_immutable_field(exc) and opts_in_to_recreate(desired):
                    # What merging does (the deploy deletes and recreates it), not an error; the
                    # recreated object is validated when it is created.
                    planned, unvalidated, recreate = desired, True, True
                    note = (
                        f"this change touches an immutable field, so the deploy deletes and recreates the object "
                        f'({RECREATE_ANNOTATION}: "true"): {scrub(exc.message, secrets)}'
                    )
                else:
                    raise
        except KubeError as exc:
            return ObjectDiff(
                ref, "error", manifest.source, desired=desired, resource=resource, message=scrub(str(exc), secrets)
            )
        before, after = mask_pair(normalize(live), normalize(planned))
        full, defaults = "", 0
        if live is None:
            action: Action = "create"
            # Reviewers read what Git asks for; what the server adds is counted and kept collapsed.
            _, asked = mask_pair(None, normalize(desired))
            defaults = len(leaf_paths(after) - leaf_paths(asked))
            full = scrub(unified(ref, None, after), secrets) if self.diffs else ""
            text = (unified(ref, None, asked) if defaults else full) if self.diffs else ""
        else:
            action = "unchanged" if before == after else "update"
            text = "" if action == "unchanged" or not self.diffs else unified(ref, before, after)
        return ObjectDiff(
            ref,
            action,
            manifest.source,
            desired=desired,
            resource=resource,
            diff=scrub(text, secrets),
            message=note,
            unvalidated=unvalidated,
            observed=live,
            before=before,
            after=after,
            defaults=defaults,
            full_diff=full if defaults else "",
            recreate=recreate,
        )

    def plan(
        self,
        manifests: Sequence[Manifest],
        *,
        default_namespace: str = "",
        prune: Sequence[tuple[Resource, dict[str, Any]]] = (),
        listed: aset.Listed | None = None,
    ) -> Plan:
        """Diff every manifest, plus objects to prune (live objects that left Git)."""
        self.discovery.known("v1", "Namespace")  # warm discovery once, before the threads start
        new_namespaces = {m.name for m in manifests if m.kind == "Namespace" and m.api_version == "v1"}
        new_kinds = _crd_kinds(manifests)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="dry-run") as pool:
            if listed is None:
                listed = self._prefetch(manifests, default_namespace, pool)
            items = list(
                pool.map(
                    lambda m: self.diff_one(
                        m, default_namespace, new_namespaces=new_namespaces, new_kinds=new_kinds, listed=listed
                    ),
                    manifests,
                )
            )
        for resource, live in prune:
            metadata = live.get("metadata") or {}
            ref = ObjectRef(resource.group, resource.kind, metadata.get("namespace", ""), metadata.get("name", ""))
            before, _ = mask_pair(normalize(live), None)
            items.append(
                ObjectDiff(ref, "delete", "", resource=resource, diff=unified(ref, before, None), before=before)
            )
        return Plan(items)

    def _prefetch(
        self, manifests: Sequence[Manifest], default_namespace: str, pool: ThreadPoolExecutor
    ) -> dict[tuple[str, str, str], dict[str, dict[str, Any]]]:
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
            namespace = (m.namespace or default_namespace or "default") if resource.namespaced else ""
            key = (resource.group, resource.plural, namespace)
            counts[key] = (resource, counts.get(key, (resource, 0))[1] + 1)

        def fetch(key: tuple[str, str, str]) -> tuple[tuple[str, str, str], dict[str, Any] | None]:
            try:
                return key, aset.list_collection(self.client, counts[key][0], key[2])
            except KubeError:
                return key, None

        wanted = [key for key, (_, count) in counts.items() if count >= 3]
        return {key: found for key, found in pool.map(fetch, wanted) if found is not None}

    def plan_for(self, manifests: Sequence[Manifest], applyset: aset.ApplySet, *, default_namespace: str = "") -> Plan:
        """The plan a deploy would execute: members labelled for ``applyset``, stale members pruned.

        Preview and deploy both call this, so what a pull request shows is what merging it applies.
        """
        labeled = aset.label_members(manifests, applyset)
        self.discovery.known("v1", "Namespace")  # warm discovery once
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="list") as pool:
            listed = self._prefetch(labeled, default_namespace, pool)
        wanted = aset.desired_identities(self.discovery, labeled, default_namespace)
        stale = aset.stale_members(self.client, self.discovery, applyset, wanted, listed)
        return self.plan(labeled, default_namespace=default_namespace, prune=stale, listed=listed)
