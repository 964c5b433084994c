"""``ignore:`` of an environment in ``.mergeway.yaml``: fields Git does not decide, read and validated.

Some fields belong to someone else: replicas a controller sets, an annotation an operator writes,
a field a team edits by hand on purpose. An environment lists them once::

    ignore:
      managers: [kube-controller-manager]      # every field these field managers own live
      fields:
        - kind: Deployment                     # required
          name: web                            # optional, a glob (web-*)
          namespace: shop                      # optional, a glob
          group: apps                          # optional, exact
          paths: [/spec/replicas]              # JSON pointers (RFC 6901)

and preview, deploy and drift all turn it into the same :class:`~mergeway.kube.options.ApplyOptions`
(:func:`mergeway.jobs.engine_options.options_for`): an ignored field is never shown as a change, never reported as
drift and never taken back by a deploy. Errors are ``ValueError`` naming the entry at fault
(:mod:`mergeway.repoconfig` turns them into its own error, shown on the pull request).

Plain values only: the web process and the policy read repository configurations without the
engine, so the pointers are checked by the same leaf the engine uses (:mod:`mergeway.pointers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from mergeway.pointers import ignorable

_FIELD_KEYS = {"kind", "name", "namespace", "group", "paths"}
_KEYS = {"managers", "fields"}


class FieldRule(NamedTuple):
    """One ignored field: the pointer, on objects of ``kind`` (``group``: ``None`` for any; globs for the rest)."""

    pointer: str
    kind: str
    group: str | None = None
    name: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class IgnoreSpec:
    """An environment's ``ignore:``: field managers to yield to, and fields by kind, name and pointer."""

    managers: tuple[str, ...] = ()
    fields: tuple[FieldRule, ...] = ()


def parse_ignore(raw: Any, where: str) -> IgnoreSpec:
    """Validate one environment's ``ignore:`` value (``where`` names it in errors)."""
    if raw is None:
        return IgnoreSpec()
    where = f"{where}.ignore"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping with 'managers' and/or 'fields'")
    extra = set(raw) - _KEYS
    if extra:
        raise ValueError(f"{where}: unknown key(s): {', '.join(sorted(map(str, extra)))} (known: fields, managers)")
    managers = raw.get("managers") or []
    if not isinstance(managers, list) or not all(isinstance(m, str) and m.strip() for m in managers):
        raise ValueError(f"{where}.managers must be a list of field manager names, e.g. [kube-controller-manager]")
    fields = raw.get("fields") or []
    if not isinstance(fields, list):
        raise ValueError(f"{where}.fields must be a list of {{kind, name, paths}} entries")
    rules = tuple(rule for i, entry in enumerate(fields) for rule in _field(entry, f"{where}.fields[{i}]"))
    return IgnoreSpec(tuple(m.strip() for m in managers), rules)


def _field(entry: Any, where: str) -> list[FieldRule]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a mapping like {{kind: Deployment, name: web, paths: [/spec/replicas]}}")
    extra = set(entry) - _FIELD_KEYS
    if extra:
        raise ValueError(f"{where}: unknown key(s): {', '.join(sorted(map(str, extra)))}")
    kind = entry.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        raise ValueError(f"{where}.kind is required (e.g. Deployment)")
    selectors: dict[str, str] = {}
    for key in ("name", "namespace", "group"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}.{key} must be a string")
        if value:
            selectors[key] = value.strip()
    paths = entry.get("paths")
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise ValueError(f"{where}.paths must be a non-empty list of JSON pointers, e.g. [/spec/replicas]")
    rules = []
    for j, path in enumerate(paths):
        try:
            ignorable(path.strip())
        except ValueError as exc:
            raise ValueError(f"{where}.paths[{j}]: {exc}") from None
        rules.append(
            FieldRule(
                path.strip(),
                kind.strip(),
                selectors.get("group"),
                selectors.get("name", ""),
                selectors.get("namespace", ""),
            )
        )
    return rules
