"""The deploy job: on merge, put each environment in exactly the state of the target branch.

Three rules make piled-up merges safe:

* One deploy per (cluster, environment) at a time, by a Redis lock that expires quickly if its
  worker dies, so a redelivered job is not blocked for long.
* Under the lock, deploy the *current head* of the target branch, not the SHA in the event: when
  merges pile up, the newest wins, and older jobs report that they were superseded.
* Never apply a commit older than the one applied. The applied commit is recorded on the
  environment's ApplySet parent in the cluster itself (so it survives Redis being flushed), and git
  ancestry decides what is older.

The path reads top to bottom in two functions: :func:`deploy` (one merge: its configuration, its
environments, each under its lock) and :func:`_deploy_environment` (one environment: the head,
policy, render, apply, outcome). Each returns immutable reports; the :class:`Reporter` hands them
to the publisher (:mod:`mergeway.report.publish`, the only way out to the forge) and the
deployment record. ``/allow-destructive`` (:func:`allow_destructive`) re-enters :func:`deploy`.

Re-running a deploy is harmless: server-side apply of an unchanged commit changes nothing, and the
same comment and status are written again. That is what makes Celery's redelivery after a killed
worker safe.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from mergeway.events import CommentCommand, Event, IssueCommand, PullRequestMerged, Repository
from mergeway.forge.base import PullRequestInfo
from mergeway.git import GitError
from mergeway.jobs import allowance, gatecommands, waiting
from mergeway.jobs.applysets import applyset_for, legacy_applyset_for
from mergeway.jobs.context import JobContext
from mergeway.jobs.engine_options import options_for
from mergeway.jobs.environment import CONFIG_ENV, EXPECTED, READ_ERRORS, EnvironmentStep, Refused, describe
from mergeway.jobs.forge_deployment import ForgeDeployment
from mergeway.jobs.locks import LockUnavailable
from mergeway.jobs.prunes import PruneCheck
from mergeway.jobs.record import Recorder
from mergeway.kube.apply import Applier
from mergeway.kube.applyset import ApplySet, Parent
from mergeway.kube.changeset import ObjectRef, Plan
from mergeway.kube.client import KubeClient
from mergeway.kube.discovery import Discovery
from mergeway.kube.prune import retire_legacy
from mergeway.render import RenderError
from mergeway.repoconfig import Environment, in_order
from mergeway.report import allowance as allow_texts
from mergeway.report import deploy as texts
from mergeway.report import failures as failure_texts
from mergeway.report.deploy import DeployReport
from mergeway.report.publish import Publisher
from mergeway.report.risk import destructive

log = logging.getLogger("mergeway.jobs.deploy")


def run(event: Event, ctx: JobContext) -> list[DeployReport]:
    """Celery entry point (see :mod:`mergeway.jobs`): a merge, ``/allow-destructive`` on a pull request, or a
    gate command (``/lock`` and ``/unlock`` also on the drift issue)."""
    if isinstance(event, CommentCommand) and event.command.name == "allow-destructive":
        return allow_destructive(event, ctx)
    if isinstance(event, CommentCommand | IssueCommand) and event.command.name in gatecommands.COMMANDS:
        return gatecommands.run(event, ctx, deploy)
    if not isinstance(event, PullRequestMerged):
        raise TypeError(f"the deploy job does not handle {event.kind} events")
    return deploy(event, ctx)


def deploy(
    event: PullRequestMerged, ctx: JobContext, *, only: str = "", admission: waiting.Admission = waiting.CHECKED
) -> list[DeployReport]:
    """Deploy every environment this merge deploys (or ``only`` that one), each under its lock, in order.

    Environments go in ``after:`` order, and each passes its gates first (:mod:`mergeway.jobs.waiting`:
    a lock, a freeze, the environments it follows): a closed gate leaves the merge waiting there.
    """
    repo, pr = event.repo, event.pr
    forge, out = ctx.forge(repo), ctx.publisher(event)
    merge_sha = pr.merge_commit_sha or forge.get_pull_request(pr.number).merge_commit_sha or ""
    if not merge_sha:
        raise RuntimeError(f"{repo.full_name}#{pr.number} has no merge commit yet")
    head = ""
    try:
        head = ctx.git.branch_head(repo, pr.base_ref)
        with ctx.checkout(repo, head, None) as root:
            config = ctx.load_repo_config(root)
    except READ_ERRORS as exc:
        refused = DeployReport(CONFIG_ENV, merge_sha, head, state="failure", error=describe(exc, "deploy"))
        out.deploy_outcome(refused)
        return [refused]
    envs = [e for e in config.environments if e.auto_deploy and (e.branch or repo.default_branch) == pr.base_ref]
    envs = [e for e in envs if not only or e.name == only]
    if only and not envs:
        refused = DeployReport(only, merge_sha, head, state="failure", error=failure_texts.not_deployed_by_merge(only))
        out.deploy_outcome(refused)
        return [refused]
    reports = []
    with Reporter(ctx, event, out) as reporter:
        for env in in_order(envs):
            queued = DeployReport(env.name, merge_sha)
            gate = waiting.check(ctx, repo, env, merge_sha, admission)
            if not gate.open:
                report = waiting.hold(ctx, event, env, merge_sha, gate, admission)
                reporter.final(report)
                reports.append(report)
                reports += waiting.after_hold(ctx, event, env, merge_sha, deploy, admission)
                continue
            reporter.queued(queued, env, reason=waiting.queued_reason(gate, admission))
            step = EnvironmentStep(ctx, repo, env, "deploy")
            try:
                with ctx.env_lock(env.cluster, env.name, on_wait=functools.partial(reporter.progress, queued)):
                    report = _deploy_environment(step, event, merge_sha, reporter, pin=gate.pin)
            except LockUnavailable as exc:
                report = DeployReport(env.name, merge_sha, state="failure", error=str(exc))
            reporter.final(report)
            reports.append(report)
            reports += waiting.after_deploy(ctx, repo, env.name, report, deploy, admission)
    return reports


def _deploy_environment(
    step: EnvironmentStep, event: PullRequestMerged, merge_sha: str, reporter: Reporter, *, pin: str = ""
) -> DeployReport:
    """Deploy the head of the target branch to ``step.env``, under its lock; expected failures end in the report.

    ``pin``: the commit to deploy instead of the head, the one the environments followed are healthy on.
    """
    ctx, repo = step.ctx, step.repo
    report = DeployReport(step.env.name, merge_sha, state="failure")
    try:
        head = ctx.git.branch_head(repo, event.pr.base_ref)  # re-read under the lock: the newest merge wins
        head = pin or head
        note = texts.head_note(head, event.pr.base_ref) if head != merge_sha else ""
        report = dataclasses.replace(report, deployed_sha=head, note=note)
        step.check_policy()
        client = step.client()
        applyset, legacy = applyset_for(repo, step.env), legacy_applyset_for(repo, step.env)
        with ctx.checkout(repo, head, None) as root:
            applied = _applied_commit(ctx, client, repo, applyset, legacy)
            report = dataclasses.replace(report, previous_sha=applied)
            if _superseded(ctx, event, root, applied, head):
                return dataclasses.replace(report, state="superseded", deployed_sha=applied)
            step.env = _configured(ctx, root, step.env.name, head)
            step.check_policy()  # the config at the head may differ from the one merged
            rendered = step.render(root, client)
            discovery = Discovery(client)
            step.admit(rendered, discovery)
            options, _ = options_for(step.env, client, discovery, rendered.manifests)
            reporter.progress(dataclasses.replace(report, state="applying", error=""))
            prunes = PruneCheck(ctx.policy, repo.forge, repo.full_name, step.env)
            reporter.record.phase(step.env.name, merge_sha, "applying", applied_commit=head)
            result = Applier(client, concurrency=ctx.settings.dry_run_concurrency, options=options).deploy(
                rendered.manifests,
                applyset=applyset,
                default_namespace=step.env.namespace,
                commit=head,
                health_timeout=ctx.settings.health_timeout_seconds,
                hold=prunes.holding(_hold(step, event.pr.number, client)),
                applied=functools.partial(reporter.record.applied, step.env.name, merge_sha),
            )
        if not result.failed and not result.plan.errors:
            note = " ".join(filter(None, [note, _retire_legacy(client, legacy)]))
    except EXPECTED as exc:
        return dataclasses.replace(report, error=step.stopped(exc))
    held = {i.ref for i in result.held}
    outcome = dataclasses.replace(
        report,
        state="success" if result.ok else "failure",
        result=result,
        note=note,
        # Held by the policy, not by the guard: no allowance releases them, so they are reported apart.
        held=tuple(r for r in destructive(result.plan) if r.ref in held and r.ref not in prunes.held),
        pr_head=event.pr.head_sha,
        not_pruned=tuple(prunes.lines()),
    )
    log.info("deploy of %s to %s: %s", head[:12], step.env.name, outcome.state)
    return outcome


def allow_destructive(event: CommentCommand, ctx: JobContext) -> list[DeployReport]:
    """``/allow-destructive env commit``: checked and answered now; after a merge, ``env`` is deployed again.

    The allowance itself is the comment, read again at every deploy (:func:`mergeway.jobs.allowance.find`),
    so one written before the merge counts on merge, and one written after it re-runs the deploy now.
    This handler only tells the commenter at once whether it counts, and why not.
    """
    forge, out = ctx.forge(event.repo), ctx.publisher(event)
    out.seen(event.comment_id)
    pr = forge.get_pull_request(event.pr.number)
    request = allowance.parse(event.command)
    if request is None:
        example = event.command.args[0] if event.command.args else "<environment>"
        out.allowance_reply(allow_texts.malformed(event.author, example, pr.head_sha))
        return []
    if not forge.get_permission(event.author).can_write:
        out.allowance_reply(allow_texts.may_not_allow(event.author))
        return []
    why_not = allowance.refusal(forge, pr, event.author, request)
    if why_not:
        out.allowance_reply(allow_texts.refused(why_not))
        return []
    names = _environment_names(ctx, event, pr)
    if names is not None and request.env not in names:
        out.allowance_reply(allow_texts.unknown_environment(event.author, request.env, names))
        return []
    if not pr.merged or not pr.merge_commit_sha:
        out.allowance_reply(allow_texts.noted(event.author, pr.number, pr.head_sha, request.env))
        return []
    merged = PullRequestMerged(delivery_id=event.delivery_id, repo=event.repo, pr=pr.as_event(), merged_by="")
    return deploy(merged, ctx, only=request.env)


def _environment_names(ctx: JobContext, event: CommentCommand, pr: PullRequestInfo) -> list[str] | None:
    """The environments of the pull request's ``.mergeway.yaml`` (``None``: it cannot be read)."""
    try:
        with ctx.checkout(event.repo, pr.head_sha, pr.number) as root:
            return [e.name for e in ctx.load_repo_config(root).environments]
    except READ_ERRORS:
        return None  # the preview reports a broken configuration; the deploy refuses an unknown name


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


