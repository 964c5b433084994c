"""Which job an event starts, and on which queue it waits.

One queue per job kind, so a burst of previews (every push to every open PR) cannot delay a
deploy or a rollback, and operators can run more workers for the busy kind. ``help`` gets its own
small queue because it is instant and should never wait behind a preview.
"""

from __future__ import annotations

from typing import Final, Literal

from mergeway.events import CommentCommand, Event, PullRequestMerged, PullRequestUpdated

JobKind = Literal["preview", "deploy", "rollback", "help"]
JOB_KINDS: Final[tuple[JobKind, ...]] = ("preview", "deploy", "rollback", "help")

#: Celery task name and queue per job kind. The queue name is also the Redis list the worker reads.
TASK_NAMES: Final[dict[JobKind, str]] = {kind: f"mergeway.{kind}" for kind in JOB_KINDS}
QUEUES: Final[dict[JobKind, str]] = {kind: kind for kind in JOB_KINDS}


def route(event: Event) -> JobKind | None:
    """The job an event runs, or ``None`` (a pull request closed without merging runs nothing)."""
    if isinstance(event, PullRequestUpdated):
        return "preview"
    if isinstance(event, PullRequestMerged):
        return "deploy"
    if isinstance(event, CommentCommand):
        # Allowing held-back changes is a deploy: it waits on the deploy queue and environment lock.
        return "deploy" if event.command.name == "allow-destructive" else event.command.name
    return None
