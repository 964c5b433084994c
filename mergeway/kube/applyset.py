"""ApplySets (KEP-3659): know exactly which live objects Mergeway applied, so pruning is safe.

Labels and annotations follow kubectl's implementation so the set is legible to kubectl and other
ApplySet-aware tools: a parent ConfigMap carries ``applyset.kubernetes.io/id``
(``applyset-<base64url(sha256(name.namespace.Kind.group))>-v1``), the tooling and the group-kinds
it contains; every member carries ``applyset.kubernetes.io/part-of``. Members are listed only
through *our* set, so objects created by hand or by another tool in the same namespace are never
touched.

The engine knows a set only by its parent's name and namespace and the owner it records; which
set a repository's environment gets is decided by the jobs (:mod:`mergeway.jobs.applysets`). A
parent records its owner's identity in annotations that every :meth:`ApplySet.read` verifies: a
set recorded for another repository is never pruned through or adopted (:class:`ApplySetConflict`).
What leaves a set, and how, is :mod:`mergeway.kube.prune`'s.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from mergeway import __version__
from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.discovery import Discovery, Resource
from mergeway.kube.patch import server_side_apply

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF_LABEL = "applyset.kubernetes.io/part-of"
TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
NAMESPACES = "applyset.kubernetes.io/additional-namespaces"
#: The exact identity of the set's owner, recorded on the parent and checked on every read.
REPOSITORY_ANNOTATION = "mergeway.io/repository"
ENVIRONMENT_ANNOTATION = "mergeway.io/environment"
#: The commit the last complete deploy applied: "never apply an older commit" survives a Redis flush.
COMMIT_ANNOTATION = "mergeway.io/commit"
#: The last commit whose rollout was healthy: written only after the health wait succeeded, by its
#: own field manager (:meth:`ApplySet.record_healthy`), so the parent's other writes never drop it
#: and a failed rollout leaves the previous healthy commit in place.
HEALTHY_ANNOTATION = "mergeway.io/healthy-commit"
#: Suffix of the field manager that owns :data:`HEALTHY_ANNOTATION`.
HEALTHY_MANAGER_SUFFIX = "-health"
#: What this version of Mergeway writes as the set's tooling.
THIS_TOOLING = f"mergeway/v{__version__}"

Identity = tuple[str, str, str, str]
"""An object's group, kind, namespace and name."""
Listed = dict[tuple[str, str, str], dict[str, dict[str, Any]]]
"""Live objects by (group, plural, namespace), then by name."""


class ApplySetConflict(KubeError):
    """The parent ConfigMap of this name records another owner: never prune through it or adopt it."""


def applyset_id(name: str, namespace: str, kind: str = "ConfigMap", group: str = "") -> str:
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


def group_kind(group: str, kind: str) -> str:
    """kubectl's ``Kind.group`` spelling (core kinds have an empty group: ``Service``)."""
    return f"{kind}.{group}" if group else kind


class Parent(NamedTuple):
    """What a set's parent records: where its members may be, who owns it, what was applied."""

    #: ``Kind.group`` of every kind a member may have: the kinds listed to find members.
    group_kinds: frozenset[str] = frozenset()
    #: Namespaces members may be in besides the parent's own.
    namespaces: frozenset[str] = frozenset()
    #: The commit the last complete deploy applied (``""``: none recorded, or a deploy is under way).
    commit: str = ""
    tooling: str = THIS_TOOLING
    #: ``forge:owner/name`` and environment of the owner; empty for sets the CLI names by hand.
    repository: str = ""
    environment: str = ""
    #: The last commit whose rollout was healthy (``""``: none yet); not part of :meth:`annotations`.
    healthy: str = ""

    @classmethod
    def parse(cls, annotations: Mapping[str, Any]) -> Parent:
        """The parent recorded in a ConfigMap's annotations (the one place they are read)."""

        def listed(key: str) -> frozenset[str]:
            return frozenset(item for item in str(annotations.get(key, "")).split(",") if item)

        return cls(
            group_kinds=listed(GROUP_KINDS),
            namespaces=listed(NAMESPACES),
            commit=str(annotations.get(COMMIT_ANNOTATION, "")),
            tooling=str(annotations.get(TOOLING, "")),
            repository=str(annotations.get(REPOSITORY_ANNOTATION, "")),
            environment=str(annotations.get(ENVIRONMENT_ANNOTATION, "")),
            healthy=str(annotations.get(HEALTHY_ANNOTATION, "")),
        )

    def annotations(self) -> dict[str, str]:
        """The annotations that record this parent (the one place they are written).

        The healthy commit is not among them: it has its own writer (:meth:`ApplySet.record_healthy`).
        """
        out = {
            TOOLING: self.tooling,
            GROUP_KINDS: ",".join(sorted(self.group_kinds)),
            NAMESPACES: ",".join(sorted(self.namespaces)),
        }
        if self.repository:
            out |= {REPOSITORY_ANNOTATION: self.repository, ENVIRONMENT_ANNOTATION: self.environment}
        if self.commit:
            out[COMMIT_ANNOTATION] = self.commit
        return out


