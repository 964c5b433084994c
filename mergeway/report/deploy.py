"""Render the deploy comment (edited in place from "applying" to the outcome) and its status.

A failed deploy must say *which* object failed and why in the first lines, and point at the way
back (``/rollback`` opens a revert pull request), because that is what the person who merged needs
at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mergeway.kube.apply import DeployResult
from mergeway.report.preview import _cell, _clip, _fence, marker

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

    def status(self) -> tuple[StatusState, str]:
        if self.state in ("queued", "applying"):
            return "pending", "Waiting for the environment lock…" if self.state == "queued" else "Applying…"
        if self.state == "superseded":
            return "success", _clip(f"Superseded by {self.deployed_sha[:12]}, which includes this merge", 139)
        if self.state == "failure":
            first = self.failures[0] if self.failures else self.error
            return "failure", _clip(f"Deploy failed: {first}", 139)
        counts = self.result.counts() if self.result else {}
        summary = ", ".join(f"{v} {k}" for k, v in counts.items())
        return "success", _clip(f"Deployed {self.deployed_sha[:12]}: {summary}", 139)


def render_deploy(report: DeployReport, *, limit: int) -> str:
    head = report.deployed_sha or report.merge_sha
    lines = [marker("deploy", report.environment)]
    if report.state == "queued":
        lines += [
            f"### ⏳ Deploy queued · `{report.environment}` · `{report.merge_sha[:12]}`",
            "",
            "Waiting for the environment's previous deploy to finish.",
        ]
        return "\n".join(lines)[:limit]
    if report.state == "applying":
        lines += [f"### ⏳ Applying · `{report.environment}` · `{head[:12]}`", ""]
        if report.note:
            lines.append(report.note)
        return "\n".join(lines)[:limit]
    if report.state == "superseded":
        lines += [
            f"### ⏭️ Superseded · `{report.environment}`",
            "",
            f"`{report.deployed_sha[:12]}` is already deployed and includes this merge "
            f"(`{report.merge_sha[:12]}`); nothing older is ever applied.",
        ]
        return "\n".join(lines)[:limit]
    ok = report.state == "success"
    icon, word = ("✅", "Deployed") if ok else ("❌", "Deploy failed")
    lines += [f"### {icon} {word} · `{report.environment}` · `{head[:12]}`", ""]
    if report.note:
        lines += [report.note, ""]
    result = report.result
    if result is not None:
        counts = result.counts()
        timing = f" · applied in {result.apply_seconds:.1f}s"
        if result.rollout_seconds:
            timing += f", rollout {result.rollout_seconds:.1f}s"
        lines += ["**" + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"**{timing}", ""]
    if not ok:
        if report.error:
            lines += [_fence(report.error[:4000])]
        if report.failures:
            lines += ["| object | why |", "|---|---|"]
            lines += [
                f"| {_cell(f.split(': ', 1)[0])} | {_cell(f.split(': ', 1)[1] if ': ' in f else '')} |"
                for f in report.failures
            ]
            lines.append("")
        lines += [
            "> Comment `/rollback` on this pull request to open a pull request that reverts it; "
            "merging that deploys the previous state.",
            "",
        ]
    if result is not None:
        rows = [("➕ created", i) for i in result.applied if i.action == "create"]
        rows += [("✏️ configured", i) for i in result.applied if i.action == "update"]
        rows += [("🗑️ pruned", i) for i in result.pruned]
        if rows:
            table = ["<details><summary>Objects changed</summary>", "", "| | object |", "|---|---|"]
            table += [f"| {label} | `{_cell(str(item.ref))}` |" for label, item in rows]
            table += ["", "</details>"]
            lines += table
    body = "\n".join(lines)
    return body if len(body) <= limit else body[: limit - 60] + "\n\n_Cut to fit the comment size limit._\n"


def failures_of(result: DeployResult) -> list[str]:
    """`object: reason` lines, the API server's or the rollout's words."""
    out = [f"{item.ref} (dry run): {item.message}" for item in result.plan.errors]
    out += [f"{item.ref}: {message}" for item, message in result.failed]
    out += [
        f"{ref}: {health.message or health.state}" + (" (timed out)" if health.state == "in_progress" else "")
        for ref, health in result.unhealthy.items()
    ]
    return out
