"""The deploy job: on merge, put each environment in exactly the state of the target branch.

Three rules make piled-up merges safe:

* One deploy per (cluster, environment) at a time, by a Redis lock that expires quickly if its
  worker dies, so a redelivered job is not blocked for long.
* Under the lock, deploy the *current head* of the target branch, not the SHA in the event: when
  merges pile up, the newest wins, and older jobs report that they were superseded.
* Never apply a commit older than the one applied. The applied commit is recorded on the
  environment's ApplySet parent in the cluster itself (so it survives Redis being flushed), and git
  ancestry decides what is older.

Re-running a deploy is harmless: server-side apply of an unchanged commit changes nothing, and the
same comment and status are written again. That is what makes Celery's redelivery after a killed
worker safe.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from mergeway.events import CommentCommand, Event, PullRequestMerged, Repository
from mergeway.forge.base import Forge, PullRequestInfo
from mergeway.git import GitError
from mergeway.jobs import allowance
from mergeway.jobs.applysets import applyset_for, legacy_applyset_for
from mergeway.jobs.context import JobContext, default_context
from mergeway.jobs.environment import CONFIG_ENV, READ_ERRORS, EnvironmentStep, Refused, describe
from mergeway.jobs.locks import LockUnavailable
from mergeway.jobs.prunes import PruneCheck
from mergeway.jobs.record import Recorder
from mergeway.kube.apply import Applier, DeployResult
from mergeway.kube.applyset import ApplySet, Parent
from mergeway.kube.changeset import ObjectRef, Plan
from mergeway.kube.client import KubeClient
from mergeway.kube.discovery import Discovery
from mergeway.kube.prune import retire_legacy
from mergeway.render import RenderError
from mergeway.repoconfig import Environment
from mergeway.report.deploy import DeployReport, failures_of, render_deploy
from mergeway.report.markdown import ALLOW_LABEL, marker, refusal, status_name
from mergeway.report.risk import destructive

log = logging.getLogger("mergeway.jobs.deploy")


def run(event: Event) -> None:
    """Celery entry point (see :mod:`mergeway.jobs`)."""
    deploy(event, default_context())


def deploy(event: Event, ctx: JobContext) -> list[DeployReport]:
    if isinstance(event, CommentCommand) and event.command.name == "allow-destructive":
        return allow_destructive(event, ctx)
    if not isinstance(event, PullRequestMerged):
        raise TypeError(f"the deploy job does not handle {event.kind} events")
    return _deploy_merge(event, ctx)


def allow_destructive(event: CommentCommand, ctx: JobContext) -> list[DeployReport]:
    """``/allow-destructive env commit``: checked and answered now; after a merge, ``env`` is deployed again.

    The allowance itself is the comment, read again at every deploy (:func:`mergeway.jobs.allowance.find`),
    so one written before the merge counts on merge, and one written after it re-runs the deploy now.
    This handler only tells the commenter at once whether it counts, and why not.
    """
    forge = ctx.forge(event.repo)
    forge.add_reaction(event.pr.number, event.comment_id, "eyes")
    reply = functools.partial(_reply, ctx, forge, event)
    pr = forge.get_pull_request(event.pr.number)
    request = allowance.parse(event.command)
    if request is None:
        example = event.command.args[0] if event.command.args else "<environment>"
        reply(
            f"@{event.author} name one environment and the commit you reviewed: "
            f"`{allowance.usage(example, pr)}`. Nothing was changed."
        )
        return []
    if not forge.get_permission(event.author).can_write:
        reply(refusal(event.author, "allow-destructive", nothing="changed"))
        return []
    why_not = allowance.refusal(forge, pr, event.author, request)
    if why_not:
        reply(f"{why_not}. Nothing was changed.")
        return []
    unknown = _unknown_environment(ctx, event, pr, request.env)
    if unknown:
        reply(f"@{event.author} {unknown}. Nothing was changed.")
        return []
    if not pr.merged or not pr.merge_commit_sha:
        reply(
            f"Noted: merging #{pr.number} at `{pr.head_sha[:12]}` will apply its own destructive changes to "
            f"`{request.env}` (allowed by @{event.author}). A later push needs a new allowance."
        )
        return []
    merged = PullRequestMerged(delivery_id=event.delivery_id, repo=event.repo, pr=pr.as_event(), merged_by="")
    return _deploy_merge(merged, ctx, only=request.env)


def _unknown_environment(ctx: JobContext, event: CommentCommand, pr: PullRequestInfo, env: str) -> str:
    """Why ``env`` is not an environment of the pull request's ``.mergeway.yaml`` (``""``: it is)."""
    try:
        with ctx.checkout(event.repo, pr.head_sha, pr.number) as root:
            names = [e.name for e in ctx.load_repo_config(root).environments]
    except READ_ERRORS:
        return ""  # the preview reports a broken configuration; the deploy refuses an unknown name
    if env in names:
        return ""
    return f"`{env}` is not an environment of this repository ({', '.join(f'`{n}`' for n in names) or 'none'})"


