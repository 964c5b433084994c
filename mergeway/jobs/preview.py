"""The preview job: render a pull request, dry-run it against each environment's cluster, report.

Flow per run: ask the forge for the pull request's *current* head (a job for an older push must
not overwrite a newer preview), check it out, read ``.mergeway.yaml``, then for each environment:
policy → render → server-side dry run → one sticky comment and one commit status. Every failure
along the way ends up on the pull request in words the author can act on; nothing is swallowed.
The job is idempotent: re-running it edits the same comments and sets the same statuses.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from mergeway.events import CommentCommand, Event, PullRequestUpdated
from mergeway.forge.base import PullRequestInfo
from mergeway.git import CheckoutError, GitError
from mergeway.jobs.applysets import applyset_for, legacy_applyset_for
from mergeway.jobs.context import JobContext, default_context
from mergeway.jobs.environment import CONFIG_ENV, READ_ERRORS, EnvironmentStep, describe
from mergeway.jobs.permissions import may_run
from mergeway.jobs.prunes import PruneCheck
from mergeway.kube.applyset import ApplySet
from mergeway.kube.client import KubeClient
from mergeway.kube.diff import Differ
from mergeway.kube.discovery import Discovery
from mergeway.repoconfig import Environment, RepoConfig
from mergeway.report.markdown import marker, status_name
from mergeway.report.preview import (
    PreviewReport,
    merge_footer,
    on_merge,
    render_preview,
    render_summary,
    summary_rows,
)

log = logging.getLogger("mergeway.jobs.preview")


@dataclass
class PreviewOutcome:
    head_sha: str
    reports: list[PreviewReport]


def run(event: Event) -> None:
    """Celery entry point (see :mod:`mergeway.jobs`)."""
    preview(event, default_context())


def preview(event: Event, ctx: JobContext) -> PreviewOutcome:
    if not isinstance(event, PullRequestUpdated | CommentCommand):
        raise TypeError(f"the preview job does not handle {event.kind} events")
    forge = ctx.forge(event.repo)
    number = event.pr.number
    if isinstance(event, CommentCommand):
        forge.add_reaction(number, event.comment_id, "eyes")
        if not may_run(forge, event, lock=ctx.comment_lock(event)):
            return PreviewOutcome("", [])
    pr = forge.get_pull_request(number)
    if isinstance(event, PullRequestUpdated) and pr.head_sha != event.pr.head_sha:
        log.info("previewing %s, the current head, instead of %s", pr.head_sha[:12], event.pr.head_sha[:12])
    with contextlib.ExitStack() as stack:
        try:
            root = stack.enter_context(ctx.checkout(event.repo, pr.head_sha, number))
            rendered_from = _merge_base_into(ctx, event, pr, root)
            config = ctx.load_repo_config(root)
        except READ_ERRORS as exc:
            report = PreviewReport(CONFIG_ENV, pr.head_sha, error=describe(exc, "preview"))
            _publish(ctx, event, pr, report, status=status_name("preview", CONFIG_ENV))
            return PreviewOutcome(pr.head_sha, [report])
        reports = _preview_environments(ctx, event, pr, root, config, rendered_from)
    return PreviewOutcome(pr.head_sha, reports)


def _preview_environments(
    ctx: JobContext, event: Event, pr: PullRequestInfo, root: Path, config: RepoConfig, rendered_from: str
) -> list[PreviewReport]:
    """Preview the environments asked for (all, or those ``/preview`` names) and report each."""
    wanted = set(event.command.args) if isinstance(event, CommentCommand) else set()
    envs = [e for e in config.environments if not wanted or e.name in wanted]
    for env in envs:
        ctx.forge(event.repo).set_status(
            pr.head_sha, "pending", status_name("preview", env.name), "Previewing…", ctx.target_url(event)
        )
    reports = []
    links: dict[str, str] = {}
    for env in envs:
        report = _preview_environment(ctx, event, pr, env, root)
        _describe_merge(report, event, pr, env)
        report.rendered_from = rendered_from
        reports.append(report)
        links[env.name] = _publish(ctx, event, pr, report, status=status_name("preview", env.name))
    if len(config.environments) > 1 and links:
        _publish_summary(ctx, event, pr, reports, links, [e.name for e in config.environments])
    unknown = wanted - {e.name for e in config.environments}
    if unknown:
        _publish_unknown(ctx, event, pr, config, unknown)
    return reports


def _describe_merge(report: PreviewReport, event: Event, pr: PullRequestInfo, env: Environment) -> None:
    """What merging does to ``env``: the comment's footer and the summary's few words."""
    deploy_branch = env.branch or event.repo.default_branch
    report.footer = merge_footer(
        env=env.name,
        base_ref=pr.base_ref,
        deploy_branch=deploy_branch,
        auto_deploy=env.auto_deploy,
        path=env.path,
        namespace=env.namespace,
        applyset=applyset_for(event.repo, env).name,
    )
    report.on_merge = on_merge(
        env=env.name, base_ref=pr.base_ref, deploy_branch=deploy_branch, auto_deploy=env.auto_deploy
    )[0]


def _publish_unknown(ctx: JobContext, event: Event, pr: PullRequestInfo, config: RepoConfig, unknown: set[str]) -> None:
    """Tell the author which names ``/preview`` was given that the repository does not configure."""
    forge = ctx.forge(event.repo)
    note = PreviewReport(
        CONFIG_ENV,
        pr.head_sha,
        error=f"/preview named unknown environment(s): {', '.join(sorted(unknown))}; "
        f"this repository has: {', '.join(e.name for e in config.environments)}",
    )
    forge.upsert_comment(
        pr.number,
        marker("preview", CONFIG_ENV),
        render_preview(note, limit=forge.comment_limit),
        lock=ctx.comment_lock(event),
    )


def _merge_base_into(ctx: JobContext, event: Event, pr: PullRequestInfo, root: Path) -> str:
    """Make ``root`` what merging deploys: the PR head merged with its base's current head.

    A preview of the bare head would show changes already deployed from the base (which moved on
    after the PR branched) as reverts. A local merge works the same on every forge; when it
    conflicts, the head is previewed and the heading says so.
    """
    try:
        base = ctx.git.branch_head(event.repo, pr.base_ref)
    except (GitError, CheckoutError) as exc:
        log.warning("previewing the head of #%s: its base could not be read: %s", pr.number, exc)
        return f"this pull request's head only: ⚠️ its base `{pr.base_ref}` could not be read"
    base_md = f"`{pr.base_ref}` ({base})"
    try:
        ctx.git.git(event.repo, root, "merge-base", "--is-ancestor", base, "HEAD")
        return f"this pull request's head, up to date with {base_md}"
    except GitError as exc:
        if exc.returncode != 1:
            raise
    try:
        ctx.git.git(event.repo, root, "merge", "--no-edit", "--no-ff", "--no-verify", "-q", base)
    except GitError:
        with contextlib.suppress(GitError):  # nothing to abort when git refused to start the merge
            ctx.git.git(event.repo, root, "merge", "--abort")
        return (
            f"this pull request's head only: ⚠️ it conflicts with {base_md}, so this is not what merging "
            "would deploy; resolve the conflicts to see that"
        )
    return f"the merge of this pull request into {base_md}, which is what merging deploys"


def _preview_environment(
    ctx: JobContext, event: Event, pr: PullRequestInfo, env: Environment, root: Path
) -> PreviewReport:
    """Dry-run ``env`` at ``root``; every expected failure ends in the report."""
    report = PreviewReport(env.name, pr.head_sha, namespace=env.namespace, cluster=env.cluster)
    step = EnvironmentStep(ctx, event.repo, env, "preview")
    return step.run(report, lambda: _dry_run(step, pr, root, report))


def _dry_run(step: EnvironmentStep, pr: PullRequestInfo, root: Path, report: PreviewReport) -> PreviewReport:
    step.check_policy()
    if pr.is_fork and not step.ctx.settings.allow_fork_previews:
        report.skipped = "pull requests from forks are not dry-run (MERGEWAY_ALLOW_FORK_PREVIEWS)"
        report.notes.append(
            "This pull request comes from a fork, so it was not dry-run against the cluster: its manifests "
            "are untrusted. An operator can allow fork previews with MERGEWAY_ALLOW_FORK_PREVIEWS=true."
        )
        return report
    client = step.client()
    rendered = step.render(root, client)
    report.renderer, report.warnings = rendered.renderer, rendered.warnings
    discovery = Discovery(client)
    step.admit(rendered, discovery)
    env, repo = step.env, step.repo
    applyset, legacy = applyset_for(repo, env), legacy_applyset_for(repo, env)
    differ = Differ(client, discovery, concurrency=step.ctx.settings.dry_run_concurrency)
    prunes = PruneCheck(step.ctx.policy, repo.forge, repo.full_name, env)
    report.plan = prunes.split(differ.plan_for(rendered.manifests, applyset, default_namespace=env.namespace))
    report.not_pruned = prunes.lines()
    report.notes.extend(_migration_note(client, applyset, legacy))
    return report


def _migration_note(client: KubeClient, applyset: ApplySet, legacy: ApplySet) -> list[str]:
    """Say so when merging moves the environment from its old-named ApplySet to the new one."""
    if applyset.read(client) is not None or legacy.read(client) is None:
        return []
    return [
        f"This environment was deployed under the ApplySet `{legacy.name}`, whose name other repositories "
        f"may share; merging moves its objects to `{applyset.name}` (hence the label changes). Objects of the "
        "old set that are no longer in Git are not pruned: remove them by hand."
    ]


def _publish(ctx: JobContext, event: Event, pr: PullRequestInfo, report: PreviewReport, *, status: str) -> str:
    """Write the comment and the status (linking to the comment); returns the comment's URL."""
    forge = ctx.forge(event.repo)
    current = forge.get_pull_request(pr.number).head_sha
    if current != pr.head_sha:
        # A newer push arrived while we worked; its own job reports. Never overwrite newer with older.
        log.info("preview of %s superseded by %s; not reporting", pr.head_sha[:12], current[:12])
        return ""
    body = render_preview(report, limit=forge.comment_limit)
    ref = forge.upsert_comment(pr.number, marker("preview", report.environment), body, lock=ctx.comment_lock(event))
    state, description = report.status()
    forge.set_status(pr.head_sha, state, status, description, ref.url or ctx.target_url(event))
    return ref.url


def _publish_summary(
    ctx: JobContext,
    event: Event,
    pr: PullRequestInfo,
    reports: list[PreviewReport],
    links: dict[str, str],
    order: list[str],
) -> None:
    """One comment that says, per environment, what this pull request does there.

    When only some environments were previewed (``/preview staging``), the others keep their rows
    from the summary already there for this commit. Read and rewritten under the pull request's
    comment lock, so a concurrent preview cannot drop the rows this one keeps.
    """
    forge = ctx.forge(event.repo)
    if forge.get_pull_request(pr.number).head_sha != pr.head_sha:
        return
    summary = marker("summary", "preview")
    lock = ctx.comment_lock(event)
    with lock() if lock is not None else contextlib.nullcontext():
        kept: dict[str, str] = {}
        previewed = {r.environment for r in reports}
        if set(order) - previewed:
            for comment in forge.marked(pr.number, summary)[:1]:
                rows = summary_rows(comment.body, pr.head_sha)
                kept = {name: row for name, row in rows.items() if name in order and name not in previewed}
        body = render_summary(reports, links, limit=forge.comment_limit, order=order, kept=kept)
        forge.upsert_comment(pr.number, summary, body)
