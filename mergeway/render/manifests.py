"""Turn YAML text into Kubernetes objects the way the API server's own tooling would read it.

PyYAML differs from the Go YAML reader that kubectl uses in two ways that bite real repositories:
it turns unquoted dates into ``datetime`` objects (Kubernetes keeps them as strings), and it
rejects tab characters at the end of lines that Go accepts. Both are handled here so a manifest
that ``kubectl apply`` accepts is never refused by Mergeway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from mergeway import yamlsafe
from mergeway.limits import DEFAULT_LIMITS, Budget, InputLimits, LimitError
from mergeway.manifest import Manifest as Manifest  # the type lives in a leaf module the engine shares


class ManifestError(ValueError):
    """A manifest cannot be read. The message names the source file and, when known, the line."""


class _KubeLoader(yamlsafe.BoundedSafeLoader):
    """Bounded SafeLoader without the timestamp resolver: ``2024-01-01`` stays the string Kubernetes expects."""


_KubeLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}

_TRAILING_WS = re.compile(r"[ \t]+$", re.MULTILINE)


def _load_all(text: str, source: str, budget: Budget) -> list[Any]:
    try:
        return list(yamlsafe.load_all(text, _KubeLoader, source=source, budget=budget))
    except LimitError as exc:
        raise ManifestError(str(exc)) from None


def load_documents(
    text: str, source: str, limits: InputLimits = DEFAULT_LIMITS, budget: Budget | None = None
) -> list[Any]:
    """Parse every YAML document in ``text``; empty documents are dropped.

    Bounded by ``budget`` when one render shares it across its files, by ``limits`` alone otherwise.
    """
    if budget is None:
        budget = Budget(limits)
    mark = budget.mark()
    try:
        docs = _load_all(text, source, budget)
    except yaml.YAMLError as first:
        # Go's YAML accepts trailing tabs that PyYAML refuses; trailing blanks never carry meaning
        # in a manifest, so strip them and try once more before reporting the original error.
        budget.restore(mark)  # the same text again: what the failed read counted is not counted twice
        try:
            docs = _load_all(_TRAILING_WS.sub("", text), source, budget)
        except yaml.YAMLError:
            raise ManifestError(f"{source}: {_describe_yaml_error(first)}") from None
    return [doc for doc in docs if doc is not None]


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)


def iter_objects(docs: list[Any], source: str) -> Iterator[Manifest]:
    """Yield Kubernetes objects, expanding ``kind: List`` wrappers as kubectl does."""
    for doc in docs:
        if not isinstance(doc, dict):
            raise ManifestError(f"{source}: a document is a {type(doc).__name__}, not a Kubernetes object")
        kind = doc.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
            yield from iter_objects(doc["items"], source)
            continue
        if not doc.get("apiVersion") or not kind:
            raise ManifestError(f"{source}: an object is missing apiVersion or kind")
        metadata = doc.get("metadata")
        # generateName: only hooks may use it (a new name per run); the engine refuses it elsewhere.
        if not isinstance(metadata, dict) or not (metadata.get("name") or metadata.get("generateName")):
            raise ManifestError(f"{source}: a {kind} has no metadata.name")
        for field in ("name", "namespace", "generateName"):
            problem = path_segment_problem(metadata.get(field, ""))
            if problem:
                shown = repr(metadata[field])[:80]
                raise ManifestError(f"{source}: {kind} metadata.{field} {shown} {problem}")
        yield Manifest(obj=doc, source=source)


def path_segment_problem(value: Any) -> str | None:
    """Why ``value`` cannot name an object or namespace, or ``None`` when it can.

    Names become segments of API paths. The API server refuses ``/``, ``%``, ``.`` and ``..`` in
    any name, and every kind's own rule refuses whitespace and control characters. Refusing them
    here, before any request, means a name from a pull request can never reshape a request's path
    or line, and the message says so in terms of the manifest.
    """
    if not isinstance(value, str):
        return "is not a string"
    if value in (".", ".."):
        return f"may not be {value!r}"
    bad = sorted({c for c in value if c in "/%" or c.isspace() or not c.isprintable()})
    return "may not contain " + ", ".join(repr(c) for c in bad) if bad else None


def parse_manifests(
    text: str, source: str, limits: InputLimits = DEFAULT_LIMITS, budget: Budget | None = None
) -> list[Manifest]:
    """Parse a YAML stream into objects (``budget`` as for :func:`load_documents`)."""
    return list(iter_objects(load_documents(text, source, limits, budget), source))


def looks_like_kubernetes(doc: Any) -> bool:
    """Whether a YAML document is a cluster object rather than tool config living beside manifests.

    Repositories keep kustomize transformer configs (``apiVersion: builtin``), Helm values and CI
    files next to manifests; applying those would fail or, worse, succeed as something unintended.
    """
    if not isinstance(doc, dict):
        return False
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        return False
    if api_version == "builtin" or api_version.startswith(("kustomize.config.k8s.io/", "config.kubernetes.io/")):
        return False
    return isinstance(doc.get("metadata"), dict) or kind.endswith("List")
