"""The engine's plan, read once into the plain values a preview shows.

A :class:`~mergeway.kube.changeset.Plan` is the engine's working object: its entries hold the
desired objects (raw Secret data included) and are reused by the apply. A preview report must hold
neither, so the job reads the plan here once, into :class:`Planned`, the way
:func:`mergeway.report.deploy.applied_of` reads a deploy's result: what each object's entry says
(action, identity, diff texts, changed fields, the API server's message), the summary counts and
the risky changes. Everything the preview comment and status say is read from those values; the
report module itself never imports the engine's plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from mergeway.kube.changeset import Action, ObjectDiff, Plan
from mergeway.kube.diff import leaf_paths
from mergeway.report import hooks as hook_texts
from mergeway.report.risk import Risk, field_changes, risks


@dataclass(frozen=True)
class PlannedObject:
    """One object of the plan as the preview shows it; no object bodies, only masked diff texts."""

    #: ``create``, ``update``, ``delete``, ``unchanged`` or ``error``.
    action: str
    #: The object's identity as people read it (``Deployment/shop/web``).
    ref: str
    #: The file it was rendered from.
    source: str = ""
    #: The API server's words about it (why it was rejected, or what the dry run could not check).
    message: str = ""
    #: The unified diff of what Git asks for (Secret values masked).
    diff: str = ""
    #: For a new object: the diff of the whole object as the API server would store it.
    full_diff: str = ""
    #: For a new object: fields the API server filled in that Git did not ask for.
    defaults: int = 0
    #: For a new object: every field of it as the API server would store it (defaults included).
    fields: int = 0
    #: For a changed object: each changed field, described (``spec.replicas 3→5``).
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Planned:
    """What a dry run found for one environment: its objects, the summary counts and the risks."""

    #: Every object, ordered by identity (group, kind, namespace, name).
    objects: tuple[PlannedObject, ...] = ()
    #: ``(action, n)`` for each action, in the engine's order: create, update, delete, unchanged, error.
    counts: tuple[tuple[str, int], ...] = ()
    #: The engine's one-line summary (``1 to add, 0 to change, 0 to prune, 3 unchanged``).
    summary: str = ""
    #: The risky changes, destructive ones first (:func:`mergeway.report.risk.risks`).
    risks: tuple[Risk, ...] = ()
    #: The comment's lines on hooks: when each runs, and those never applied (mergeway.report.hooks).
    hooks: tuple[str, ...] = ()

    def count(self, action: str) -> int:
        return dict(self.counts).get(action, 0)

    @property
    def failed(self) -> int:
        """How many objects the API server rejected."""
        return self.count("error")


def planned_object(item: ObjectDiff) -> PlannedObject:
    """``item`` as plain values; changed fields are worked out only where the comment lists them."""
    return PlannedObject(
        action=item.action,
        ref=str(item.ref),
        source=item.source,
        message=item.message,
        diff=item.diff,
        full_diff=item.full_diff,
        defaults=item.defaults,
        fields=len(leaf_paths(item.after)) if item.action == "create" and item.after else 0,
        changes=tuple(c.describe() for c in field_changes(item.before, item.after)) if item.action == "update" else (),
    )


def planned_of(plan: Plan) -> Planned:
    """The plain summary of ``plan`` (see :class:`Planned`)."""
    actions: tuple[Action, ...] = ("create", "update", "delete", "unchanged", "error")
    return Planned(
        objects=tuple(planned_object(item) for item in sorted(plan.items, key=lambda i: i.ref)),
        counts=tuple((action, plan.count(action)) for action in actions),
        summary=plan.summary(),
        risks=tuple(risks(plan)),
        hooks=tuple(hook_texts.preview_lines(plan)),
    )


#: An empty plan: what a report without one shows.
NOTHING_PLANNED = planned_of(Plan())
