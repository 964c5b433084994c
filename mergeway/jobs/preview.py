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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from mergeway.events import CommentCommand, Event, PullRequestUpdated
from mergeway.forge.base import PullRequestInfo
from mergeway.git import CheckoutError, GitError
from mergeway.jobs import waiting
from mergeway.jobs.applysets import applyset_for, legacy_applyset_for
from mergeway.jobs.context import JobContext
from mergeway.jobs.drift_notes import drift_notes
from mergeway.jobs.engine_options import options_for
from mergeway.jobs.environment import CONFIG_ENV, READ_ERRORS, EnvironmentStep, describe
from mergeway.jobs.permissions import may_run
from mergeway.jobs.prunes import PruneCheck
from mergeway.kube.applyset import ApplySet
from mergeway.kube.client import KubeClient
from mergeway.kube.diff import Differ
from mergeway.kube.discovery import Discovery
from mergeway.policy import environment_windows
from mergeway.render import Rendered
from mergeway.repoconfig import Environment, RepoConfig
from mergeway.report import preview as texts
from mergeway.report.freeze import freeze_note
from mergeway.report.planned import planned_of
from mergeway.report.preview import PreviewReport, merge_footer, on_merge
from mergeway.report.publish import Publisher

log = logging.getLogger("mergeway.jobs.preview")


@dataclass(frozen=True)
class PreviewOutcome:
    head_sha: str
    reports: tuple[PreviewReport, ...]


def run(event: Event, ctx: JobContext) -> PreviewOutcome:
    """Celery entry point (see :mod:`mergeway.jobs`): preview the pull request's current head, publish each outcome."""
    if not isinstance(event, PullRequestUpdated | CommentCommand):
        raise TypeError(f"the preview job does not handle {event.kind} events")
    forge, out = ctx.forge(event.repo), ctx.publisher(event)
    number = event.pr.number
    if isinstance(event, CommentCommand):
        out.seen(event.comment_id)
        if not may_run(forge, event, out):
            return PreviewOutcome("", ())
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
            out.preview(report)
            return PreviewOutcome(pr.head_sha, (report,))
        reports = _preview_environments(ctx, out, event, pr, root, config, rendered_from)
    return PreviewOutcome(pr.head_sha, tuple(reports))


def _preview_environments(
    ctx: JobContext,
    out: Publisher,
    event: Event,
    pr: PullRequestInfo,
    root: Path,
    config: RepoConfig,
    rendered_from: str,
) -> list[PreviewReport]:
    """Preview the environments asked for (all, or those ``/preview`` names) and report each."""
    wanted = set(event.command.args) if isinstance(event, CommentCommand) else set()
    envs = [e for e in config.environments if not wanted or e.name in wanted]
    out.preview_pending(pr.head_sha, [env.name for env in envs])
    reports = []
    links: dict[str, str] = {}
    for env in envs:
        report = _preview_environment(ctx, event, pr, env, root, rendered_from)
        report = replace(report, footer=(*report.footer, *waiting.preview_lines(ctx, event.repo, env)))
        reports.append(report)
        links[env.name] = out.preview(report)
    if len(config.environments) > 1 and links:
        out.preview_summary(pr.head_sha, reports, links, [e.name for e in config.environments])
    unknown = wanted - {e.name for e in config.environments}
    if unknown:
        known = [e.name for e in config.environments]
        out.preview_note(
            PreviewReport(CONFIG_ENV, pr.head_sha, error=texts.unknown_environments(sorted(unknown), known))
        )
    return reports


def _describe_merge(report: PreviewReport, event: Event, pr: PullRequestInfo, env: Environment) -> PreviewReport:
    """``report`` with what merging does to ``env``: the comment's footer and the summary's few words."""
    deploy_branch = env.branch or event.repo.default_branch
    footer = merge_footer(
        env=env.name,
        base_ref=pr.base_ref,
        deploy_branch=deploy_branch,
        auto_deploy=env.auto_deploy,
        path=env.path,
        namespace=env.namespace,
        applyset=applyset_for(event.repo, env).name,
    )
    words = on_merge(env=env.name, base_ref=pr.base_ref, deploy_branch=deploy_branch, auto_deploy=env.auto_deploy)
    return replace(report, footer=tuple(footer), on_merge=words[0])


