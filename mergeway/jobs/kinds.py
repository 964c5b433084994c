"""The job kinds: one table entry per kind says its queue, time limit, schedule and the code that runs it.

One queue per job kind, so a burst of previews (every push to every open PR) cannot delay a
deploy or a rollback, and operators can run more workers for the busy kind. ``help`` gets its own
small queue because it is instant and should never wait behind a preview.

Everything that names a kind reads it from :data:`KINDS`: intake (which queue to publish on), the
web service (which queues to measure), the worker (which queues to consume, which task runs what,
each task's time limits), the scheduler (which kinds run periodically) and the slash commands
(which job a command starts). Adding a kind is one :class:`JobSpec` in the table (or one
:func:`register` call before the worker or the scheduler is started) plus its ``run``.

The table names each ``run`` as ``module:function`` and imports it only in a worker about to run
a job: the web service names kinds and queues but must not load the forge clients, renderers and
Kubernetes engine the jobs need (about 500 modules and most of a second).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Literal, NamedTuple, get_args

from mergeway.events import (
    CommandName,
    CommentCommand,
    Event,
    IssueCommand,
    MergeGroup,
    PullRequestMerged,
    PullRequestUpdated,
)

#: The kinds Mergeway ships; a kind added with :func:`register` is any other string.
BuiltinKind = Literal["preview", "deploy", "rollback", "help", "drift", "revert-drift", "adopt-drift", "release"]
JobKind = str
JOB_KINDS: Final[tuple[BuiltinKind, ...]] = get_args(BuiltinKind)

#: A job's entry point: ``run(event, ctx)`` for event jobs, ``run(tick, ctx)`` for periodic ones, where
#: ``ctx`` is the job's :class:`mergeway.jobs.context.JobContext` (not imported here: see above).
Run = Callable[[Any, Any], object]


class JobSpec(NamedTuple):
    """Everything any process needs to know about one job kind."""

    #: ``module:function`` of the job's entry point (imported only in a worker, on first use).
    run: str
    #: The hard time limit: a :class:`mergeway.config.Settings` attribute (seconds) or seconds.
    time_limit: str | float
    #: The Celery queue (and Redis list); empty: the kind's own name.
    queue: str = ""
    #: Seconds between two runs started by the scheduler (``mergeway-beat``), or a
    #: :class:`mergeway.config.Settings` attribute holding them; 0: started by events only.
    every: str | float = 0.0


#: The table. Built-in kinds first; :func:`register` adds more.
KINDS: dict[JobKind, JobSpec] = {
    "preview": JobSpec("mergeway.jobs.preview:run", "preview_time_limit_seconds"),
    "deploy": JobSpec("mergeway.jobs.deploy:run", "deploy_time_limit_seconds"),
    "rollback": JobSpec("mergeway.jobs.rollback:run", "preview_time_limit_seconds"),
    "help": JobSpec("mergeway.jobs.help:run", 120.0),
    # Drift: one job per environment (scheduled, or ``/drift``), started by a periodic kind per interval.
    "drift": JobSpec("mergeway.jobs.drift:run", "preview_time_limit_seconds"),
    "drift-schedule": JobSpec("mergeway.jobs.drift:schedule", 120.0, every="drift_interval_seconds"),
    # A merge queue waits on these: its own queues, so PR previews never delay them, and a cancel
    # never waits behind the preview it cancels.
    "merge_group": JobSpec("mergeway.jobs.mergegroup:run", "preview_time_limit_seconds"),
    "merge_group_cancel": JobSpec("mergeway.jobs.mergegroup:cancel", 120.0),
    # The drift issue's commands: a revert applies under the environment's lock like a deploy.
    "revert-drift": JobSpec("mergeway.jobs.revert_drift:run", "deploy_time_limit_seconds"),
    "adopt-drift": JobSpec("mergeway.jobs.adopt_drift:run", "preview_time_limit_seconds"),
    # Lets merges that waited for a freeze window through once it ended (mergeway.jobs.waiting.sweep);
    # on the deploy queue, since what it starts is deploys.
    "release": JobSpec("mergeway.jobs.release:run", "deploy_time_limit_seconds", queue="deploy", every=10.0),
}


def register(kind: JobKind, spec: JobSpec) -> None:
    """Add a job kind; call it before the worker's Celery app or the scheduler is created."""
    if kind in KINDS and KINDS[kind] != spec:
        raise ValueError(f"job kind {kind!r} is already registered differently")
    KINDS[kind] = spec


