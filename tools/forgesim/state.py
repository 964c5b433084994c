"""What the simulator remembers: users, tokens, repositories, pull requests and their activity.

Plain dataclasses guarded by one lock in :class:`~tools.forgesim.server.ForgeSim`; tests read them
through the simulator's accessors.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from tools.forgesim.gitrepos import BareRepo

ForgeName = Literal["github", "gitlab"]

GITHUB_LEVELS = ("read", "triage", "write", "maintain", "admin")
GITLAB_LEVELS = {"guest": 10, "planner": 15, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50}


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def gl_iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"


def gl_hook_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


@dataclass
class SimUser:
    id: int
    login: str
    name: str
    email: str
    bot: bool = False


@dataclass
class SimToken:
    value: str
    forge: ForgeName
    login: str | None = None  # a user's token
    installation_id: int | None = None  # a GitHub App installation token
    expires_at: float | None = None

    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= now()


@dataclass
class SimRepo:
    forge: ForgeName
    full_name: str
    id: int
    default_branch: str
    git: BareRepo
    owner: str
    clone_url: str
    web_url: str
    #: GitHub: login → read/triage/write/maintain/admin. GitLab: login → access level.
    members: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=now)

    @property
    def name(self) -> str:
        return self.full_name.rsplit("/", 1)[-1]

    @property
    def namespace(self) -> str:
        return self.full_name.rsplit("/", 1)[0]


@dataclass
class SimPR:
    repo: SimRepo
    number: int
    id: int
    title: str
    body: str
    head_ref: str
    base_ref: str
    head_sha: str
    base_sha: str
    author: str
    state: Literal["open", "closed", "merged"] = "open"
    merge_commit_sha: str | None = None
    #: The PR comes from a fork owned by this user (its head repository differs from the base).
    fork_owner: str | None = None
    #: The fork was deleted after the PR was opened: GitHub then reports ``head.repo: null``.
    fork_deleted: bool = False
    squash_commit_sha: str | None = None
    merge_method: str | None = None
    merged_by: str | None = None
    commit_shas: list[str] | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    closed_at: float | None = None
    merged_at: float | None = None
    labels: list[str] = field(default_factory=list)
    #: Who added or removed which label, oldest first (GitHub's issue events, GitLab's resource label events).
    label_events: list[SimLabelEvent] = field(default_factory=list)

    @property
    def merged(self) -> bool:
        return self.state == "merged"


@dataclass
class SimLabelEvent:
    id: int
    action: Literal["add", "remove"]
    label: str
    actor: str
    created_at: float = field(default_factory=now)


@dataclass
class SimComment:
    id: int
    repo: SimRepo
    number: int
    body: str
    author: str
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    #: On an issue (GitLab numbers issues apart from merge requests: see :mod:`tools.forgesim.issues`).
    on_issue: bool = False


@dataclass
class SimStatus:
    id: int
    repo: SimRepo
    sha: str
    context: str
    state: str
    description: str
    target_url: str
    creator: str
    created_at: float = field(default_factory=now)


@dataclass
class SimReaction:
    id: int
    repo: SimRepo
    comment_id: int
    content: str
    user: str
    created_at: float = field(default_factory=now)


@dataclass
class SimApp:
    app_id: int
    slug: str
    private_key_pem: str
    public_key_pem: str
    installations: dict[int, set[str]] = field(default_factory=dict)  # id → repo full names


@dataclass
class Fault:
    """A response the simulator gives instead of the real one, ``remaining`` more times."""

    forge: ForgeName | None
    method: str | None
    path: str | None  # a regex searched in the API path, e.g. r"/issues/\d+/comments$"
    status: int | None
    headers: dict[str, str]
    body: Any
    delay: float
    remaining: int
    hits: int = 0
    #: Set by :meth:`release`; a fault made with ``hold=True`` keeps each matching request waiting
    #: until then, as long as a client may wait: a deterministic "slower than the timeout".
    released: threading.Event | None = None

    def release(self) -> None:
        """Let the requests this fault holds be answered."""
        if self.released is not None:
            self.released.set()


@dataclass
class RequestRecord:
    forge: ForgeName
    method: str
    path: str
    status: int
    kind: Literal["api", "git"]
    bytes_out: int = 0
    principal: str = ""
