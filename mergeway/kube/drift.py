"""Find drift cheaply: which live objects differ from the desired objects of the commit last applied.

A check runs every few minutes on every environment, so an environment without drift must cost
almost nothing: one LIST per (resource, namespace), selected by the ApplySet's part-of label, and
no write or dry-run request at all. That is possible because each object already tells what
happened to it since Mergeway applied it:

* its config-hash annotation says what Mergeway last asked for (the same hash as the desired
  object when the same commit is rendered with the same options);
* ``managedFields`` say who owns each field: a field Git sets that another manager now owns was
  changed by someone else (``kubectl scale``, ``kubectl edit``, a controller);
* every value Git sets is still there, unchanged (the same test the preview's "unchanged since
  applied" shortcut uses).

Only an object that fails one of these *looks* drifted, and only those are dry-run (server-side
apply, ``dryRun=All``, exactly as a deploy would send them), so the values and the diff reported are
the API server's own, canonicalised (``0.5`` CPU is ``500m``), never a guess. An object missing from
its collection was deleted by hand. Secret values are masked exactly as previews mask them.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from mergeway.drift import FieldDrift, ObjectDrift
from mergeway.kube import yamltext
from mergeway.kube.applyset import PART_OF_LABEL, ApplySet, list_collection
from mergeway.kube.changeset import ObjectDiff, ObjectRef, unified
from mergeway.kube.client import FIELD_MANAGER, KubeClient, KubeError
from mergeway.kube.diff import contains
from mergeway.kube.discovery import Discovery, Resource, UnknownKind
from mergeway.kube.normalize import CONFIG_HASH, normalize
from mergeway.kube.options import ApplyOptions
from mergeway.kube.parallel import map_ordered
from mergeway.kube.patch import server_side_apply
from mergeway.kube.prepare import prepare, sets_owned_field, yield_to_managers
from mergeway.kube.secrets import MASK, is_secret, mask_pair, scrub, secret_values, stored_form
from mergeway.kube.transport import Request, Response, Transport
from mergeway.manifest import Manifest


class CountingTransport:
    """A transport that counts what it sends: by method, with dry runs apart (``PATCH dry-run``)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.host = inner.host
        self.sent: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send(self, request: Request) -> Response:
        dry = "dryRun" in (request.query or {})
        with self._lock:
            self.sent[f"{request.method} dry-run" if dry else request.method] += 1
        return self.inner.send(request)

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def counted(client: KubeClient) -> tuple[KubeClient, CountingTransport]:
    """A client sending through ``client``'s connections (and caches) that counts its requests."""
    spy = CountingTransport(client.transport)
    twin = copy.copy(client)
    twin.transport = spy
    return twin, spy


def is_own_manager(manager: str) -> bool:
    """Mergeway's own field managers (``mergeway`` for objects, ``mergeway-health`` on the set's parent)."""
    return manager == FIELD_MANAGER or manager.startswith(f"{FIELD_MANAGER}-")


class _Desired(NamedTuple):
    resource: Resource
    obj: dict[str, Any]
    secrets: set[str]


