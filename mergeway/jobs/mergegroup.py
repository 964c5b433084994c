"""Merge queue groups: preview what the queue would merge, and stop when the group leaves the queue.

GitHub's merge queue builds a temporary branch (``gh-readonly-queue/<base>/pr-<n>-<sha>``) holding
the base branch plus every queued pull request up to ``n``, and waits for the repository's required
checks on its head commit. :func:`run` previews that commit exactly as a pull request's head is
previewed (policy, confined render, server-side dry run, the fork rule) and reports
``mergeway/preview/<env>`` statuses on it, so the same required check gates the queue. It does not
merge the base in (the group already is the merge) and does not deploy: deploys follow the merges
the queue then makes, one per pull request, newest wins (:mod:`mergeway.jobs.deploy`).

Which pull requests are in the group: the group has no pull request, so the job reads the first-parent
commits between the base branch's head and ``head_sha`` (every entry ahead of this one included).
The queue adds one commit per pull request (a merge commit "Merge pull request #N from …" or a
squash "Title (#N)"); each number is checked with the forge (an open pull request into the same
base). The group is trusted only when *every* commit is accounted for that way and none of its pull
requests comes from a fork; otherwise it is treated like a fork's pull request (not dry-run unless
the operator allows fork previews), since content nobody can attribute is no more trusted than a
fork's.

Cancelling (:func:`cancel`, the ``destroyed`` delivery): a mark in Redis per (repository, head SHA),
read by the preview job before it starts (the queued job is skipped), before each environment and
before each status (what remains gets an ``error`` status saying the group left the queue). Celery
tasks are not revoked: the mark works whichever worker holds the job, and a dry run already in
flight finishes but is not reported.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from mergeway.events import Event, MergeGroup
from mergeway.forge.base import Forge, PullRequestInfo
from mergeway.forge.errors import ForgeError
from mergeway.git import CheckoutError, GitError
from mergeway.jobs.context import JobContext
from mergeway.jobs.environment import CONFIG_ENV, READ_ERRORS, describe
from mergeway.jobs.preview import _preview_environment
from mergeway.mergegroups import queued_numbers
from mergeway.repoconfig import Environment
from mergeway.report import mergegroup as texts
from mergeway.report.preview import PreviewReport
from mergeway.report.publish import Publisher

log = logging.getLogger("mergeway.jobs.mergegroup")

#: How long a group's marks live: longer than any queue keeps a group waiting on its checks.
MARK_SECONDS = 24 * 3600


@dataclass(frozen=True)
class GroupOutcome:
    """What the job did: the pull requests it found, its reports, and why it stopped early (``""``: it did not)."""

    head_sha: str
    numbers: tuple[int, ...] = ()
    reports: tuple[PreviewReport, ...] = ()
    cancelled: str = ""


def run(event: Event, ctx: JobContext) -> GroupOutcome:
    """Celery entry point for ``checks_requested``: preview the group's head for every environment."""
    if not isinstance(event, MergeGroup) or event.action != "checks_requested":
        raise TypeError(f"the merge_group job does not handle {event.kind} events")
    reason = _cancelled(ctx, event)
    if reason is not None:
        log.info("merge group %s left the queue (%s) before its preview started: skipped", event.head_sha[:12], reason)
        return GroupOutcome(event.head_sha, cancelled=reason)
    forge, out = ctx.forge(event.repo), ctx.publisher(event)
    numbers: list[int] = []
    try:
        with ctx.checkout(event.repo, event.head_sha, None) as root:
            numbers, trusted = _queued_pulls(ctx, forge, event, root)
            _remember(ctx, event, numbers, done=False)
            config = ctx.load_repo_config(root)
            reports, reason = _preview(ctx, out, event, root, config.environments, trusted, numbers)
    except READ_ERRORS as exc:
        reports, reason = (PreviewReport(CONFIG_ENV, event.head_sha, error=describe(exc, "preview")),), None
        out.merge_group_status(reports[0])
        out.merge_group_comment(numbers, texts.render_summary(event.head_ref, event.head_sha, numbers, reports))
    _remember(ctx, event, numbers, done=True)
    return GroupOutcome(event.head_sha, tuple(numbers), reports, reason or "")


