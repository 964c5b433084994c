"""ApplySets (KEP-3659): know exactly which live objects Mergeway applied, so pruning is safe.

Labels and annotations follow kubectl's implementation so the set is legible to kubectl and other
ApplySet-aware tools: a parent ConfigMap per (repository, environment) carries
``applyset.kubernetes.io/id`` (``applyset-<base64url(sha256(name.namespace.Kind.group))>-v1``), the
tooling and the group-kinds it contains; every member carries ``applyset.kubernetes.io/part-of``.
Pruning lists only members of *our* set, so objects created by hand or by another tool in the same
namespace are never touched.

A set belongs to exactly one repository and environment. Its parent's name carries a readable slug
and a hash of the exact ``forge:owner/name`` (``mergeway-github-acme-shop-api-<16 hex>.staging``),
so ``acme/shop-api``, ``acme/shop.api`` and ``acme-shop/api`` get three sets, and the parent records
the identity in annotations that every read verifies: a set recorded for another repository is
never pruned through or adopted (:class:`ApplySetConflict`). Parents named the old way
(``mergeway-<slug>.<env>``, shared by colliding names) are recognised by :func:`legacy_for_environment`
and retired as described in docs/DECISIONS.md ("Policy").
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mergeway import __version__
from mergeway.events import Repository
from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.discovery import Discovery, Resource, UnknownKind
from mergeway.render.manifests import Manifest
from mergeway.repoconfig import Environment

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF_LABEL = "applyset.kubernetes.io/part-of"
TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
NAMESPACES = "applyset.kubernetes.io/additional-namespaces"
#: Users keep an object out of pruning with this annotation (as Flux's ``prune: disabled``).
KEEP_ANNOTATION = "mergeway.io/prune"
KEEP_VALUE = "disabled"
#: The parent lives here when the environment names no namespace.
DEFAULT_PARENT_NAMESPACE = "default"
#: The exact identity of the set's owner, recorded on the parent and checked on every read.
REPOSITORY_ANNOTATION = "mergeway.io/repository"
ENVIRONMENT_ANNOTATION = "mergeway.io/environment"
#: Hex digits of sha256(forge:owner/name) in a parent's name: 64 bits, no feasible second preimage.
_DIGEST_CHARS = 16
_SLUG_CHARS = 100


class ApplySetConflict(KubeError):
    """The parent ConfigMap of this name records another owner: never prune through it or adopt it."""


def applyset_id(name: str, namespace: str, kind: str = "ConfigMap", group: str = "") -> str:
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


@dataclass(frozen=True)
class ApplySet:
    name: str
    namespace: str
    #: ``forge:owner/name`` and environment that own the set; empty for sets the CLI names by hand.
    repository: str = ""
    environment: str = ""

    @property
    def id(self) -> str:
        return applyset_id(self.name, self.namespace)

    @classmethod
    def for_environment(cls, repo: Repository, env: Environment) -> ApplySet:
        """The set of one repository's environment, named collision-free from its exact identity.

        Forges treat owner and repository names case-insensitively (two repositories never differ
        only by case), so the hash is of the lower-cased identity: a repository renamed from
        ``Acme/Shop`` to ``acme/shop`` keeps its set. Slug and hash hold no dot, so the environment
        after the first dot is exact too; the name stays a DNS subdomain well under 253 characters.
        """
        identity = owner_identity(repo)
        digest = hashlib.sha256(identity.lower().encode()).hexdigest()[:_DIGEST_CHARS]
        slug = re.sub(r"[^a-z0-9]+", "-", identity.lower()).strip("-")[:_SLUG_CHARS].strip("-")
        return cls(
            name=f"mergeway-{slug}-{digest}.{env.name}",
            namespace=env.namespace or DEFAULT_PARENT_NAMESPACE,
            repository=identity,
            environment=env.name,
        )

    def owned_by_us(self, parent: dict[str, Any]) -> bool:
        """Whether ``parent`` records this set's owner (or no owner: a parent written before identities)."""
        annotations = (parent.get("metadata") or {}).get("annotations") or {}
        recorded = str(annotations.get(REPOSITORY_ANNOTATION, ""))
        recorded_env = str(annotations.get(ENVIRONMENT_ANNOTATION, ""))
        if not self.repository or not (recorded or recorded_env):
            return True
        return recorded.lower() == self.repository.lower() and recorded_env == self.environment