def _reply(ctx: JobContext, forge: Forge, event: CommentCommand, text: str) -> None:
    key = marker("allow", "reply")
    forge.upsert_comment(event.pr.number, key, f"{key}\n{text}", lock=ctx.comment_lock(event))


def _hold(step: EnvironmentStep, number: int, client: KubeClient) -> Callable[[Plan], set[ObjectRef]]:
    """What a deploy must not execute: destructive changes, except this pull request's own when allowed.

    The forge is asked only when the plan has destructive changes; the pull request's own changes are
    rendered only when an allowance exists.
    """
    forge = step.ctx.forge(step.repo)

    def held(plan: Plan) -> set[ObjectRef]:
        risky = {r.ref for r in destructive(plan)}
        if not risky:
            return set()
        pr = forge.get_pull_request(number)
        found = allowance.find(forge, pr, step.env.name)
        if found is None:
            return risky
        try:
            changed = _changed_by(step, pr, client)
        except (*READ_ERRORS, RenderError) as exc:  # cannot tell what is its own: release nothing
            log.warning("could not render #%d before and after its merge: %s", number, type(exc).__name__)
            changed = set()
        released = {ref for ref in risky if allowance.owns(changed, ref)}
        log.info(
            "%d destructive change(s) of #%d released by @%s (%s); %d held",
            len(released),
            number,
            found.by,
            found.via,
            len(risky - released),
        )
        return risky - released

    return held


def _changed_by(step: EnvironmentStep, pr: PullRequestInfo, client: KubeClient) -> set[allowance.Identity]:
    """Objects the merge of ``pr`` itself changed in ``step.env``: its render before the merge against after.

    Before is the first parent of a merge or squash commit, or ``n`` commits back for a rebase of ``n``.
    """
    ctx, repo = step.ctx, step.repo
    back = pr.commit_count if pr.merge_method == "rebase" and pr.commit_count > 1 else 1
    with ctx.checkout(repo, pr.merge_commit_sha or "", None) as root:
        before = ctx.git.git(repo, root, "rev-parse", "--verify", f"HEAD~{back}^{{commit}}").stdout.strip()
        after = step.render(root, client)
    with ctx.checkout(repo, before, None) as root:
        prior = step.render(root, client)
    return allowance.changed_identities(prior, after)


def _deploy_merge(event: PullRequestMerged, ctx: JobContext, *, only: str = "") -> list[DeployReport]:
    repo, pr = event.repo, event.pr
    forge = ctx.forge(repo)
    merge_sha = pr.merge_commit_sha or forge.get_pull_request(pr.number).merge_commit_sha or ""
    if not merge_sha:
        raise RuntimeError(f"{repo.full_name}#{pr.number} has no merge commit yet")
    head = ""
    try:
        head = ctx.git.branch_head(repo, pr.base_ref)
        with ctx.checkout(repo, head, None) as root:
            config = ctx.load_repo_config(root)
    except READ_ERRORS as exc:
        return _refuse(ctx, event, DeployReport(CONFIG_ENV, merge_sha, head, error=describe(exc, "deploy")))
    envs = [e for e in config.environments if e.auto_deploy and (e.branch or repo.default_branch) == pr.base_ref]
    envs = [e for e in envs if not only or e.name == only]
    if only and not envs:
        return _refuse(ctx, event, DeployReport(only, merge_sha, head, error=f"{only!r} is not deployed by this merge"))
    reports = []
    with Reporter(ctx, event) as reporter:
        for env in envs:
            report = _deploy_locked(ctx, event, env, merge_sha, reporter)
            reporter.final(report)
            reports.append(report)
    return reports


