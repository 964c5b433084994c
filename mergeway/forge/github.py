"""GitHub through PyGithub.

The client is created lazy (``Github(lazy=True)``): objects are addressed by URL without fetching
them first, so upserting a comment costs one list plus one write rather than four round trips.
Installation tokens for a GitHub App are minted and refreshed by PyGithub's ``AppInstallationAuth``
(it renews a token 20 s before ``expires_at``); we keep one auth object per installation per process so
jobs share a token instead of minting one each.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Literal, cast

import requests
from github import Auth, Github, GithubException, GithubIntegration
from github.Issue import Issue as GhIssue
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest as GhPullRequest

from mergeway.events import Repository
from mergeway.forge import base, errors
from mergeway.forge.base import CommentRef, Identity, IssueRef, Permission, PullRequestInfo
from mergeway.forge.retry import RetryPolicy, github_retry, rate_limit_wait
from mergeway.logs import install_log_redaction
from mergeway.redaction import register_secret

log = logging.getLogger("mergeway.forge.github")

GITHUB_COMMENT_LIMIT = 65_536
_PERMISSIONS = {
    "admin": Permission.ADMIN,
    "maintain": Permission.WRITE,
    "write": Permission.WRITE,
    "triage": Permission.READ,
    "read": Permission.READ,
}


#: GitHub's refusals, saying what to check (see :func:`mergeway.forge.base.status_error`).
_REFUSALS = {
    404: "not found (HTTP 404). Check that it exists and that the token or GitHub App installation has access "
    "to {repo}",
    401: "GitHub rejected the credentials (HTTP 401: {message})",
    403: "permission denied (HTTP 403: {message}); the token or app needs read/write access to pull requests, "
    "issues and commit statuses",
}


def translate_github_error(exc: Exception, action: str, repo: str) -> errors.ForgeError:
    """Turn a PyGithub / requests exception into a :class:`ForgeError` naming what failed."""
    if not isinstance(exc, GithubException):
        return base.unanswered_error(exc, "GitHub", action, repo)
    status = exc.status
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "").strip()
    reasons = data.get("errors")
    if isinstance(reasons, list):
        details = [str(e.get("message") or e.get("code")) for e in reasons if isinstance(e, dict)]
        if details:
            message = f"{message}: {'; '.join(details)}"
    headers = dict(exc.headers or {})
    where = f"GitHub: could not {action} in {repo}"
    wait = rate_limit_wait(headers)
    if status == 429 or (status == 403 and (wait is not None or "rate limit" in message.lower())):
        return errors.ForgeRateLimitError(f"{where}: rate limited (HTTP {status})", status=status, retry_after=wait)
    return base.status_error("GitHub", action, repo, status, message, _REFUSALS)


class GitHubForge(base.Forge):
    name = "github"
    display_name = "GitHub"
    comment_limit = GITHUB_COMMENT_LIMIT

    def __init__(
        self,
        repo: Repository,
        client: Github,
        token: Callable[[], str],
        *,
        identity: Callable[[], Identity] | None = None,
    ) -> None:
        super().__init__(repo)
        self._client = client
        self._token = token
        self._repo = client.get_repo(repo.full_name)
        self._owner = repo.full_name.split("/", 1)[0]
        self._identity_source = identity or self._authenticated_user
        self._me: Identity | None = None

    #: How the client's failures become ForgeErrors (see :meth:`mergeway.forge.base.Forge._api`).
    client_errors = (GithubException, requests.RequestException)
    translate_error = staticmethod(translate_github_error)

    # -- identity ---------------------------------------------------------------------------------

    def identity(self) -> Identity:
        if self._me is None:
            self._me = self._identity_source()
        return self._me

    def _authenticated_user(self) -> Identity:
        with self._api("read the authenticated user (GET /user)"):
            _, data = self._client.requester.requestJsonAndCheck("GET", "/user")
        return Identity(login=str(data["login"]), id=int(data["id"]))

    def repository_info(self) -> dict[str, Any]:
        """The repository as the API reports it (canonical name, id, default branch, web URL)."""
        with self._api("read the repository"):
            _, data = self._client.requester.requestJsonAndCheck("GET", f"/repos/{self.repo.full_name}")
        return dict(data)

    # -- comments -------------------------------------------------------------------------------

    @staticmethod
    def _ref(comment: IssueComment) -> CommentRef:
        return CommentRef(
            id=comment.id,
            body=comment.body or "",
            url=comment.html_url or "",
            author=comment.user.login if comment.user else "",
            author_id=comment.user.id if comment.user else None,
        )

    def list_comments(self, number: int) -> list[CommentRef]:
        with self._api(f"list comments of pull request #{number}"):
            comments = [self._ref(c) for c in self._repo.get_issue(number).get_comments()]
        return sorted(comments, key=lambda c: c.id)

    def get_comment(self, number: int, comment_id: int) -> CommentRef | None:
        # GET /repos/{o}/{r}/issues/comments/{id} answers for any issue of the repository: the
        # comment's ``issue_url`` says which one it is on.
        path = f"/repos/{self.repo.full_name}/issues/comments/{int(comment_id)}"
        try:
            with self._api(f"read comment {comment_id} on pull request #{number}"):
                _, data = self._client.requester.requestJsonAndCheck("GET", path)
        except errors.ForgeNotFoundError:
            return None
        issue_url = str(data.get("issue_url") or "")
        if not issue_url.endswith(f"/repos/{self.repo.full_name}/issues/{number}"):
            return None
        user = data.get("user") if isinstance(data.get("user"), dict) else {}
        user_id = user.get("id")
        return CommentRef(
            id=int(data["id"]),
            body=str(data.get("body") or ""),
            url=str(data.get("html_url") or ""),
            author=str(user.get("login") or ""),
            author_id=user_id if isinstance(user_id, int) else None,
        )

    def create_comment(self, number: int, body: str) -> CommentRef:
        self.check_comment_length(body)
        with self._api(f"comment on pull request #{number}"):
            return self._ref(self._repo.get_issue(number).create_comment(body))

    def edit_comment(self, number: int, comment_id: int, body: str) -> CommentRef:
        self.check_comment_length(body)
        with self._api(f"edit comment {comment_id} on pull request #{number}"):
            comment = self._repo.get_issue(number).get_comment(comment_id)
            comment.edit(body)
            return CommentRef(
                id=comment_id,
                body=body,
                url=comment.html_url or "",
                author=comment.user.login if comment.user else "",
                author_id=comment.user.id if comment.user else None,
            )

    def delete_comment(self, number: int, comment_id: int) -> None:
        with self._api(f"delete comment {comment_id} on pull request #{number}"):
            self._repo.get_issue(number).get_comment(comment_id).delete()

    # -- statuses and reactions -------------------------------------------------------------------

    def _set_status(self, sha: str, state: base.StatusState, context: str, description: str, target_url: str) -> None:
        with self._api(f"set status {context} on commit {sha[:12]}"):
            commit = self._repo.get_commit(sha)
            if target_url:
                commit.create_status(state=state, target_url=target_url, description=description, context=context)
            else:
                commit.create_status(state=state, description=description, context=context)

    def add_reaction(self, number: int, comment_id: int, reaction: base.Reaction = "eyes") -> None:
        with self._api(f"react to comment {comment_id} on pull request #{number}"):
            self._repo.get_issue(number).get_comment(comment_id).create_reaction(reaction)

    # -- people -----------------------------------------------------------------------------------

    def get_permission(self, username: str) -> Permission:
        try:
            with self._api(f"read the permission of {username}"):
                level = self._repo.get_collaborator_permission(username)
        except errors.ForgeNotFoundError:
            # The endpoint 404s both for an unknown user and for a missing repository; only the
            # latter is an error. Reading the repository tells them apart.
            with self._api("read the repository"):
                self._client.get_repo(self.repo.full_name).complete()
            return Permission.NONE
        return _PERMISSIONS.get(str(level), Permission.NONE)

    # -- pull requests ----------------------------------------------------------------------------

    def get_pull_request(self, number: int) -> PullRequestInfo:
        with self._api(f"read pull request #{number}"):
            pr = self._repo.get_pull(number)
            return self._info(pr)

    def label_added_by(self, number: int, label: str) -> str:
        # GET /repos/{o}/{r}/issues/{n}/events lists labeled/unlabeled events, oldest first.
        actor = ""
        with self._api(f"read the label events of pull request #{number}"):
            for event in self._repo.get_issue(number).get_events():
                name = event.label.name if event.label is not None else ""
                if event.event == "labeled" and name == label:
                    actor = event.actor.login if event.actor else ""
        return actor

    def find_open_pull_request(self, head: str) -> PullRequestInfo | None:
        with self._api(f"find the open pull request for branch {head}"):
            for pr in self._repo.get_pulls(state="open", head=f"{self._owner}:{head}"):
                if pr.head.ref == head:
                    return self._info(pr)
        return None

    def _create_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequestInfo:
        with self._api(f"open a pull request from {head} into {base}"):
            return self._info(self._repo.create_pull(base=base, head=head, title=title, body=body))

    def _info(self, pr: GhPullRequest) -> PullRequestInfo:
        merged = bool(pr.merged)
        state: Literal["open", "closed", "merged"] = (
            "merged" if merged else ("open" if pr.state == "open" else "closed")
        )
        merge_sha = pr.merge_commit_sha if merged else None
        method: base.MergeMethod | None = self._merge_method(pr, merge_sha) if merged and merge_sha else None
        return PullRequestInfo(
            number=pr.number,
            title=pr.title or "",
            url=pr.html_url or "",
            author=pr.user.login if pr.user else "",
            state=state,
            base_ref=pr.base.ref,
            head_ref=pr.head.ref,
            head_sha=pr.head.sha,
            merged=merged,
            merge_commit_sha=merge_sha,
            merge_method=method,
            commit_count=int(pr.commits or 0),
            is_fork=_is_fork(pr),
            body=pr.body or "",
            labels=tuple(label.name for label in pr.labels or ()),
        )

    def _merge_method(self, pr: GhPullRequest, merge_sha: str) -> base.MergeMethod:
        """Infer how GitHub merged: parents of the merge commit, then commit messages.

        Two parents: a merge commit. One parent: squash or rebase. A rebase replays each PR commit,
        so the commit at ``merge_commit_sha`` carries the PR's last commit message; a squash has a
        message of its own ("Title (#N)" plus a list). A one-commit PR is reverted the same way
        either way, so it is reported as ``squash``.
        """
        commit = self._repo.get_commit(merge_sha)
        if len(commit.parents) > 1:
            return "merge"
        if int(pr.commits or 0) <= 1:
            return "squash"
        pr_commits = list(pr.get_commits())
        if pr_commits and pr_commits[-1].commit.message == commit.commit.message:
            return "rebase"
        return "squash"

    # -- issues ---------------------------------------------------------------------------------

    @staticmethod
    def _issue(issue: GhIssue) -> IssueRef:
        return IssueRef(
            number=issue.number,
            title=issue.title or "",
            body=issue.body or "",
            url=issue.html_url or "",
            state="open" if issue.state == "open" else "closed",
            author=issue.user.login if issue.user else "",
            author_id=issue.user.id if issue.user else None,
        )

    def open_issues(self, author: str) -> list[IssueRef]:
        # GET /repos/{o}/{r}/issues lists pull requests too: those carry a ``pull_request`` key.
        # PyGithub annotates ``creator`` as a NamedUser but sends a string as the login it is.
        with self._api(f"list the open issues of {author}"):
            found = [
                self._issue(i)
                for i in self._repo.get_issues(state="open", creator=author)  # type: ignore[arg-type]
                if i.pull_request is None
            ]
        return sorted(found, key=lambda i: i.number)

    def get_issue(self, number: int) -> IssueRef | None:
        try:
            with self._api(f"read issue #{number}"):
                issue = self._repo.get_issue(number)
                if issue.pull_request is not None:
                    return None
                return self._issue(issue)
        except errors.ForgeNotFoundError:
            return None

    def open_issue(self, title: str, body: str) -> IssueRef:
        self.check_comment_length(body)
        with self._api("open an issue"):
            return self._issue(self._repo.create_issue(title=title, body=body))

    def edit_issue(self, number: int, title: str, body: str) -> IssueRef:
        self.check_comment_length(body)
        with self._api(f"edit issue #{number}"):
            issue = self._repo.get_issue(number)
            issue.edit(title=title, body=body)
            return self._issue(issue)

    def _close_issue(self, number: int) -> None:
        with self._api(f"close issue #{number}"):
            self._repo.get_issue(number).edit(state="closed")

    def comment_on_issue(self, number: int, body: str) -> CommentRef:
        self.check_comment_length(body)
        with self._api(f"comment on issue #{number}"):
            return self._ref(self._repo.get_issue(number).create_comment(body))

    def get_issue_comment(self, number: int, comment_id: int) -> CommentRef | None:
        # Issue and pull request comments share one endpoint and one numbering on GitHub.
        return self.get_comment(number, comment_id)

    # -- git --------------------------------------------------------------------------------------

    def git_credentials(self) -> base.GitCredentials:
        with self._api("obtain a token for git"):
            token = self._token()
        register_secret(token)
        return base.GitCredentials(username="x-access-token", password=token)

    # -- deployments ------------------------------------------------------------------------------

    def create_deployment(self, update: base.DeploymentUpdate) -> int | None:
        """A Deployment of the merge commit itself (``ref`` is its SHA, so no later push moves it).

        No merge of the default branch (``auto_merge: false``) and no wait for commit statuses
        (``required_contexts: []``): Mergeway has already deployed it. The branch and the pull
        request travel in the payload.
        """
        payload: dict[str, Any] = {"ref": update.ref}
        if update.pr:
            payload["pull_request"] = update.pr
        with self._api(f"create a deployment of {update.sha[:12]} to {update.environment}"):
            created = self._repo.create_deployment(
                ref=update.sha,
                task="deploy",
                auto_merge=False,
                required_contexts=[],
                payload=payload,
                environment=update.environment,
                description=base.clip_description(update.description),
            )
        return int(created.id)

    def retires_previous_deployments(self, environment: str) -> bool:
        """``auto_inactive`` skips production environments: by default, the one named ``production``."""
        return environment != "production"

    def update_deployment(self, deployment_id: int, update: base.DeploymentUpdate) -> None:
        """A deployment status; GitHub marks earlier successful ones of the environment inactive (``auto_inactive``).

        Sent through PyGithub's requester: its ``create_status`` predates ``log_url``.
        """
        data: dict[str, Any] = {
            "state": update.state,
            "description": base.clip_description(update.description),
            "auto_inactive": True,
        }
        if update.log_url:
            data["log_url"] = update.log_url
        if update.environment_url:
            data["environment_url"] = update.environment_url
        path = f"/repos/{self.repo.full_name}/deployments/{deployment_id}/statuses"
        with self._api(f"set deployment {deployment_id} of {update.environment} {update.state}"):
            self._client.requester.requestJsonAndCheck("POST", path, input=data)


def _is_fork(pr: GhPullRequest) -> bool:
    """A PR is same-repository only when its head repository is provably the base repository.

    GitHub reports ``head.repo: null`` once the fork a PR came from is deleted; that PR's commits are
    still a stranger's, so it is a fork.
    """
    # PyGithub types ``repo`` as always present; GitHub's API says it is nullable.
    head, base = cast(Any, pr.head.repo), cast(Any, pr.base.repo)
    if head is None or base is None:
        return True
    return bool(head.id != base.id or head.full_name.lower() != base.full_name.lower())


# ---- clients ---------------------------------------------------------------------------------------

_app_lock = threading.Lock()
_installation_ids: dict[tuple[str, str, str], int] = {}
_installation_auths: dict[tuple[str, str, int], Auth.AppInstallationAuth] = {}
_app_identities: dict[tuple[str, str], Identity] = {}


def _client_kwargs(api_url: str, policy: RetryPolicy, write_interval: float) -> dict[str, Any]:
    return {
        "base_url": api_url,
        "timeout": int(policy.timeout),
        "retry": github_retry(policy),
        "per_page": 100,
        "seconds_between_requests": None,
        # GitHub asks integrators to space out content-creating requests to avoid secondary limits.
        "seconds_between_writes": write_interval or None,
    }


def github_client_for_token(
    token: str, api_url: str, policy: RetryPolicy, write_interval: float = 1.0
) -> tuple[Github, Callable[[], str]]:
    install_log_redaction()
    register_secret(token)
    client = Github(auth=Auth.Token(token), lazy=True, **_client_kwargs(api_url, policy, write_interval))
    return client, lambda: token


def _integration(app_id: str, private_key: str, api_url: str, policy: RetryPolicy) -> GithubIntegration:
    """A client authenticated as the app itself (JWT), for the app-level endpoints."""
    auth = Auth.AppAuth(app_id, private_key)
    return GithubIntegration(auth=auth, base_url=api_url, timeout=int(policy.timeout), retry=github_retry(policy))


def repo_installation_id(
    app_id: str, private_key: str, full_name: str, api_url: str, policy: RetryPolicy, *, fresh: bool = False
) -> int:
    """The id of the app's installation that owns ``full_name`` (``GET /repos/{o}/{r}/installation``).

    Cached per process; ``fresh`` asks the API again (an app reinstalled since gets a new id).
    """
    key = (api_url, app_id, full_name.lower())
    with _app_lock:
        cached = None if fresh else _installation_ids.get(key)
    if cached is not None:
        return cached
    owner, _, name = full_name.partition("/")
    integration = _integration(app_id, private_key, api_url, policy)
    try:
        installation_id = int(integration.get_repo_installation(owner, name).id)
    except (GithubException, requests.RequestException) as exc:
        raise translate_github_error(exc, "find the GitHub App installation", full_name) from None
    with _app_lock:
        _installation_ids[key] = installation_id
    return installation_id


def github_app_identity(app_id: str, private_key: str, api_url: str, policy: RetryPolicy) -> Identity:
    """The app's bot account, ``<slug>[bot]``: the author of every comment an installation token writes."""
    key = (api_url, app_id)
    with _app_lock:
        cached = _app_identities.get(key)
    if cached is not None:
        return cached
    integration = _integration(app_id, private_key, api_url, policy)
    try:
        slug = str(integration.get_app().slug)
    except (GithubException, requests.RequestException) as exc:
        raise translate_github_error(exc, "read the GitHub App (GET /app)", f"app {app_id}") from None
    identity = Identity(login=f"{slug}[bot]")
    with _app_lock:
        _app_identities[key] = identity
    return identity