def owner_identity(repo: Repository) -> str:
    """``forge:owner/name``: what a set's parent records, and what its name is derived from."""
    return f"{repo.forge}:{repo.full_name}"


def legacy_for_environment(repo: Repository, env: Environment) -> ApplySet:
    """The parent name earlier versions used (``mergeway-<slug>.<env>``), which different repositories share.

    It carries no owner (``repository`` empty): whoever finds one cannot know whose it is.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", f"{repo.forge}-{repo.full_name}".lower()).strip("-")
    name = f"mergeway-{slug}"[:200].rstrip("-") + f".{env.name}"
    return ApplySet(name=name, namespace=env.namespace or DEFAULT_PARENT_NAMESPACE)


def group_kind(group: str, kind: str) -> str:
    """kubectl's ``Kind.group`` spelling (core kinds have an empty group: ``Service``)."""
    return f"{kind}.{group}" if group else kind


def label_members(manifests: Sequence[Manifest], applyset: ApplySet) -> list[Manifest]:
    """Copies of ``manifests`` carrying the part-of label (the same objects preview and deploy send)."""
    out = []
    for m in manifests:
        # Copy only the path we change: manifests are large and never mutated below metadata.
        metadata = dict(m.obj.get("metadata") or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), PART_OF_LABEL: applyset.id}
        out.append(Manifest(obj={**m.obj, "metadata": metadata}, source=m.source))
    return out


def parent_object(applyset: ApplySet, group_kinds: Iterable[str], namespaces: Iterable[str]) -> dict[str, Any]:
    extra = sorted({ns for ns in namespaces if ns and ns != applyset.namespace})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": applyset.name,
            "namespace": applyset.namespace,
            "labels": {ID_LABEL: applyset.id},
            "annotations": {
                TOOLING: f"mergeway/v{__version__}",
                GROUP_KINDS: ",".join(sorted(set(group_kinds))),
                NAMESPACES: ",".join(extra),
                **owner_annotations(applyset),
            },
        },
    }


def owner_annotations(applyset: ApplySet) -> dict[str, str]:
    if not applyset.repository:
        return {}
    return {REPOSITORY_ANNOTATION: applyset.repository, ENVIRONMENT_ANNOTATION: applyset.environment}


def read_parent(client: KubeClient, applyset: ApplySet) -> dict[str, Any] | None:
    """The set's parent ConfigMap, or ``None``; :class:`ApplySetConflict` if it records another owner.

    Every path that prunes or writes the parent reads it through here first (plan, deploy), so a
    parent of another repository stops the job before anything is listed as prunable or applied.
    """
    try:
        parent = client.request("GET", f"/api/v1/namespaces/{applyset.namespace}/configmaps/{applyset.name}")
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    if not isinstance(parent, dict):
        return None
    if not applyset.owned_by_us(parent):
        annotations = (parent.get("metadata") or {}).get("annotations") or {}
        raise ApplySetConflict(
            409,
            "Conflict",
            f"the ApplySet parent ConfigMap {applyset.namespace}/{applyset.name} belongs to "
            f"{annotations.get(REPOSITORY_ANNOTATION, '?')} (environment "
            f"{annotations.get(ENVIRONMENT_ANNOTATION, '?')!r}), not {applyset.repository} "
            f"(environment {applyset.environment!r}); refusing to prune or adopt another repository's objects",
        )
    return parent


def _split_gk(text: str) -> tuple[str, str]:
    kind, _, group = text.partition(".")
    return group, kind


