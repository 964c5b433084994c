"""Render the deploy comment (edited in place from "applying" to the outcome) and its status.

A failed deploy must say *which* object failed and why in the first lines, and point at the way
back (``/rollback`` opens a revert pull request), because that is what the person who merged needs
at that moment.
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING

from mergeway.kube.apply import DeployResult
from mergeway.report import gates as gate_texts
from mergeway.report import hooks as hook_texts
from mergeway.report.markdown import ALLOW_LABEL, ROLLBACK_HINT, cell, clip, clip_body, fence, marker, sha
from mergeway.report.notpruned import not_pruned, not_pruned_block
from mergeway.report.risk import Risk

if TYPE_CHECKING:  # the forge package pulls in both client libraries; reports need only the type
    from mergeway.forge.base import StatusState

DeployState = str  # queued, waiting, applying, success, failure, superseded


@dataclass(frozen=True)
class Applied:
    """What the engine did, as plain values: the report keeps no engine object alive or mutable.

    Built once from the engine's :class:`~mergeway.kube.apply.DeployResult` by :func:`applied_of`;
    everything the comment, the status and the deployment record say is read from here.
    """

    #: ``(word, n)`` in the order previews use: added, changed, pruned, unchanged (failed).
    counts: tuple[tuple[str, int], ...] = ()
    apply_seconds: float = 0.0
    rollout_seconds: float = 0.0
    #: Objects the dry run rejected (nothing is applied then).
    rejected: int = 0
    #: Objects whose apply failed.
    failed: int = 0
    #: ``(action, object)`` of each executed change: ``create``, ``update`` or ``prune``.
    done: tuple[tuple[str, str], ...] = ()
    #: Changes planned but not executed (a failure part-way).
    missing: tuple[str, ...] = ()
    #: Wanted changes (create, update, delete) in the plan.
    wanted: int = 0
    #: ``(object, reason)`` for each object rejected, failed or not healthy, in the engine's words.
    problems: tuple[tuple[str, str], ...] = ()
    #: ``(phase, object, state, reason)`` of each hook run (mergeway.report.hooks), reasons masked.
    hooks: tuple[tuple[str, str, str, str], ...] = ()

    @property
    def anything(self) -> bool:
        return bool(self.done)

    def count(self, word: str) -> int:
        return dict(self.counts).get(word, 0)


def applied_of(result: DeployResult) -> Applied:
    """The plain summary of ``result`` (see :class:`Applied`)."""
    done = [(i.action, str(i.ref)) for i in result.applied] + [("prune", str(i.ref)) for i in result.pruned]
    executed = {id(i) for i in result.applied} | {id(i) for i in result.pruned}
    wanted = [i for i in result.plan.items if i.action in ("create", "update", "delete")]
    problems = [(str(i.ref), f"dry run: {i.message}") for i in result.plan.errors]
    problems += [(str(item.ref), message) for item, message in result.failed]
    problems += [(ref, health.message or health.state) for ref, health in result.unhealthy.items()]
    runs = hook_texts.runs_of(result.hooks)
    problems += hook_texts.problems(runs)
    return Applied(
        counts=tuple(result.counts().items()),
        apply_seconds=result.apply_seconds,
        rollout_seconds=result.rollout_seconds,
        rejected=len(result.plan.errors),
        failed=len(result.failed),
        done=tuple(done),
        missing=tuple(str(i.ref) for i in wanted if id(i) not in executed),
        wanted=len(wanted),
        problems=tuple(problems),
        hooks=runs,
    )


@dataclass(frozen=True)
class DeployReport:
    """The outcome of one environment's deploy (or its progress), as the publisher shows it.

    Immutable: the deploy job builds a new one per phase (:func:`dataclasses.replace`) and hands it
    to the publisher and the deployment record, so a report already published can never change.
    """

    environment: str
    merge_sha: str
    #: The commit actually applied: the branch head, which may include later merges.
    deployed_sha: str = ""
    state: DeployState = "queued"
    #: The engine's result, read once into :attr:`applied` and not kept.
    result: InitVar[DeployResult | None] = None
    applied: Applied | None = None
    error: str = ""
    note: str = ""
    failures: tuple[str, ...] = ()
    #: The commit the environment ran before this deploy ("" when unknown or never deployed).
    previous_sha: str = ""
    #: Destructive changes not executed because nobody allowed them (see mergeway.report.risk).
    held: tuple[Risk, ...] = ()
    #: The pull request's head commit, named in the hint that tells how to allow held changes.
    pr_head: str = ""
    #: ``object: why`` for each deletion the policy refused (see mergeway.jobs.prunes): left in place.
    not_pruned: tuple[str, ...] = field(default=())
    #: Why the deploy waits (state ``waiting``: locked, frozen, after another environment), in a few words.
    waiting: str = ""

    def __post_init__(self, result: DeployResult | None) -> None:
        if result is not None:
            object.__setattr__(self, "applied", applied_of(result))
            if not self.failures:
                object.__setattr__(self, "failures", tuple(failures_of(result)))

    @property
    def applied_anything(self) -> bool:
        return self.applied is not None and self.applied.anything

    @property
    def allow_hint(self) -> str:
        """How to allow held changes, in words for this forge."""
        return (
            f"To apply them, someone with write access other than the author reviews them and comments "
            f"`/allow-destructive {self.environment} {self.pr_head[:12] or '<head commit>'}` on the pull request "
            f"that made them; pull requests labelled `{ALLOW_LABEL}` by such a person apply them on merge."
        )

    def status(self) -> tuple[StatusState, str]:
        if self.state == "waiting":
            return "pending", clip(f"Waiting: {self.waiting}", 139)
        if self.state in ("queued", "applying"):
            return "pending", "Waiting for the environment lock…" if self.state == "queued" else "Applying…"
        if self.state == "superseded":
            return "success", clip(f"Superseded by {self.deployed_sha[:12]}, which includes this merge", 139)
        if self.state == "failure":
            first = self.failures[0] if self.failures else self.error
            if self.applied is not None and self.applied.rejected and not self.applied_anything:
                return "failure", clip(f"Nothing applied, the dry run rejected {first}", 139)
            return "failure", clip(f"Deploy failed: {first}", 139)
        counts = self.applied.counts if self.applied else ()
        summary = ", ".join(f"{v} {k}" for k, v in counts)
        held = f"; {len(self.held)} destructive held back" if self.held else ""
        return "success", clip(
            f"Deployed {self.deployed_sha[:12]}: {summary}{held}{not_pruned(list(self.not_pruned))}", 139
        )


def render_deploy(report: DeployReport, *, limit: int) -> str:
    head = report.deployed_sha or report.merge_sha
    lines = [marker("deploy", report.environment)]
    if report.state == "queued":
        lines += [
            f"### ⏳ Deploy queued · `{report.environment}` · {sha(report.merge_sha)}",
            "",
            "Waiting for the environment's previous deploy to finish.",
        ]
        return "\n".join(lines)[:limit]
    if report.state == "applying":
        lines += [f"### ⏳ Applying · `{report.environment}` · {sha(head)}", ""]
        if report.note:
            lines.append(report.note)
        return "\n".join(lines)[:limit]
    if report.state == "waiting":
        return "\n".join(lines + gate_texts.render_waiting(report.environment, report.merge_sha, report.note))[:limit]
    if report.state == "superseded":
        lines += [f"### ⏭️ Superseded · `{report.environment}`", ""]
        lines += (
            [report.note]
            if report.note
            else [
                f"{sha(report.deployed_sha)} is already deployed and includes this merge "
                f"({sha(report.merge_sha)}); nothing older is ever applied.",
            ]
        )
        return "\n".join(lines)[:limit]
    ok = report.state == "success"
    icon, word = ("✅", "Deployed") if ok else ("❌", "Deploy failed")
    lines += [f"### {icon} {word} · `{report.environment}` · {sha(head)}", ""]
    if report.note:
        lines += [report.note, ""]
    lines += _outcome(report)
    lines += hook_texts.deploy_lines(report.applied.hooks if report.applied else ())
    if report.held:
        lines += _held(report)
    lines += not_pruned_block(list(report.not_pruned), "This deploy left them")
    applied = report.applied
    if not ok:
        if report.error:
            lines += [fence(report.error[:4000])]
        if report.failures:
            lines += ["| object | why |", "|---|---|"]
            lines += [
                f"| {cell(f.split(': ', 1)[0])} | {cell(f.split(': ', 1)[1] if ': ' in f else '')} |"
                for f in report.failures
            ]
            lines.append("")
        if report.applied_anything:  # a revert of nothing would change nothing
            lines += [ROLLBACK_HINT, ""]
    if applied is not None:
        rows = [("➕ added", ref) for action, ref in applied.done if action == "create"]
        rows += [("✏️ changed", ref) for action, ref in applied.done if action == "update"]
        rows += [("🗑️ pruned", ref) for action, ref in applied.done if action == "prune"]
        if rows:
            table = ["<details><summary>Objects changed</summary>", "", "| | object |", "|---|---|"]
            table += [f"| {label} | `{cell(ref)}` |" for label, ref in rows]
            table += ["", "</details>"]
            lines += table
    return clip_body("\n".join(lines), limit)


def _still_runs(report: DeployReport) -> str:
    if report.previous_sha:
        return f"`{report.environment}` still runs {sha(report.previous_sha)}"
    return f"`{report.environment}` is unchanged"


def _outcome(report: DeployReport) -> list[str]:
    """The first line a person reads: what was applied, in the counts people can check."""
    applied = report.applied
    if applied is None:
        if report.state == "failure":
            return [f"**Nothing was applied**: {_still_runs(report)}.", ""]
        return []
    timing = f" · applied in {applied.apply_seconds:.1f}s"
    if applied.rollout_seconds:
        timing += f", rollout {applied.rollout_seconds:.1f}s"
    summary = "**" + ", ".join(f"{v} {k}" for k, v in applied.counts) + f"**{timing}"
    if hook_texts.stopped_before_apply(applied.hooks):
        return [f"**Nothing was applied: a pre-deploy hook failed; {_still_runs(report)}.**", ""]
    if applied.rejected and not report.applied_anything:
        n = applied.rejected
        return [f"**Nothing was applied: the dry run rejected {n} object(s); {_still_runs(report)}.**", ""]
    if applied.failed and not report.applied_anything:
        n = applied.failed
        return [f"**Nothing was applied: {n} object(s) failed to apply; {_still_runs(report)}.**", ""]
    if applied.failed:
        done, missing = applied.done, applied.missing
        lines = [
            f"**Partly applied: {len(done)} of {applied.wanted} change(s) applied, {len(missing)} not.** "
            + summary.replace("**", ""),
            "",
        ]
        if done:
            lines += ["Applied: " + ", ".join(f"`{cell(ref)}`" for _, ref in done), ""]
        if missing:
            lines += ["Not applied: " + ", ".join(f"`{cell(ref)}`" for ref in missing), ""]
        return lines
    return [summary, ""]


def _held(report: DeployReport) -> list[str]:
    lines = [f"#### 🛑 Held back: {len(report.held)} destructive change(s) were not executed", ""]
    lines += [f"- **{r.verb}** `{cell(str(r.ref))}`: {cell(r.why)}" for r in report.held]
    lines += ["", report.allow_hint, ""]
    return lines


def failures_of(result: DeployResult) -> list[str]:
    """`object: reason` lines, the API server's or the rollout's words."""
    out = [f"{item.ref} (dry run): {item.message}" for item in result.plan.errors]
    out += [f"{item.ref}: {message}" for item, message in result.failed]
    out += [
        f"{ref}: {health.message or health.state}" + (" (timed out)" if health.state == "in_progress" else "")
        for ref, health in result.unhealthy.items()
    ]
    out += hook_texts.failure_lines(hook_texts.runs_of(result.hooks))
    return out


# -- what the deploy job tells in its own words -------------------------------------------------------


def head_note(head: str, base_ref: str) -> str:
    """The branch moved on since the merge: its head, which includes the merge, is what is deployed."""
    return f"Deploying `{head[:12]}`, the head of `{base_ref}`, which includes this merge."


def legacy_left(old_set: str, objects: list[str]) -> str:
    """Objects of the environment's old-named ApplySet left in place when it was retired (``""``: none)."""
    if not objects:
        return ""
    names = ", ".join(f"`{name}`" for name in objects[:10])
    more = f" and {len(objects) - 10} more" if len(objects) > 10 else ""
    return (
        f"Moved to a collision-free ApplySet; {len(objects)} object(s) of the old set `{old_set}` are no "
        f"longer in Git or belong to another repository sharing that name, and were not pruned: {names}{more}."
    )


def superseded_reason(deployed_sha: str) -> str:
    """The deployment record's reason for a superseded deploy."""
    return f"{deployed_sha[:12]} is deployed and includes it"


def held_reason(held: int) -> str:
    """The deployment record's reason for a deploy that left destructive changes held."""
    return f"{held} destructive change(s) wait for an allowance"