def _preview(
    ctx: JobContext,
    out: Publisher,
    event: MergeGroup,
    root: Path,
    environments: Sequence[Environment],
    trusted: bool,
    numbers: list[int],
) -> tuple[tuple[PreviewReport, ...], str | None]:
    """Preview and report each environment; stop when the group leaves the queue (the reports, and why)."""
    names = [env.name for env in environments]
    out.merge_group_pending(event.head_sha, names)
    out.merge_group_comment(numbers, texts.render_pending(event.head_ref, event.head_sha, numbers, names))
    # The group as the preview step sees a pull request: its head, its base, and whether it is a fork's.
    group = PullRequestInfo(
        number=numbers[-1] if numbers else 0,
        title="",
        url="",
        author="",
        state="open",
        base_ref=event.base_ref,
        head_ref=event.head_ref,
        head_sha=event.head_sha,
        is_fork=not trusted,
    )
    rendered = texts.rendered_group(event.head_ref)
    reports: list[PreviewReport] = []
    for index, env in enumerate(environments):
        report = (
            None if _cancelled(ctx, event) is not None else _preview_environment(ctx, event, group, env, root, rendered)
        )
        reason = _cancelled(ctx, event)  # read again: the group may have left during this dry run
        if report is None or reason is not None:
            reason = reason or "unknown"
            log.info("merge group %s left the queue (%s): preview stopped", event.head_sha[:12], reason)
            out.merge_group_cancelled(event.head_sha, names[index:], reason)
            out.merge_group_comment(numbers, texts.render_cancelled(event.head_ref, event.head_sha, numbers, reason))
            return tuple(reports), reason
        reports.append(report)
        out.merge_group_status(report)
    out.merge_group_comment(numbers, texts.render_summary(event.head_ref, event.head_sha, numbers, reports))
    return tuple(reports), None


def cancel(event: Event, ctx: JobContext) -> None:
    """Celery entry point for ``destroyed``: mark the group, and say so where its preview is unfinished."""
    if not isinstance(event, MergeGroup) or event.action != "destroyed":
        raise TypeError(f"the merge_group_cancel job does not handle {event.kind} events")
    client = _redis(ctx)
    reason = event.reason or "unknown"
    client.set(_key("cancelled", event), reason, ex=MARK_SECONDS)
    log.info("merge group %s left the queue: %s", event.head_sha[:12], reason)
    raw = client.get(_key("group", event))
    if raw is None or reason == "merged":
        return  # not started (the job will skip it), or done and merged: nothing to correct
    seen = json.loads(raw)
    if not seen.get("done"):
        numbers = [int(n) for n in seen.get("numbers", [])]
        ctx.publisher(event).merge_group_comment(
            numbers, texts.render_cancelled(event.head_ref, event.head_sha, numbers, reason)
        )


def _queued_pulls(ctx: JobContext, forge: Forge, event: MergeGroup, root: Path) -> tuple[list[int], bool]:
    """The group's pull requests (checked with the forge) and whether its whole content is trusted."""
    subjects: list[str] = []
    since = _base_head(ctx, event) or event.base_sha
    if since:
        spec = f"{since}..{event.head_sha}"
        listed = ctx.git.git(event.repo, root, "log", "--first-parent", "--reverse", "--format=%s", spec)
        subjects = [line for line in listed.stdout.splitlines() if line.strip()]
    claimed, every = queued_numbers(subjects, event.head_ref)
    numbers: list[int] = []
    trusted = every
    for number in claimed:
        try:
            pr = forge.get_pull_request(number)
        except ForgeError as exc:
            log.warning("merge group %s names #%d, which the forge does not show: %s", event.head_sha[:12], number, exc)
            trusted = False
            continue
        if pr.state != "open" or pr.base_ref != event.base_ref:
            log.warning(
                "merge group %s names #%d, not an open pull request into %s",
                event.head_sha[:12],
                number,
                event.base_ref,
            )
            trusted = False
            continue
        numbers.append(number)
        trusted = trusted and not pr.is_fork
    return numbers, trusted


def _base_head(ctx: JobContext, event: MergeGroup) -> str:
    """The base branch's head now: everything between it and the group is queued content.

    Not ``base_sha``, which is the group's parent: for the second entry of a queue that is the
    first entry's group, whose pull requests are as much a part of this group.
    """
    try:
        return ctx.git.branch_head(event.repo, event.base_ref)
    except (GitError, CheckoutError) as exc:
        log.warning("merge group %s: its base %s could not be read: %s", event.head_sha[:12], event.base_ref, exc)
        return ""


def _cancelled(ctx: JobContext, event: MergeGroup) -> str | None:
    """The reason the group left the queue, or ``None`` while it is still in it."""
    raw = _redis(ctx).get(_key("cancelled", event))
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _remember(ctx: JobContext, event: MergeGroup, numbers: list[int], *, done: bool) -> None:
    """What :func:`cancel` needs to correct the comments: the group's pull requests, and whether it finished."""
    _redis(ctx).set(_key("group", event), json.dumps({"numbers": numbers, "done": done}), ex=MARK_SECONDS)


def _redis(ctx: JobContext) -> redis.Redis:
    if ctx.redis is None:
        raise RuntimeError("merge queue groups need Redis for their cancel marks")
    return ctx.redis


def _key(what: str, event: MergeGroup) -> str:
    return f"mergeway:merge-group:{what}:{event.repo.forge}:{event.repo.full_name}:{event.head_sha}"
