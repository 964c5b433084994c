"""Map ``apiVersion``/``kind`` to REST paths, using aggregated discovery (two requests in all).

kubectl fetches discovery per group and the OpenAPI schema before its first diff; aggregated
discovery (GA since Kubernetes 1.30) gives every group, version, resource and scope in one response
each for ``/api`` and ``/apis``, which is most of why a Mergeway preview starts faster.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import quote

from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.parallel import map_ordered

_AGGREGATED = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


class Resource(NamedTuple):
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, name: str, namespace: str = "") -> str:
        """The object's path; names and namespaces are quoted, so none can add a segment or a query."""
        return f"{self.collection_path(namespace)}/{quote(name, safe='')}"


class UnknownKind(LookupError):
    """The cluster serves no such kind (a CRD not installed yet, or a typo)."""


class Discovery:
    """A cached view of the cluster's resources; refreshed when an unknown kind is asked for."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._by_kind: dict[tuple[str, str], Resource] | None = None

    def refresh(self) -> None:
        by_kind: dict[tuple[str, str], Resource] = {}
        # Both documents at once: each is a round trip (a 304 when cached), and this is on the
        # critical path of every preview and deploy, before the first object is looked at.
        for table in map_ordered(self._fetch, ("/api", "/apis"), workers=2, name="discovery"):
            for group, version, kind, plural, namespaced in table:
                resource = Resource(group=group, version=version, kind=kind, plural=plural, namespaced=namespaced)
                by_kind.setdefault((resource.api_version, kind), resource)
        with self._lock:
            self._by_kind = by_kind

    def _fetch(self, root: str) -> list[tuple[str, str, str, str, bool]]:
        table: list[tuple[str, str, str, str, bool]] = self.client.get_cached(
            root, accept=_AGGREGATED, reduce=functools.partial(self._table, root)
        )
        return table

    def _table(self, root: str, doc: Any) -> list[tuple[str, str, str, str, bool]]:
        """The rows of one discovery document that Mergeway uses (and caches): kind to REST path."""
        out: dict[tuple[str, str], Resource] = {}
        if isinstance(doc, dict) and doc.get("kind") == "APIGroupDiscoveryList":
            self._read_aggregated(doc, out)
        else:
            self._read_legacy(root, doc, out)
        return [(r.group, r.version, r.kind, r.plural, r.namespaced) for r in out.values()]

    @staticmethod
    def _read_aggregated(doc: dict[str, Any], out: dict[tuple[str, str], Resource]) -> None:
        for group in doc.get("items") or []:
            gname = (group.get("metadata") or {}).get("name", "")
            for version in group.get("versions") or []:
                vname = version.get("version", "")
                api_version = f"{gname}/{vname}" if gname else vname
                for res in version.get("resources") or []:
                    kind = (res.get("responseKind") or {}).get("kind", "")
                    if not kind or "/" in res.get("resource", ""):
                        continue
                    out.setdefault(
                        (api_version, kind),
                        Resource(
                            group=gname,
                            version=vname,
                            kind=kind,
                            plural=res["resource"],
                            namespaced=res.get("scope") == "Namespaced",
                        ),
                    )

    def _read_legacy(self, root: str, doc: Any, out: dict[tuple[str, str], Resource]) -> None:
        if root == "/api":
            group_versions = [("", v) for v in (doc or {}).get("versions", [])]
        else:
            group_versions = [
                (g["name"], v["version"]) for g in (doc or {}).get("groups", []) for v in g.get("versions", [])
            ]
        for group, version in group_versions:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                listing = self.client.request("GET", path)
            except KubeError:
                continue
            for res in (listing or {}).get("resources", []):
                if "/" in res.get("name", ""):
                    continue
                api_version = f"{group}/{version}" if group else version
                out.setdefault(
                    (api_version, res["kind"]),
                    Resource(
                        group=group,
                        version=version,
                        kind=res["kind"],
                        plural=res["name"],
                        namespaced=bool(res.get("namespaced")),
                    ),
                )

    def resource(self, api_version: str, kind: str) -> Resource:
        """Find the resource for a kind; one refresh is tried before giving up (new CRDs)."""
        if self._by_kind is None:
            self.refresh()
        assert self._by_kind is not None
        found = self._by_kind.get((api_version, kind))
        if found is None:
            self.refresh()
            found = self._by_kind.get((api_version, kind))
        if found is None:
            raise UnknownKind(f"the cluster does not serve {kind} in {api_version}")
        return found

    def known(self, api_version: str, kind: str) -> Resource | None:
        """Like :meth:`resource` but without a refresh: for cheap scope checks."""
        if self._by_kind is None:
            self.refresh()
        assert self._by_kind is not None
        return self._by_kind.get((api_version, kind))

    def scopes(self, kinds: Iterable[tuple[str, str]]) -> dict[tuple[str, str], bool | None]:
        """(apiVersion, kind) → namespaced?, ``None`` for a kind the cluster does not serve.

        Refreshed once first when a kind is unknown (a CRD may have been installed since the cache
        was filled). What the policy is handed, so that checking it makes no requests of its own.
        """
        wanted = set(kinds)
        if any(self.known(*k) is None for k in wanted):
            self.refresh()
        return {k: (r.namespaced if (r := self.known(*k)) else None) for k in wanted}

    def by_group_kind(self, group: str, kind: str) -> Resource | None:
        """The preferred version's resource for a group and kind (pruning lists by group-kind)."""
        if self._by_kind is None:
            self.refresh()
        assert self._by_kind is not None
        return next((r for r in self._by_kind.values() if r.group == group and r.kind == kind), None)