class Detector:
    """Compares one environment's desired objects (one commit, rendered) with what the cluster holds."""

    def __init__(
        self,
        client: KubeClient,
        discovery: Discovery | None = None,
        *,
        options: ApplyOptions | None = None,
        concurrency: int = 8,
    ) -> None:
        self.client = client
        self.discovery = discovery or Discovery(client)
        self.options = options or ApplyOptions()
        self.concurrency = concurrency

    def detect(
        self, manifests: Sequence[Manifest], applyset: ApplySet, *, default_namespace: str = ""
    ) -> list[ObjectDrift]:
        """The drifted objects among ``manifests`` (members of ``applyset``), in the manifests' order."""
        desired, gone = self._desired(manifests, applyset, default_namespace)
        listed = self._list(desired, applyset)
        found: list[ObjectDrift] = [*gone]
        suspects: list[tuple[_Desired, dict[str, Any]]] = []
        for item in desired:
            metadata = item.obj["metadata"]
            key = (item.resource.group, item.resource.plural, metadata.get("namespace", ""))
            live = listed[key].get(metadata["name"]) if key in listed else self._get(item)
            if live is None:
                found.append(_deleted(item, default_namespace))
                continue
            wanted = yield_to_managers(item.obj, live, self.options.respect_managers)
            if _looks_drifted(live, wanted):
                suspects.append((item._replace(obj=wanted), live))
        checked = map_ordered(
            lambda pair: self._confirm(pair[0], pair[1], default_namespace),
            suspects,
            workers=self.concurrency,
            name="drift",
        )
        found.extend(drift for drift in checked if drift is not None)
        order = {(m.kind, m.name): i for i, m in enumerate(manifests)}
        return sorted(found, key=lambda d: order.get((d.kind, d.name), len(order)))

    # -- steps ----------------------------------------------------------------------------------------

    def _desired(
        self, manifests: Sequence[Manifest], applyset: ApplySet, default_namespace: str
    ) -> tuple[list[_Desired], list[ObjectDrift]]:
        """Each manifest as the deploy prepared it; a kind the cluster no longer serves is gone with its objects."""
        out: list[_Desired] = []
        gone: list[ObjectDrift] = []
        for m in manifests:
            try:
                resource = self.discovery.resource(m.api_version, m.kind)
            except UnknownKind:
                gone.append(ObjectDrift(m.api_version, m.kind, m.namespace, m.name, "deleted"))
                continue
            obj = prepare(
                m.obj,
                namespaced=resource.namespaced,
                default_namespace=default_namespace,
                labels=applyset.labels(),
                options=self.options,
            )
            out.append(_Desired(resource, obj, secret_values(m.obj)))
        return out, gone

    def _list(self, desired: Iterable[_Desired], applyset: ApplySet) -> dict[tuple[str, str, str], dict[str, Any]]:
        """One LIST per (resource, namespace) of the set's members; a collection that cannot be listed is left out."""
        wanted: dict[tuple[str, str, str], Resource] = {}
        for item in desired:
            wanted[(item.resource.group, item.resource.plural, item.obj["metadata"].get("namespace", ""))] = (
                item.resource
            )
        selector = f"{PART_OF_LABEL}={applyset.id}"

        def fetch(key: tuple[str, str, str]) -> tuple[tuple[str, str, str], dict[str, Any] | None]:
            try:
                return key, list_collection(self.client, wanted[key], key[2], selector)
            except KubeError as exc:
                if exc.status in (401, 403, 404, 405):
                    return key, None  # not listable here (RBAC): one GET per object instead
                raise

        fetched = map_ordered(fetch, list(wanted), workers=self.concurrency, name="drift-list")
        return {key: found for key, found in fetched if found is not None}

    def _get(self, item: _Desired) -> dict[str, Any] | None:
        metadata = item.obj["metadata"]
        try:
            live = self.client.request(
                "GET", item.resource.object_path(metadata["name"], metadata.get("namespace", ""))
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return live if isinstance(live, dict) else None

    def _confirm(self, item: _Desired, live: dict[str, Any], default_namespace: str) -> ObjectDrift | None:
        """Dry-run an object that looks drifted: what a deploy would change back, field by field (``None``: nothing)."""
        metadata = item.obj["metadata"]
        path = item.resource.object_path(metadata["name"], metadata.get("namespace", ""))
        planned = server_side_apply(
            self.client, path, item.obj, field_manager=FIELD_MANAGER, force=self.options.force_conflicts, dry_run=True
        )
        git, now = mask_pair(normalize(planned), normalize(live))
        assert git is not None and now is not None
        fields = [_field(tokens, git, now, live) for tokens in _differing(_shape(item.obj), git, now)]
        if not fields:
            return None
        secrets = item.secrets | secret_values(live)
        ref = ObjectRef(item.resource.group, item.resource.kind, metadata.get("namespace", ""), metadata["name"])
        diff = scrub(unified(ref, _relabel(git), _relabel(now)), secrets).replace("live/", "git/", 1)
        diff = diff.replace("planned/", "live/", 1)
        return ObjectDrift(
            item.resource.api_version,
            item.resource.kind,
            metadata.get("namespace", ""),
            metadata["name"],
            "changed",
            tuple(fields),
            diff=diff,
            default_namespace=default_namespace,
        )


def _looks_drifted(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether ``live`` may differ from ``desired`` in fields Git sets (any doubt: yes, and a dry run decides)."""
    live_hash = ((live.get("metadata") or {}).get("annotations") or {}).get(CONFIG_HASH)
    if not live_hash or live_hash != desired["metadata"]["annotations"][CONFIG_HASH]:
        return True
    if not contains(live, stored_form(desired) if is_secret(desired) else desired):
        return True
    return bool(foreign_owners(live, desired))


def foreign_owners(live: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    """Managers other than Mergeway's that own a field ``desired`` sets on ``live`` (status writes aside)."""
    owners = []
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        manager = str(entry.get("manager", ""))
        fields = entry.get("fieldsV1")
        if is_own_manager(manager) or entry.get("subresource", "") == "status" or not isinstance(fields, dict):
            continue
        if sets_owned_field(desired, fields):
            owners.append(manager)
    return owners


def _deleted(item: _Desired, default_namespace: str) -> ObjectDrift:
    metadata = item.obj["metadata"]
    ref = ObjectRef(item.resource.group, item.resource.kind, metadata.get("namespace", ""), metadata["name"])
    git, _ = mask_pair(normalize(item.obj), None)
    diff = scrub(unified(ref, git, None), item.secrets).replace("live/", "git/", 1)
    return ObjectDrift(
        item.resource.api_version,
        item.resource.kind,
        metadata.get("namespace", ""),
        metadata["name"],
        "deleted",
        diff=diff,
        default_namespace=default_namespace,
    )


_MISSING = object()


def _at(node: Any, tokens: Sequence[str | int]) -> Any:
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and isinstance(token, int) and token < len(node):
            node = node[token]  # its own branch: mypy narrows the index only here
        else:
            return _MISSING
    return node


def _differing(shape: Any, git: Any, live: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Paths, within what ``shape`` (the desired object) sets, where ``git`` and ``live`` differ.

    A list whose length differs is one path (the list); a dict or list of equal shape is walked
    into, so a changed image is ``/spec/template/spec/containers/0/image``, not the whole spec.
    """
    a, b = _at(git, prefix), _at(live, prefix)
    if a == b:
        return []
    if isinstance(shape, dict) and shape and isinstance(a, dict) and isinstance(b, dict):
        return [p for key, sub in shape.items() for p in _differing(sub, git, live, (*prefix, key))]
    if isinstance(shape, list) and shape and isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, sub in enumerate(shape) for p in _differing(sub, git, live, (*prefix, i)) if i < len(a)]
    return [prefix]


def _shape(desired: dict[str, Any]) -> dict[str, Any]:
    """What Git sets, as the server stores it (a Secret's ``stringData`` as ``data``), without bookkeeping."""
    shape = normalize(stored_form(desired) if is_secret(desired) else desired)
    assert shape is not None
    return shape


def pointer(tokens: Iterable[str | int]) -> str:
    """A JSON pointer (RFC 6901) for a path of keys and indexes."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def _text(value: Any) -> str:
    if value is _MISSING:
        return ""
    return yamltext.dump(_relabel(value)).strip()


def _field(tokens: tuple[str | int, ...], git: Any, live_masked: Any, live: dict[str, Any]) -> FieldDrift:
    manager, since = owner(live, tokens)
    return FieldDrift(pointer(tokens), _text(_at(live_masked, tokens)), _text(_at(git, tokens)), manager, since)


def _relabel(value: Any) -> Any:
    """Masked Secret values say which side they are on in drift's words: ``*** (Git)`` and ``*** (live)``."""
    if isinstance(value, dict):
        return {k: _relabel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_relabel(v) for v in value]
    if value == f"{MASK} (before)":
        return f"{MASK} (Git)"
    if value == f"{MASK} (after)":
        return f"{MASK} (live)"
    return value


def owner(live: dict[str, Any], tokens: Sequence[str | int], *, guess: bool = True) -> tuple[str, str]:
    """Who set the live value at ``tokens`` and when: the field manager owning it, and that entry's time.

    A value nobody owns (a field removed by hand) is blamed, when ``guess``, on the latest manager
    other than Mergeway's that wrote the object, the likeliest hand; ``("", "")`` otherwise.
    """
    entries = [
        e
        for e in (live.get("metadata") or {}).get("managedFields") or []
        if e.get("subresource", "") != "status" and isinstance(e.get("fieldsV1"), dict)
    ]
    owning = [e for e in entries if _owns(e["fieldsV1"], live, tokens)]
    owning.sort(key=lambda e: (not is_own_manager(str(e.get("manager", ""))), str(e.get("time", ""))))
    if owning:
        best = owning[-1]
        return str(best.get("manager", "")), str(best.get("time", ""))
    if not guess:
        return "", ""
    foreign = (e for e in entries if not is_own_manager(str(e.get("manager", ""))))
    others = sorted(foreign, key=lambda e: str(e.get("time", "")))
    if others:
        return str(others[-1].get("manager", "")), str(others[-1].get("time", ""))
    return "", ""


def _owns(fields: Mapping[str, Any], live: Any, tokens: Sequence[str | int]) -> bool:
    """Whether a ``fieldsV1`` tree owns the value at ``tokens`` of ``live`` (or everything under it)."""
    node: Any = fields
    value = live
    for token in tokens:
        if not isinstance(node, dict):
            return False
        if isinstance(value, dict) and isinstance(token, str):
            node = node.get(f"f:{token}")
            value = value.get(token)
        elif isinstance(value, list) and isinstance(token, int) and token < len(value):
            value = value[token]
            node = _item_node(node, value)
        else:
            return False
        if node is None:
            return False
    return True


def _item_node(node: Mapping[str, Any], item: Any) -> Any:
    """The ``fieldsV1`` node of one list item: by its merge key (``k:{...}``) or its value (``v:...``)."""
    for key, sub in node.items():
        kind, _, raw = key.partition(":")
        if kind not in ("k", "v"):
            continue
        try:
            parsed = json.loads(raw)
        except ValueError:
            continue
        if kind == "v" and parsed == item:
            return sub
        keyed = kind == "k" and isinstance(parsed, dict) and isinstance(item, dict)
        if keyed and all(item.get(k) == v for k, v in parsed.items()):
            return sub
    return None


def overwritten(item: ObjectDiff) -> list[FieldDrift]:
    """Fields of a planned update whose live value another manager set: applying the plan overwrites them.

    ``live`` is the live value and ``git`` the value the plan applies (both masked for Secrets, as
    the plan's own ``before`` and ``after`` are). A field only this change sets is not drift.
    """
    if item.action != "update" or item.observed is None or item.desired is None:
        return []
    if item.before is None or item.after is None:
        return []
    out = []
    for tokens in _differing(_shape(item.desired), item.after, item.before):
        manager, since = owner(item.observed, tokens, guess=False)
        if manager and not is_own_manager(manager):
            out.append(
                FieldDrift(
                    pointer(tokens), _text(_at(item.before, tokens)), _text(_at(item.after, tokens)), manager, since
                )
            )
    return out
