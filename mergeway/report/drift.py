"""The drift issue's words: one issue per (repository, environment), edited as the drift changes.

People look at issues, not at logs, so a drift check that finds something is shown as an issue
titled ``Drift in production``. It leads with one line per drifted object (what changed, who
changed it, since when), then the masked diffs in collapsible blocks (cut, longest first, to fit
the forge's size limit like previews), and ends with the two ways to fix it: ``/revert-drift``
(Git wins) and ``/adopt-drift`` (the cluster wins, through a reviewed pull request).

Everything shown comes from the cluster or the repository (object names, values, manager names),
so it goes through :mod:`mergeway.report.markdown`'s helpers; Secret values arrive masked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mergeway.drift import DriftCheck, ObjectDrift
from mergeway.report.markdown import code, fence, marker, sha

#: What the issue, and every reply on it, is found again by.
KIND = "drift"
#: Live values longer than this are cut in the summary line (the diff below shows them whole).
_VALUE_CHARS = 60
#: Fields named per object in the summary line; the rest are counted.
_FIELDS_SHOWN = 4
_FOOTER_RESERVE = 900


def issue_marker(environment: str) -> str:
    return marker(KIND, environment)


def title(environment: str) -> str:
    return f"Drift in {environment}"


def when(iso: str) -> str:
    """``2026-12-05T00:10:00Z`` → ``2026-12-05 00:10 UTC``; unknown stays unknown."""
    if not iso:
        return "unknown"
    return iso.replace("T", " ")[:16] + " UTC" if len(iso) >= 16 else iso


def _value(text: str) -> str:
    one = " ".join(text.split()) or "(absent)"
    return one if len(one) <= _VALUE_CHARS else one[: _VALUE_CHARS - 1] + "…"


def summary_line(obj: ObjectDrift) -> str:
    """One line: what, who, since when."""
    if obj.state == "deleted":
        return f"- {code(obj.ref)} was **deleted** from the cluster"
    changes = [
        f"{code(f.path)} live {code(_value(f.live))}, Git {code(_value(f.git))}" for f in obj.fields[:_FIELDS_SHOWN]
    ]
    if len(obj.fields) > _FIELDS_SHOWN:
        changes.append(f"and {len(obj.fields) - _FIELDS_SHOWN} more field(s)")
    who = ", ".join(code(m) for m in obj.managers) or "an unknown field manager"
    since = max((f.since for f in obj.fields if f.since), default="")
    return f"- {code(obj.ref)}: {'; '.join(changes) or 'changed'}, by {who} (since {when(since)})"


def adoption_note(helm: bool) -> str:
    """What ``/adopt-drift`` can do for this environment."""
    if helm:
        return (
            "This environment is rendered by Helm: which values produce the live state is not knowable from the "
            "objects, so adopting is manual. Change the chart's values so they render the live values above."
        )
    return ""


def render_issue(check: DriftCheck, *, limit: int, helm: bool = False, note: str = "") -> str:
    """The issue's body for a check that found drift; ``note`` is a line above the table (a self-heal)."""
    key = issue_marker(check.environment)
    deleted = sum(1 for o in check.objects if o.state == "deleted")
    head = [
        key,
        f"**{len(check.objects)} object(s) in `{check.environment}` differ from {sha(check.commit)}**, the commit "
        "last applied there.",
        "",
    ]
    if note:
        head += [note, ""]
    head += [summary_line(o) for o in check.objects]
    head.append("")
    footer = [
        "",
        "**To fix it** (comment on this issue; both need write access):",
        f"- `/revert-drift` re-applies {sha(check.commit)} as it is, under the environment's lock: Git's values win.",
    ]
    if helm:
        footer.append(f"- `/adopt-drift`: {adoption_note(helm)}")
    else:
        footer.append(
            "- `/adopt-drift` opens a pull request that writes the live values into the repository, so Git "
            "becomes the truth again; its preview shows no change."
            + (
                " Deleted objects are not adopted: remove them from Git in a pull request of your own."
                if deleted
                else ""
            )
        )
    footer += ["", "_This issue is edited as the drift changes and closed when it is gone._", ""]
    return _fit("\n".join(head), check.objects, "\n".join(footer), limit)


def _block(obj: ObjectDrift, diff: str, note: str = "") -> str:
    parts = [f"<details><summary>{code(obj.ref)}</summary>\n\n"]
    if diff:
        parts.append(fence(diff, "diff"))
    if note:
        parts.append(f"\n_{note}_\n")
    parts.append("</details>\n")
    return "".join(parts)


