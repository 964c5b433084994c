"""The drift job: compare one environment's live objects with the commit last applied there.

Started per (repository, environment) by the periodic kind ``drift-schedule`` (:func:`schedule`,
every ``MERGEWAY_DRIFT_INTERVAL_SECONDS``) or by ``/drift [env]`` on a pull request. :func:`check`
returns a :class:`~mergeway.drift.DriftCheck`; it is stored (:class:`~mergeway.drift.DriftStore`,
read by the environments page) and handed to the publisher (``ctx.publisher(event).drift(check)``),
the one way out to the forge.

What is compared is the commit the cluster runs, as the environment's ApplySet parent records it
(the deployment record's applied commit when the parent cannot be read), never the branch head: a
merge not deployed yet is not drift. That commit's ``.mergeway.yaml`` says the environment's
cluster, namespace and ``ignore:`` rules; its manifests are rendered exactly as the deploy rendered
them, then :class:`mergeway.kube.drift.Detector` compares (read-only, except dry runs of the
objects that look drifted).
"""

from __future__ import annotations

import logging
import time

from celery import current_app

from mergeway.deployments import Deployments
from mergeway.drift import DriftCheck, DriftStore
from mergeway.events import CommentCommand, EnvironmentEvent, Event, Repository, Tick, to_dict
from mergeway.jobs.applysets import applyset_for, owner_identity
from mergeway.jobs.context import JobContext
from mergeway.jobs.engine_options import options_for
from mergeway.jobs.environment import EXPECTED, EnvironmentStep, describe
from mergeway.jobs.kinds import QUEUES, TASK_NAMES
from mergeway.jobs.permissions import may_run
from mergeway.jobs.reapply import environment_at, rendered_by_helm, self_heal
from mergeway.kube.discovery import Discovery
from mergeway.kube.drift import CountingTransport, Detector, counted
from mergeway.repoconfig import Environment
from mergeway.report import driftcheck as texts

log = logging.getLogger("mergeway.jobs.drift")

#: The job kind that checks one environment, and the periodic kind that starts one per environment.
KIND = "drift"
SCHEDULE_KIND = "drift-schedule"


def run(event: Event, ctx: JobContext) -> list[DriftCheck]:
    """Celery entry point (see :mod:`mergeway.jobs`): one environment (scheduled) or ``/drift [env]``."""
    if isinstance(event, CommentCommand):
        return command(event, ctx)
    if not isinstance(event, EnvironmentEvent):
        raise TypeError(f"the drift job does not handle {event.kind} events")
    return [checked(event, ctx)]


def checked(event: EnvironmentEvent, ctx: JobContext) -> DriftCheck:
    """Check one environment, store the result and publish it."""
    result = check(event, ctx)
    if ctx.redis is not None:
        DriftStore(ctx.redis).put(result)
    env = environment_at(ctx, event.repo, event.environment, result.commit) if result.drifted else None
    ctx.publisher(event).drift(result, helm=env is not None and rendered_by_helm(ctx, event.repo, env, result.commit))
    if env is not None and env.self_heal:  # revert at once; the issue says so (mergeway.jobs.reapply)
        result = self_heal(event, ctx, result, check)
    return result


def schedule(tick: Tick, ctx: JobContext) -> int:
    """The periodic kind: queue one drift job per (repository, environment) the deployment records know.

    Only the scheduler's single sender starts this, so each environment is checked once per
    interval however many replicas run. Returns how many jobs were queued.
    """
    if ctx.redis is None:
        return 0
    queued = 0
    for repository, environment in Deployments(ctx.redis).environments():
        forge, _, full_name = repository.partition(":")
        if forge not in ("github", "gitlab") or not full_name:
            continue
        event = EnvironmentEvent(
            delivery_id=f"drift:{tick.at:.0f}:{repository}:{environment}",
            repo=Repository(forge=forge, full_name=full_name, clone_url=""),  # type: ignore[arg-type]  # checked above
            environment=environment,
            reason=texts.SCHEDULED,
        )
        # The worker's own Celery app (configured from the table) sends it on the drift queue.
        current_app.send_task(TASK_NAMES[KIND], args=[to_dict(event)], queue=QUEUES[KIND], task_id=event.delivery_id)
        queued += 1
    log.info("queued %d drift check(s)", queued)
    return queued


