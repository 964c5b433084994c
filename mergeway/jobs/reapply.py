"""Put an environment back to the commit last applied there: what ``/revert-drift`` and ``self_heal`` do.

Reverting drift is a deploy of exactly the commit the environment already runs, never anything
newer or older: the commit comes from the environment's ApplySet parent in the cluster (what the
deploy job itself trusts for "never go back"), not from the branch head. So it takes the same
environment lock as a deploy, passes the same policy and admission checks, and applies through the
same engine (:class:`~mergeway.kube.apply.Applier`), holding back anything destructive: a revert
re-creates and re-sets what Git says, it does not prune storage. Then the environment is checked
again and the drift issue shows the result (closed when nothing is left).

The drift check itself is passed in (``check``): the drift job calls :func:`self_heal`, so this
module cannot import it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from mergeway.adoption import renderer_of
from mergeway.drift import DriftCheck, DriftStore
from mergeway.events import EnvironmentEvent, IssueCommand, Repository
from mergeway.forge.base import Forge
from mergeway.jobs.applysets import applyset_for
from mergeway.jobs.context import JobContext
from mergeway.jobs.engine_options import options_for
from mergeway.jobs.environment import EXPECTED, EnvironmentStep, Refused
from mergeway.jobs.locks import LockUnavailable
from mergeway.kube.apply import Applier
from mergeway.kube.discovery import Discovery
from mergeway.render.paths import PathError
from mergeway.repoconfig import Environment
from mergeway.report import drift as texts
from mergeway.report import failures as failure_texts
from mergeway.report.risk import destructive

log = logging.getLogger("mergeway.jobs.reapply")

#: A drift check of one environment (:func:`mergeway.jobs.drift.check`).
Check = Callable[[EnvironmentEvent, JobContext], DriftCheck]

_MARKER = re.compile(r"<!-- mergeway:" + texts.KIND + r":([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?) -->")


def drift_environment(forge: Forge, number: int) -> str | None:
    """The environment issue ``number`` is the drift issue of, when it is Mergeway's own drift issue."""
    issue = forge.get_issue(number)
    if issue is None or not forge.identity().wrote(issue.as_comment()):
        return None
    found = _MARKER.search(issue.body)
    return found.group(1) if found else None


def issue_environment(event: IssueCommand, ctx: JobContext) -> str | None:
    """The environment of the drift issue ``event`` was written on, when its author may act there.

    Otherwise the reason (not Mergeway's drift issue, or no write access) is replied on the issue and
    the command ends: ``/revert-drift`` and ``/adopt-drift`` share this gate, so it is written once.
    """
    forge, out = ctx.forge(event.repo), ctx.publisher(event)
    environment = drift_environment(forge, event.issue)
    if environment is None:
        out.issue_reply(event.issue, texts.not_drift_issue(event.author, event.command.name))
        return None
    if not forge.get_permission(event.author).can_write:
        out.issue_reply(event.issue, texts.refused(event.author, event.command.name))
        return None
    return environment


def configured(ctx: JobContext, repo: Repository, name: str, sha: str) -> Environment:
    """Environment ``name`` as ``.mergeway.yaml`` at ``sha`` configures it; :class:`Refused` when it has none."""
    with ctx.checkout(repo, sha, None) as root:
        env = ctx.load_repo_config(root).environment(name)
    if env is None:
        raise Refused(failure_texts.environment_gone(name, sha))
    return env


def reapply(ctx: JobContext, repo: Repository, name: str) -> tuple[str, str]:
    """Re-apply the commit last applied to ``name`` under its lock: ``(commit, "")``, or ``("", why not)``."""
    try:
        head = ctx.git.branch_head(repo, repo.default_branch)
        env = configured(ctx, repo, name, head)
        if env.branch and env.branch != repo.default_branch:
            env = configured(ctx, repo, name, ctx.git.branch_head(repo, env.branch))
        step = EnvironmentStep(ctx, repo, env, "deploy")
        step.check_policy()
        with ctx.env_lock(env.cluster, env.name):
            return _reapply_locked(step), ""
    except LockUnavailable as exc:
        return "", str(exc)
    except EXPECTED as exc:
        return "", EnvironmentStep(ctx, repo, Environment(name, "", ""), "deploy").stopped(exc)


def _reapply_locked(step: EnvironmentStep) -> str:
    ctx, repo = step.ctx, step.repo
    client = step.client()
    applyset = applyset_for(repo, step.env)
    parent = applyset.read(client)
    commit = parent.commit if parent is not None else ""
    if not commit:
        raise Refused(texts.nothing_applied(step.env.name))
    ctx.git.fetch(repo, sha=commit)
    step.env = configured(ctx, repo, step.env.name, commit)  # as the applied commit configured it
    step.check_policy()
    with ctx.checkout(repo, commit, None) as root:
        rendered = step.render(root, client)
        discovery = Discovery(client)
        step.admit(rendered, discovery)
        # As the deploy: ``ignore:`` fields and autoscaled replicas are not Git's to take back.
        options, _ = options_for(step.env, client, discovery, rendered.manifests)
        result = Applier(client, concurrency=ctx.settings.dry_run_concurrency, options=options).deploy(
            rendered.manifests,
            applyset=applyset,
            default_namespace=step.env.namespace,
            commit=commit,
            health_timeout=ctx.settings.health_timeout_seconds,
            hold=lambda plan: {r.ref for r in destructive(plan)},
        )
    if result.failed or result.plan.errors:
        raise Refused(texts.revert_incomplete(len(result.failed) + len(result.plan.errors)))
    log.info("re-applied %s to %s to revert drift", commit[:12], step.env.name)
    return commit


def recheck(ctx: JobContext, event: EnvironmentEvent, check: Check, note: str = "") -> DriftCheck:
    """Check ``event.environment`` again, store the result and show it on the drift issue."""
    after = check(event, ctx)
    if ctx.redis is not None:
        DriftStore(ctx.redis).put(after)
    ctx.publisher(event).drift_issue(after, note=note)
    return after


def self_heal(event: EnvironmentEvent, ctx: JobContext, found: DriftCheck, check: Check) -> DriftCheck:
    """``self_heal: true``: revert ``found`` at once, then show the check after it on the drift issue.

    Called by the drift job after it published ``found`` (so the issue records what drifted): the
    issue is then closed with a comment saying the drift was reverted, or, when the revert fails,
    keeps the drift with a line saying why.
    """
    commit, error = reapply(ctx, event.repo, event.environment)
    if error:
        log.warning("self-heal of %s failed", event.environment)
        ctx.publisher(event).drift_issue(found, note=texts.heal_failed(event.environment, error))
        return found
    return recheck(ctx, event, check, note=texts.healed(event.environment, commit))


def environment_at(ctx: JobContext, repo: Repository, name: str, commit: str) -> Environment | None:
    """Environment ``name`` as ``commit`` (``""``: the default branch's head) configures it; ``None`` if unreadable."""
    try:
        return configured(ctx, repo, name, commit or ctx.git.branch_head(repo, repo.default_branch))
    except EXPECTED:
        return None


def rendered_by_helm(ctx: JobContext, repo: Repository, env: Environment, commit: str) -> bool:
    """Whether ``env`` is a Helm chart at ``commit`` (the drift issue then says adopting is manual)."""
    try:
        with ctx.checkout(repo, commit or ctx.git.branch_head(repo, repo.default_branch), None) as root:
            return renderer_of(root, env.path) == "helm"
    except (*EXPECTED, PathError):
        return False