def _fit(head: str, objects: Sequence[ObjectDrift], footer: str, limit: int) -> str:
    """``head`` and ``footer`` whole; the diffs between, the longest cut first until the body fits."""
    if len(head) + len(footer) + _FOOTER_RESERVE > limit:
        keep = head[: max(0, limit - len(footer) - _FOOTER_RESERVE)]
        head = keep[: keep.rfind("\n") + 1] + "\n_The list was cut to fit the forge's size limit._\n"
        return head + footer
    budget = limit - len(head) - len(footer) - _FOOTER_RESERVE
    blocks = [_block(o, o.diff) for o in objects if o.diff]
    with_diff = [o for o in objects if o.diff]
    total = sum(len(b) for b in blocks)
    for index in sorted(range(len(blocks)), key=lambda k: len(blocks[k]), reverse=True):
        if total <= budget:
            break
        lines = with_diff[index].diff.count("\n")
        cut = _block(with_diff[index], "", f"diff of {lines} lines cut to fit the forge's size limit")
        total += len(cut) - len(blocks[index])
        blocks[index] = cut
    return head + "\n" + "".join(blocks) + footer


def closed_comment(environment: str, commit: str) -> str:
    return f"The cluster matches {sha(commit)} again in `{environment}`: no drift left. Closing."


def check_failed(environment: str, error: str) -> str:
    """A line on the open issue when a check could not compare (the drift shown may be stale)."""
    return f"_The last drift check of `{environment}` could not compare: {error}. What is shown may be out of date._"


def healed(environment: str, commit: str) -> str:
    return f"`self_heal` is on for `{environment}`: Mergeway re-applied {sha(commit)} to take this drift back."


def heal_failed(environment: str, why: str) -> str:
    return f"`self_heal` is on for `{environment}`, but re-applying the last applied commit failed: {why}"


def revert_incomplete(count: int) -> str:
    return f"{count} object(s) could not be applied; see the deploy logs of the worker"


# -- replies to the commands, as comments on the issue ---------------------------------------------------


def refused(author: str, command: str) -> str:
    return f"@{author} only users with write access to this repository can use `/{command}`. Nothing was done."


def not_drift_issue(author: str, command: str) -> str:
    return f"@{author} `/{command}` works on Mergeway's drift issue only (titled `Drift in <environment>`)."


def reverted(author: str, environment: str, commit: str, left: int) -> str:
    after = "the cluster now matches it" if not left else f"{left} object(s) still differ (see above)"
    return f"@{author} re-applied {sha(commit)} to `{environment}`: {after}."


def revert_failed(author: str, environment: str, why: str) -> str:
    return f"@{author} could not revert the drift in `{environment}`: {why}"


def nothing_applied(environment: str) -> str:
    return f"nothing was ever applied to `{environment}` by Mergeway, so there is no commit to go back to"


#: Why an object was not adopted, as the reply and the pull request say it.
_SKIPPED = {
    "deleted": "deleted by hand: remove it from Git in a pull request of your own, or `/revert-drift` to re-create it",
    "secret": "a Secret: its values are masked, so they cannot be written into the repository",
    "helm": "rendered by Helm: change the chart's values by hand so they render the live values",
    "not-found": "no file of the environment defines it as a plain object",
    "field": "the repository's file has no place for one of its drifted fields",
}


def skipped_lines(skipped: Mapping[Any, Sequence[str]]) -> list[str]:
    return [f"- Not adopted: {', '.join(code(r) for r in refs)}: {_SKIPPED[why]}." for why, refs in skipped.items()]


def adopted(author: str, url: str, count: int, skipped: Mapping[Any, Sequence[str]]) -> str:
    lines = [f"@{author} opened {url} to write the live values of {count} object(s) into the repository."]
    return "\n".join([*lines, *skipped_lines(skipped)])


def none_adopted(author: str, environment: str, skipped: Mapping[Any, Sequence[str]]) -> str:
    return "\n".join(
        [f"@{author} nothing in `{environment}` can be adopted into the repository:", *skipped_lines(skipped)]
    )


def nothing_to_adopt(author: str, environment: str) -> str:
    return f"@{author} `{environment}` matches the last applied commit: there is no drift to adopt."


def adoption_title(environment: str) -> str:
    return f"Adopt the live state of {environment}"


def adoption_commit(environment: str, count: int) -> str:
    return f"Adopt the live state of {count} object(s) in {environment}\n\nWritten by Mergeway for /adopt-drift."


def adoption_body(
    environment: str,
    commit: str,
    issue: int,
    author: str,
    refs: Sequence[str],
    skipped: Mapping[Any, Sequence[str]],
) -> str:
    lines = [
        f"@{author} asked on #{issue} to make Git say what `{environment}` runs: these objects were changed in the "
        f"cluster after {sha(commit)} was applied, and this pull request writes their live values into the "
        "repository.",
        "",
        *[f"- {code(r)}" for r in refs],
        *(["", *skipped_lines(skipped)] if skipped else []),
        "",
        "The preview below should show no change: merging it changes nothing in the cluster and ends the drift.",
    ]
    return "\n".join(lines)


def adopt_failed(author: str, environment: str, why: str) -> str:
    return f"@{author} could not adopt the drift in `{environment}`: {why}"
