"""``/lock <env> [reason]``, ``/unlock <env>`` and ``/deploy <env> --during-freeze``.

They run on the deploy queue (:func:`mergeway.jobs.kinds.command_kind`) because ``/unlock`` and
``/deploy`` start deploys. Locks need write access, like merging; deploying through a freeze needs
a repository admin, since a freeze is a decision above a single merge. Each answer is one sticky
reply per pull request; the deploy, when one follows, reports in its own comment and status.

``/lock`` and ``/unlock`` also work on Mergeway's drift issue (an :class:`IssueCommand`), where an
incident is often first seen: same rules, the environment as the default branch configures it, and
the answer a reply on the issue. Any other issue gets a reply saying where the commands work.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from mergeway.events import CommentCommand, IssueCommand, PullRequestMerged, Repository
from mergeway.forge.base import Permission, PullRequestInfo
from mergeway.gates import Locks, Waiting
from mergeway.jobs import waiting
from mergeway.jobs.applysets import owner_identity
from mergeway.jobs.context import JobContext
from mergeway.jobs.environment import READ_ERRORS
from mergeway.jobs.reapply import drift_environment
from mergeway.repoconfig import Environment
from mergeway.report import gates as texts
from mergeway.report.deploy import DeployReport
from mergeway.report.markdown import refusal
from mergeway.report.publish import Publisher

log = logging.getLogger("mergeway.jobs.gatecommands")

COMMANDS = frozenset({"lock", "unlock", "deploy"})
DURING_FREEZE = "--during-freeze"


def run(event: CommentCommand | IssueCommand, ctx: JobContext, deploy: waiting.Deploy) -> list[DeployReport]:
    """Answer one gate command; ``deploy`` is the deploy job's entry point (``/unlock`` and ``/deploy`` use it)."""
    forge, out = ctx.forge(event.repo), ctx.publisher(event)
    name, args = event.command.name, event.command.args
    answer = _answer(event, out)
    if isinstance(event, CommentCommand):
        out.seen(event.comment_id)
    elif name == "deploy" or drift_environment(forge, event.issue) is None:
        answer(texts.not_on_this_issue(event.author, name))
        return []
    if not args or (name == "unlock" and len(args) != 1) or (name == "deploy" and args[1:] != (DURING_FREEZE,)):
        answer(texts.usage(event.author, name))
        return []
    permission = forge.get_permission(event.author)
    if not permission.can_write:
        nothing = "locked" if name == "lock" else "run"
        if isinstance(event, CommentCommand):
            out.refusal(name, event.author, nothing=nothing)
        else:
            answer(refusal(event.author, name, nothing=nothing))
        return []
    if ctx.redis is None:
        raise RuntimeError("locks need Redis")
    # A pull request's environments are its target branch's; the drift issue's, the default branch's.
    pr = forge.get_pull_request(event.pr.number) if isinstance(event, CommentCommand) else None
    env = _environment(ctx, event.repo, pr.base_ref if pr else event.repo.default_branch, args[0], event.author, answer)
    if env is None:
        return []
    repository = owner_identity(event.repo)
    if name == "lock":
        lock, taken = Locks(ctx.redis).take(repository, env.name, event.author, " ".join(args[1:]))
        reply = texts.locked if taken else texts.already_locked
        answer(reply(event.author, env.name, lock))
        log.info("%s %s by %s", env.name, "locked" if taken else "already locked", event.author)
        return []
    if name == "unlock":
        held = Locks(ctx.redis).release(repository, env.name)
        if held is None:
            answer(texts.not_locked(event.author, env.name))
            return []
        count = len(Waiting(ctx.redis).all(repository, env.name))
        answer(texts.unlocked(event.author, env.name, count))
        log.info("%s unlocked by %s; %d merge(s) waiting", env.name, event.author, count)
        return waiting.release(ctx, event.repo, env.name, texts.why_unlocked(event.author), deploy)
    assert isinstance(event, CommentCommand) and pr is not None  # /deploy on an issue was answered above
    return _deploy_during_freeze(ctx, event, pr, env, permission, out, deploy)


def _answer(event: CommentCommand | IssueCommand, out: Publisher) -> Callable[[str], None]:
    """Where the answer goes: the pull request's sticky gate reply, or a reply on the issue."""
    if isinstance(event, IssueCommand):
        return functools.partial(out.issue_reply, event.issue)
    return out.gate_reply


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
    ctx: JobContext, repo: Repository, branch: str, name: str, author: str, answer: Callable[[str], None]
) -> Environment | None:
    """The environment ``name`` as ``branch`` configures it; answers and returns ``None`` if unknown."""
    try:
        head = ctx.git.branch_head(repo, branch)
        with ctx.checkout(repo, head, None) as root:
            config = ctx.load_repo_config(root)
    except READ_ERRORS as exc:
        log.warning("could not read the configuration of %s: %s", branch, type(exc).__name__)
        answer(texts.unknown_environment(author, name, []))
        return None
    env = config.environment(name)
    if env is None:
        answer(texts.unknown_environment(author, name, [e.name for e in config.environments]))
    return env