class Reporter:
    """Publishes progress in the background and outcomes in order, and writes the deployment record.

    Progress ("queued", "applying") must not delay the apply itself: forges pace writes (GitHub asks
    for a second between them), and merge-to-applied latency is what users feel. Outcomes wait for
    earlier progress to be written, so the comment never goes back from an outcome to "applying".
    A failure to publish an outcome is retried and logged by the publisher and never fails the deploy.
    The forge's own deployment (:mod:`mergeway.jobs.forge_deployment`) follows the same phases, all
    of it in the background: ``queued`` before the lock, ``in_progress`` after the "applying"
    comment, the outcome after the outcome's comment.
    """

    def __init__(self, ctx: JobContext, event: PullRequestMerged, out: Publisher) -> None:
        self.out = out
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deploy-report")
        self.pending: list[Future[None]] = []
        self.record = Recorder(ctx, event)
        self.forge_deployment = ForgeDeployment(event, out)

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)

    def queued(self, report: DeployReport, env: Environment, *, reason: str = "") -> None:
        """``env``'s deploy is about to wait for its lock: recorded now, shown on the forge in the background."""
        self.record.phase(
            env.name, report.merge_sha, "queued", reason=reason, cluster=env.cluster, namespace=env.namespace
        )
        self.forge_deployment.configure(env)
        self.pending.append(self.pool.submit(self.forge_deployment.progress, report))

    def progress(self, report: DeployReport) -> None:
        self.pending.append(self.pool.submit(self._publish_quietly, report))

    def final(self, report: DeployReport) -> None:
        for future in self.pending:
            future.result()
        self.pending.clear()
        self.record.outcome(report)
        self.out.deploy_outcome(report)
        # After the comment (the deployment's log); in the background, so the next environment's
        # deploy does not wait for it. The pool is drained when the merge's deploys are done.
        self.pending.append(self.pool.submit(self.forge_deployment.outcome, report))

    def _publish_quietly(self, report: DeployReport) -> None:
        try:
            self.out.deploy(report)
        except Exception:  # progress is best effort; the outcome is published (and retried) by final()
            log.warning("could not publish deploy progress for %s", report.environment, exc_info=True)
        if report.state == "applying":
            self.forge_deployment.progress(report)


