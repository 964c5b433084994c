"""Forge-neutral events: what a webhook means, independent of who sent it.

Intake turns a GitHub or GitLab delivery into one of these; workers receive them as plain JSON
(Celery is configured for JSON only), so every event round-trips through :func:`to_dict` and
:func:`from_dict` without pickling. Keeping them small and typed is what lets the preview, deploy
and rollback jobs never care which forge a pull request lives on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Forge = Literal["github", "gitlab"]
#: The slash commands Mergeway answers; :mod:`mergeway.jobs.kinds` says which job runs each.
CommandName = Literal[
    "rollback",
    "preview",
    "help",
    "allow-destructive",
    "drift",
    "revert-drift",
    "adopt-drift",
    "lock",
    "unlock",
    "deploy",
]
#: The same names as a tuple, in that order, for parsing and listing them.
COMMAND_NAMES: tuple[CommandName, ...] = get_args(CommandName)
#: The commands answered on an issue (the drift issue), never on a pull request; every other
#: command but :data:`EITHER_COMMANDS` is answered on pull requests only (:class:`IssueCommand`).
ISSUE_COMMANDS: frozenset[CommandName] = frozenset({"revert-drift", "adopt-drift"})
#: The commands answered on pull requests and on the drift issue alike: a lock is about an
#: environment, not a change, and the drift issue is where an incident is often first seen.
EITHER_COMMANDS: frozenset[CommandName] = frozenset({"lock", "unlock"})


@dataclass(frozen=True)
class Repository:
    """Where the code lives.

    ``full_name`` is ``owner/name`` on GitHub and ``path_with_namespace`` on GitLab; ``project_id``
    is GitLab's numeric id (the API prefers it) and ``None`` on GitHub. ``clone_url`` never carries
    credentials: they are supplied at fetch time.

    What intake builds from a webhook is only the delivery's *claim*: ``clone_url`` is left empty
    (payload URLs are never used) and ``installation_id`` is the GitHub App installation the delivery
    names. Workers replace it with the repository as the configured forge's API reports it, with a
    clone URL on the configured forge host (:func:`mergeway.forge.identity.verified_repository`).
    """

    forge: Forge
    full_name: str
    clone_url: str
    default_branch: str = "main"
    project_id: int | None = None
    web_url: str = ""
    installation_id: int | None = None


@dataclass(frozen=True)
class PullRequest:
    """The parts of a pull/merge request every job needs.

    ``is_fork`` matters for security: a fork's manifests are untrusted, so previews of them do not
    reach the cluster unless the operator allows it.
    """

    number: int
    title: str
    head_sha: str
    head_ref: str
    base_ref: str
    author: str
    url: str = ""
    is_fork: bool = False
    merge_commit_sha: str | None = None


@dataclass(frozen=True)
class Command:
    """A slash command parsed from a comment, e.g. ``/rollback`` or ``/preview staging``."""

    name: CommandName
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Event:
    """Base of every event. ``delivery_id`` is the forge's id for the delivery (stable on redelivery)."""

    kind: str = field(init=False)
    delivery_id: str
    repo: Repository


@dataclass(frozen=True)
class PullRequestUpdated(Event):
    """Opened, reopened, or new commits pushed: the preview job runs."""

    kind: str = field(init=False, default="pr_updated")
    pr: PullRequest
    action: str = ""


@dataclass(frozen=True)
class PullRequestMerged(Event):
    """Merged into its base branch: the deploy job runs."""

    kind: str = field(init=False, default="pr_merged")
    pr: PullRequest
    merged_by: str = ""


@dataclass(frozen=True)
class PullRequestClosed(Event):
    """Closed without merging: nothing runs, but intake still reports what it saw."""

    kind: str = field(init=False, default="pr_closed")
    pr: PullRequest


@dataclass(frozen=True)
class CommentCommand(Event):
    """A command in a comment on a pull/merge request."""

    kind: str = field(init=False, default="comment_command")
    pr: PullRequest
    command: Command
    comment_id: int
    author: str
    #: GitLab notes and GitHub comments need the PR to react to; the body is not kept on purpose,
    #: since anything beyond the command is untrusted text no job needs.


@dataclass(frozen=True)
class IssueCommand(Event):
    """A command in a comment on an issue (not a pull request): the drift issue's ``/revert-drift``, ``/lock``...

    ``issue`` is the issue's number (GitLab's ``iid``). Like :class:`CommentCommand`, the author and
    the command are the forge's, read back by comment id before the job acts on them.
    """

    kind: str = field(init=False, default="issue_command")
    issue: int
    command: Command
    comment_id: int
    author: str


@dataclass(frozen=True)
class EnvironmentEvent(Event):
    """Something to do for one environment of a repository that no pull request started.

    A schedule (drift checks), an operator or another environment (order, hooks) starts these;
    ``reason`` says why in a few words, for logs and records. No job runs one yet: the job kinds
    that will are queued with their kind directly (:data:`mergeway.jobs.kinds.KINDS`).
    """

    kind: str = field(init=False, default="environment")
    environment: str
    reason: str = ""


@dataclass(frozen=True)
class MergeGroup(Event):
    """A GitHub merge queue's group: the commit the queue would merge, before it does.

    ``action`` is ``checks_requested`` (preview ``head_sha`` and report statuses on it) or
    ``destroyed`` (the group left the queue; ``reason`` is ``merged``, ``invalidated`` or
    ``dequeued``). Refs are branch names (``refs/heads/`` removed). The group has no pull request:
    the job finds the queued ones from the commits between ``base_sha`` and ``head_sha``.
    """

    kind: str = field(init=False, default="merge_group")
    action: str
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    reason: str = ""


@dataclass(frozen=True)
class Tick:
    """What the scheduler sends a periodic job: which kind, and when the run was due (Unix seconds).

    Not an :class:`Event`: no repository and no forge delivery stand behind it. A periodic job
    that works per environment queues :class:`EnvironmentEvent` jobs itself.
    """

    job: str
    at: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tick:
        return cls(job=str(data["job"]), at=float(data.get("at") or 0.0))


EVENT_TYPES: dict[str, type[Event]] = {
    "pr_updated": PullRequestUpdated,
    "pr_merged": PullRequestMerged,
    "pr_closed": PullRequestClosed,
    "comment_command": CommentCommand,
    "issue_command": IssueCommand,
    "environment": EnvironmentEvent,
    "merge_group": MergeGroup,
}


def to_dict(event: Event) -> dict[str, Any]:
    """Serialise an event to JSON-safe data (tuples become lists)."""
    return dataclasses.asdict(event)


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from :func:`to_dict` output; raises ``ValueError`` on an unknown kind."""
    kind = data.get("kind")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k != "kind"}
    kwargs["repo"] = Repository(**kwargs["repo"])
    if "pr" in kwargs:
        kwargs["pr"] = PullRequest(**kwargs["pr"])
    if "command" in kwargs:
        cmd = kwargs["command"]
        kwargs["command"] = Command(name=cmd["name"], args=tuple(cmd.get("args", ())))
    return cls(**kwargs)
