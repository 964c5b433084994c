"""The forge interface every job talks to, whichever of GitHub or GitLab hosts the repository.

Only the operations Mergeway needs are here, each phrased in Mergeway's terms (a pull request is a
"pull request" on both forges; GitLab's ``iid`` is its ``number``). Implementations translate to the
client libraries and turn their exceptions into :mod:`mergeway.forge.errors`.

The sticky-comment algorithm lives here rather than in each implementation because its correctness
argument (converging to exactly one comment even when jobs race without a lock) must not diverge
between forges.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import requests

from mergeway.events import PullRequest, Repository
from mergeway.forge.errors import (
    CommentTooLongError,
    ForgeAuthError,
    ForgeError,
    ForgeNotFoundError,
    ForgePermissionError,
    ForgeUnavailableError,
    ForgeValidationError,
)

log = logging.getLogger("mergeway.forge")

StatusState = Literal["pending", "success", "failure", "error"]
MergeMethod = Literal["merge", "squash", "rebase"]
Reaction = Literal["eyes", "+1", "-1", "rocket", "confused", "heart", "hooray", "laugh"]
#: A factory returning a context manager that holds a lock for the duration of a ``with`` block,
#: e.g. ``lambda: redis_client.lock(key, timeout=60)``. Called once per locked section.
LockFactory = Callable[[], AbstractContextManager[object]]

STATUS_STATES: tuple[StatusState, ...] = ("pending", "success", "failure", "error")
#: Both forges cap the description; GitHub documents 140 characters.
STATUS_DESCRIPTION_LIMIT = 140


class Permission(enum.Enum):
    """A user's effective permission on a repository, reduced to what Mergeway decides on.

    GitHub: ``admin`` → ADMIN; ``maintain``/``write`` → WRITE (the API's legacy ``permission`` field
    already folds maintain into write); ``triage``/``read`` → READ. GitLab: Maintainer/Owner (40/50) →
    ADMIN, Developer (30) → WRITE, Guest/Planner/Reporter (10-20) → READ, none/minimal → NONE.
    """

    NONE = "none"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def can_write(self) -> bool:
        """True when the user may push to the repository: who may run ``/rollback``."""
        return self in (Permission.WRITE, Permission.ADMIN)


@dataclass(frozen=True)
class CommentRef:
    """A comment (GitHub issue comment / GitLab MR note). ``id`` orders comments by creation."""

    id: int
    body: str
    url: str = ""
    author: str = ""
    #: The author's numeric user id, when the forge gave one (logins can be renamed; ids cannot).
    author_id: int | None = None


@dataclass(frozen=True)
class Identity:
    """The account Mergeway's credentials act as, as the forge itself reports it (never configured).

    Sticky comments are matched by this author as well as by their marker: anyone can write the
    marker into a comment of their own, and such a comment must never be edited or deleted.
    """

    login: str
    id: int | None = None

    def wrote(self, comment: CommentRef) -> bool:
        if self.id is not None and comment.author_id is not None:
            return comment.author_id == self.id
        return bool(comment.author) and comment.author.lower() == self.login.lower()


@dataclass(frozen=True)
class PullRequestInfo:
    """A pull/merge request as the forge reports it now.

    ``merge_method`` is a hint for reverting, derived from the commits: ``merge`` (a commit with two
    parents: ``git revert -m 1``), ``squash`` (one new commit: revert as is) or ``rebase`` (the
    ``commit_count`` commits ending at ``merge_commit_sha``: revert the range). It is ``None`` while
    the pull request is not merged. On GitLab a fast-forward merge reports the head SHA as
    ``merge_commit_sha`` and ``rebase`` as the method.
    """

    number: int
    title: str
    url: str
    author: str
    state: Literal["open", "closed", "merged"]
    base_ref: str
    head_ref: str
    head_sha: str
    merged: bool = False
    merge_commit_sha: str | None = None
    merge_method: MergeMethod | None = None
    commit_count: int = 0
    is_fork: bool = False
    body: str = ""
    #: Label names, e.g. ``mergeway/allow-destructive`` (which lets a merge prune storage).
    labels: tuple[str, ...] = ()

    def as_event(self) -> PullRequest:
        """The forge-neutral :class:`~mergeway.events.PullRequest` jobs pass around."""
        return PullRequest(
            number=self.number,
            title=self.title,
            head_sha=self.head_sha,
            head_ref=self.head_ref,
            base_ref=self.base_ref,
            author=self.author,
            url=self.url,
            is_fork=self.is_fork,
            merge_commit_sha=self.merge_commit_sha,
        )


@dataclass(frozen=True)
class IssueRef:
    """An issue (not a pull request) as the forge reports it; ``number`` is GitLab's ``iid``.

    Mergeway keeps one issue per (repository, environment) for drift, found again by a hidden
    marker in its body and by its author (see :meth:`Forge.find_issue`).
    """

    number: int
    title: str
    body: str
    url: str
    state: Literal["open", "closed"]
    author: str = ""
    author_id: int | None = None

    def as_comment(self) -> CommentRef:
        """The issue's body as a comment of its author's, to ask :meth:`Identity.wrote` who wrote it."""
        return CommentRef(id=self.number, body=self.body, url=self.url, author=self.author, author_id=self.author_id)


@dataclass(frozen=True, repr=False)
class GitCredentials:
    """HTTP credentials for git, fetched fresh per use (GitHub App tokens expire hourly)."""

    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"GitCredentials(username={self.username!r}, password=***)"


#: A deployment's state as Mergeway reports it: GitHub's deployment status states. GitLab maps them
#: to its own (``queued`` has no GitLab equivalent; ``error`` is ``failed``; ``inactive`` is ``canceled``).
DeploymentState = Literal["queued", "in_progress", "success", "failure", "error", "inactive"]


@dataclass(frozen=True)
class DeploymentUpdate:
    """One state of one deploy, as the forge's Environments view shows it.

    ``sha`` is the merge commit the deployment is for; ``ref`` the branch it was merged into.
    ``log_url`` points at the deploy comment and ``environment_url`` at the running environment
    (``url:`` in ``.mergeway.yaml``); both may be empty. ``pr`` goes in GitHub's payload.
    """

    environment: str
    sha: str
    ref: str
    state: DeploymentState
    description: str = ""
    log_url: str = ""
    environment_url: str = ""
    pr: int = 0


def clip_description(description: str) -> str:
    """A status or deployment description cut to the forge's 140 characters."""
    if len(description) > STATUS_DESCRIPTION_LIMIT:
        return description[: STATUS_DESCRIPTION_LIMIT - 1] + "…"
    return description


