"""The ``release`` kind: every few seconds, let through the merges whose freeze window has ended.

Locks and environment order are released by events (``/unlock``, an environment turning healthy);
the end of a freeze is an event nobody sends, so the scheduler (``mergeway-beat``) asks. Waiters and
their freeze's end are in Redis (:mod:`mergeway.gates`), so a release missed while no worker ran
happens on the next tick.
"""

from __future__ import annotations

import logging

from mergeway.events import Tick
from mergeway.jobs import waiting
from mergeway.jobs.context import JobContext
from mergeway.jobs.deploy import deploy

log = logging.getLogger("mergeway.jobs.release")


def run(tick: Tick, ctx: JobContext) -> int:
    released = waiting.sweep(ctx, deploy)
    if released:
        log.info("released %d environment(s) whose freeze ended", released)
    return released
