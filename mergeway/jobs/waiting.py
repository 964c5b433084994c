"""Merges that wait at a gate, and letting the newest one through when it opens.

The deploy job asks :func:`check` before each environment. A closed gate (:mod:`mergeway.gates`:
a lock, a freeze window, an environment followed that is not healthy on the merge yet) makes the
merge a *waiter* of that environment (:func:`hold`): stored in Redis with its event, recorded as
``held`` with the reason, and shown as a ``pending`` status and a "waiting" comment. Then:

* a newer merge that waits on the same environment replaces the older waiters at once: they are
  marked superseded and say so (the newer merge includes them; newest wins);
* a deploy of the environment that goes through supersedes the waiters its commit includes;
* an event opens the gate and :func:`release` lets the **newest** waiter through, by running the
  deploy of its merge again for that environment (which checks the gates once more and may wait
  again): ``/unlock``; an environment turning healthy (:func:`release_followers`); the end of a
  freeze, found by the periodic sweep (:func:`sweep`, kind ``release``).

Nothing here applies anything: the deploy does, with its rules (under the environment lock, never
an older commit than the one applied). Releasing takes every waiter at once (one Redis
transaction), so two jobs cannot let the same merge through twice. Whoever stores a waiter checks
the gate again right after, so an environment that turned healthy in between cannot leave it
waiting (the other job's release ran before the waiter existed).

Every decision is a phase of the deployment record with its reason: ``held`` (why), ``queued``
("released: unlocked by @bob"), ``superseded`` (by which merge).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

import redis

from mergeway.deployments import Deployments
from mergeway.events import PullRequestMerged, Repository, from_dict, to_dict
from mergeway.freeze import active
from mergeway.gates import OPEN, Gate, Locks, Waiter, Waiting, decide, utc
from mergeway.jobs.applysets import owner_identity
from mergeway.jobs.context import JobContext
from mergeway.jobs.forge_deployment import ForgeDeployment
from mergeway.jobs.record import Recorder
from mergeway.policy import environment_windows
from mergeway.repoconfig import Environment
from mergeway.report import gates as texts
from mergeway.report.deploy import DeployReport
from mergeway.report.markdown import status_name

log = logging.getLogger("mergeway.jobs.waiting")

#: How deep releases may nest (a release deploys, whose health releases followers, ...).
MAX_DEPTH = 4


class Admission(NamedTuple):
    """How a deploy meets its gates: checked as usual, or let through by someone, and why."""

    #: A repository admin's ``/deploy <env> --during-freeze``: the freeze does not hold this deploy.
    during_freeze_by: str = ""
    #: Why a waiting merge runs again (``unlocked by @bob``), for the record's ``queued`` phase.
    released: str = ""
    depth: int = 0
    #: When the released merge first began to wait (kept if it waits again: it stays as old as it is).
    since: float = 0.0


#: A deploy that meets its gates as usual.
CHECKED = Admission()

#: The deploy job's entry point, passed in (this module is imported by it).
Deploy = Callable[..., list[DeployReport]]


def check(ctx: JobContext, repo: Repository, env: Environment, merge_sha: str, admission: Admission) -> Gate:
    """The gate of ``env`` for the merge ``merge_sha`` now (open without Redis: nothing can hold it)."""
    if ctx.redis is None:
        return OPEN
    repository = owner_identity(repo)
    lock = Locks(ctx.redis).get(repository, env.name)
    windows = environment_windows(ctx.policy, repository, env)
    freeze = active(windows, utc()) if windows else None
    records = Deployments(ctx.redis)
    upstream = {name: records.get(repository, name, merge_sha) for name in env.after}
    return decide(lock, freeze, upstream, during_freeze=admission.during_freeze_by)


def preview_lines(ctx: JobContext, repo: Repository, env: Environment) -> list[str]:
    """What a preview says about ``env``'s gates now: its lock and its order (freezes: the preview's own note)."""
    lock = None
    if ctx.redis is not None:
        try:
            lock = Locks(ctx.redis).get(owner_identity(repo), env.name)
        except redis.RedisError as exc:  # the preview goes on without the lock line
            log.warning("could not read the lock of %s: %s", env.name, type(exc).__name__)
    return texts.preview_lines(env.name, lock, env.after)


def queued_reason(gate: Gate, admission: Admission) -> str:
    """The ``queued`` phase's reason: why a deploy that waited (or might have) goes now."""
    parts = [texts.released_reason(admission.released)] if admission.released else []
    if gate.reason:
        parts.append(gate.reason)
    return "; ".join(parts)


def hold(
    ctx: JobContext, event: PullRequestMerged, env: Environment, merge_sha: str, gate: Gate, admission: Admission
) -> DeployReport:
    """Make the merge a waiter of ``env``; the report to publish (its status pending with the reason)."""
    assert ctx.redis is not None  # check() opens every gate without Redis
    waiter = Waiter(merge_sha, to_dict(event), admission.since or time.time(), gate.kind, gate.reason, gate.until)
    Waiting(ctx.redis).add(owner_identity(event.repo), env.name, waiter)
    log.info("deploy of %s to %s waits: %s", merge_sha[:12], env.name, gate.reason)
    return DeployReport(
        env.name, merge_sha, state="waiting", waiting=gate.reason, note=texts.waiting_paragraph(env.name, gate)
    )


