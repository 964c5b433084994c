"""Render the deploy comment (edited in place from "applying" to the outcome) and its status.

A failed deploy must say *which* object failed and why in the first lines, and point at the way
back (``/rollback`` opens a revert pull request), because that is what the person who merged needs
at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mergeway.kube.apply import DeployResult
from mergeway.report.markdown import ROLLBACK_HINT, cell, clip, clip_body, fence, marker, sha
from mergeway.report.notpruned import not_pruned, not_pruned_block
from mergeway.report.risk import Risk

if TYPE_CHECKING:  # the forge package pulls in both client libraries; reports need only the type
    from mergeway.forge.base import StatusState


@dataclass
class DeployReport:
    environment: str
    merge_sha: str
    #: The commit actually applied: the branch head, which may include later merges.
    deployed_sha: str = ""
    state: str = "queued"  # queued, applying, success, failure, superseded
    result: DeployResult | None = None
    error: str = ""
    note: str = ""
    failures: list[str] = field(default_factory=list)
    #: The commit the environment ran before this deploy ("" when unknown or never deployed).
    previous_sha: str = ""
    #: Destructive changes not executed because nobody allowed them (see mergeway.report.risk).
    held: list[Risk] = field(default_factory=list)
    #: How to allow held changes, in words for this forge.
    allow_hint: str = ""
    #: ``object: why`` for each deletion the policy refused (see mergeway.jobs.prunes): left in place.
    not_pruned: list[str] = field(default_factory=list)

    @property
    def applied_anything(self) -> bool:
        return self.result is not None and bool(self.result.applied or self.result.pruned)

    def status(self) -> tuple[StatusState, str]:
        if self.state in ("queued", "applying"):
            return "pending", "Waiting for the environment lock…" if self.state == "queued" else "Applying…"
        if self.state == "superseded":
            return "success", clip(f"Superseded by {self.deployed_sha[:12]}, which includes this merge", 139)
        if self.state == "failure":
            first = self.failures[0] if self.failures else self.error
            if self.result is not None and self.result.plan.errors and not self.applied_anything:
                return "failure", clip(f"Nothing applied, the dry run rejected {first}", 139)
            return "failure", clip(f"Deploy failed: {first}", 139)
        counts = self.result.counts() if self.result else {}
        summary = ", ".join(f"{v} {k}" for k, v in counts.items())
        held = f"; {len(self.held)} destructive held back" if self.held else ""
        return "success", clip(f"Deployed {self.deployed_sha[:12]}: {summary}{held}{not_pruned(self.not_pruned)}", 139)


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
    if report.state == "superseded":
        lines += [
            f"### ⏭️ Superseded · `{report.environment}`",
            "",
            f"{sha(report.deployed_sha)} is already deployed and includes this merge "
            f"({sha(report.merge_sha)}); nothing older is ever applied.",
        ]
        return "\n".join(lines)[:limit]
    ok = report.state == "success"
    icon, word = ("✅", "Deployed") if ok else ("❌", "Deploy failed")
    lines += [f"### {icon} {word} · `{report.environment}` · {sha(head)}", ""]
    if report.note:
        lines += [report.note, ""]
    lines += _outcome(report)
    if report.held:
        lines += _held(report)
    lines += not_pruned_block(report.not_pruned, "This deploy left them")
    result = report.result
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
    if result is not None:
        rows = [("➕ added", i) for i in result.applied if i.action == "create"]
        rows += [("✏️ changed", i) for i in result.applied if i.action == "update"]
        rows += [("🗑️ pruned", i) for i in result.pruned]
        if rows:
            table = ["<details><summary>Objects changed</summary>", "", "| | object |", "|---|---|"]
            table += [f"| {label} | `{cell(str(item.ref))}` |" for label, item in rows]
            table += ["", "</details>"]
            lines += table
    return clip_body("\n".join(lines), limit)


def _still_runs(report: DeployReport) -> str:
    if report.previous_sha:
        return f"`{report.environment}` still runs {sha(report.previous_sha)}"
    return f"`{report.environment}` is unchanged"


def _outcome(report: DeployReport) -> list[str]:
    """The first line a person reads: what was applied, in the counts people can check."""
    result = report.result
    if result is None:
        if report.state == "failure":
            return [f"**Nothing was applied**: {_still_runs(report)}.", ""]
        return []
    counts = result.counts()
    timing = f" · applied in {result.apply_seconds:.1f}s"
    if result.rollout_seconds:
        timing += f", rollout {result.rollout_seconds:.1f}s"
    summary = "**" + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"**{timing}"
    if result.plan.errors and not report.applied_anything:
        n = len(result.plan.errors)
        return [f"**Nothing was applied: the dry run rejected {n} object(s); {_still_runs(report)}.**", ""]
    if result.failed and not report.applied_anything:
        n = len(result.failed)
        return [f"**Nothing was applied: {n} object(s) failed to apply; {_still_runs(report)}.**", ""]
    if result.failed:
        done = {id(i) for i in result.applied} | {id(i) for i in result.pruned}
        wanted = [i for i in result.plan.items if i.action in ("create", "update", "delete")]
        missing = [i for i in wanted if id(i) not in done]
        lines = [
            f"**Partly applied: {len(done)} of {len(wanted)} change(s) applied, {len(missing)} not.** "
            + summary.replace("**", ""),
            "",
        ]
        if done:
            applied = ", ".join(f"`{cell(str(i.ref))}`" for i in [*result.applied, *result.pruned])
            lines += [f"Applied: {applied}", ""]
        if missing:
            lines += ["Not applied: " + ", ".join(f"`{cell(str(i.ref))}`" for i in missing), ""]
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
    return out
