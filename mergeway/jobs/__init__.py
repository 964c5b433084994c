"""Job dispatch: one domain module per job kind, found by name.

Workers stay thin: a Celery task decodes the event and calls :func:`dispatch`, which imports
``mergeway.jobs.<kind>`` and calls its ``run(event)``. Until a kind's module exists (the preview,
deploy, rollback and help issues add them), dispatching it raises :class:`JobNotImplementedError`, so
the job fails visibly in the worker log and in the result backend instead of pretending success.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from mergeway.events import Event
from mergeway.intake.router import JOB_KINDS, JobKind


class JobNotImplementedError(NotImplementedError):
    """The job kind has no implementation in this build of Mergeway."""


def handler(kind: JobKind) -> Callable[[Event], None]:
    """The ``run`` function of ``mergeway.jobs.<kind>``; :class:`JobNotImplementedError` if none."""
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    module_name = f"{__name__}.{kind}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module exists but one of its imports is missing: a real bug, not "not yet"
        raise JobNotImplementedError(f"the {kind} job is not implemented yet (no module {module_name})") from None
    run = getattr(module, "run", None)
    if not callable(run):
        raise JobNotImplementedError(f"{module_name} has no run(event) function")
    return cast(Callable[[Event], None], run)


def dispatch(kind: JobKind, event: Event) -> None:
    """Run the ``kind`` job for ``event``. Jobs must be idempotent: Celery may deliver twice.

    The event's repository is the delivery's claim; it is checked against the configured forge
    first, and the job sees only the verified repository (clone URL, name, default branch).
    """
    run = handler(kind)
    from mergeway.jobs.context import default_context

    run(default_context().verified(event))