def command(event: CommentCommand, ctx: JobContext) -> list[DriftCheck]:
    """``/drift [env]``: check now (every environment, or those named) and reply on the pull request."""
    forge, out = ctx.forge(event.repo), ctx.publisher(event)
    out.seen(event.comment_id)
    if not may_run(forge, event, out):
        return []
    names = _environment_names(ctx, event.repo)
    wanted = list(event.command.args) or names
    unknown = [n for n in wanted if n not in names]
    checks = []
    for name in (n for n in wanted if n in names):
        env_event = EnvironmentEvent(
            delivery_id=event.delivery_id, repo=event.repo, environment=name, reason=texts.asked_by(event.author)
        )
        checks.append(checked(env_event, ctx))
    out.drift_reply(texts.reply(event.author, checks, unknown))
    return checks


def _environment_names(ctx: JobContext, repo: Repository) -> list[str]:
    """The environments of the default branch's ``.mergeway.yaml`` and those the records know."""
    names: list[str] = []
    try:
        head = ctx.git.branch_head(repo, repo.default_branch)
        with ctx.checkout(repo, head, None) as root:
            names = [e.name for e in ctx.load_repo_config(root).environments]
    except EXPECTED as exc:
        log.info("drift: the configuration of %s could not be read: %s", repo.full_name, type(exc).__name__)
    if ctx.redis is not None:
        repository = owner_identity(repo)
        names += [e for r, e in Deployments(ctx.redis).environments() if r == repository and e not in names]
    return names


def check(event: EnvironmentEvent, ctx: JobContext) -> DriftCheck:
    """The drift of ``event.environment`` against its last applied commit; expected failures end in ``error``."""
    repository = owner_identity(event.repo)
    started = time.time()
    recorded = _recorded_commit(ctx, repository, event.environment)
    try:
        env = _environment_at(ctx, event.repo, event.environment, recorded)
    except EXPECTED as exc:
        return DriftCheck(repository, event.environment, recorded, started, error=describe(exc, texts.VERB))
    if env is None:
        return DriftCheck(repository, event.environment, recorded, started)  # not configured: nothing to compare
    step = EnvironmentStep(ctx, event.repo, env, texts.VERB)
    spy: CountingTransport | None = None
    commit = recorded
    try:
        step.check_policy()
        client, spy = counted(step.client())
        applyset = applyset_for(event.repo, env)
        parent = applyset.read(client)
        commit = parent.commit if parent is not None and parent.commit else recorded
        if not commit:
            return DriftCheck(repository, event.environment, "", started, requests=spy.total)
        if commit != recorded:
            env = _environment_at(ctx, event.repo, event.environment, commit) or env
            step.env = env
        with ctx.checkout(event.repo, commit, None) as root:
            rendered = step.render(root, client)
        discovery = Discovery(client)
        step.admit(rendered, discovery)
        options, _ = options_for(env, client, discovery, rendered.manifests)
        detector = Detector(client, discovery, options=options, concurrency=ctx.settings.dry_run_concurrency)
        objects = detector.detect(rendered.manifests, applyset, default_namespace=env.namespace)
    except EXPECTED as exc:
        failed = DriftCheck(
            repository, event.environment, commit, started, error=step.stopped(exc), requests=spy.total if spy else 0
        )
        log.warning("drift check of %s %s could not compare: %s", repository, event.environment, type(exc).__name__)
        return failed
    result = DriftCheck(repository, event.environment, commit, started, tuple(objects), requests=spy.total)
    log.info(
        "drift check of %s %s at %s: %d drifted object(s), %d request(s) %s",
        repository,
        event.environment,
        commit[:12],
        len(objects),
        spy.total,
        dict(spy.sent),
    )
    return result


def _recorded_commit(ctx: JobContext, repository: str, environment: str) -> str:
    """The commit the deployment record last applied to ``environment`` (``""``: none recorded)."""
    if ctx.redis is None:
        return ""
    for record in Deployments(ctx.redis).history(repository, environment, limit=5):
        if record.applied_commit and record.phase in ("applied", "healthy", "failed", "held"):
            return record.applied_commit
    return ""


def _environment_at(ctx: JobContext, repo: Repository, name: str, commit: str) -> Environment | None:
    """The environment as ``commit`` configures it (the default branch's head when no commit is known yet)."""
    sha = commit or ctx.git.branch_head(repo, repo.default_branch)
    with ctx.checkout(repo, sha, None) as root:
        return ctx.load_repo_config(root).environment(name)
