"""The job kinds: which job an event starts, its Celery task and queue, and the code that runs it.

One queue per job kind, so a burst of previews (every push to every open PR) cannot delay a
deploy or a rollback, and operators can run more workers for the busy kind. ``help`` gets its own
small queue because it is instant and should never wait behind a preview.

Everything that names a kind reads it from here: intake (which queue to publish on), the web
service (which queues to measure), the worker (which queues to consume, which task runs what) and
the slash commands (which job a command starts). The command names themselves are the
``CommandName`` type of :class:`mergeway.events.Command`; this module only says which job runs each.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

from mergeway.events import CommandName, CommentCommand, Event, PullRequestMerged, PullRequestUpdated

JobKind = Literal["preview", "deploy", "rollback", "help"]
JOB_KINDS: Final[tuple[JobKind, ...]] = get_args(JobKind)

#: Celery task name and queue per job kind. The queue name is also the Redis list the worker reads.
TASK_NAMES: Final[Mapping[JobKind, str]] = MappingProxyType({kind: f"mergeway.{kind}" for kind in JOB_KINDS})
QUEUES: Final[Mapping[JobKind, str]] = MappingProxyType({kind: kind for kind in JOB_KINDS})


Run = Callable[[Event], None]


def command_kind(command: CommandName) -> JobKind:
    """The job a slash command starts.

    Allowing held-back changes is a deploy: it waits on the deploy queue and environment lock.
    Every other command is the job of the same name (mypy checks that each of them is a kind).
    """
    return "deploy" if command == "allow-destructive" else command


def route(event: Event) -> JobKind | None:
    """The job an event runs, or ``None`` (a pull request closed without merging runs nothing)."""
    if isinstance(event, PullRequestUpdated):
        return "preview"
    if isinstance(event, PullRequestMerged):
        return "deploy"
    if isinstance(event, CommentCommand):
        return command_kind(event.command.name)
    return None


def kind_of_task(task_name: str) -> JobKind | None:
    """The job kind a Celery task name belongs to (``None`` for a task that is not a job)."""
    return next((kind for kind, name in TASK_NAMES.items() if name == task_name), None)


@functools.cache
def runs() -> Mapping[JobKind, Run]:
    """Each job kind's entry point, ``run(event)``.

    The job modules are imported on the first call, in a worker about to run a job, not when this
    module is imported: the web service names kinds and queues but must not load the forge
    clients, renderers and Kubernetes engine the jobs need (about 500 modules and most of a second).
    """
    from mergeway.jobs import deploy, help, preview, rollback

    table: dict[JobKind, Run] = {
        "preview": preview.run,
        "deploy": deploy.run,
        "rollback": rollback.run,
        "help": help.run,
    }
    return MappingProxyType(table)