def members(
    client: KubeClient, discovery: Discovery, applyset: ApplySet, parent: dict[str, Any], listed: Listed | None = None
) -> list[tuple[Resource, dict[str, Any]]]:
    """Every live object labelled as part of the set, found via the group-kinds the parent lists.

    Collections the caller already listed (``listed``, from the diff's prefetch) are filtered here
    rather than listed again.
    """
    annotations = (parent.get("metadata") or {}).get("annotations") or {}
    gks = [gk for gk in str(annotations.get(GROUP_KINDS, "")).split(",") if gk]
    namespaces = [applyset.namespace] + [ns for ns in str(annotations.get(NAMESPACES, "")).split(",") if ns]
    found: list[tuple[Resource, dict[str, Any]]] = []
    for gk in gks:
        group, kind = _split_gk(gk)
        resource = discovery.by_group_kind(group, kind)
        if resource is None:
            continue  # the kind is gone (CRD deleted): nothing of it can be left to prune
        scopes = namespaces if resource.namespaced else [""]
        for ns in dict.fromkeys(scopes):
            cached = (listed or {}).get((resource.group, resource.plural, ns))
            if cached is not None:
                items = [o for o in cached.values() if _labels(o).get(PART_OF_LABEL) == applyset.id]
            else:
                try:
                    items = list(list_collection(client, resource, ns, f"{PART_OF_LABEL}={applyset.id}").values())
                except KubeError as exc:
                    if exc.status == 404:
                        continue
                    raise
            found.extend((resource, item) for item in items)
    return found


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


Listed = dict[tuple[str, str, str], dict[str, dict[str, Any]]]
"""Live objects by (group, plural, namespace), then by name."""


def list_collection(client: KubeClient, resource: Resource, namespace: str, selector: str = "") -> dict[str, Any]:
    """Every object of a collection by name, page by page, with apiVersion and kind filled in."""
    found: dict[str, Any] = {}
    query = {"limit": "500"}
    if selector:
        query["labelSelector"] = selector
    while True:
        page = client.request("GET", resource.collection_path(namespace), query=query) or {}
        for item in page.get("items") or []:
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
            found[item["metadata"]["name"]] = item
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return found
        query = {**query, "continue": token}


def _identity(group: str, kind: str, namespace: str, name: str) -> tuple[str, str, str, str]:
    return (group, kind, namespace, name)


Identity = tuple[str, str, str, str]


def stale_members(
    client: KubeClient, discovery: Discovery, applyset: ApplySet, wanted: set[Identity], listed: Listed | None = None
) -> list[tuple[Resource, dict[str, Any]]]:
    """Members that are no longer desired and not annotated to be kept."""
    parent = read_parent(client, applyset)
    if parent is None:
        return []
    stale = []
    for resource, live in members(client, discovery, applyset, parent, listed):
        meta = live.get("metadata") or {}
        ident = _identity(resource.group, resource.kind, meta.get("namespace", ""), meta.get("name", ""))
        if ident in wanted:
            continue
        if (meta.get("annotations") or {}).get(KEEP_ANNOTATION) == KEEP_VALUE:
            continue
        stale.append((resource, live))
    return stale


def desired_identities(discovery: Discovery, manifests: Sequence[Manifest], default_namespace: str) -> set[Identity]:
    """The identity of each manifest whose kind the cluster serves, namespace defaulted."""
    out = set()
    for m in manifests:
        try:
            resource = discovery.resource(m.api_version, m.kind)
        except UnknownKind:
            continue
        namespace = (m.namespace or default_namespace or "default") if resource.namespaced else ""
        out.add(_identity(resource.group, resource.kind, namespace, m.name))
    return out


def retire_legacy(client: KubeClient, discovery: Discovery, legacy: ApplySet) -> list[tuple[Resource, dict[str, Any]]]:
    """After a deploy under the collision-free name: drop the old-named parent once nothing is left in it.

    Members still desired were relabelled into the new set by the deploy itself. What is still
    labelled with the old id is returned and left alone: the old name may be shared with another
    repository, so nothing proves those objects are ours to prune. The old parent is deleted only
    when its set is empty, so another repository that shares it still finds its members.
    """
    parent = read_parent(client, legacy)
    if parent is None:
        return []
    left = members(client, discovery, legacy, parent)
    if not left:
        try:
            client.request("DELETE", f"/api/v1/namespaces/{legacy.namespace}/configmaps/{legacy.name}")
        except KubeError as exc:
            if exc.status != 404:
                raise
    return left
