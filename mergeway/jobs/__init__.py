"""Job dispatch: one domain module per job kind, listed in :mod:`mergeway.jobs.kinds`.

Workers stay thin: a Celery task decodes the event and calls :func:`dispatch` with the job's
context, which looks the kind's ``run(event, ctx)`` up in the table :data:`mergeway.jobs.kinds.KINDS`
and calls it. Jobs return their outcomes and publish them through ``ctx.publisher(event)``
(:mod:`mergeway.report.publish`), the only way out to the forge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mergeway.events import Event
from mergeway.jobs.kinds import KINDS, JobKind, Run, run_of

if TYPE_CHECKING:  # the context pulls in the engine; this package is imported by the web process too
    from mergeway.jobs.context import JobContext


def handler(kind: JobKind) -> Run:
    """The ``run`` function of the ``kind`` job; ``ValueError`` for a kind Mergeway does not have."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    return run_of(kind)


def dispatch(kind: JobKind, event: Event, ctx: JobContext) -> None:
    """Run the ``kind`` job for ``event``. Jobs must be idempotent: Celery may deliver twice.

    The event's repository is the delivery's claim; it is checked against the configured forge
    first, and the job sees only the verified repository (clone URL, name, default branch).
    """
    handler(kind)(ctx.verified(event), ctx)
