"""The help job: ``/help`` answers with the commands Mergeway understands, on the pull request."""

from __future__ import annotations

from mergeway.events import CommentCommand, Event
from mergeway.jobs.context import JobContext, default_context

MARKER = "<!-- mergeway:help -->"
HELP = """{marker}
**Mergeway commands** (comment on a pull request or merge request):

| command | what it does |
|---|---|
| `/preview` | re-run the preview of every environment (`/preview staging` for one; needs write access) |
| `/rollback` | on a merged pull request: open a pull request that reverts it (needs write access) |
| `/allow-destructive staging` | let merging prune storage, namespaces or CRDs in `staging` (needs write access) |
| `/help` | this message |

Previews run by themselves when the pull request is opened or new commits are pushed; merging deploys.
"""


def run(event: Event) -> None:
    """Celery entry point (see :mod:`mergeway.jobs`)."""
    answer(event, default_context())


def answer(event: Event, ctx: JobContext) -> None:
    if not isinstance(event, CommentCommand):
        raise TypeError("the help job handles comments only")
    forge = ctx.forge(event.repo)
    forge.add_reaction(event.pr.number, event.comment_id, "eyes")
    forge.upsert_comment(event.pr.number, MARKER, HELP.format(marker=MARKER), lock=ctx.comment_lock(event))