def _is_ancestor(ctx: JobContext, event: Event, worktree: Path, older: str, newer: str) -> bool:
    try:
        ctx.git.git(event.repo, worktree, "merge-base", "--is-ancestor", older, newer)
    except GitError as exc:
        if exc.returncode == 1:
            return False
        raise
    return True


def _superseded(ctx: JobContext, event: PullRequestMerged, root: Path, applied: str, head: str) -> bool:
    """Whether the applied commit already contains ``head``; refuses a commit that would go back."""
    repo = event.repo
    if not applied or applied == head:
        return False
    if not ctx.git.has_commit(repo, applied):
        raise Refused(failure_texts.not_in_repository(applied, repo.full_name))
    if _is_ancestor(ctx, event, root, head, applied):
        return True
    if not _is_ancestor(ctx, event, root, applied, head):
        raise Refused(failure_texts.history_rewritten(event.pr.base_ref, applied, head))
    return False


def _configured(ctx: JobContext, root: Path, name: str, head: str) -> Environment:
    """The environment ``name`` as the deployed commit configures it."""
    current = ctx.load_repo_config(root).environment(name)
    if current is None:
        raise Refused(failure_texts.environment_gone(name, head))
    return current


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


def _retire_legacy(client: KubeClient, legacy: ApplySet) -> str:
    """Drop the environment's old-named ApplySet once empty; the note on what was left in it (never pruned)."""
    left = retire_legacy(client, Discovery(client), legacy)
    return texts.legacy_left(legacy.name, [f"{obj['kind']}/{obj['metadata']['name']}" for _, obj in left])
