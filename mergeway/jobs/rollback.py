"""The rollback job: ``/rollback`` on a merged pull request opens a pull request that reverts it.

Rolling back through Git, rather than re-applying an old state to the cluster, keeps Git the
source of truth: merging the revert deploys the previous state through the normal deploy path, with
a preview first. Only users who could push the revert themselves (write access) may ask; everyone
else gets a clear reply and nothing is created. Asking again returns the same revert pull request.

The revert branch's name is predictable (``mergeway/revert-<n>-<sha12>``), so anyone may have pushed
that branch or opened a merge request from it first (on GitLab, even from a fork). An open pull
request on it is vouched for only when Mergeway itself opened it, from this repository, and its head
is exactly the revert Mergeway computes on top of its parent; otherwise, and when the name is taken
by a branch Mergeway cannot push to, the revert goes to a fresh name.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from mergeway.events import CommentCommand, Event, Repository
from mergeway.forge.base import Forge, PullRequestInfo
from mergeway.git import GitError
from mergeway.jobs.context import JobContext
from mergeway.report import rollback as texts

log = logging.getLogger("mergeway.jobs.rollback")

BOT_NAME = "Mergeway"
BOT_EMAIL = "mergeway@users.noreply.local"


def revert_branch(pr: PullRequestInfo) -> str:
    return f"mergeway/revert-{pr.number}-{(pr.merge_commit_sha or '')[:12]}"


def run(event: Event, ctx: JobContext) -> str:
    """Open (or find) the revert pull request; returns its URL, or '' when refused."""
    if not isinstance(event, CommentCommand) or event.command.name != "rollback":
        raise TypeError("the rollback job handles /rollback comments only")
    forge, out = ctx.forge(event.repo), ctx.publisher(event)
    out.seen(event.comment_id)
    if not forge.get_permission(event.author).can_write:
        out.rollback_reply(texts.refused(event.author))
        return ""
    pr = forge.get_pull_request(event.pr.number)
    if not pr.merged or not pr.merge_commit_sha:
        out.rollback_reply(texts.not_merged(event.author, pr.number, pr.state))
        return ""
    branch = revert_branch(pr)
    existing = forge.find_open_pull_request(branch)
    if existing is not None and _is_our_revert(ctx, forge, event.repo, pr, existing):
        out.rollback_reply(texts.already_open(existing.url))
        return existing.url
    if existing is not None:
        log.warning("%s is open from %s but is not Mergeway's revert; using a fresh branch", existing.url, branch)
    try:
        branch = _push_revert(ctx, event, pr, branch, taken=existing is not None)
    except GitError as exc:
        out.rollback_reply(texts.not_reverted(event.author, pr.number, pr.base_ref, str(exc)))
        return ""
    body = texts.revert_body(pr.number, pr.url, event.author)
    opened = forge.open_pull_request(branch, pr.base_ref, texts.revert_title(pr.title), body)
    out.rollback_reply(texts.opened(event.author, opened.url))
    return opened.url


def _is_our_revert(
    ctx: JobContext, forge: Forge, repo: Repository, pr: PullRequestInfo, found: PullRequestInfo
) -> bool:
    """Whether ``found`` is the revert of ``pr`` this job would open: Mergeway's, same repository, same content.

    The content check recomputes the revert on top of the head's parent (which must be on the base
    branch) and compares trees, so a commit pushed onto the branch by anyone else does not pass.
    """
    if found.is_fork or found.base_ref != pr.base_ref or found.author.lower() != forge.identity().login.lower():
        return False
    ctx.git.fetch(repo, sha=found.head_sha)
    try:
        with ctx.checkout(repo, found.head_sha, None) as worktree:
            parent = ctx.git.git(repo, worktree, "rev-parse", "--verify", "HEAD^1").stdout.strip()
            if len(ctx.git.git(repo, worktree, "rev-list", "--parents", "-n", "1", "HEAD").stdout.split()) != 2:
                return False  # a revert commit has one parent
            ctx.git.git(repo, worktree, "merge-base", "--is-ancestor", parent, f"refs/heads/{pr.base_ref}")
            tree = ctx.git.git(repo, worktree, "rev-parse", "HEAD^{tree}").stdout.strip()
            ctx.git.git(repo, worktree, "checkout", "--quiet", "--detach", parent)
            _revert(ctx, repo, worktree, pr)
            return ctx.git.git(repo, worktree, "rev-parse", "HEAD^{tree}").stdout.strip() == tree
    except GitError:
        return False


def _push_revert(ctx: JobContext, event: CommentCommand, pr: PullRequestInfo, branch: str, *, taken: bool) -> str:
    """Revert the merge on top of the current base branch and push it; returns the branch it went to.

    ``branch`` is used unless ``taken`` (someone else's pull request is open from it) or the push is
    refused (someone pushed it first): then ``<branch>-<random>``, which nobody can have pushed before.
    """
    repo, sha = event.repo, pr.merge_commit_sha or ""
    head = ctx.git.branch_head(repo, pr.base_ref)
    with ctx.checkout(repo, head, None) as worktree:
        ctx.git.fetch(repo, sha=sha)
        _revert(ctx, repo, worktree, pr)
        if not taken:
            try:
                ctx.git.push(repo, worktree, branch)
                log.info("pushed %s reverting %s", branch, sha[:12])
                return branch
            except GitError:
                log.warning("could not push %s (pushed by someone else?); using a fresh branch", branch)
        fresh = f"{branch}-{secrets.token_hex(4)}"
        ctx.git.push(repo, worktree, fresh)
    log.info("pushed %s reverting %s", fresh, sha[:12])
    return fresh


def _revert(ctx: JobContext, repo: Repository, worktree: Path, pr: PullRequestInfo) -> None:
    """Commit the revert of ``pr``'s merge on top of the worktree's HEAD."""
    sha = pr.merge_commit_sha or ""
    identity = ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]
    if pr.merge_method == "merge":
        ctx.git.git(repo, worktree, *identity, "revert", "--no-edit", "-m", "1", sha)
    elif pr.merge_method == "rebase" and pr.commit_count > 1:
        # A rebase-merge landed several commits; revert them all, newest first, as one commit.
        ctx.git.git(repo, worktree, *identity, "revert", "--no-edit", "--no-commit", f"{sha}~{pr.commit_count}..{sha}")
        ctx.git.git(
            repo,
            worktree,
            *identity,
            "commit",
            "--quiet",
            "-m",
            texts.revert_message(pr.title, pr.commit_count, pr.number),
        )
    else:  # a squash commit (or a single rebased commit) reverts as is
        ctx.git.git(repo, worktree, *identity, "revert", "--no-edit", sha)