def unanswered_error(exc: Exception, forge: str, action: str, repo: str) -> ForgeError:
    """The error for a call ``forge`` gave no HTTP answer to: already ours, the network's, or a bug's."""
    if isinstance(exc, ForgeError):
        return exc
    if isinstance(exc, requests.RequestException):
        return ForgeUnavailableError(f"{forge}: could not {action} in {repo}: {type(exc).__name__} talking to the API")
    return ForgeError(f"{forge}: could not {action} in {repo}: {type(exc).__name__}")


#: The refusals each forge words for itself (what to check differs by forge), and what each one is.
REFUSALS: dict[int, type[ForgeError]] = {401: ForgeAuthError, 403: ForgePermissionError, 404: ForgeNotFoundError}
#: A refusal's ``{message}`` when the forge gave none.
_REASONS = {401: "Bad credentials", 403: "Forbidden", 404: "Not Found"}


def status_error(
    forge: str, action: str, repo: str, status: int, message: str, refusals: Mapping[int, str]
) -> ForgeError:
    """The error for an HTTP answer from ``forge`` to ``action`` on ``repo``, naming what failed.

    ``refusals`` words the :data:`REFUSALS` for this forge, with ``{message}`` (the forge's own
    reason) and ``{repo}`` filled in; refused content, failures and anything else read alike.
    """
    where = f"{forge}: could not {action} in {repo}"
    if status in refusals:
        text = refusals[status].format(message=message or _REASONS[status], repo=repo)
        return REFUSALS[status](f"{where}: {text}", status=status)
    if status in (400, 409, 422):
        return ForgeValidationError(f"{where}: {forge} refused the request (HTTP {status}: {message})", status=status)
    if status >= 500:
        return ForgeUnavailableError(f"{where}: {forge} failed (HTTP {status}) after retries", status=status)
    return ForgeError(f"{where}: HTTP {status}: {message}", status=status)


