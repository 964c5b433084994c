"""What a plan is made of: one entry per object, with the action it needs and how it reads.

Diff (:mod:`mergeway.kube.diff`) and prune (:mod:`mergeway.kube.prune`) produce entries, apply
(:mod:`mergeway.kube.apply`) executes them and the reports render them; none of those needs the
others to describe a change.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

from mergeway.kube import yamltext
from mergeway.kube.discovery import Resource

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
    return yamltext.dump(obj)


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