def github_client_for_app(
    app_id: str,
    private_key: str,
    full_name: str,
    api_url: str,
    policy: RetryPolicy,
    write_interval: float = 1.0,
) -> tuple[Github, Callable[[], str]]:
    """A client authenticated as the app's installation on ``full_name``.

    The installation id is looked up once (``GET /repos/{o}/{r}/installation`` with the app's JWT) and
    the installation auth object is shared per process, so its token is reused until it nears expiry.
    """
    install_log_redaction()
    register_secret(private_key)
    kwargs = _client_kwargs(api_url, policy, write_interval)
    app_auth = Auth.AppAuth(app_id, private_key)
    installation_id = repo_installation_id(app_id, private_key, full_name, api_url, policy)
    with _app_lock:
        auth = _installation_auths.get((api_url, app_id, installation_id))
        if auth is None:
            auth = Auth.AppInstallationAuth(app_auth, installation_id)
            _installation_auths[(api_url, app_id, installation_id)] = auth
    client = Github(auth=auth, lazy=True, **kwargs)

    def token() -> str:
        value = auth.token  # refreshes via POST /app/installations/{id}/access_tokens when near expiry
        register_secret(value)
        return value

    return client, token


def forget_app_installations() -> None:
    """Drop cached installation ids and tokens (after an app is reinstalled; and between tests)."""
    with _app_lock:
        _installation_ids.clear()
        _installation_auths.clear()
        _app_identities.clear()
