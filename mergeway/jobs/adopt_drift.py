"""``/adopt-drift`` on the drift issue: a pull request that writes the live values into the repository.

The other way to end drift: the cluster is right and Git is made to say so, through a pull request
that gets a normal preview (which shows no change, since Git then matches the cluster) and a normal
review. The drift is checked afresh (the issue may be minutes old), the edits are computed by
:mod:`mergeway.adoption` on the head of the environment's branch, committed by Mergeway on a bot
branch named from their content, pushed, and opened as a pull request. Asking again with the same
drift finds the same pull request.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

from mergeway.adoption import Adoption, adopt, write
from mergeway.drift import ObjectDrift
from mergeway.events import EnvironmentEvent, Event, IssueCommand
from mergeway.git import GitError
from mergeway.jobs.context import JobContext
from mergeway.jobs.drift import check as drift_check
from mergeway.jobs.environment import EXPECTED, EnvironmentStep
from mergeway.jobs.reapply import configured, issue_environment
from mergeway.jobs.rollback import BOT_EMAIL, BOT_NAME
from mergeway.repoconfig import Environment
from mergeway.report import drift as texts

log = logging.getLogger("mergeway.jobs.adopt_drift")


def run(event: Event, ctx: JobContext) -> str:
    """Celery entry point: open (or find) the adoption pull request; its URL, or '' when there is none."""
    if not isinstance(event, IssueCommand) or event.command.name != "adopt-drift":
        raise TypeError("the adopt-drift job handles /adopt-drift on an issue only")
    forge, out = ctx.forge(event.repo), ctx.publisher(event)
    environment = issue_environment(event, ctx)
    if environment is None:
        return ""
    repo = event.repo
    found = drift_check(EnvironmentEvent(event.delivery_id, repo, environment, reason="adopt-drift"), ctx)
    if found.error:
        out.issue_reply(event.issue, texts.adopt_failed(event.author, environment, found.error))
        return ""
    if not found.drifted:
        out.issue_reply(event.issue, texts.nothing_to_adopt(event.author, environment))
        return ""
    try:
        base = ctx.git.branch_head(repo, repo.default_branch)
        env = configured(ctx, repo, environment, base)
        branch_name = env.branch or repo.default_branch
        head = ctx.git.branch_head(repo, branch_name)
        adoption, branch = _push(ctx, event, env, head, found.objects)
    except EXPECTED as exc:
        why = EnvironmentStep(ctx, repo, Environment(environment, "", ""), "deploy").stopped(exc)
        out.issue_reply(event.issue, texts.adopt_failed(event.author, environment, why))
        return ""
    if not adoption.files:
        out.issue_reply(event.issue, texts.none_adopted(event.author, environment, adoption.skipped))
        return ""
    body = texts.adoption_body(environment, found.commit, event.issue, event.author, adoption.adopted, adoption.skipped)
    opened = forge.open_pull_request(branch, branch_name, texts.adoption_title(environment), body)
    out.issue_reply(event.issue, texts.adopted(event.author, opened.url, len(adoption.adopted), adoption.skipped))
    return opened.url


def _push(
    ctx: JobContext, event: IssueCommand, env: Environment, head: str, objects: Sequence[ObjectDrift]
) -> tuple[Adoption, str]:
    """Write the adoption on top of ``head``, commit and push it; the adoption and the branch it went to."""
    repo = event.repo
    with ctx.checkout(repo, head, None) as root:
        adoption = adopt(root, env.path, list(objects), env.namespace)
        if not adoption.files:
            return adoption, ""
        branch = f"mergeway/adopt-drift-{env.name}-{write(root, adoption)[:12]}"
        existing = ctx.forge(repo).find_open_pull_request(branch)
        if existing is not None and existing.author.lower() == ctx.forge(repo).identity().login.lower():
            return adoption, branch
        identity = ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]
        ctx.git.git(repo, root, "add", "--", *sorted(adoption.files))
        message = texts.adoption_commit(env.name, len(adoption.adopted))
        ctx.git.git(repo, root, *identity, "commit", "--quiet", "-m", message)
        if existing is None:
            try:
                ctx.git.push(repo, root, branch)
                log.info("pushed %s adopting the drift of %s", branch, env.name)
                return adoption, branch
            except GitError:
                log.warning("could not push %s (pushed by someone else?); using a fresh branch", branch)
        fresh = f"{branch}-{secrets.token_hex(4)}"
        ctx.git.push(repo, root, fresh)
    return adoption, fresh