def after_hold(
    ctx: JobContext,
    event: PullRequestMerged,
    env: Environment,
    merge_sha: str,
    deploy: Deploy,
    admission: Admission,
) -> list[DeployReport]:
    """Once the waiting report is out: replace older waiters, then make sure the gate did not open meanwhile."""
    assert ctx.redis is not None
    if ctx.journal is not None:  # waiting is this job's outcome, not a status it left unfinished
        ctx.journal(merge_sha, "success", status_name("deploy", env.name))
    repository = owner_identity(event.repo)
    store = Waiting(ctx.redis)
    waiters = store.all(repository, env.name)
    if waiters and waiters[0].commit == merge_sha:
        _supersede(ctx, env.name, waiters[1:], merge_sha, store)
    elif any(w.commit == merge_sha for w in waiters):  # a newer merge already waits: this one is replaced
        newest = waiters[0]
        _supersede(ctx, env.name, [w for w in waiters if w.commit == merge_sha], newest.commit, store)
        return []
    if check(ctx, event.repo, env, merge_sha, admission).open and admission.depth < MAX_DEPTH:
        return release(ctx, event.repo, env.name, texts.WHY_OPENED, deploy, admission.depth)
    return []


def after_deploy(
    ctx: JobContext, repo: Repository, env: str, report: DeployReport, deploy: Deploy, admission: Admission
) -> list[DeployReport]:
    """A deploy of ``env`` ended: supersede the waiters its commit includes; if healthy, release followers."""
    if ctx.redis is None or report.state not in ("success", "superseded") or not report.deployed_sha:
        return []
    store = Waiting(ctx.redis)
    repository = owner_identity(repo)
    included = [
        w
        for w in store.all(repository, env)
        if w.commit != report.merge_sha and ctx.git.contains(repo, report.deployed_sha, w.commit)
    ]
    _supersede(ctx, env, included, report.deployed_sha, store)
    if report.state == "success" and admission.depth < MAX_DEPTH:
        return release_followers(ctx, repo, env, deploy, admission.depth)
    return []


def release(
    ctx: JobContext, repo: Repository, env: str, why: str, deploy: Deploy, depth: int = 0
) -> list[DeployReport]:
    """Let the newest merge waiting on ``env`` deploy it (it may wait again); the older ones are superseded."""
    if ctx.redis is None:
        return []
    store = Waiting(ctx.redis)
    waiters = store.take_all(owner_identity(repo), env)
    if not waiters:
        return []
    newest, older = waiters[0], waiters[1:]
    _supersede(ctx, env, older, newest.commit, None)
    event = from_dict(newest.event)
    if not isinstance(event, PullRequestMerged):
        log.error("a waiter of %s is not a merge (%s); dropped", env, event.kind)
        return []
    log.info("releasing %s for %s: %s", newest.commit[:12], env, why)
    return deploy(event, ctx, only=env, admission=Admission(released=why, depth=depth + 1, since=newest.since))


def release_followers(
    ctx: JobContext, repo: Repository, env: str, deploy: Deploy, depth: int = 0
) -> list[DeployReport]:
    """``env`` turned healthy: try the environments of ``repo`` whose merges wait on order."""
    if ctx.redis is None:
        return []
    repository = owner_identity(repo)
    store = Waiting(ctx.redis)
    out = []
    for repo_id, waiting_env in store.environments():
        if repo_id != repository or waiting_env == env:
            continue
        waiters = store.all(repo_id, waiting_env)
        if waiters and waiters[0].kind == "after":
            out += release(ctx, repo, waiting_env, texts.why_healthy(env), deploy, depth)
    return out


def sweep(ctx: JobContext, deploy: Deploy) -> int:
    """The periodic pass: release every environment whose newest waiter's freeze has ended; how many."""
    if ctx.redis is None:
        return 0
    store = Waiting(ctx.redis)
    now, released = time.time(), 0
    for repo_id, env in store.environments():
        waiters = store.all(repo_id, env)
        if not waiters or waiters[0].kind != "freeze" or waiters[0].until > now:
            continue
        event = from_dict(waiters[0].event)
        try:
            release(ctx, event.repo, env, texts.WHY_THAWED, deploy)
        except Exception as exc:  # one repository's failure must not keep the others frozen
            log.error("could not release %s of %s: %s: %s", env, repo_id, type(exc).__name__, exc)
        released += 1
    return released


def _supersede(ctx: JobContext, env: str, waiters: list[Waiter], newer: str, store: Waiting | None) -> None:
    """Mark ``waiters`` superseded by ``newer`` (record and pull request); take them off the list first."""
    if not waiters:
        return
    if store is not None:
        commits = store.remove(owner_of(waiters[0]), env, [w.commit for w in waiters])
        waiters = [w for w in waiters if w.commit in commits]
    for waiter in waiters:
        event = from_dict(waiter.event)
        if not isinstance(event, PullRequestMerged):
            continue
        Recorder(ctx, event).phase(env, waiter.commit, "superseded", reason=texts.superseded_reason(newer))
        report = DeployReport(
            env, waiter.commit, deployed_sha=newer, state="superseded", note=texts.superseded_while_waiting(newer)
        )
        out = ctx.publisher(event)
        out.deploy_outcome(report)
        ForgeDeployment(event, out).outcome(report)  # the forge's deployment of the waiting merge retires
        log.info("waiting deploy of %s to %s superseded by %s", waiter.commit[:12], env, newer[:12])


def owner_of(waiter: Waiter) -> str:
    """The repository (``forge:owner/name``) of a waiter's merge."""
    return owner_identity(from_dict(waiter.event).repo)