class ApplySet(NamedTuple):
    """The objects Mergeway applied for one owner, known by their parent ConfigMap and their label.

    The parent is read and written only here: its path, the annotations and the owner check.
    """

    name: str
    namespace: str
    #: ``forge:owner/name`` and environment that own the set; empty for sets the CLI names by hand.
    repository: str = ""
    environment: str = ""

    @property
    def id(self) -> str:
        return applyset_id(self.name, self.namespace)

    @property
    def path(self) -> str:
        """The parent ConfigMap's API path."""
        return f"/api/v1/namespaces/{self.namespace}/configmaps/{self.name}"

    def parent(self, group_kinds: Iterable[str] = (), namespaces: Iterable[str] = (), commit: str = "") -> Parent:
        """The parent this set records for members of ``group_kinds`` in ``namespaces``."""
        return Parent(
            group_kinds=frozenset(group_kinds),
            namespaces=frozenset(ns for ns in namespaces if ns and ns != self.namespace),
            commit=commit,
            repository=self.repository,
            environment=self.environment,
        )

    def manifest(self, parent: Parent) -> dict[str, Any]:
        """The parent ConfigMap recording ``parent``."""
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {ID_LABEL: self.id},
                "annotations": parent.annotations(),
            },
        }

    def owns(self, stored: Parent) -> bool:
        """Whether ``stored`` records this set's owner (or no owner: a parent written before identities)."""
        if not self.repository or not (stored.repository or stored.environment):
            return True
        return stored.repository.lower() == self.repository.lower() and stored.environment == self.environment

    def read(self, client: KubeClient) -> Parent | None:
        """The set's parent, or ``None``; :class:`ApplySetConflict` if it records another owner.

        Every path that prunes or writes the parent reads it through here first (plan, deploy), so a
        parent of another repository stops the job before anything is listed as prunable or applied.
        """
        try:
            found = client.request("GET", self.path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(found, dict):
            return None
        stored = Parent.parse((found.get("metadata") or {}).get("annotations") or {})
        if not self.owns(stored):
            raise ApplySetConflict(
                409,
                "Conflict",
                f"the ApplySet parent ConfigMap {self.namespace}/{self.name} belongs to "
                f"{stored.repository or '?'} (environment {stored.environment or '?'!r}), not {self.repository} "
                f"(environment {self.environment!r}); refusing to prune or adopt another repository's objects",
            )
        return stored

    def current(self, stored: Parent | None, wanted: Parent) -> bool:
        """Whether ``stored`` already records ``wanted``, so writing the parent again would change nothing.

        A set named by hand (the CLI) records no owner, so an owner on its parent is not compared.
        """
        if stored is None:
            return False
        stored = stored._replace(healthy=wanted.healthy)  # written on its own (record_healthy)
        if not self.repository:
            stored = stored._replace(repository="", environment="")
        return stored == wanted

    def write(self, client: KubeClient, parent: Parent, *, field_manager: str) -> None:
        """Record ``parent`` (server-side apply: the fields this manager owned and dropped go)."""
        server_side_apply(client, self.path, self.manifest(parent), field_manager=field_manager)

    def record_healthy(self, client: KubeClient, commit: str, *, field_manager: str) -> None:
        """Record ``commit`` as the last one whose rollout was healthy.

        Applied under a manager of its own (``<field_manager>-health``): the main manager's writes
        of the parent do not list this annotation, and server-side apply removes only fields the
        applying manager owns, so they keep it. Call only after the health wait succeeded.
        """
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "annotations": {HEALTHY_ANNOTATION: commit}},
        }
        server_side_apply(client, self.path, body, field_manager=field_manager + HEALTHY_MANAGER_SUFFIX)

    def delete(self, client: KubeClient) -> None:
        """Delete the parent (already gone is fine)."""
        try:
            client.request("DELETE", self.path)
        except KubeError as exc:
            if exc.status != 404:
                raise

    def labels(self) -> dict[str, str]:
        """The ownership labels every member carries (added by :func:`mergeway.kube.prepare.prepare`)."""
        return {PART_OF_LABEL: self.id}

    def members(
        self, client: KubeClient, discovery: Discovery, parent: Parent, listed: Listed | None = None
    ) -> list[tuple[Resource, dict[str, Any]]]:
        """Every live object labelled as part of the set, found via the group-kinds the parent lists.

        Collections the caller already listed (``listed``, from the diff's prefetch) are filtered here
        rather than listed again.
        """
        namespaces = [self.namespace, *sorted(parent.namespaces)]
        found: list[tuple[Resource, dict[str, Any]]] = []
        for gk in sorted(parent.group_kinds):
            kind, _, group = gk.partition(".")
            resource = discovery.by_group_kind(group, kind)
            if resource is None:
                continue  # the kind is gone (CRD deleted): nothing of it can be left to prune
            for ns in dict.fromkeys(namespaces if resource.namespaced else [""]):
                found.extend((resource, item) for item in self._members_in(client, resource, ns, listed))
        return found

    def _members_in(
        self, client: KubeClient, resource: Resource, namespace: str, listed: Listed | None
    ) -> list[dict[str, Any]]:
        cached = (listed or {}).get((resource.group, resource.plural, namespace))
        if cached is not None:
            return [o for o in cached.values() if _labels(o).get(PART_OF_LABEL) == self.id]
        try:
            return list(list_collection(client, resource, namespace, f"{PART_OF_LABEL}={self.id}").values())
        except KubeError as exc:
            if exc.status == 404:
                return []
            raise

    def stale(
        self,
        client: KubeClient,
        discovery: Discovery,
        parent: Parent,
        wanted: set[Identity],
        listed: Listed | None = None,
    ) -> list[tuple[Resource, dict[str, Any]]]:
        """Members whose identity is not in ``wanted``: what left Git since the set was applied."""
        stale = []
        for resource, live in self.members(client, discovery, parent, listed):
            meta = live.get("metadata") or {}
            if (resource.group, resource.kind, meta.get("namespace", ""), meta.get("name", "")) not in wanted:
                stale.append((resource, live))
        return stale


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


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
