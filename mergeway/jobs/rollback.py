"""The rollback job: ``/rollback`` on a merged pull request opens a pull request that reverts it.

Rolling back through Git, rather than re-applying an old state to the cluster, keeps Git the
source of truth: merging the revert deploys the previous state through the normal deploy path, with
a preview first. Only users who could push the revert themselves (write access) may ask; everyone
else gets a clear reply and nothing is created. Asking again returns the same revert pull request.
"""

from __future__ import annotations

import logging

from mergeway.events import CommentCommand, Event
from mergeway.forge.base import Forge, PullRequestInfo
from mergeway.git import GitError
from mergeway.jobs.context import JobContext, default_context
from mergeway.report import rollback as texts

log = logging.getLogger("mergeway.jobs.rollback")

BOT_NAME = "Mergeway"
BOT_EMAIL = "mergeway@users.noreply.local"


def revert_branch(pr: PullRequestInfo) -> str:
    return f"mergeway/revert-{pr.number}-{(pr.merge_commit_sha or '')[:12]}"


def run(event: Event) -> None:
    """Celery entry point (see :mod:`mergeway.jobs`)."""
    rollback(event, default_context())


def _reply(ctx: JobContext, forge: Forge, event: CommentCommand, text: str) -> None:
    forge.upsert_comment(event.pr.number, texts.MARKER, texts.render_reply(text), lock=ctx.comment_lock(event))


def rollback(event: Event, ctx: JobContext) -> str:
    """Open (or find) the revert pull request; returns its URL, or '' when refused."""
    if not isinstance(event, CommentCommand) or event.command.name != "rollback":
        raise TypeError("the rollback job handles /rollback comments only")
    forge = ctx.forge(event.repo)
    forge.add_reaction(event.pr.number, event.comment_id, "eyes")
    if not forge.get_permission(event.author).can_write:
        _reply(ctx, forge, event, texts.refused(event.author))
        return ""
    pr = forge.get_pull_request(event.pr.number)
    if not pr.merged or not pr.merge_commit_sha:
        _reply(ctx, forge, event, texts.not_merged(event.author, pr.number, pr.state))
        return ""
    branch = revert_branch(pr)
    existing = forge.find_open_pull_request(branch)
    if existing is not None:
        _reply(ctx, forge, event, texts.already_open(existing.url))
        return existing.url
    try:
        _push_revert(ctx, event, pr, branch)
    except GitError as exc:
        _reply(ctx, forge, event, texts.not_reverted(event.author, pr.number, pr.base_ref, str(exc)))
        return ""
    body = texts.revert_body(pr.number, pr.url, event.author)
    opened = forge.open_pull_request(branch, pr.base_ref, texts.revert_title(pr.title), body)
    _reply(ctx, forge, event, texts.opened(event.author, opened.url))
    return opened.url


def _push_revert(ctx: JobContext, event: CommentCommand, pr: PullRequestInfo, branch: str) -> None:
    """Revert the merge on top of the current base branch and push it as ``branch``."""
    repo, sha = event.repo, pr.merge_commit_sha or ""
    head = ctx.git.branch_head(repo, pr.base_ref)
    identity = ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]
    with ctx.checkout(repo, head, None) as worktree:
        ctx.git.fetch(repo, sha=sha)
        if pr.merge_method == "merge":
            ctx.git.git(repo, worktree, *identity, "revert", "--no-edit", "-m", "1", sha)
        elif pr.merge_method == "rebase" and pr.commit_count > 1:
            # A rebase-merge landed several commits; revert them all, newest first, as one commit.
            ctx.git.git(
                repo, worktree, *identity, "revert", "--no-edit", "--no-commit", f"{sha}~{pr.commit_count}..{sha}"
            )
            ctx.git.git(
                repo,
                worktree,
                *identity,
                "commit",
                "--quiet",
                "-m",
                f'Revert "{pr.title}"\n\nThis reverts the {pr.commit_count} commits of #{pr.number}.',
            )
        else:  # a squash commit (or a single rebased commit) reverts as is
            ctx.git.git(repo, worktree, *identity, "revert", "--no-edit", sha)
        ctx.git.push(repo, worktree, branch)
    log.info("pushed %s reverting %s", branch, sha[:12])
