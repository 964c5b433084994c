"""Prunes pass the operator's policy like writes: a deletion outside the current rule is held.

The engine (:mod:`mergeway.kube.prune`) deletes every stale member of a set wherever the set's
parent says members may be, and the parent records where the repository *could* deploy when it
deployed. The policy says where it may act *now*: an operator who revokes a namespace or a kind
means the repository may no longer touch objects there, and deleting is touching. So every
deletion in a plan is checked with the same rule as an applied object (namespace, cluster scope,
denied kinds; :meth:`mergeway.policy.Policy.refusals`) before a deploy executes it or a preview
shows it. A refused deletion is held: the object stays in the cluster and in the set (the parent
keeps its kind and namespace, see :func:`mergeway.kube.apply._final_parent`), the pull request
says which and why, and once the operator grants it again the next deploy prunes it.

The engine is only handed the refs to hold (``Applier.deploy(hold=...)``): it never learns about
policies. The CLI, given ``--policy``, holds the same deletions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan
from mergeway.policy import Policy, PolicyObject
from mergeway.repoconfig import Environment


def _policy_object(item: ObjectDiff) -> PolicyObject:
    """A deletion as the policy sees it: its scope is the served kind's (deletions always have one)."""
    ref = item.ref
    scoped = None if item.resource is None else not item.resource.namespaced
    return PolicyObject(ref.group, ref.kind, ref.name, ref.namespace, scoped)


@dataclass
class PruneCheck:
    """The policy's check of one environment's deletions; :attr:`held` is what it refused last."""

    policy: Policy
    #: The forge (``github``) and ``owner/name`` the policy's rules are matched against.
    forge: str
    repo: str
    env: Environment
    #: Each refused deletion and the rule's reason, as the pull request is told.
    held: dict[ObjectRef, str] = field(default_factory=dict)

    def check(self, plan: Plan) -> dict[ObjectRef, str]:
        """The deletions of ``plan`` the current rule refuses, with why (also kept in :attr:`held`)."""
        deletions = {_policy_object(i): i.ref for i in plan.items if i.action == "delete"}
        refused = self.policy.refusals(self.forge, self.repo, self.env, deletions)
        self.held = {deletions[obj]: why for obj, why in refused}
        return self.held

    def split(self, plan: Plan) -> Plan:
        """``plan`` without the deletions the rule refuses: what a preview shows merging would do."""
        held = self.check(plan)
        kept = Plan([i for i in plan.items if i.ref not in held or i.action != "delete"])
        kept.hooks, kept.skipped = plan.hooks, plan.skipped  # hooks are never pruned: nothing to hold
        return kept

    def holding(self, guard: Callable[[Plan], Collection[ObjectRef]]) -> Callable[[Plan], set[ObjectRef]]:
        """A deploy's ``hold``: the refused deletions, plus what ``guard`` holds of the rest.

        ``guard`` (the destructive-change guard) never sees a deletion the policy refuses: an
        allowance cannot release what the operator does not let the repository do.
        """

        def hold(plan: Plan) -> set[ObjectRef]:
            held = self.check(plan)
            rest = Plan([i for i in plan.items if i.ref not in held or i.action != "delete"])
            return set(held) | set(guard(rest))

        return hold

    def lines(self) -> list[str]:
        """``object: why`` for each held deletion, sorted, for comments and statuses."""
        return [f"{ref}: {why}" for ref, why in sorted(self.held.items())]