def _note_freeze(
    ctx: JobContext, event: Event, pr: PullRequestInfo, env: Environment, report: PreviewReport
) -> PreviewReport:
    """``report`` with a note when merging now would wait for a freeze window (or one starts soon).

    Only where merging deploys: a merge into another branch, or with ``auto_deploy: false``, waits
    for nothing.
    """
    if not env.auto_deploy or pr.base_ref != (env.branch or event.repo.default_branch):
        return report
    windows = environment_windows(ctx.policy, f"{event.repo.forge}:{event.repo.full_name}", env)
    note = freeze_note(env.name, windows, datetime.now(UTC))
    return replace(report, notes=(*report.notes, note)) if note else report


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
        return texts.rendered_base_unreadable(pr.base_ref)
    try:
        ctx.git.git(event.repo, root, "merge-base", "--is-ancestor", base, "HEAD")
        return texts.rendered_up_to_date(pr.base_ref, base)
    except GitError as exc:
        if exc.returncode != 1:
            raise
    try:
        ctx.git.git(event.repo, root, "merge", "--no-edit", "--no-ff", "--no-verify", "-q", base)
    except GitError:
        with contextlib.suppress(GitError):  # nothing to abort when git refused to start the merge
            ctx.git.git(event.repo, root, "merge", "--abort")
        return texts.rendered_conflicting(pr.base_ref, base)
    return texts.rendered_merged(pr.base_ref, base)


def _preview_environment(
    ctx: JobContext, event: Event, pr: PullRequestInfo, env: Environment, root: Path, rendered_from: str
) -> PreviewReport:
    """Dry-run ``env`` at ``root``; every expected failure ends in the report.

    The report is built whole: what is known before the dry run (where, what merging does), then a
    new one per step that adds to it, so a failure keeps what the steps before it found.
    """
    report = PreviewReport(
        env.name, pr.head_sha, namespace=env.namespace, cluster=env.cluster, rendered_from=rendered_from
    )
    report = _describe_merge(report, event, pr, env)
    report = _note_freeze(ctx, event, pr, env, report)
    step = EnvironmentStep(ctx, event.repo, env, "preview")
    return step.run(report, lambda: _dry_run(step, pr, root, report))


def _dry_run(step: EnvironmentStep, pr: PullRequestInfo, root: Path, report: PreviewReport) -> PreviewReport:
    step.check_policy()
    if pr.is_fork and not step.ctx.settings.allow_fork_previews:
        return replace(report, skipped=texts.FORK_SKIPPED, notes=(*report.notes, texts.FORK_NOTE))
    client = step.client()
    rendered = step.render(root, client)
    # A failure from here on still says what rendered the manifests.
    report = replace(report, renderer=rendered.renderer, warnings=tuple(rendered.warnings))
    return step.run(report, lambda: _plan(step, client, rendered, report))


def _plan(step: EnvironmentStep, client: KubeClient, rendered: Rendered, report: PreviewReport) -> PreviewReport:
    """Admit the rendered objects, dry-run them and read the engine's plan once into the report."""
    discovery = Discovery(client)
    step.admit(rendered, discovery)
    env, repo = step.env, step.repo
    applyset, legacy = applyset_for(repo, env), legacy_applyset_for(repo, env)
    options, autoscaled = options_for(env, client, discovery, rendered.manifests)
    differ = Differ(client, discovery, concurrency=step.ctx.settings.dry_run_concurrency, options=options)
    prunes = PruneCheck(step.ctx.policy, repo.forge, repo.full_name, env)
    plan = prunes.split(differ.plan_for(rendered.manifests, applyset, default_namespace=env.namespace))
    return replace(
        report,
        planned=planned_of(plan),
        not_pruned=tuple(prunes.lines()),
        notes=(
            *report.notes,
            *drift_notes(step.ctx, repo, env, plan, autoscaled),
            *_migration_note(client, applyset, legacy),
        ),
    )


def _migration_note(client: KubeClient, applyset: ApplySet, legacy: ApplySet) -> list[str]:
    """Say so when merging moves the environment from its old-named ApplySet to the new one."""
    if applyset.read(client) is not None or legacy.read(client) is None:
        return []
    return [texts.migration_note(legacy.name, applyset.name)]