class Forge(abc.ABC):
    """One repository on one forge. Construct with :func:`mergeway.forge.forge_for`."""

    #: ``"github"`` or ``"gitlab"``
    name: ClassVar[str]
    #: Display name used in error messages.
    display_name: ClassVar[str]

    #: The client library's exceptions (and requests'), turned into ForgeErrors by :meth:`_api`.
    client_errors: ClassVar[tuple[type[Exception], ...]]

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    @staticmethod
    @abc.abstractmethod
    def translate_error(exc: Exception, action: str, repo: str) -> ForgeError:
        """The :class:`ForgeError` for a client exception: what failed, in words an operator acts on."""

    @contextlib.contextmanager
    def _api(self, action: str) -> Iterator[None]:
        """Run forge calls whose failure must reach the job as a :class:`ForgeError` naming ``action``."""
        try:
            yield
        except self.client_errors as exc:
            raise self.translate_error(exc, action, self.repo.full_name) from None

    # -- limits ---------------------------------------------------------------------------------

    #: Longest comment body the forge accepts, in characters; the report layer fits to it.
    comment_limit: ClassVar[int]

    def check_comment_length(self, body: str) -> None:
        """Raise :class:`CommentTooLongError` rather than let the forge reject (or truncate) a body."""
        if len(body) > self.comment_limit:
            raise CommentTooLongError(self.display_name, len(body), self.comment_limit)

    # -- comments -------------------------------------------------------------------------------

    @abc.abstractmethod
    def list_comments(self, number: int) -> list[CommentRef]:
        """All comments on the pull request, oldest first."""

    @abc.abstractmethod
    def get_comment(self, number: int, comment_id: int) -> CommentRef | None:
        """Comment ``comment_id`` as the forge has it now, or ``None`` unless it is on pull request ``number``.

        Who wrote a command and what it says are read here, never from a delivery: anyone holding a
        webhook secret can sign a payload naming any author (:mod:`mergeway.forge.identity`).
        """

    @abc.abstractmethod
    def create_comment(self, number: int, body: str) -> CommentRef:
        """Post a new comment (checks the length first)."""

    @abc.abstractmethod
    def edit_comment(self, number: int, comment_id: int, body: str) -> CommentRef:
        """Replace a comment's body (checks the length first)."""

    @abc.abstractmethod
    def delete_comment(self, number: int, comment_id: int) -> None:
        """Delete a comment; raises :class:`ForgeNotFoundError` if it is already gone."""

    def upsert_comment(self, number: int, marker: str, body: str, *, lock: LockFactory | None = None) -> CommentRef:
        """Create or edit *the* comment of Mergeway's own carrying ``marker`` (e.g. ``<!-- mergeway:preview:prod -->``).

        Only comments written by :meth:`identity` count: a comment of someone else's that contains
        (or quotes) the marker is neither edited nor deleted.

        With ``lock`` (workers pass a Redis lock keyed by PR and marker), jobs take turns and there is
        never a duplicate. Without it, two racing jobs may each create a comment, but both then list
        again, agree on the oldest (lowest id) as the survivor, edit it and delete the others, so the
        pull request converges to one comment. The marker is prepended when ``body`` lacks it.
        """
        if not marker.strip():
            raise ValueError("upsert_comment needs a non-empty marker")
        text = body if marker in body else f"{marker}\n{body}"
        self.check_comment_length(text)
        guard: AbstractContextManager[object] = lock() if lock is not None else contextlib.nullcontext()
        with guard:
            matching = self.marked(number, marker)
            if not matching:
                created = self.create_comment(number, text)
                matching = self.marked(number, marker) or [created]
            keep, *others = sorted(matching, key=lambda c: c.id)
            if keep.body != text:
                keep = self.edit_comment(number, keep.id, text)
            for other in others:
                log.info(
                    "removing duplicate comment %s on %s#%s (keeping %s)",
                    other.id,
                    self.repo.full_name,
                    number,
                    keep.id,
                )
                with contextlib.suppress(ForgeNotFoundError):  # a racing job deleted it first
                    self.delete_comment(number, other.id)
            return keep

    def marked(self, number: int, marker: str) -> list[CommentRef]:
        """Mergeway's own comments carrying ``marker``; other people's are never touched."""
        me = self.identity()
        return [c for c in self.list_comments(number) if marker in c.body and me.wrote(c)]

    # -- who we are -------------------------------------------------------------------------------

    @abc.abstractmethod
    def identity(self) -> Identity:
        """The account these credentials act as, asked of the forge (cached per process)."""

    @abc.abstractmethod
    def repository_info(self) -> dict[str, Any]:
        """The repository as the forge API reports it (the raw JSON object)."""

    # -- statuses and reactions -------------------------------------------------------------------

    def set_status(
        self, sha: str, state: StatusState, context: str, description: str = "", target_url: str = ""
    ) -> None:
        """Set commit status ``context`` on ``sha``. Descriptions are cut to 140 characters."""
        if state not in STATUS_STATES:
            raise ValueError(f"status state must be one of {', '.join(STATUS_STATES)}, not {state!r}")
        if not context.strip():
            raise ValueError("status context must not be empty")
        self._set_status(sha, state, context, clip_description(description), target_url)

    @abc.abstractmethod
    def _set_status(self, sha: str, state: StatusState, context: str, description: str, target_url: str) -> None: ...

    @abc.abstractmethod
    def add_reaction(self, number: int, comment_id: int, reaction: Reaction = "eyes") -> None:
        """React to a comment (GitHub reaction / GitLab award emoji); repeating it is harmless."""

    # -- people -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def get_permission(self, username: str) -> Permission:
        """The user's permission on this repository; NONE for strangers and unknown users."""

    # -- pull requests ----------------------------------------------------------------------------

    @abc.abstractmethod
    def get_pull_request(self, number: int) -> PullRequestInfo:
        """The pull request with its merge commit and merge-method hint."""

    @abc.abstractmethod
    def label_added_by(self, number: int, label: str) -> str:
        """Who last added ``label`` to the pull request (``""`` if nobody did), from the forge's label events.

        A label says nothing about who set it, and setting one needs less than write access (GitHub
        Triage, GitLab Reporter): whoever the events name is checked like a commenter.
        """

    @abc.abstractmethod
    def find_open_pull_request(self, head: str) -> PullRequestInfo | None:
        """The open pull request whose source branch is ``head`` in this repository, if any."""

    @abc.abstractmethod
    def _create_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequestInfo: ...

    def open_pull_request(self, head: str, base: str, title: str, body: str = "") -> PullRequestInfo:
        """Open a pull request from the pushed branch ``head`` into ``base``.

        Idempotent: when one is already open for ``head`` (a re-run job, or a retried POST whose
        first attempt succeeded), that one is returned instead of failing.
        """
        self.check_comment_length(body)
        existing = self.find_open_pull_request(head)
        if existing is not None:
            return existing
        try:
            return self._create_pull_request(head, base, title, body)
        except ForgeValidationError:
            existing = self.find_open_pull_request(head)
            if existing is not None:
                return existing
            raise

    # -- issues (the drift issue) ------------------------------------------------------------------
    #
    # An issue's comments are addressed apart from a pull request's: on GitLab an issue and a merge
    # request may share a number, and their notes live under different paths.

    @abc.abstractmethod
    def open_issues(self, author: str) -> list[IssueRef]:
        """The open issues (never pull requests) ``author`` opened, oldest first."""

    @abc.abstractmethod
    def get_issue(self, number: int) -> IssueRef | None:
        """Issue ``number`` as the forge has it now; ``None`` when there is none (or it is a pull request)."""

    @abc.abstractmethod
    def open_issue(self, title: str, body: str) -> IssueRef:
        """Open a new issue (checks the body's length first)."""

    @abc.abstractmethod
    def edit_issue(self, number: int, title: str, body: str) -> IssueRef:
        """Replace an issue's title and body in place (checks the length first)."""

    @abc.abstractmethod
    def _close_issue(self, number: int) -> None: ...

    @abc.abstractmethod
    def comment_on_issue(self, number: int, body: str) -> CommentRef:
        """Post a comment on issue ``number`` (checks the length first)."""

    @abc.abstractmethod
    def get_issue_comment(self, number: int, comment_id: int) -> CommentRef | None:
        """Comment ``comment_id`` as the forge has it now, or ``None`` unless it is on issue ``number``.

        What :func:`mergeway.forge.identity.verified_issue_command` reads a command's author and text from.
        """

    def find_issue(self, marker: str) -> IssueRef | None:
        """The open issue of Mergeway's own carrying ``marker`` (the oldest, if a race opened two).

        Only issues :meth:`identity` opened count: anyone can paste the marker into an issue of their own.
        """
        if not marker.strip():
            raise ValueError("find_issue needs a non-empty marker")
        me = self.identity()
        mine = [i for i in self.open_issues(me.login) if marker in i.body and me.wrote(i.as_comment())]
        return min(mine, key=lambda i: i.number) if mine else None

    def close_issue(self, number: int, comment: str) -> None:
        """Say why in a comment, then close the issue (closing a closed issue is harmless)."""
        self.comment_on_issue(number, comment)
        self._close_issue(number)

    # -- git --------------------------------------------------------------------------------------

    @abc.abstractmethod
    def git_credentials(self) -> GitCredentials:
        """Username and token for git over HTTPS; refreshed when the token is near expiry."""

    # -- deployments (the forge's own Environments view) ------------------------------------------

    #: Whether :meth:`create_deployment` already sets ``update.state`` (GitLab), or a status must follow (GitHub).
    deployment_created_in_state: ClassVar[bool] = False

    @abc.abstractmethod
    def create_deployment(self, update: DeploymentUpdate) -> int | None:
        """Create the forge's deployment of ``update.sha`` to ``update.environment``; its id.

        ``None`` when the forge has no way to show ``update.state`` on a new deployment (GitLab
        cannot create one ``queued``): the caller creates it at the next state instead.
        """

    @abc.abstractmethod
    def update_deployment(self, deployment_id: int, update: DeploymentUpdate) -> None:
        """Move deployment ``deployment_id`` to ``update.state``; repeating a state is harmless."""

    def retires_previous_deployments(self, environment: str) -> bool:
        """Whether a ``success`` makes the forge itself retire the environment's earlier deployments."""
        return True
