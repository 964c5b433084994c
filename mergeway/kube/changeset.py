"""What a plan is made of: one entry per object, with the action it needs and how it reads.

Diff (:mod:`mergeway.kube.diff`) and prune (:mod:`mergeway.kube.prune`) produce entries, apply
(:mod:`mergeway.kube.apply`) executes them and the reports render them; none of those needs the
others to describe a change.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from mergeway.kube import yamltext
from mergeway.kube.discovery import Resource

Action = Literal["create", "update", "unchanged", "delete", "error"]


class ObjectRef(NamedTuple):
    """The identity of an object: group, kind, namespace and name (version is not identity)."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


class ObjectDiff:
    """One object's entry in a plan: what happens to it, and what a reviewer is shown about it."""

    __slots__ = (
        "action",
        "after",
        "before",
        "defaults",
        "desired",
        "diff",
        "full_diff",
        "message",
        "observed",
        "recreate",
        "ref",
        "resource",
        "source",
        "unvalidated",
    )

    def __init__(
        self,
        ref: ObjectRef,
        action: Action,
        source: str = "",
        *,
        desired: dict[str, Any] | None = None,
        resource: Resource | None = None,
        diff: str = "",
        message: str = "",
        unvalidated: bool = False,
        observed: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        defaults: int = 0,
        full_diff: str = "",
        recreate: bool = False,
    ) -> None:
        self.ref = ref
        self.action = action
        self.source = source
        #: The object to apply, namespace defaulted. Holds raw Secret data: never render it.
        self.desired = desired
        self.resource = resource
        self.diff = diff
        self.message = message
        #: True when the API server has not validated this object (its namespace or CRD is new).
        self.unvalidated = unvalidated
        #: The live object as last seen (listed, read, or returned by the apply), for the health check.
        self.observed = observed
        #: Both sides of the diff, normalised and with Secret values masked: safe to show.
        self.before = before
        self.after = after
        #: For a new object: fields the API server filled in that Git did not ask for, and the diff of
        #: the whole server-defaulted object (``diff`` then shows only what Git asked for).
        self.defaults = defaults
        self.full_diff = full_diff
        #: Applying deletes and recreates the object (an immutable field changed; it opted in).
        self.recreate = recreate

    def __repr__(self) -> str:
        # The objects themselves stay out: ``desired`` holds raw Secret data.
        return f"ObjectDiff({self.ref}, {self.action!r}, source={self.source!r}, message={self.message!r})"

    @property
    def changed(self) -> bool:
        return self.action in ("create", "update", "delete")


class PlannedHook(NamedTuple):
    """A hook the deploy creates fresh in its phases (:mod:`mergeway.hooks`), never applied or pruned as a member."""

    ref: ObjectRef
    phases: tuple[str, ...]
    weight: int
    policies: frozenset[str]
    #: ``annotation: value`` as written.
    said: str
    source: str
    resource: Resource
    #: The object to create, namespace defaulted and labelled as a hook of the set. Never render it.
    desired: dict[str, Any]


class SkippedHook(NamedTuple):
    """A hook this deploy does not apply (a Helm test, a delete hook, ``Skip``), and why."""

    ref: ObjectRef
    said: str
    why: str
    source: str


class Plan:
    """Every object of one environment and what applying the change does to it, in render order.

    Hooks are not items: they are created fresh around the apply (``hooks``), or not at all (``skipped``).
    """

    def __init__(self, items: list[ObjectDiff] | None = None) -> None:
        self.items: list[ObjectDiff] = [] if items is None else items
        self.hooks: list[PlannedHook] = []
        self.skipped: list[SkippedHook] = []

    def __repr__(self) -> str:
        return f"Plan({self.summary()})"

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
    import difflib  # previews only: a deploy renders no diff texts

    lines = difflib.unified_diff(
        to_yaml(before).splitlines(keepends=True),
        to_yaml(after).splitlines(keepends=True),
        fromfile=f"live/{ref}" if before is not None else "/dev/null",
        tofile=f"planned/{ref}" if after is not None else "/dev/null",
        n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
