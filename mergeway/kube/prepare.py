"""The one step from a rendered object to the desired object Mergeway hashes, dry-runs and applies.

Every path that sends an object or compares with one (preview, deploy, prune, the policy's view of
an object, the CLI) needs the same answer to "which object is this, and what exactly do we ask
for?". :func:`prepare` gives it once, in this order:

1. the namespace is defaulted (:func:`mergeway.manifest.effective_namespace`, the one copy of
   ``kubectl apply -n``'s rule);
2. the ownership labels (the ApplySet's part-of label) are added;
3. fields the :class:`~mergeway.kube.options.ApplyOptions` ignore are dropped;
4. the config hash of what is left is recorded, so the unchanged-since-applied shortcut compares
   only fields Mergeway asks for.

Fields owned by managers Mergeway respects can only be known from the live object, so they are
dropped later, by :func:`yield_to_managers`, which hashes again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from mergeway.kube.normalize import CONFIG_HASH
from mergeway.kube.options import ApplyOptions, IgnoreRule
from mergeway.manifest import effective_namespace

_IDENTITY = ("apiVersion", "kind")


def config_hash(obj: dict[str, Any]) -> str:
    """A hash of what Mergeway asks for (the object as sent, without this annotation)."""
    metadata = dict(obj.get("metadata") or {})
    metadata["annotations"] = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != CONFIG_HASH}
    clean = {**obj, "metadata": metadata}
    return hashlib.sha256(json.dumps(clean, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its config-hash annotation set (a copy of the metadata; the rest shared)."""
    metadata = dict(obj.get("metadata") or {})
    out = {**obj, "metadata": metadata}
    metadata["annotations"] = {**(metadata.get("annotations") or {}), CONFIG_HASH: config_hash(out)}
    return out


def prepare(
    obj: dict[str, Any],
    *,
    namespaced: bool,
    default_namespace: str = "",
    labels: Mapping[str, str] | None = None,
    options: ApplyOptions | None = None,
) -> dict[str, Any]:
    """The desired object for a rendered ``obj`` (never modified: changed paths are copied)."""
    metadata = dict(obj.get("metadata") or {})  # only changed paths are copied, not the spec
    out = {**obj, "metadata": metadata}
    namespace = effective_namespace(str(metadata.get("namespace") or ""), default_namespace, namespaced=namespaced)
    if namespace:
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    if labels:
        metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    if options and options.ignore:
        out = without_ignored(out, options.ignore)
    return with_hash(out)


def without_ignored(obj: dict[str, Any], rules: Iterable[IgnoreRule]) -> dict[str, Any]:
    """``obj`` without the fields the matching ``rules`` point at (absent fields are no error)."""
    for rule in rules:
        if rule.matches(obj):
            obj = _drop(obj, rule.tokens)
    return obj


def _drop(node: Any, tokens: tuple[str, ...]) -> Any:
    """A copy of ``node`` without the value at ``tokens`` (copy-on-write: untouched branches are shared)."""
    head, rest = tokens[0], tokens[1:]
    if isinstance(node, dict) and head in node:
        out = dict(node)
        if rest:
            out[head] = _drop(node[head], rest)
        else:
            del out[head]
        return out
    if isinstance(node, list) and head.isdigit() and int(head) < len(node):
        items = list(node)
        if rest:
            items[int(head)] = _drop(node[int(head)], rest)
        else:
            del items[int(head)]
        return items
    return node


def yield_to_managers(desired: dict[str, Any], live: dict[str, Any] | None, managers: frozenset[str]) -> dict[str, Any]:
    """``desired`` without the fields ``managers`` own on ``live``, hashed again; unchanged when none do.

    Ownership is read from the live object's ``managedFields`` (any operation, not the status
    subresource). A list item keyed by a merge key keeps its key fields, and is dropped whole only
    when the respected manager owns everything else Mergeway set in it.
    """
    if not managers or not live:
        return desired
    out: dict[str, Any] = desired
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") in managers and entry.get("subresource", "") != "status":
            fields = entry.get("fieldsV1")
            if isinstance(fields, dict):
                out = _without_owned(out, fields)  # a dict stays a dict
    if out is desired:
        return desired
    out = {**out, **{k: desired[k] for k in _IDENTITY if k in desired}}
    metadata = dict(out.get("metadata") or {})
    for key in ("name", "namespace"):
        if key in desired["metadata"]:
            metadata[key] = desired["metadata"][key]
    return with_hash({**out, "metadata": metadata})


def sets_owned_field(desired: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Whether ``desired`` sets a field that ``fields`` (one manager's ``fieldsV1`` tree) owns."""
    return _without_owned(desired, fields) is not desired


def _children(node: Any) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != "."} if isinstance(node, dict) else {}


def _without_owned(value: Any, fields: dict[str, Any]) -> Any:
    """``value`` without what ``fields`` (a managedFields ``fieldsV1`` node) owns; ``value`` itself if nothing."""
    if isinstance(value, dict):
        out = value
        for key, sub in fields.items():
            name = key[2:]
            if not key.startswith("f:") or name not in value:
                continue
            children = _children(sub)
            kept = _without_owned(value[name], children) if children else None
            if kept is value[name]:
                continue
            out = dict(out) if out is value else out
            if kept is None or (kept == {} and value[name] != {}) or (kept == [] and value[name] != []):
                del out[name]
            else:
                out[name] = kept
        return out
    if isinstance(value, list):
        return _list_without_owned(value, fields)
    return value


def _list_without_owned(items: list[Any], fields: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    changed = False
    for item in items:
        kept = _item_without_owned(item, fields)
        changed = changed or kept is not item
        if kept is not None:
            out.append(kept)
    return out if changed else items


def _item_without_owned(item: Any, fields: dict[str, Any]) -> Any:
    """One list item: a set value owned is dropped; a keyed item loses owned fields but keeps its keys."""
    for key, sub in fields.items():
        kind, _, raw = key.partition(":")
        try:
            parsed = json.loads(raw) if kind in ("k", "v") else None
        except ValueError:
            continue
        if kind == "v" and parsed == item:
            return None
        if not (kind == "k" and isinstance(parsed, dict) and isinstance(item, dict)):
            continue
        if all(item.get(k) == v for k, v in parsed.items()):
            owned = {k: v for k, v in _children(sub).items() if k[2:] not in parsed}
            kept = _without_owned(item, owned)
            if kept is not item and set(kept) <= set(parsed):
                return None  # everything Mergeway set in it is theirs
            return kept
    return item