def task_name(kind: JobKind) -> str:
    return f"mergeway.{kind}"


def queue_of(kind: JobKind) -> str:
    return KINDS[kind].queue or kind


class _View(Mapping[JobKind, str]):
    """A read-only view of one column of :data:`KINDS` (kinds registered later included)."""

    def __init__(self, column: Callable[[JobKind], str]) -> None:
        self.column = column

    def __getitem__(self, kind: JobKind) -> str:
        if kind not in KINDS:
            raise KeyError(kind)
        return self.column(kind)

    def __iter__(self) -> Iterator[JobKind]:
        return iter(list(KINDS))

    def __len__(self) -> int:
        return len(KINDS)


#: Celery task name and queue per job kind. The queue name is also the Redis list the worker reads.
TASK_NAMES: Final[Mapping[JobKind, str]] = _View(task_name)
QUEUES: Final[Mapping[JobKind, str]] = _View(queue_of)


def every(kind: JobKind, settings: Any = None) -> float:
    """Seconds between scheduled runs of ``kind``, read from ``settings`` when the table names a setting.

    Without ``settings``, a named setting's default (the class attribute) is used.
    """
    value = KINDS[kind].every
    if isinstance(value, str):
        if settings is None:
            from mergeway.config import Settings  # a leaf, imported only for a kind that names a setting

            settings = Settings
        return float(getattr(settings, value))
    return float(value)


def scheduled(kind: JobKind) -> bool:
    """Whether ``kind`` is a periodic kind (its Celery task runs ticks), whatever its interval now."""
    return bool(KINDS[kind].every)


def periodic(settings: Any = None) -> dict[JobKind, float]:
    """The kinds the scheduler starts, with their intervals (a kind whose interval is 0 now is off)."""
    intervals = {kind: every(kind, settings) for kind in KINDS if scheduled(kind)}
    return {kind: seconds for kind, seconds in intervals.items() if seconds > 0}


def time_limit(kind: JobKind, settings: Any) -> float:
    """The ``kind`` job's hard time limit in seconds, read from ``settings`` when the table names a setting."""
    limit = KINDS[kind].time_limit
    return float(getattr(settings, limit)) if isinstance(limit, str) else float(limit)


def command_kind(command: CommandName) -> BuiltinKind:
    """The job a slash command starts.

    Allowing held-back changes is a deploy: it waits on the deploy queue and environment lock; so are
    the gate commands (``/unlock`` and ``/deploy --during-freeze`` start deploys, ``/lock`` must not
    race them). Every other command is the job of the same name (mypy checks that each of them is a kind).
    """
    if command == "allow-destructive" or command == "lock" or command == "unlock" or command == "deploy":
        return "deploy"
    return command


def route(event: Event) -> JobKind | None:
    """The job an event runs, or ``None`` (a pull request closed without merging runs nothing)."""
    if isinstance(event, PullRequestUpdated):
        return "preview"
    if isinstance(event, PullRequestMerged):
        return "deploy"
    if isinstance(event, CommentCommand | IssueCommand):
        return command_kind(event.command.name)
    if isinstance(event, MergeGroup):
        return "merge_group" if event.action == "checks_requested" else "merge_group_cancel"
    return None


def kind_of_task(task: str) -> JobKind | None:
    """The job kind a Celery task name belongs to (``None`` for a task that is not a job)."""
    return next((kind for kind in KINDS if task_name(kind) == task), None)


@functools.cache
def run_of(kind: JobKind) -> Run:
    """The ``kind`` job's entry point, imported on first use (see the module's docstring)."""
    module, _, function = KINDS[kind].run.partition(":")
    run: Run = getattr(importlib.import_module(module), function)
    return run


def runs() -> Mapping[JobKind, Run]:
    """Each job kind's entry point (imports every job module)."""
    return {kind: run_of(kind) for kind in KINDS}
