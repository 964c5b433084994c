"""The help job: ``/help`` answers with the commands Mergeway understands, on the pull request."""

from __future__ import annotations

from mergeway.events import CommentCommand, Event
from mergeway.gates import Locks
from mergeway.jobs.applysets import owner_identity
from mergeway.jobs.context import JobContext
from mergeway.report import gates as gate_texts


def run(event: Event, ctx: JobContext) -> None:
    """Celery entry point (see :mod:`mergeway.jobs`)."""
    if not isinstance(event, CommentCommand):
        raise TypeError("the help job handles comments only")
    out = ctx.publisher(event)
    out.seen(event.comment_id)
    locks = Locks(ctx.redis).all(owner_identity(event.repo)) if ctx.redis is not None else {}
    out.help([gate_texts.lock_line(env, lock) for env, lock in sorted(locks.items())])