def _refuse(ctx: JobContext, event: PullRequestMerged, report: DeployReport) -> list[DeployReport]:
    """Publish ``report`` as the merge's only, failed, outcome."""
    report.state = "failure"
    _publish(ctx, event, report)
    return [report]


def _deploy_locked(
    ctx: JobContext, event: PullRequestMerged, env: Environment, merge_sha: str, reporter: Reporter
) -> DeployReport:
    """Deploy ``env`` under its lock; "queued" is published if another deploy holds it first."""
    queued = DeployReport(env.name, merge_sha)
    reporter.record.phase(env.name, merge_sha, "queued")
    try:
        with ctx.env_lock(env.cluster, env.name, on_wait=functools.partial(reporter.progress, queued)):
            return _deploy_environment(ctx, event, env, merge_sha, reporter)
    except LockUnavailable as exc:
        return DeployReport(env.name, merge_sha, state="failure", error=str(exc))


class Reporter:
    """Publishes progress in the background and outcomes in order.

    Progress ("queued", "applying") must not delay the apply itself: forges pace writes (GitHub asks
    for a second between them), and merge-to-applied latency is what users feel. Outcomes wait for
    earlier progress to be written, so the comment never goes back from an outcome to "applying".
    """

    def __init__(self, ctx: JobContext, event: PullRequestMerged) -> None:
        self.ctx, self.event = ctx, event
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deploy-report")
        self.pending: list[Future[None]] = []
        self.record = Recorder(ctx, event)

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)

    def progress(self, report: DeployReport) -> None:
        self.pending.append(self.pool.submit(self._publish_quietly, report))

    def final(self, report: DeployReport) -> None:
        for future in self.pending:
            future.result()
        self.pending.clear()
        self.record.outcome(report)
        _publish(self.ctx, self.event, report)

    def _publish_quietly(self, report: DeployReport) -> None:
        try:
            _publish(self.ctx, self.event, report)
        except Exception:  # progress is best effort; the outcome is published (and raised) by final()
            log.warning("could not publish deploy progress for %s", report.environment, exc_info=True)


def _is_ancestor(ctx: JobContext, event: Event, worktree: Path, older: str, newer: str) -> bool:
    try:
        ctx.git.git(event.repo, worktree, "merge-base", "--is-ancestor", older, newer)
    except GitError as exc:
        if exc.returncode == 1:
            return False
        raise
    return True


def _deploy_environment(
    ctx: JobContext, event: PullRequestMerged, env: Environment, merge_sha: str, reporter: Reporter
) -> DeployReport:
    """Deploy the head of the target branch to ``env``; every expected failure ends in the report."""
    report = DeployReport(env.name, merge_sha, state="failure")
    step = EnvironmentStep(ctx, event.repo, env, "deploy")
    return step.run(report, lambda: _deploy_head(step, event, report, reporter))


def _deploy_head(
    step: EnvironmentStep, event: PullRequestMerged, report: DeployReport, reporter: Reporter
) -> DeployReport:
    ctx, repo = step.ctx, step.repo
    head = ctx.git.branch_head(repo, event.pr.base_ref)  # re-read under the lock: the newest merge wins
    report.deployed_sha = head
    if head != report.merge_sha:
        report.note = f"Deploying `{head[:12]}`, the head of `{event.pr.base_ref}`, which includes this merge."
    step.check_policy()
    client = step.client()
    applyset, legacy = applyset_for(repo, step.env), legacy_applyset_for(repo, step.env)
    with ctx.checkout(repo, head, None) as root:
        report.previous_sha = applied = _applied_commit(ctx, client, repo, applyset, legacy)
        if _superseded(ctx, event, root, applied, head):
            report.state, report.deployed_sha = "superseded", applied
            return report
        step.env = _configured(ctx, root, step.env.name, head)
        step.check_policy()  # the config at the head may differ from the one merged
        rendered = step.render(root, client)
        step.admit(rendered, Discovery(client))
        reporter.progress(DeployReport(step.env.name, report.merge_sha, head, state="applying", note=report.note))
        prunes = PruneCheck(ctx.policy, repo.forge, repo.full_name, step.env)
        reporter.record.phase(step.env.name, report.merge_sha, "applying", applied_commit=head)
        result = Applier(client, concurrency=ctx.settings.dry_run_concurrency).deploy(
            rendered.manifests,
            applyset=applyset,
            default_namespace=step.env.namespace,
            commit=head,
            health_timeout=ctx.settings.health_timeout_seconds,
            hold=prunes.holding(_hold(step, event.pr.number, client)),
            applied=functools.partial(reporter.record.applied, step.env.name, report.merge_sha),
        )
    if not result.failed and not result.plan.errors:
        _retire_legacy(client, legacy, report)
    report = _outcome(report, result, step.env, event.pr.head_sha)
    # Held by the policy, not by the guard: no allowance releases them, so they are reported apart.
    report.held = [r for r in report.held if r.ref not in prunes.held]
    report.not_pruned = prunes.lines()
    return report


