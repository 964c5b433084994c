"""Render a preview as the one sticky PR comment per environment.

The layout is fixed so reviewers learn it once: a heading with the environment and head SHA, a
summary line, a table of changed objects, one collapsible diff per object, and the API server's
message for every object that failed. Forges cap comment size (65,536 characters on GitHub), so the
summary and table are always kept and object diffs are cut, longest first, with a note saying what
was cut -- a truncated comment that hides *which* objects change would be worse than none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mergeway.report.markdown import ALLOW_LABEL, clip_body, code, sha
from mergeway.report.markdown import cell as _cell
from mergeway.report.markdown import clip as _clip
from mergeway.report.markdown import fence as _fence
from mergeway.report.markdown import marker as marker
from mergeway.report.notpruned import not_pruned, not_pruned_block
from mergeway.report.planned import NOTHING_PLANNED, Planned, PlannedObject
from mergeway.report.risk import ICONS, Risk

if TYPE_CHECKING:  # the forge package pulls in both client libraries; reports need only the type
    from mergeway.forge.base import StatusState

_ICONS = {"create": "➕ add", "update": "✏️ change", "delete": "🗑️ prune", "error": "❌ failed", "unchanged": "unchanged"}
_ORDER = {"error": 0, "create": 1, "update": 2, "delete": 3, "unchanged": 4}
_MAX_MESSAGE = 2_000
_MAX_CHANGES = 6


@dataclass(frozen=True)
class PreviewReport:
    """The outcome of one environment's preview, as the publisher shows it.

    Immutable and plain: the preview job reads the engine's plan once into :attr:`planned`
    (:func:`mergeway.report.planned.planned_of`) and builds the report whole (or with
    :func:`dataclasses.replace`), so a report already published can never change and holds no
    engine object (no desired object, no Secret data).
    """

    environment: str
    head_sha: str
    #: What the dry run found; ``None`` when nothing was dry-run.
    planned: Planned | None = None
    #: Set when the environment could not be previewed at all (config, policy, render, cluster).
    error: str = ""
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    renderer: str = ""
    namespace: str = ""
    cluster: str = ""
    #: Deliberately not previewed (a fork PR): the status says so instead of claiming success.
    skipped: str = ""
    #: What merging does and how to reproduce this preview (see :func:`merge_footer`).
    footer: tuple[str, ...] = ()
    #: What merging does here, in a few words, for the summary comment ("deploys", "not deployed: …").
    on_merge: str = ""
    #: Shown in the heading: what was rendered ("the merge into `main`", or the head on conflict).
    rendered_from: str = ""
    #: ``object: why`` for each deletion the policy refuses (not in ``planned``): merging leaves them.
    not_pruned: tuple[str, ...] = ()

    def risks(self) -> list[Risk]:
        return list(self.planned.risks) if self.planned is not None and not self.error else []

    @property
    def failed(self) -> bool:
        return bool(self.error) or bool(self.planned and self.planned.failed)

    def status(self) -> tuple[StatusState, str]:
        """(state, description) for the commit status; the description stays under 140 chars."""
        if self.error:
            return "failure", _clip(f"Preview failed: {self.error}", 139)
        if self.skipped:
            return "error", _clip(f"Not previewed: {self.skipped}", 139)
        if self.planned is None:
            return "success", _clip(self.notes[0] if self.notes else "Nothing to preview", 139)
        if self.planned.failed:
            return "failure", _clip(
                f"{self.planned.failed} object(s) rejected by the API server; {self.planned.summary}", 139
            )
        return "success", _clip(self.planned.summary + not_pruned(list(self.not_pruned)), 139)


def _details(item: PlannedObject, diff: str, note: str = "") -> str:
    summary = f"{_ICONS[item.action]} <code>{_cell(item.ref)}</code>"
    parts = [f"<details><summary>{summary}</summary>\n\n"]
    if item.message:
        parts.append(f"{_cell(item.message)}\n\n")
    if diff:
        parts.append(_fence(diff, "diff"))
    if item.defaults and diff:
        parts.append(
            f"\n{item.defaults} field(s) defaulted by the API server are not shown above.\n\n"
            "<details><summary>The whole object as the API server would store it</summary>\n\n"
            + _fence(item.full_diff, "diff")
            + "</details>\n"
        )
    if note:
        parts.append(f"\n_{note}_\n")
    parts.append("</details>\n")
    return "".join(parts)


def render_preview(report: PreviewReport, *, limit: int, title: str = "Mergeway preview") -> str:
    """The comment body, never longer than ``limit`` characters."""
    head = [
        marker("preview", report.environment),
        f"### {title} · `{report.environment}` · {sha(report.head_sha)}",
        "",
    ]
    if report.rendered_from:
        head += [f"Rendered from {report.rendered_from}.", ""]
    where = ", ".join(
        x
        for x in (
            f"cluster `{report.cluster}`" if report.cluster else "",
            f"namespace `{report.namespace}`" if report.namespace else "",
            f"rendered with {report.renderer}" if report.renderer not in ("", "none") else "",
        )
        if x
    )
    if where:
        head += [where, ""]
    for note in report.notes:
        head += [f"> {note}", ""]
    if report.error:
        head += ["**Preview failed.**", "", _fence(report.error[: _MAX_MESSAGE * 4])]
        return _fit("\n".join(head), [], limit)
    if report.skipped:  # the notes above say why; a summary of an empty plan would claim "no changes"
        return _fit("\n".join(head), [], limit)
    planned = report.planned or NOTHING_PLANNED
    head += [f"**{planned.summary}**", ""]
    for warning in report.warnings:
        head.append(f"> ⚠️ {_cell(warning)}")
    if report.warnings:
        head.append("")
    # Stable on the plan's identity order: by action, then by object.
    items = sorted((i for i in planned.objects if i.action != "unchanged"), key=lambda i: _ORDER[i.action])
    head += risk_block(report.risks(), report.environment, report.head_sha)
    head += not_pruned_block(list(report.not_pruned), "Merging leaves them")
    head += list(planned.hooks)
    if items:
        head += ["| | object | changed fields | source |", "|---|---|---|---|"]
        head += [f"| {_ICONS[i.action]} | `{_cell(i.ref)}` | {changes_cell(i)} | {_cell(i.source)} |" for i in items]
        head.append("")
    errors = [i for i in items if i.action == "error"]
    if errors:
        head += ["#### Rejected by the API server", ""]
        for item in errors:
            head += [f"**`{_cell(item.ref)}`** ({_cell(item.source)})", "", _fence(item.message[:_MAX_MESSAGE])]
    if not items and not report.not_pruned and not planned.hooks:
        head += ["No changes: the cluster already matches this commit.", ""]
    head += report.footer
    blocks = [(i, i.diff) for i in items if i.action != "error"]
    return _fit("\n".join(head), blocks, limit)


def risk_block(found: list[Risk], env: str, head_sha: str) -> list[str]:
    """The risky changes, above the table: what deletes data, recreates, restarts or scales."""
    if not found:
        return []
    lines = ["#### ⚠️ Look at these first", ""]
    lines += [f"- {ICONS[r.kind]} **{r.verb}** `{_cell(str(r.ref))}`: {_cell(r.why)}" for r in found]
    if any(r.destructive for r in found):
        icons = "/".join(ICONS[k] for k in ("destroy", "delete", "recreate"))
        lines += [
            "",
            f"🛑 Merging holds the {icons} changes back unless someone with write access other than the author "
            f"reviews this commit and comments `/allow-destructive {env} {head_sha[:12]}` (a later push needs a new "
            f"one), or labels this pull request `{ALLOW_LABEL}`.",
        ]
    return [*lines, ""]


def changes_cell(item: PlannedObject) -> str:
    """Changed field paths with old→new for small values; for a new object, what Git set."""
    if item.action == "create":
        return f"new: {item.fields - item.defaults} field(s) from Git, {item.defaults} server default(s)"
    if item.action != "update":
        return ""
    found = item.changes
    shown = [code(c) for c in found[:_MAX_CHANGES]]
    if len(found) > _MAX_CHANGES:
        shown.append(f"and {len(found) - _MAX_CHANGES} more")
    return "<br>".join(shown)


def _fit(head: str, blocks: list[tuple[PlannedObject, str]], limit: int) -> str:
    """Keep ``head`` whole; add diffs, cutting the longest first until the body fits ``limit``."""
    footer_reserve = 400
    if len(head) + footer_reserve > limit:  # pathological: thousands of objects; cut the table itself
        keep = head[: max(0, limit - footer_reserve)]
        keep = keep[: keep.rfind("\n") + 1]
        return keep + "\n_The table was cut to fit the forge's comment size limit._\n"
    budget = limit - len(head) - footer_reserve
    rendered = [_details(item, diff) for item, diff in blocks]
    cut: dict[int, str] = {}
    total = sum(len(r) for r in rendered)
    for index in sorted(range(len(rendered)), key=lambda k: len(rendered[k]), reverse=True):
        if total <= budget:
            break
        item, diff = blocks[index]
        lines = diff.count("\n")
        placeholder = _details(item, "", f"diff of {lines} lines cut to fit the comment size limit")
        room = len(rendered[index]) - (total - budget)
        keep_chars = room - len(placeholder) - 200
        if keep_chars > 500:  # keep the start of the diff when a useful part fits
            partial = diff[:keep_chars]
            partial = partial[: partial.rfind("\n") + 1]
            placeholder = _details(
                item, partial, f"diff cut after {partial.count(chr(10))} of {lines} lines to fit the comment size limit"
            )
        total += len(placeholder) - len(rendered[index])
        rendered[index] = placeholder
        cut[index] = item.ref
    body = head + "\n" + "".join(rendered)
    if cut:
        names = ", ".join(f"`{cut[k]}`" for k in sorted(cut))
        note = f"\n_{len(cut)} diff(s) were cut to fit the comment size limit: {names}_\n"
        if len(body) + len(note) > limit:
            note = f"\n_{len(cut)} diff(s) were cut to fit the comment size limit._\n"
        body += note
    return body[:limit]


def on_merge(*, env: str, base_ref: str, deploy_branch: str, auto_deploy: bool) -> tuple[str, str]:
    """(a few words, a sentence) saying whether merging into ``base_ref`` deploys ``env``."""
    if not auto_deploy:
        return "not deployed: `auto_deploy` off", f"Not deployed on merge: `auto_deploy` is off for `{env}`."
    if deploy_branch != base_ref:
        return (
            f"not deployed: deploys from `{deploy_branch}`",
            f"Not deployed on merge into `{base_ref}`: `{env}` deploys from `{deploy_branch}`.",
        )
    return "deploys", f"On merge into `{base_ref}`: applies to `{env}`, then waits for the rollout."


def merge_footer(
    *, env: str, base_ref: str, deploy_branch: str, auto_deploy: bool, path: str, namespace: str, applyset: str
) -> list[str]:
    """What merging this pull request does to ``env``, and how to see this preview again."""
    what = on_merge(env=env, base_ref=base_ref, deploy_branch=deploy_branch, auto_deploy=auto_deploy)[1]
    local = f"mergeway preview {path} --applyset {applyset}" + (f" -n {namespace}" if namespace else "")
    return [
        "---",
        f"**{what}**",
        "",
        f"Comment `/preview {env}` to run this again; locally: {code(local)}",
        "",
    ]


def summary_heading(head_sha: str) -> str:
    return f"### Mergeway preview summary · {sha(head_sha)}"


def summary_rows(body: str, head_sha: str) -> dict[str, str]:
    """The rows, by environment, of a summary :func:`render_summary` wrote for ``head_sha``.

    ``/preview staging`` previews one environment: the summary keeps the other environments' rows
    from the run that previewed them, as long as that run was for the same commit. A summary of an
    older commit gives nothing (its rows say nothing true about this one).
    """
    if summary_heading(head_sha) not in body.splitlines():
        return {}
    rows = {}
    for line in body.splitlines():
        found = re.match(r"^\| \[?`([^`]+)`", line)
        if found:
            rows[found.group(1)] = line
    return rows


def render_summary(
    reports: list[PreviewReport],
    links: dict[str, str],
    *,
    limit: int,
    order: Sequence[str] = (),
    kept: Mapping[str, str] | None = None,
) -> str:
    """The one comment for a pull request with several environments: a line each, linked.

    ``kept`` holds earlier rows (see :func:`summary_rows`) of environments not in ``reports``;
    rows are listed in ``order`` (the configuration's), then any others.
    """
    lines = [marker("summary", "preview"), summary_heading(reports[0].head_sha), ""]
    lines += ["| environment | preview | changes | risks | on merge |", "|---|---|---|---|---|"]
    rows = dict(kept or {})
    for report in reports:
        state, description = report.status()
        icon = {"success": "✅", "failure": "❌", "error": "⚠️"}.get(state, "⏳")
        name = f"`{report.environment}`"
        if links.get(report.environment):
            name = f"[{name}]({links[report.environment]})"
        found = report.risks()
        risky = " ".join(f"{ICONS[r.kind]} {r.verb} `{_cell(r.ref.name)}`" for r in found[:4])
        if len(found) > 4:
            risky += f" and {len(found) - 4} more"
        summary = report.planned.summary if report.planned is not None and not report.error else description
        rows[report.environment] = f"| {name} | {icon} {state} | {_cell(summary)} | {risky} | {report.on_merge} |"
    names = [n for n in order if n in rows] + [n for n in rows if n not in order]
    lines += [rows[n] for n in names]
    return clip_body("\n".join(lines) + "\n", limit)


# -- what the preview job tells in its own words ------------------------------------------------------


def rendered_base_unreadable(base_ref: str) -> str:
    return f"this pull request's head only: ⚠️ its base `{base_ref}` could not be read"


def rendered_up_to_date(base_ref: str, base: str) -> str:
    return f"this pull request's head, up to date with `{base_ref}` ({base})"


def rendered_conflicting(base_ref: str, base: str) -> str:
    return (
        f"this pull request's head only: ⚠️ it conflicts with `{base_ref}` ({base}), so this is not what merging "
        "would deploy; resolve the conflicts to see that"
    )


def rendered_merged(base_ref: str, base: str) -> str:
    return f"the merge of this pull request into `{base_ref}` ({base}), which is what merging deploys"


FORK_SKIPPED = "pull requests from forks are not dry-run (MERGEWAY_ALLOW_FORK_PREVIEWS)"
FORK_NOTE = (
    "This pull request comes from a fork, so it was not dry-run against the cluster: its manifests "
    "are untrusted. An operator can allow fork previews with MERGEWAY_ALLOW_FORK_PREVIEWS=true."
)


def migration_note(legacy: str, applyset: str) -> str:
    """Merging moves the environment from its old-named ApplySet to the new one."""
    return (
        f"This environment was deployed under the ApplySet `{legacy}`, whose name other repositories "
        f"may share; merging moves its objects to `{applyset}` (hence the label changes). Objects of the "
        "old set that are no longer in Git are not pruned: remove them by hand."
    )


def unknown_environments(unknown: list[str], known: list[str]) -> str:
    """``/preview`` named environments the repository does not configure."""
    return (
        f"/preview named unknown environment(s): {', '.join(sorted(unknown))}; this repository has: {', '.join(known)}"
    )
