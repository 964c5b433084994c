"""The drift job: compare one environment's live objects with the commit last applied there.

Started per (repository, environment) by the periodic drift kind (:func:`schedule`) or by
``/drift`` on a pull request. :func:`check` returns a :class:`~mergeway.drift.DriftCheck`;
:func:`run` stores it (:class:`~mergeway.drift.DriftStore`, read by the environments page) and
hands it to the publisher (``ctx.publisher(event).drift(check)``), the one way out to the forge.
"""

from __future__ import annotations

import logging
import time

from mergeway.deployments import Deployments
from mergeway.drift import DriftCheck, DriftStore
from mergeway.events import EnvironmentEvent, Event
from mergeway.jobs.applysets import owner_identity
from mergeway.jobs.context import JobContext
from mergeway.jobs.reapply import environment_at, self_heal
from mergeway.repoconfig import HelmOptions

log = logging.getLogger("mergeway.jobs.drift")


def run(event: Event, ctx: JobContext) -> DriftCheck:
    """Celery entry point (see :mod:`mergeway.jobs`): check one environment, store and publish the result."""
    if not isinstance(event, EnvironmentEvent):
        raise TypeError(f"the drift job does not handle {event.kind} events")
    result = check(event, ctx)
    if ctx.redis is not None:
        DriftStore(ctx.redis).put(result)
    env = environment_at(ctx, event.repo, event.environment, result.commit) if result.drifted else None
    ctx.publisher(event).drift(result, helm=env is not None and env.helm != HelmOptions())
    if env is not None and env.self_heal:  # revert at once; the issue says so (mergeway.jobs.reapply)
        result = self_heal(event, ctx, result, check)
    return result


def check(event: EnvironmentEvent, ctx: JobContext) -> DriftCheck:
    """The drift of ``event.environment`` against its last applied commit (skeleton: compares nothing yet)."""
    repository = owner_identity(event.repo)
    commit = ""
    if ctx.redis is not None:
        newest = Deployments(ctx.redis).history(repository, event.environment, limit=1)
        commit = newest[0].applied_commit if newest else ""
    return DriftCheck(repository, event.environment, commit, time.time())
