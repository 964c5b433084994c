"""What a preview says about drift: replicas left to an autoscaler, and live changes merging overwrites.

A reviewer should not be surprised by a merge that undoes someone's ``kubectl scale``: when the
plan would overwrite a field another manager set live, the preview says so above its table, with
the value the last applied commit had (from the last drift check, when there is one).
"""

from __future__ import annotations

from collections.abc import Sequence

from mergeway.drift import DriftStore, ObjectDrift
from mergeway.events import Repository
from mergeway.jobs.applysets import owner_identity
from mergeway.jobs.context import JobContext
from mergeway.kube.autoscalers import Scaled
from mergeway.kube.changeset import Plan
from mergeway.kube.drift import overwritten
from mergeway.repoconfig import Environment
from mergeway.report import driftcheck as texts


def drift_notes(
    ctx: JobContext, repo: Repository, env: Environment, plan: Plan, autoscaled: Sequence[Scaled]
) -> list[str]:
    """The preview's notes: one per autoscaled object, one per live field the merge would overwrite."""
    notes = [texts.autoscaled(s.kind, s.name, s.autoscaler) for s in autoscaled]
    last = DriftStore(ctx.redis).get(owner_identity(repo), env.name) if ctx.redis is not None else None
    known = {(o.kind, o.namespace, o.name, f.path): f.git for o in (last.objects if last else ()) for f in o.fields}
    for item in plan.items:
        ref = item.ref
        obj = ObjectDrift("", ref.kind, ref.namespace, ref.name, "changed", default_namespace=env.namespace)
        for f in overwritten(item):
            notes.append(texts.overwrite_note(obj.ref, f, known.get((ref.kind, ref.namespace, ref.name, f.path), "")))
    return notes
