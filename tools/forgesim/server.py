"""The forge simulator: GitHub and GitLab APIs, git smart HTTP, and webhooks, on 127.0.0.1.

One :class:`ForgeSim` runs two HTTP servers (one per forge, so URLs look like the real ones:
``http://127.0.0.1:<port>/owner/name.git`` and ``.../api/v3`` for GitHub, ``.../api/v4`` for GitLab)
over shared in-memory state and real bare repositories under a temporary directory.

Test tooling only: product code never imports this package.

API requests are handled one at a time (under :attr:`ForgeSim.lock`), like transactions in a
database; concurrency bugs in clients (two jobs both creating "the" sticky comment) still show,
because those races are between separate requests. Git traffic runs concurrently.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tools.forgesim import recording
from tools.forgesim.api import ApiError, ApiRequest, ApiResponse, Principal
from tools.forgesim.deployments import GitHubDeployments, GitLabDeployments
from tools.forgesim.github_api import GitHubAPI
from tools.forgesim.github_reviews import ReviewsAPI, SimReview, check_review
from tools.forgesim.gitlab_api import GitLabAPI
from tools.forgesim.gitrepos import SIM_AUTHOR, Author, BareRepo, Files, run_http_backend
from tools.forgesim.issues import (
    GitHubIssuesAPI,
    GitLabIssuesAPI,
    SimIssue,
    core_add_issue_comment,
    core_open_issue,
    set_state,
)
from tools.forgesim.state import (
    GITHUB_LEVELS,
    GITLAB_LEVELS,
    Fault,
    ForgeName,
    RequestRecord,
    SimApp,
    SimComment,
    SimLabelEvent,
    SimPR,
    SimReaction,
    SimRepo,
    SimStatus,
    SimToken,
    SimUser,
    now,
)
from tools.forgesim.webhooks import Delivery, WebhookSender

FORGES: tuple[ForgeName, ...] = ("github", "gitlab")
BOT = "mergeway-bot"
#: Longest a ``hold=True`` fault keeps a request waiting when the test never releases it (s).
HOLD_LIMIT = 60.0
_GIT_PATH = re.compile(r"^/(?P<repo>.+?)\.git(?P<rest>/.*)$")


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: tests inspect :attr:`ForgeSim.requests` instead."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class SimError(RuntimeError):
    """A helper was asked for something impossible (no such repository, branch or PR)."""


class ForgeSim:
    """State, servers and the helper API tests use. Start with :meth:`start` (or ``with``)."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1") -> None:
        self.root = Path(root)
        self.host = host
        self.lock = threading.RLock()
        self.users: dict[tuple[ForgeName, str], SimUser] = {}
        self.tokens: dict[str, SimToken] = {}
        self.user_tokens: dict[tuple[ForgeName, str], str] = {}
        self.repos: dict[tuple[ForgeName, str], SimRepo] = {}
        self.prs: dict[tuple[ForgeName, str, int], SimPR] = {}
        self.comments: dict[tuple[ForgeName, int], SimComment] = {}
        self.statuses: list[SimStatus] = []
        self.reactions: list[SimReaction] = []
        self.reviews: list[SimReview] = []
        self.issues: dict[tuple[ForgeName, str, int], SimIssue] = {}
        self.apps: dict[int, SimApp] = {}
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        self.issued_installation_tokens: list[SimToken] = []
        #: Lifetime of GitHub App installation tokens (GitHub: one hour).
        self.installation_token_ttl = 3600.0
        #: Whether comments and PRs created through the API trigger webhooks (real forges do).
        self.api_webhooks = True
        self.webhooks = WebhookSender()
        self.github = GitHubAPI(self)
        self.github_reviews = ReviewsAPI(self.github)
        self.gitlab = GitLabAPI(self)
        #: Deployments (and GitLab's environments): see tools/forgesim/deployments.py.
        self.github_deployments = GitHubDeployments(self.github)
        self.gitlab_deployments = GitLabDeployments(self.gitlab)
        self.github_issues = GitHubIssuesAPI(self.github)
        self.gitlab_issues = GitLabIssuesAPI(self.gitlab)
        self._ids = itertools.count(1001)
        self._servers: dict[ForgeName, BaseWSGIServer] = {}
        self._threads: list[threading.Thread] = []
        self._barriers: dict[int, threading.Barrier] = {}
        for forge in FORGES:
            self.add_user(forge, BOT, bot=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> ForgeSim:
        for forge in FORGES:
            server = make_server(self.host, 0, self._wsgi(forge), threaded=True, request_handler=_QuietHandler)
            self._servers[forge] = server
            thread = threading.Thread(target=server.serve_forever, name=f"forgesim-{forge}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self.webhooks.close()

    def __enter__(self) -> ForgeSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def web_url(self, forge: ForgeName) -> str:
        return f"http://{self.host}:{self._servers[forge].server_port}"

    @property
    def github_url(self) -> str:
        return self.web_url("github")

    @property
    def github_api_url(self) -> str:
        """What ``GITHUB_API_URL`` should be (GitHub Enterprise layout: ``/api/v3``)."""
        return f"{self.github_url}/api/v3"

    @property
    def gitlab_url(self) -> str:
        """What ``GITLAB_URL`` should be (the API is under ``/api/v4``)."""
        return self.web_url("gitlab")

    # -- users, tokens, apps -------------------------------------------------------------------------

    def add_user(self, forge: ForgeName, login: str, *, bot: bool = False) -> SimUser:
        with self.lock:
            key = (forge, login.lower())
            if key not in self.users:
                self.users[key] = SimUser(
                    next(self._ids), login, login.replace("-", " ").title(), f"{login}@users.forgesim.invalid", bot
                )
            return self.users[key]

    def user(self, forge: ForgeName, login: str) -> SimUser:
        return self.add_user(forge, login, bot=login.endswith("[bot]"))

    def token_for(self, forge: ForgeName, login: str) -> str:
        """A personal (GitHub) or project (GitLab) access token acting as ``login``."""
        with self.lock:
            self.add_user(forge, login)
            key = (forge, login.lower())
            if key not in self.user_tokens:
                value = (
                    ("ghp_" + secrets.token_hex(18)) if forge == "github" else ("glpat-" + secrets.token_urlsafe(15))
                )
                self.tokens[value] = SimToken(value=value, forge=forge, login=login)
                self.user_tokens[key] = value
            return self.user_tokens[key]

    def bot_token(self, forge: ForgeName) -> str:
        """The token Mergeway uses in tests; the bot is a writer on every repository by default."""
        return self.token_for(forge, BOT)

    def revoke_token(self, value: str) -> None:
        with self.lock:
            self.tokens.pop(value, None)

    def create_github_app(self, slug: str = "mergeway") -> SimApp:
        """Register a GitHub App; its ``private_key_pem`` is what ``GITHUB_APP_PRIVATE_KEY`` holds."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        public = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        with self.lock:
            app = SimApp(app_id=next(self._ids), slug=slug, private_key_pem=private, public_key_pem=public)
            self.apps[app.app_id] = app
            self.add_user("github", f"{slug}[bot]", bot=True)
        return app

    def install_app(self, app: SimApp, *repos: SimRepo) -> int:
        """Install ``app`` on ``repos``; returns the installation id."""
        with self.lock:
            iid = next(self._ids)
            app.installations[iid] = {r.full_name for r in repos}
            return iid

    def can_access(self, principal: Principal, repo: SimRepo, need: str) -> bool:
        token = principal.token
        if token is None or token.forge != repo.forge:
            return False
        if token.installation_id is not None:
            return any(
                repo.full_name in app.installations.get(token.installation_id, set()) for app in self.apps.values()
            )
        level = repo.members.get(token.login or "")
        if not level:
            return False
        if repo.forge == "github":
            return level in ("write", "maintain", "admin") if need == "write" else level in GITHUB_LEVELS
        return int(level) >= 30 if need == "write" else int(level) >= 10

    def actor_login(self, forge: ForgeName, principal: Principal) -> str:
        token = principal.token
        if token is not None and token.installation_id is not None:
            for app in self.apps.values():
                if token.installation_id in app.installations:
                    return f"{app.slug}[bot]"
        return (token.login if token else None) or "anonymous"

    def installation_for(self, repo: SimRepo) -> int | None:
        for app in self.apps.values():
            for iid, names in app.installations.items():
                if repo.full_name in names:
                    return iid
        return None

    # -- repositories ----------------------------------------------------------------------------------

    def create_repo(
        self,
        forge: ForgeName,
        full_name: str,
        files: Files | None = None,
        *,
        default_branch: str = "main",
        members: dict[str, Any] | None = None,
    ) -> SimRepo:
        """A private repository with one commit of ``files`` on ``default_branch``.

        Members default to: the owner (admin / Owner), ``mergeway-bot`` and ``alice`` (write /
        Developer). ``members`` adds or overrides (GitHub role names; GitLab role names or levels).
        """
        owner = full_name.split("/", 1)[0]
        with self.lock:
            if (forge, full_name.lower()) in self.repos:
                raise SimError(f"{forge} repository {full_name} exists")
            git = BareRepo(self.root / forge / f"{full_name}.git")
            git.init(default_branch)
            base = self.web_url(forge)
            repo = SimRepo(
                forge=forge,
                full_name=full_name,
                id=next(self._ids),
                default_branch=default_branch,
                git=git,
                owner=owner,
                clone_url=f"{base}/{full_name}.git",
                web_url=f"{base}/{full_name}",
            )
            self.add_user(forge, owner)
            defaults: dict[str, Any] = {owner: "admin", BOT: "write", "alice": "write"}
            for login, level in {**defaults, **(members or {})}.items():
                self.set_permission(repo, login, level)
            self.repos[(forge, full_name.lower())] = repo
        sha = git.commit_files(
            None,
            files if files is not None else {"README.md": f"# {full_name}\n"},
            "Initial commit",
            self._author(forge, owner),
        )
        git.update_ref(f"refs/heads/{default_branch}", sha)
        return repo

    def set_permission(self, repo: SimRepo, login: str, level: str | int | None) -> None:
        """GitHub: read/triage/write/maintain/admin. GitLab: guest…owner or 10…50. ``None`` removes."""
        with self.lock:
            self.add_user(repo.forge, login)
            if level is None or level == "none":
                repo.members.pop(login, None)
            elif repo.forge == "github":
                if level not in GITHUB_LEVELS:
                    raise SimError(f"unknown GitHub role {level!r}")
                repo.members[login] = level
            else:
                names = {"admin": 50, "write": 30, "read": 20, **GITLAB_LEVELS}
                repo.members[login] = int(names[level]) if isinstance(level, str) else int(level)

    def find_repo(self, forge: ForgeName, full_name: str) -> SimRepo | None:
        return self.repos.get((forge, full_name.lower()))

    def find_repo_by_id(self, forge: ForgeName, repo_id: int) -> SimRepo | None:
        return next((r for (f, _), r in self.repos.items() if f == forge and r.id == repo_id), None)

    def _author(self, forge: ForgeName, login: str) -> Author:
        user = self.user(forge, login)
        return Author(user.name, user.email)

    # -- branches ----------------------------------------------------------------------------------------

    def head(self, repo: SimRepo, branch: str | None = None) -> str:
        sha = repo.git.branch_head(branch or repo.default_branch)
        if sha is None:
            raise SimError(f"branch {branch} does not exist in {repo.full_name}")
        return sha

    def commit(
        self,
        repo: SimRepo,
        branch: str,
        files: Files,
        *,
        message: str | None = None,
        author: str = "alice",
        parent: str | None = None,
        wait: bool = True,
    ) -> str:
        """Commit ``files`` (``None`` deletes a file) on top of ``branch`` (created from the default
        branch if missing, or from ``parent``) and "push" it: open PRs on the branch get a
        synchronize / update webhook. Returns the new SHA."""
        with repo.git.lock:
            old = repo.git.branch_head(branch)
            base = parent or old or self.head(repo)
            sha = repo.git.commit_files(
                base, files, message or f"Update {', '.join(files)}", self._author(repo.forge, author)
            )
            repo.git.update_ref(f"refs/heads/{branch}", sha, old)
        self._ref_changes(repo, {f"refs/heads/{branch}": (old, sha)}, author, wait=wait)
        return sha

    def force_push(
        self,
        repo: SimRepo,
        branch: str,
        files: Files,
        *,
        onto: str | None = None,
        message: str | None = None,
        author: str = "alice",
        wait: bool = True,
    ) -> str:
        """Replace ``branch`` with a new commit on ``onto`` (default: the default branch's head),
        discarding its previous commits, like ``git push --force`` of a rewritten branch."""
        with repo.git.lock:
            old = repo.git.branch_head(branch)
            sha = repo.git.commit_files(
                onto or self.head(repo), files, message or "Rewritten history", self._author(repo.forge, author)
            )
            repo.git.update_ref(f"refs/heads/{branch}", sha)
        self._ref_changes(repo, {f"refs/heads/{branch}": (old, sha)}, author, wait=wait)
        return sha

    def reset_branch(self, repo: SimRepo, branch: str, sha: str, *, author: str = "alice") -> None:
        with repo.git.lock:
            old = repo.git.branch_head(branch)
            repo.git.update_ref(f"refs/heads/{branch}", sha)
        self._ref_changes(repo, {f"refs/heads/{branch}": (old, sha)}, author, wait=True)

    def delete_branch(self, repo: SimRepo, branch: str) -> None:
        with repo.git.lock:
            old = repo.git.branch_head(branch)
            repo.git.update_ref(f"refs/heads/{branch}", None)
        self._ref_changes(repo, {f"refs/heads/{branch}": (old, None)}, "alice", wait=True)

    def add_history(self, repo: SimRepo, count: int, *, branch: str | None = None) -> str:
        """Append ``count`` small commits to ``branch`` in one go (for fetch benchmarks)."""
        branch = branch or repo.default_branch
        with repo.git.lock:
            old = repo.git.branch_head(branch)
            sha = repo.git.bulk_commits(branch, count, SIM_AUTHOR)
        self._ref_changes(repo, {f"refs/heads/{branch}": (old, sha)}, "alice", wait=True)
        return sha

    def pr_ref(self, pr: SimPR) -> str:
        return f"refs/pull/{pr.number}/head" if pr.repo.forge == "github" else f"refs/merge-requests/{pr.number}/head"

    def _ref_changes(
        self, repo: SimRepo, changes: dict[str, tuple[str | None, str | None]], actor: str, *, wait: bool
    ) -> list[Delivery]:
        """After refs moved: follow open PRs whose head branch moved, and send their webhooks."""
        deliveries: list[Delivery] = []
        with self.lock:
            for ref, (old, new) in changes.items():
                if not ref.startswith("refs/heads/") or new is None or old == new:
                    continue
                branch = ref[len("refs/heads/") :]
                for pr in self._prs_of(repo):
                    if pr.state != "open" or pr.head_ref != branch or pr.head_sha == new:
                        continue
                    before = pr.head_sha
                    pr.head_sha = new
                    pr.updated_at = now()
                    repo.git.update_ref(self.pr_ref(pr), new)
                    deliveries.append(self._pr_event(pr, "synchronize", actor, before=before))
        if wait:
            for d in deliveries:
                d.done.wait(self.webhooks.timeout + 5)
        return deliveries

    def _prs_of(self, repo: SimRepo) -> list[SimPR]:
        return [p for (f, full, _), p in self.prs.items() if f == repo.forge and full == repo.full_name]

    # -- pull requests: core (also used by the API handlers) ---------------------------------------------

    def core_open_pr(
        self,
        repo: SimRepo,
        head: str,
        base: str,
        title: str,
        body: str,
        author: str,
        *,
        via_api: bool = False,
        fork_owner: str | None = None,
    ) -> SimPR:
        with self.lock:
            head_sha = repo.git.branch_head(head)
            base_sha = repo.git.branch_head(base)
            if head_sha is None:
                raise ValueError("no-head")
            if base_sha is None:
                raise ValueError("no-base")
            if any(p.state == "open" and p.head_ref == head for p in self._prs_of(repo)):
                raise ValueError("exists")
            if repo.git.is_ancestor(head_sha, base_sha):
                raise ValueError("no-commits")
            # GitHub numbers issues and pull requests together; GitLab apart.
            issues = [n for (f, full, n) in self.issues if repo.forge == f == "github" and full == repo.full_name]
            number = 1 + max([p.number for p in self._prs_of(repo)] + issues, default=0)
            pr = SimPR(
                repo=repo,
                number=number,
                id=next(self._ids),
                title=title,
                body=body,
                head_ref=head,
                base_ref=base,
                head_sha=head_sha,
                base_sha=base_sha,
                author=author,
                fork_owner=fork_owner,
            )
            self.prs[(repo.forge, repo.full_name, number)] = pr
            self.add_user(repo.forge, author)
            repo.git.update_ref(self.pr_ref(pr), head_sha)
            if self.api_webhooks or not via_api:
                self._pr_event(pr, "opened", author)
            return pr

    def core_add_comment(
        self, repo: SimRepo, number: int, body: str, author: str, *, via_api: bool = False
    ) -> SimComment:
        with self.lock:
            comment = SimComment(id=next(self._ids), repo=repo, number=number, body=body, author=author)
            self.comments[(repo.forge, comment.id)] = comment
            if self.api_webhooks or not via_api:
                self._comment_event(comment)
            return comment

    def core_add_reaction(self, repo: SimRepo, comment_id: int, content: str, user: str) -> tuple[SimReaction, bool]:
        with self.lock:
            for r in self.reactions:
                if r.repo is repo and r.comment_id == comment_id and r.content == content and r.user == user:
                    return r, False
            reaction = SimReaction(next(self._ids), repo, comment_id, content, user)
            self.reactions.append(reaction)
            return reaction, True

    def core_add_review(self, pr: SimPR, user: str, event: str | None, body: str, commit_id: str) -> SimReview:
        """Record a review (GitHub's rules: see :mod:`tools.forgesim.github_reviews`); raises ApiError."""
        with self.lock:
            pending = any(r.pr is pr and r.user == user and r.state == "PENDING" for r in self.reviews)
            state = check_review(pr, user, event, body, pending)
            review = SimReview(next(self._ids), pr, user, state, body, commit_id)
            if state == "PENDING":
                review.submitted_at = None
            self.reviews.append(review)
            return review

    def core_add_status(
        self, repo: SimRepo, sha: str, context: str, state: str, description: str, target_url: str, creator: str
    ) -> SimStatus:
        with self.lock:
            status = SimStatus(next(self._ids), repo, sha, context, state, description, target_url, creator)
            self.statuses.append(status)
            return status

    def pr_commits(self, pr: SimPR) -> list[str]:
        """The PR's commits, oldest first (frozen at merge time, like the forges show them)."""
        if pr.state == "merged" and pr.commit_shas is not None:
            return list(pr.commit_shas)
        base = pr.repo.git.branch_head(pr.base_ref) or pr.base_sha
        return pr.repo.git.rev_list([f"{base}..{pr.head_sha}"])

    def _pr_event(self, pr: SimPR, action: str, sender: str, *, before: str | None = None) -> Delivery:
        repo = pr.repo
        web = self.web_url(repo.forge)
        if repo.forge == "github":
            iid = self.installation_for(repo)
            payload = self.github.pull_request_hook(pr, action, sender, f"{web}/api/v3", web, before, iid)
            return self.webhooks.send(
                "github", "pull_request", payload, wait=False, repo_id=repo.id, installation_id=iid
            )
        gl_action = {
            "opened": "open",
            "synchronize": "update",
            "closed": "close",
            "merged": "merge",
            "reopened": "reopen",
        }[action]
        payload = self.gitlab.merge_request_hook(pr, gl_action, sender, web, oldrev=before)
        return self.webhooks.send("gitlab", "Merge Request Hook", payload, wait=False, repo_id=repo.id)

    def _comment_event(self, comment: SimComment) -> Delivery | None:
        repo = comment.repo
        pr = self.prs.get((repo.forge, repo.full_name, comment.number))
        if pr is None:
            return None
        web = self.web_url(repo.forge)
        if repo.forge == "github":
            iid = self.installation_for(repo)
            payload = self.github.issue_comment_hook(comment, pr, f"{web}/api/v3", web, iid)
            return self.webhooks.send("github", "issue_comment", payload, wait=False, repo_id=repo.id)
        return self.webhooks.send(
            "gitlab", "Note Hook", self.gitlab.note_hook(comment, pr, web), wait=False, repo_id=repo.id
        )

    # -- pull requests: test helpers -------------------------------------------------------------------

    def open_pr(
        self,
        repo: SimRepo,
        head: str,
        *,
        files: Files | None = None,
        base: str | None = None,
        title: str | None = None,
        body: str = "",
        author: str = "alice",
        message: str | None = None,
        fork_owner: str | None = None,
    ) -> SimPR:
        """Open a PR from ``head`` (first committing ``files`` to it, branching from ``base``).

        With ``fork_owner`` the PR comes from that user's fork: its head repository (GitHub) or source
        project (GitLab: its own id, and the hooks' ``source`` names it) is ``<fork_owner>/<name>``,
        while its commits live under ``refs/pull/N/head`` / ``refs/merge-requests/N/head`` as on the forges.

        Sends ``pull_request``/``opened`` (GitHub) or Merge Request Hook ``open`` (GitLab) and waits for
        the receiver's answer.
        """
        base = base or repo.default_branch
        if files:
            parent = None if repo.git.branch_head(head) else self.head(repo, base)
            self.commit(repo, head, files, message=message or title, author=author, parent=parent)
        pr = self.core_open_pr(repo, head, base, title or f"Update {head}", body, author, fork_owner=fork_owner)
        self._wait_last(repo.forge)
        return pr

    def delete_fork(self, repo: SimRepo, pr: SimPR | int) -> SimPR:
        """Delete the fork a GitHub PR came from: the PR stays, its ``head.repo`` becomes ``null``."""
        pr = self.pr(repo, pr) if isinstance(pr, int) else pr
        if not pr.fork_owner:
            raise SimError(f"{repo.full_name}#{pr.number} is not from a fork")
        with self.lock:
            pr.fork_deleted = True
        return pr

    def push(
        self, repo: SimRepo, pr: SimPR | int, files: Files, *, message: str | None = None, author: str | None = None
    ) -> str:
        """Commit ``files`` to the PR's head branch; sends synchronize / update. Returns the new SHA."""
        pr = self.pr(repo, pr) if isinstance(pr, int) else pr
        return self.commit(repo, pr.head_ref, files, message=message, author=author or pr.author)

    def force_push_pr(self, repo: SimRepo, pr: SimPR | int, files: Files, *, message: str | None = None) -> str:
        """Rewrite the PR's branch to one new commit on the base branch; sends synchronize / update."""
        pr = self.pr(repo, pr) if isinstance(pr, int) else pr
        return self.force_push(
            repo, pr.head_ref, files, onto=self.head(repo, pr.base_ref), message=message, author=pr.author
        )

    def merge(self, repo: SimRepo, pr: SimPR | int, *, method: str = "merge", by: str | None = None) -> SimPR:
        """Merge like the forge's button: ``merge`` (merge commit), ``squash`` or ``rebase``.

        GitHub reports every method's resulting commit as ``merge_commit_sha``. GitLab reports a merge
        commit as ``merge_commit_sha``, a squash (fast-forwarded) as ``squash_commit_sha`` and a
        fast-forward of rebased commits as neither (the MR's ``sha`` is then the new target head).
        Sends ``pull_request``/``closed`` with ``merged: true`` or Merge Request Hook ``merge``.
        """
        pr = self.pr(repo, pr) if isinstance(pr, int) else pr
        by = by or repo.owner
        if pr.state != "open":
            raise SimError(f"{repo.full_name}#{pr.number} is {pr.state}")
        with repo.git.lock:
            commits = self.pr_commits(pr)
            old_base = self.head(repo, pr.base_ref)
            messages = [str((repo.git.commit_info(c) or {}).get("message", "")) for c in commits]
            if repo.forge == "github":
                merge_msg = f"Merge pull request #{pr.number} from {repo.owner}/{pr.head_ref}\n\n{pr.title}"
                squash_msg = f"{pr.title} (#{pr.number})\n\n" + "\n\n".join(f"* {m}" for m in messages)
            else:
                merge_msg = (
                    f"Merge branch '{pr.head_ref}' into '{pr.base_ref}'\n\n{pr.title}\n\n"
                    f"See merge request {repo.full_name}!{pr.number}"
                )
                squash_msg = pr.title
            message = merge_msg if method == "merge" else squash_msg
            new, _ = repo.git.merge(pr.base_ref, pr.head_sha, method, message, self._author(repo.forge, by))
        with self.lock:
            pr.commit_shas = commits
            if repo.forge == "github" or method == "merge":
                pr.merge_commit_sha = new
            elif method == "squash":
                pr.squash_commit_sha = new
            else:  # GitLab rebased the source branch, then fast-forwarded the target to it
                pr.commit_shas = repo.git.rev_list([f"{old_base}..{new}"])
                pr.head_sha = new
                repo.git.update_ref(f"refs/heads/{pr.head_ref}", new)
                repo.git.update_ref(self.pr_ref(pr), new)
            pr.merge_method = method
            pr.state = "merged"
            pr.merged_by = by
            pr.merged_at = pr.closed_at = pr.updated_at = now()
            delivery = self._pr_event(pr, "closed" if repo.forge == "github" else "merged", by)
        delivery.done.wait(self.webhooks.timeout + 5)
        return pr

    def close(self, repo: SimRepo, pr: SimPR | int, *, by: str | None = None) -> SimPR:
        pr = self.pr(repo, pr) if isinstance(pr, int) else pr
        with self.lock:
            pr.state = "closed"
            pr.closed_at = pr.updated_at = now()
            delivery = self._pr_event(pr, "closed", by or pr.author)
        delivery.done.wait(self.webhooks.timeout + 5)
        return pr

    def label(self, repo: SimRepo, pr: SimPR | int, name: str, *, by: str | None = None) -> SimPR:
        """Add a label to the PR as ``by`` (default: the repository's owner) would in the web UI.

        Recorded as a label event (GitHub ``labeled`` issue event, GitLab resource label event ``add``);
        no webhook is sent: nothing listens.
        """
        pr = self.pr(repo, pr) if isinstance(pr, int) else pr
        with self.lock:
            if name not in pr.labels:
                pr.labels.append(name)
                pr.label_events.append(SimLabelEvent(next(self._ids), "add", name, by or repo.owner))
            pr.updated_at = now()
        return pr

    def unlabel(self, repo: SimRepo, pr: SimPR | int, name: str, *, by: str | None = None) -> SimPR:
        """Remove a label from the PR as ``by`` (default: the repository's owner)."""
        pr = self.pr(repo, pr) if isinstance(pr, int) else pr
        with self.lock:
            if name in pr.labels:
                pr.labels.remove(name)
                pr.label_events.append(SimLabelEvent(next(self._ids), "remove", name, by or repo.owner))
            pr.updated_at = now()
        return pr

    def comment(self, repo: SimRepo, pr: SimPR | int, body: str, *, author: str = "alice") -> SimComment:
        """Comment on the PR as ``author``; sends issue_comment / Note Hook and waits for the answer."""
        pr = self.pr(repo, pr) if isinstance(pr, int) else pr
        comment = self.core_add_comment(repo, pr.number, body, author)
        self._wait_last(repo.forge)
        return comment

    def review(
        self, repo: SimRepo, pr: SimPR | int, *, by: str, event: str | None = "APPROVE", body: str = ""
    ) -> SimReview:
        """Review the PR as ``by`` (GitHub): ``APPROVE``, ``REQUEST_CHANGES``, ``COMMENT`` or ``None``
        (pending); GitHub's refusals (approving your own PR...) raise :class:`SimError`."""
        pr = self.pr(repo, pr) if isinstance(pr, int) else pr
        if repo.forge != "github":
            raise SimError("reviews are simulated for GitHub only")
        try:
            return self.core_add_review(pr, by, event, body, pr.head_sha)
        except ApiError as exc:
            raise SimError(f"{exc.status}: {exc.body}") from None

    # -- issues: test helpers (the endpoints are in tools/forgesim/issues.py) ----------------------------

    def open_issue(self, repo: SimRepo, title: str, body: str = "", *, author: str = "alice") -> SimIssue:
        return core_open_issue(self, repo, title, body, author)

    def issue(self, repo: SimRepo, number: int) -> SimIssue:
        issue = self.issues.get((repo.forge, repo.full_name, number))
        if issue is None:
            raise SimError(f"no issue #{number} in {repo.full_name}")
        return issue

    def list_issues(self, repo: SimRepo) -> list[SimIssue]:
        with self.lock:
            found = [i for (f, full, _), i in self.issues.items() if (f, full) == (repo.forge, repo.full_name)]
        return sorted(found, key=lambda i: i.number)

    def issue_comment(self, repo: SimRepo, issue: SimIssue | int, body: str, *, author: str = "alice") -> SimComment:
        """Comment on an issue as ``author``; sends issue_comment / Note Hook and waits for the answer."""
        issue = self.issue(repo, issue) if isinstance(issue, int) else issue
        comment = core_add_issue_comment(self, issue, body, author)
        self._wait_last(repo.forge)
        return comment

    def close_issue(self, repo: SimRepo, issue: SimIssue | int, *, by: str = "alice") -> SimIssue:
        issue = self.issue(repo, issue) if isinstance(issue, int) else issue
        with self.lock:
            set_state(issue, "closed", by)
        return issue

    def list_issue_comments(self, repo: SimRepo, number: int) -> list[SimComment]:
        with self.lock:
            return sorted(
                (c for c in self.comments.values() if c.repo is repo and c.on_issue and c.number == number),
                key=lambda c: c.id,
            )

    def _wait_last(self, forge: ForgeName) -> None:
        self.webhooks.drain()

    # -- accessors -------------------------------------------------------------------------------------

    def pr(self, repo: SimRepo, number: int) -> SimPR:
        pr = self.prs.get((repo.forge, repo.full_name, number))
        if pr is None:
            raise SimError(f"no PR #{number} in {repo.full_name}")
        return pr

    def list_prs(self, repo: SimRepo) -> list[SimPR]:
        with self.lock:
            return sorted(self._prs_of(repo), key=lambda p: p.number)

    def list_comments(self, repo: SimRepo, number: int) -> list[SimComment]:
        with self.lock:
            return sorted(
                (c for c in self.comments.values() if c.repo is repo and not c.on_issue and c.number == number),
                key=lambda c: c.id,
            )

    def list_statuses(self, repo: SimRepo, sha: str | None = None, context: str | None = None) -> list[SimStatus]:
        with self.lock:
            return [
                s
                for s in self.statuses
                if s.repo is repo and (sha is None or s.sha == sha) and (context is None or s.context == context)
            ]

    def latest_status(self, repo: SimRepo, sha: str, context: str) -> SimStatus | None:
        found = self.list_statuses(repo, sha, context)
        return found[-1] if found else None

    def list_reviews(self, repo: SimRepo, number: int) -> list[SimReview]:
        """Every review of PR ``number``, oldest first (pending ones included)."""
        with self.lock:
            return [r for r in self.reviews if r.pr.repo is repo and r.pr.number == number]

    def list_reactions(self, repo: SimRepo, comment_id: int) -> list[SimReaction]:
        with self.lock:
            return [r for r in self.reactions if r.repo is repo and r.comment_id == comment_id]

    def deliveries(self, forge: ForgeName | None = None, event: str | None = None) -> list[Delivery]:
        return [
            d
            for d in list(self.webhooks.deliveries)
            if (forge is None or d.forge == forge) and (event is None or d.event == event)
        ]

    def api_requests(
        self, forge: ForgeName | None = None, method: str | None = None, path: str | None = None
    ) -> list[RequestRecord]:
        return [
            r
            for r in list(self.requests)
            if r.kind == "api"
            and (forge is None or r.forge == forge)
            and (method is None or r.method == method)
            and (path is None or re.search(path, r.path))
        ]

    def git_requests(self, repo: SimRepo | None = None) -> list[RequestRecord]:
        prefix = f"/{repo.full_name}.git/" if repo else ""
        return [
            r
            for r in list(self.requests)
            if r.kind == "git" and r.path.startswith(prefix) and (repo is None or r.forge == repo.forge)
        ]

    # -- webhooks and faults ---------------------------------------------------------------------------

    def set_webhook(self, forge: ForgeName, url: str | None, secret: str = "") -> None:
        """Deliver ``forge``'s webhooks to ``url`` (signed with ``secret``); ``None`` records only."""
        self.webhooks.configure(forge, url, secret)

    def inject(
        self,
        forge: ForgeName | None = None,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay: float = 0.0,
        barrier: int = 0,
        hold: bool = False,
    ) -> Fault:
        """Make the next ``times`` matching API requests fail with ``status`` (and/or wait ``delay`` s).

        ``path`` is a regex searched in the API path (e.g. ``r"/comments$"``). With ``barrier=n`` the
        first ``n`` matching requests are held until all ``n`` have arrived, then served normally:
        a deterministic way to make clients race. With ``hold=True`` each matching request waits
        (up to :data:`HOLD_LIMIT` s) until the test calls ``fault.release()``, then is answered.
        """
        fault = Fault(forge, method, path, status, dict(headers or {}), body, delay, times)
        if hold:
            fault.released = threading.Event()
        with self.lock:
            self.faults.append(fault)
            if barrier:
                self._barriers[id(fault)] = threading.Barrier(barrier, timeout=30)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            self._barriers.clear()

    def _take_fault(self, forge: ForgeName, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining <= 0:
                    continue
                if fault.forge not in (None, forge) or fault.method not in (None, method):
                    continue
                if fault.path is not None and not re.search(fault.path, path):
                    continue
                fault.remaining -= 1
                fault.hits += 1
                return fault
        return None

    # -- HTTP ------------------------------------------------------------------------------------------

    def _wsgi(self, forge: ForgeName) -> Any:
        def app(environ: dict[str, Any], start_response: Any) -> Any:
            request = Request(environ)
            raw = str(environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.path)
            raw_path = raw.split("?", 1)[0]
            if raw_path.startswith(("http://", "https://")):
                raw_path = "/" + raw_path.split("/", 3)[-1]
            try:
                response = self._dispatch(forge, request, raw_path)
            except Exception as exc:  # a simulator bug: answer 500 and keep serving
                response = Response(
                    json.dumps({"message": f"forgesim error: {type(exc).__name__}: {exc}"}),
                    status=500,
                    content_type="application/json",
                )
            return response(environ, start_response)

        return app

    def _dispatch(self, forge: ForgeName, request: Request, raw_path: str) -> Response:
        git_match = _GIT_PATH.match(raw_path)
        if git_match:
            return self._git_http(forge, request, git_match.group("repo"), git_match.group("rest"))
        prefix = "/api/v3" if forge == "github" else "/api/v4"
        if raw_path == prefix or raw_path.startswith(prefix + "/"):
            return self._api(forge, request, raw_path[len(prefix) :] or "/")
        return Response("not found", status=404)

    def _api(self, forge: ForgeName, request: Request, path: str) -> Response:
        method = request.method.upper()
        fault = self._take_fault(forge, method, path)
        if fault is not None:
            barrier = self._barriers.get(id(fault))
            if barrier is not None:
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait()
            if fault.released is not None:
                fault.released.wait(HOLD_LIMIT)
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                fault_body = fault.body if fault.body is not None else {"message": _reason(fault.status)}
                self._record(forge, method, path, fault.status, "api")
                injected = self._json_response(forge, ApiResponse(fault.status, fault_body, fault.headers))
                self._tap(forge, request, path, injected, injected=True)
                return injected
        api: GitHubAPI | GitLabAPI = self.github if forge == "github" else self.gitlab
        headers = {k: v for k, v in request.headers.items()}
        principal_desc = ""
        with self.lock:
            try:
                principal = api.authenticate(headers)
                principal_desc = principal.describe()
                found = api.router.find(method, path)
                if found is None:
                    raise ApiError(404, {"message": "Not Found"} if forge == "github" else {"error": "404 Not Found"})
                handler, match = found
                base = self.web_url(forge)
                body: Any = request.get_json(silent=True) if request.data else None
                if body is None and request.form:
                    body = dict(request.form)
                req = ApiRequest(
                    method=method,
                    path=path,
                    args=dict(request.args.items()),
                    json=body,
                    headers=headers,
                    api_base=base + ("/api/v3" if forge == "github" else "/api/v4"),
                    web_base=base,
                    principal=principal,
                    match=match,
                )
                response = handler(req)
            except ApiError as exc:
                response = ApiResponse(exc.status, exc.body, exc.headers)
        self._record(forge, method, path, response.status, "api", principal=principal_desc)
        answer = self._json_response(forge, response)
        self._tap(forge, request, path, answer)
        return answer

    @staticmethod
    def _tap(forge: ForgeName, request: Request, path: str, answer: Response, *, injected: bool = False) -> None:
        """Show the answer, as sent, to the conformance recorders (tools/forgesim/recording.py)."""
        if recording.recording():
            query = request.query_string.decode("latin-1")
            exchange = recording.Exchange(
                forge,
                request.method.upper(),
                path,
                query,
                answer.status_code,
                answer.get_data(),
                injected,
                request=request.get_data(),
            )
            recording.tap_exchange(exchange)

    def _json_response(self, forge: ForgeName, response: ApiResponse) -> Response:
        headers = dict(response.headers)
        if forge == "github":
            headers.setdefault("X-RateLimit-Limit", "5000")
            headers.setdefault("X-RateLimit-Remaining", "4999")
            headers.setdefault("X-RateLimit-Reset", str(int(time.time()) + 3600))
            headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        data = b"" if response.body is None or response.status == 204 else json.dumps(response.body).encode()
        return Response(data, status=response.status, headers=headers, content_type="application/json; charset=utf-8")

    def _record(
        self,
        forge: ForgeName,
        method: str,
        path: str,
        status: int,
        kind: str,
        *,
        bytes_out: int = 0,
        principal: str = "",
    ) -> None:
        with self.lock:
            self.requests.append(RequestRecord(forge, method, path, status, kind, bytes_out, principal))  # type: ignore[arg-type]

    def _git_http(self, forge: ForgeName, request: Request, name: str, rest: str) -> Response:
        repo = self.find_repo(forge, name)
        service = request.args.get("service", "") or rest.rsplit("/", 1)[-1]
        need = "write" if service == "git-receive-pack" else "read"
        challenge = {"WWW-Authenticate": 'Basic realm="forgesim"'}
        auth = request.headers.get("Authorization", "")
        scheme, _, encoded = auth.partition(" ")
        if scheme.lower() != "basic":
            self._record(forge, request.method, f"/{name}.git{rest}", 401, "git")
            return Response("authentication required", status=401, headers=challenge)
        try:
            _, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            password = ""
        token = self.tokens.get(password)
        if token is None or token.forge != forge or token.expired():
            self._record(forge, request.method, f"/{name}.git{rest}", 401, "git")
            return Response("invalid credentials", status=401, headers=challenge)
        principal = Principal(token=token)
        if repo is None or not self.can_access(principal, repo, "read"):
            self._record(forge, request.method, f"/{name}.git{rest}", 404, "git")
            return Response("Repository not found.", status=404)
        if need == "write" and not self.can_access(principal, repo, "write"):
            self._record(forge, request.method, f"/{name}.git{rest}", 403, "git")
            return Response("Permission denied.", status=403)
        body = request.get_data()
        req_headers = {k: v for k, v in request.headers.items()}
        project_root = self.root / forge
        path_info = f"/{repo.full_name}.git{rest}"
        query = request.query_string.decode()
        actor = self.actor_login(forge, principal)
        if request.method == "POST" and service == "git-receive-pack":
            with repo.git.lock:
                before = repo.git.refs()
                status, headers, payload = run_http_backend(
                    project_root, path_info, request.method, query, req_headers, body, actor
                )
                after = repo.git.refs()
            changes = {
                ref: (before.get(ref), after.get(ref))
                for ref in set(before) | set(after)
                if before.get(ref) != after.get(ref)
            }
            self._ref_changes(repo, changes, actor, wait=False)
        else:
            status, headers, payload = run_http_backend(
                project_root, path_info, request.method, query, req_headers, body, actor
            )
        self._record(
            forge, request.method, path_info, status, "git", bytes_out=len(payload), principal=principal.describe()
        )
        return Response(payload, status=status, headers=headers)


def _reason(status: int) -> str:
    return {
        429: "API rate limit exceeded",
        500: "Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
        404: "Not Found",
        403: "Forbidden",
    }.get(status, "Error")


@contextlib.contextmanager
def running(root: Path) -> Iterator[ForgeSim]:
    """``with running(tmp) as sim:`` — a started simulator, stopped afterwards."""
    sim = ForgeSim(root).start()
    try:
        yield sim
    finally:
        sim.stop()
