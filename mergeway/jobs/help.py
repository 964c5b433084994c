"""The help job: ``/help`` answers with the commands Mergeway understands, on the pull request."""

from __future__ import annotations

from mergeway.events import CommentCommand, Event
from mergeway.jobs.context import JobContext


def run(event: Event, ctx: JobContext) -> None:
    """Celery entry point (see :mod:`mergeway.jobs`)."""
    if not isinstance(event, CommentCommand):
        raise TypeError("the help job handles comments only")
    out = ctx.publisher(event)
    out.seen(event.comment_id)
    out.help()
