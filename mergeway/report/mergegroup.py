"""What a merge queue's group shows: its statuses' words and the short summary on each queued pull request.

A merge group has no pull request of its own, so its preview is reported twice: as the same
``mergeway/preview/<env>`` commit statuses a pull request gets (on the group's head SHA, where the
merge queue reads required checks) and as one sticky comment per pull request in the group, so
authors see why the queue let their change through or threw it out. The comment is short: the
full diff is the pull request's own preview; this one says what the queue's commit did.
"""

from __future__ import annotations

from collections.abc import Sequence

from mergeway.report.markdown import cell, clip_body, code, marker, sha
from mergeway.report.preview import PreviewReport

#: The sticky comment of the merge queue's preview, one per pull request (the newest group wins).
MARKER = marker("merge-queue")
#: The status description of an environment whose preview a destroyed group cancelled.
CANCELLED = "Merge group left the queue: preview cancelled"

_ICONS = {"success": "✅", "failure": "❌", "error": "⚠️", "pending": "⏳"}
_REASONS = {
    "merged": "was merged",
    "dequeued": "was removed from the queue",
    "invalidated": "was invalidated by an earlier entry leaving the queue",
}


def cancelled_description(reason: str) -> str:
    """The description of a status a cancelled preview leaves (``reason``: GitHub's ``destroyed`` reason)."""
    return f"{CANCELLED} ({reason})" if reason else CANCELLED


def render_summary(head_ref: str, head_sha: str, numbers: Sequence[int], reports: Sequence[PreviewReport]) -> str:
    """The comment after the group's preview: one line per environment, with the status the queue reads."""
    lines = [MARKER, _heading(head_ref, head_sha, numbers), ""]
    lines += ["| environment | preview |", "|---|---|"]
    for report in reports:
        state, description = report.status()
        summary = report.planned.summary if report.planned is not None and not report.error else description
        lines.append(f"| {code(report.environment)} | {_ICONS.get(state, '⏳')} {state}: {cell(summary)} |")
    if any(r.status()[0] != "success" for r in reports):
        lines += ["", "A required `mergeway/preview/<environment>` status that is not a success keeps this group out."]
    return "\n".join(lines) + "\n"


def render_pending(head_ref: str, head_sha: str, numbers: Sequence[int], environments: Sequence[str]) -> str:
    """The comment while the group's preview runs."""
    names = ", ".join(code(n) for n in environments) or "its environments"
    return "\n".join([MARKER, _heading(head_ref, head_sha, numbers), "", f"⏳ Previewing {names}…"]) + "\n"


def render_cancelled(head_ref: str, head_sha: str, numbers: Sequence[int], reason: str) -> str:
    """The comment once the group left the queue before its preview finished."""
    why = _REASONS.get(reason, "left the queue")
    return (
        "\n".join(
            [MARKER, _heading(head_ref, head_sha, numbers), "", f"⏹️ This group {why}: its preview was cancelled."]
        )
        + "\n"
    )


def rendered_group(head_ref: str) -> str:
    """What a group's preview rendered: the queue's commit as it is (it already merges the base)."""
    return f"the merge queue's group {code(head_ref)}"


def fit(body: str, limit: int) -> str:
    return clip_body(body, limit)


def _heading(head_ref: str, head_sha: str, numbers: Sequence[int]) -> str:
    prs = ", ".join(f"#{n}" for n in numbers)
    return f"### Merge queue · {code(head_ref)} · {sha(head_sha)}\nThis group merges {prs} (in this order)."
