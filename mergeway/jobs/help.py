"""The help job: ``/help`` answers with the commands Mergeway understands, on the pull request."""

from __future__ import annotations

from mergeway.events import CommentCommand, Event
from mergeway.jobs.context import JobContext, default_context
from mergeway.report.help import MARKER, render_help


def run(event: Event) -> None:
    """Celery entry point (see :mod:`mergeway.jobs`)."""
    answer(event, default_context())


def answer(event: Event, ctx: JobContext) -> None:
    if not isinstance(event, CommentCommand):
        raise TypeError("the help job handles comments only")
    forge = ctx.forge(event.repo)
    forge.add_reaction(event.pr.number, event.comment_id, "eyes")
    forge.upsert_comment(event.pr.number, MARKER, render_help(), lock=ctx.comment_lock(event))