def _superseded(ctx: JobContext, event: PullRequestMerged, root: Path, applied: str, head: str) -> bool:
    """Whether the applied commit already contains ``head``; refuses a commit that would go back."""
    repo = event.repo
    if not applied or applied == head:
        return False
    if not ctx.git.has_commit(repo, applied):
        raise Refused(
            f"the environment is at {applied[:12]}, which is not in {repo.full_name}; refusing to deploy over it"
        )
    if _is_ancestor(ctx, event, root, head, applied):
        return True
    if not _is_ancestor(ctx, event, root, applied, head):
        raise Refused(
            f"the history of {event.pr.base_ref} was rewritten: the applied commit "
            f"{applied[:12]} is not an ancestor of {head[:12]}; refusing to deploy. "
            "Deploy by hand with `mergeway apply` once you have checked the branch."
        )
    return False


def _configured(ctx: JobContext, root: Path, name: str, head: str) -> Environment:
    """The environment ``name`` as the deployed commit configures it."""
    current = ctx.load_repo_config(root).environment(name)
    if current is None:
        raise Refused(f"environment {name!r} is no longer in .mergeway.yaml at {head[:12]}")
    return current


def _outcome(report: DeployReport, result: DeployResult, env: Environment, pr_head: str) -> DeployReport:
    report.result = result
    report.failures = failures_of(result)
    held = {i.ref for i in result.held}
    report.held = [r for r in destructive(result.plan) if r.ref in held]
    report.allow_hint = (
        f"To apply them, someone with write access other than the author reviews them and comments "
        f"`/allow-destructive {env.name} {pr_head[:12] or '<head commit>'}` on the pull request that made them; "
        f"pull requests labelled `{ALLOW_LABEL}` by such a person apply them on merge."
    )
    report.state = "success" if result.ok else "failure"
    log.info("deploy of %s to %s: %s", report.deployed_sha[:12], env.name, report.state)
    return report


def _applied_commit(ctx: JobContext, client: KubeClient, repo: Repository, applyset: ApplySet, legacy: ApplySet) -> str:
    """The commit the environment runs, as its ApplySet parent records it (``""``: never deployed)."""
    parent = applyset.read(client)
    if parent is not None:
        return _commit_of(parent)
    # Migrating from the old-named set: its commit counts only if it is this repository's
    # (the old name may be shared with another repository, whose commits are not ours).
    old = _commit_of(legacy.read(client))
    return old if old and ctx.git.has_commit(repo, old) else ""


def _commit_of(parent: Parent | None) -> str:
    return parent.commit if parent else ""


def _retire_legacy(client: KubeClient, legacy: ApplySet, report: DeployReport) -> None:
    """Drop the environment's old-named ApplySet once empty; say what was left in it (never pruned)."""
    left = retire_legacy(client, Discovery(client), legacy)
    if left:
        names = ", ".join(f"`{obj['kind']}/{obj['metadata']['name']}`" for _, obj in left[:10])
        more = f" and {len(left) - 10} more" if len(left) > 10 else ""
        note = (
            f"Moved to a collision-free ApplySet; {len(left)} object(s) of the old set `{legacy.name}` are no "
            f"longer in Git or belong to another repository sharing that name, and were not pruned: {names}{more}."
        )
        report.note = f"{report.note} {note}".strip()


def _publish(ctx: JobContext, event: PullRequestMerged, report: DeployReport) -> None:
    forge = ctx.forge(event.repo)
    body = render_deploy(report, limit=forge.comment_limit)
    ref = forge.upsert_comment(
        event.pr.number, marker("deploy", report.environment), body, lock=ctx.comment_lock(event)
    )
    state, description = report.status()
    url = ref.url or ctx.target_url(event)
    forge.set_status(report.merge_sha, state, status_name("deploy", report.environment), description, url)
