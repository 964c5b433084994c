"""``/lock <env> [reason]``, ``/unlock <env>`` and ``/deploy <env> --during-freeze``.

They run on the deploy queue (:func:`mergeway.jobs.kinds.command_kind`) because ``/unlock`` and
``/deploy`` start deploys. Locks need write access, like merging; deploying through a freeze needs
a repository admin, since a freeze is a decision above a single merge. Each answer is one sticky
reply per pull request; the deploy, when one follows, reports in its own comment and status.
"""

from __future__ import annotations

import logging

from mergeway.events import CommentCommand, PullRequestMerged
from mergeway.forge.base import Permission, PullRequestInfo
from mergeway.gates import Locks, Waiting
from mergeway.jobs import waiting
from mergeway.jobs.applysets import owner_identity
from mergeway.jobs.context import JobContext
from mergeway.jobs.environment import READ_ERRORS
from mergeway.repoconfig import Environment
from mergeway.report import gates as texts
from mergeway.report.deploy import DeployReport
from mergeway.report.publish import Publisher

log = logging.getLogger("mergeway.jobs.gatecommands")

COMMANDS = frozenset({"lock", "unlock", "deploy"})
DURING_FREEZE = "--during-freeze"


def run(event: CommentCommand, ctx: JobContext, deploy: waiting.Deploy) -> list[DeployReport]:
    """Answer one gate command; ``deploy`` is the deploy job's entry point (``/unlock`` and ``/deploy`` use it)."""
    forge, out = ctx.forge(event.repo), ctx.publisher(event)
    out.seen(event.comment_id)
    name, args = event.command.name, event.command.args
    if not args or (name == "unlock" and len(args) != 1) or (name == "deploy" and args[1:] != (DURING_FREEZE,)):
        out.gate_reply(texts.usage(event.author, name))
        return []
    permission = forge.get_permission(event.author)
    if not permission.can_write:
        out.refusal(name, event.author, nothing="locked" if name == "lock" else "run")
        return []
    if ctx.redis is None:
        raise RuntimeError("locks need Redis")
    pr = forge.get_pull_request(event.pr.number)
    env = _environment(ctx, event, pr, args[0], out)
    if env is None:
        return []
    repository = owner_identity(event.repo)
    if name == "lock":
        lock, taken = Locks(ctx.redis).take(repository, env.name, event.author, " ".join(args[1:]))
        reply = texts.locked if taken else texts.already_locked
        out.gate_reply(reply(event.author, env.name, lock))
        log.info("%s %s by %s", env.name, "locked" if taken else "already locked", event.author)
        return []
    if name == "unlock":
        held = Locks(ctx.redis).release(repository, env.name)
        if held is None:
            out.gate_reply(texts.not_locked(event.author, env.name))
            return []
        count = len(Waiting(ctx.redis).all(repository, env.name))
        out.gate_reply(texts.unlocked(event.author, env.name, count))
        log.info("%s unlocked by %s; %d merge(s) waiting", env.name, event.author, count)
        return waiting.release(ctx, event.repo, env.name, texts.why_unlocked(event.author), deploy)
    return _deploy_during_freeze(ctx, event, pr, env, permission, out, deploy)


def _deploy_during_freeze(
    ctx: JobContext,
    event: CommentCommand,
    pr: PullRequestInfo,
    env: Environment,
    permission: Permission,
    out: Publisher,
    deploy: waiting.Deploy,
) -> list[DeployReport]:
    """An admin deploys this merged pull request's merge to ``env`` once, through the freeze in force."""
    if permission is not Permission.ADMIN:
        out.gate_reply(texts.admins_only(event.author, env.name))
        return []
    if not pr.merged or not pr.merge_commit_sha:
        out.gate_reply(texts.not_merged(event.author))
        return []
    gate = waiting.check(ctx, event.repo, env, pr.merge_commit_sha, waiting.Admission())
    if gate.kind != "freeze":
        out.gate_reply(texts.not_frozen(event.author, env.name) if gate.open else texts.plain(gate.reason))
        return []
    out.gate_reply(texts.deploying_during_freeze(event.author, env.name, gate.reason))
    merged = PullRequestMerged(delivery_id=event.delivery_id, repo=event.repo, pr=pr.as_event(), merged_by="")
    admission = waiting.Admission(during_freeze_by=event.author, released=texts.why_during_freeze(event.author))
    return deploy(merged, ctx, only=env.name, admission=admission)


def _environment(
    ctx: JobContext, event: CommentCommand, pr: PullRequestInfo, name: str, out: Publisher
) -> Environment | None:
    """The environment ``name`` as the target branch configures it; replies and returns ``None`` if unknown."""
    try:
        head = ctx.git.branch_head(event.repo, pr.base_ref)
        with ctx.checkout(event.repo, head, None) as root:
            config = ctx.load_repo_config(root)
    except READ_ERRORS as exc:
        log.warning("could not read the configuration of %s: %s", pr.base_ref, type(exc).__name__)
        out.gate_reply(texts.unknown_environment(event.author, name, []))
        return None
    env = config.environment(name)
    if env is None:
        out.gate_reply(texts.unknown_environment(event.author, name, [e.name for e in config.environments]))
    return env
