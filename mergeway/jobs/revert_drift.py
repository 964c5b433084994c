"""``/revert-drift`` on the drift issue: re-apply the commit last applied to its environment.

Only users with write access may ask, and only on Mergeway's own drift issue, whose hidden marker
names the environment. The work is :func:`mergeway.jobs.reapply.reapply` (the environment's lock,
the policy, the engine; never a newer or older commit); the environment is then checked again,
the drift issue shows the result (closed when nothing is left) and the asker gets a reply.
"""

from __future__ import annotations

from mergeway.events import EnvironmentEvent, Event, IssueCommand
from mergeway.jobs.context import JobContext
from mergeway.jobs.drift import check
from mergeway.jobs.reapply import issue_environment, reapply, recheck
from mergeway.report import drift as texts


def run(event: Event, ctx: JobContext) -> str:
    """Celery entry point: revert the drift of the issue's environment; the commit re-applied ('' if none)."""
    if not isinstance(event, IssueCommand) or event.command.name != "revert-drift":
        raise TypeError("the revert-drift job handles /revert-drift on an issue only")
    out = ctx.publisher(event)
    environment = issue_environment(event, ctx)
    if environment is None:
        return ""
    commit, error = reapply(ctx, event.repo, environment)
    if error:
        out.issue_reply(event.issue, texts.revert_failed(event.author, environment, error))
        return ""
    again = EnvironmentEvent(event.delivery_id, event.repo, environment, reason="revert-drift")
    after = recheck(ctx, again, check)
    out.issue_reply(event.issue, texts.reverted(event.author, environment, commit, len(after.objects)))
    return commit
