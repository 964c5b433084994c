"""Hooks in the words a reviewer reads: listed apart in a preview, their runs in a deploy comment.

A hook is a run, not an object of the environment, so a preview does not diff it: it says when it
runs ("runs before the rollout: Job/migrate") and which hooks a deploy never applies (a Helm test).
A deploy comment lists each run and, for a failed one, its reason in the cluster's words, passed
through :func:`mergeway.redaction.redact` (a migration's log may print a connection string).
"""

from __future__ import annotations

from collections.abc import Sequence

from mergeway.hooks import PHASE_WORDS
from mergeway.kube.changeset import Plan
from mergeway.kube.hooks import HookRun
from mergeway.redaction import redact
from mergeway.report.markdown import cell

#: ``(phase, object, state, reason)`` of one run, as a deploy report keeps it.
Run = tuple[str, str, str, str]
_MAX_REASON = 1500


def runs_of(hooks: Sequence[HookRun]) -> tuple[Run, ...]:
    """The engine's runs as plain values, reasons masked."""
    return tuple((r.phase, r.ref, r.state, redact(r.reason)[-_MAX_REASON:]) for r in hooks)


def failure_lines(runs: Sequence[Run]) -> list[str]:
    """``object (phase hook): reason`` for each failed run, as the deploy's failures read."""
    return [f"{ref} ({phase} hook): {reason}" for phase, ref, state, reason in runs if state == "failed"]


def problems(runs: Sequence[Run]) -> list[tuple[str, str]]:
    """``(object, why)`` of each failed run, for the deployment record."""
    return [(ref, f"{phase} hook: {reason}") for phase, ref, state, reason in runs if state == "failed"]


def stopped_before_apply(runs: Sequence[Run]) -> bool:
    """A pre-deploy hook failed: the deploy stopped before applying anything."""
    return any(phase == "pre-deploy" and state == "failed" for phase, _, state, _ in runs)


def deploy_lines(runs: Sequence[Run]) -> list[str]:
    """The hooks this deploy ran, one line each."""
    if not runs:
        return []
    lines = ["#### Hooks", ""]
    for phase, ref, state, reason in runs:
        icon = "✅" if state == "succeeded" else "❌"
        why = f": {cell(reason.splitlines()[0] if reason else '')}" if state == "failed" and reason else ""
        lines.append(f"- {icon} {PHASE_WORDS.get(phase, phase)}: `{cell(ref)}` {state}{why}")
    return [*lines, ""]


def preview_lines(plan: Plan) -> list[str]:
    """What merging runs around the rollout, and the hooks it never applies."""
    if not plan.hooks and not plan.skipped:
        return []
    lines = ["#### Hooks (created fresh on every deploy, not diffed)", ""]
    for phase in PHASE_WORDS:
        for h in sorted((h for h in plan.hooks if phase in h.phases), key=lambda h: (h.weight, h.ref)):
            weight = f", weight {h.weight}" if h.weight else ""
            lines.append(f"- {PHASE_WORDS[phase]}: `{cell(str(h.ref))}` (`{cell(h.said)}`{weight})")
    for s in plan.skipped:
        lines.append(f"- not applied on deploy: `{cell(str(s.ref))}` (`{cell(s.said)}`: {cell(s.why)})")
    return [*lines, ""]
