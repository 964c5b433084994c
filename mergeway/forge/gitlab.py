"""GitLab through python-gitlab.

Projects and merge requests are addressed lazily (``lazy=True``) by numeric id when the event gave
one, else by ``path_with_namespace``. python-gitlab's own retry loop is switched off (see
:class:`_Gitlab`); :mod:`mergeway.forge.retry` retries at the transport instead, with a cap on
rate-limit waits that python-gitlab lacks.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, Literal

import gitlab
import requests
from gitlab.exceptions import GitlabAuthenticationError, GitlabError
from gitlab.v4.objects import Project, ProjectIssue, ProjectMergeRequest

from mergeway.events import Repository
from mergeway.forge import base, errors
from mergeway.forge.base import CommentRef, Identity, IssueRef, Permission, PullRequestInfo
from mergeway.forge.retry import RetryPolicy, retrying_session
from mergeway.logs import install_log_redaction
from mergeway.redaction import register_secret

log = logging.getLogger("mergeway.forge.gitlab")

GITLAB_COMMENT_LIMIT = 1_000_000
#: GitLab has no "error" commit status; both failures become "failed" (the description says which).
_STATUS = {"pending": "pending", "success": "success", "failure": "failed", "error": "failed"}
#: GitHub reaction names → GitLab award emoji names.
_AWARDS = {
    "eyes": "eyes",
    "+1": "thumbsup",
    "-1": "thumbsdown",
    "rocket": "rocket",
    "confused": "confused",
    "heart": "heart",
    "hooray": "tada",
    "laugh": "laughing",
}
DEVELOPER, MAINTAINER = 30, 40
#: Mergeway's deployment states → GitLab's deployment statuses (GitLab has no queued one, and no
#: description to tell an error from a failure, or a superseded deploy from a cancelled one).
_DEPLOYMENT_STATUS: dict[str, str | None] = {
    "queued": None,
    "in_progress": "running",
    "success": "success",
    "failure": "failed",
    "error": "failed",
    "inactive": "canceled",
}


def permission_for_access_level(level: int) -> Permission:
    if level >= MAINTAINER:
        return Permission.ADMIN
    if level >= DEVELOPER:
        return Permission.WRITE
    if level >= 10:  # Guest, Planner (15), Reporter (20)
        return Permission.READ
    return Permission.NONE


class _Gitlab(gitlab.Gitlab):
    """python-gitlab with its per-request retry loop disabled: the session's adapter retries."""

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["obey_rate_limit"] = False
        kwargs["retry_transient_errors"] = False
        kwargs["max_retries"] = 0
        return super().http_request(verb, path, *args, **kwargs)


#: GitLab's refusals, saying what to check (see :func:`mergeway.forge.base.status_error`).
_REFUSALS = {
    401: "GitLab rejected the token (HTTP 401)",
    404: "not found (HTTP 404: {message}). Check that it exists and that the access token is a member of {repo}",
    403: "permission denied (HTTP 403: {message}); the token needs the api scope and at least the Developer role",
}


def translate_gitlab_error(exc: Exception, action: str, repo: str) -> errors.ForgeError:
    """Turn a python-gitlab / requests exception into a :class:`ForgeError` naming what failed."""
    if not isinstance(exc, GitlabError):
        return base.unanswered_error(exc, "GitLab", action, repo)
    # python-gitlab raises its authentication error for a 401 (and only then).
    status = 401 if isinstance(exc, GitlabAuthenticationError) else exc.response_code or 0
    if status == 429:
        return errors.ForgeRateLimitError(
            f"GitLab: could not {action} in {repo}: rate limited (HTTP 429)", status=status
        )
    return base.status_error("GitLab", action, repo, status, str(exc.error_message or "").strip(), _REFUSALS)


class GitLabForge(base.Forge):
    name = "gitlab"
    display_name = "GitLab"
    comment_limit = GITLAB_COMMENT_LIMIT

    def __init__(self, repo: Repository, client: gitlab.Gitlab, token: str) -> None:
        super().__init__(repo)
        self._client = client
        self._token = token
        ident: int | str = repo.project_id if repo.project_id is not None else repo.full_name
        self._project: Project = client.projects.get(ident, lazy=True)
        self._me: Identity | None = None

    #: How the client's failures become ForgeErrors (see :meth:`mergeway.forge.base.Forge._api`).
    client_errors = (GitlabError, requests.RequestException)
    translate_error = staticmethod(translate_gitlab_error)

    # -- identity ---------------------------------------------------------------------------------

    def identity(self) -> Identity:
        if self._me is None:
            with self._api("read the authenticated user (GET /user)"):
                data = self._client.http_get("/user")
            if not isinstance(data, dict):
                raise errors.ForgeError("GitLab: GET /user did not return a user")
            self._me = Identity(login=str(data["username"]), id=int(data["id"]))
        return self._me

    def repository_info(self) -> dict[str, Any]:
        """The project as the API reports it, addressed by id when known (canonical path, default branch)."""
        ident = self.repo.project_id if self.repo.project_id is not None else self.repo.full_name
        with self._api("read the project"):
            data = self._client.http_get(f"/projects/{_quote(ident)}")
        if not isinstance(data, dict):
            raise errors.ForgeError(f"GitLab: GET /projects/{ident} did not return a project")
        return dict(data)

    def _mr(self, number: int) -> ProjectMergeRequest:
        return self._project.mergerequests.get(number, lazy=True)

    # -- comments -------------------------------------------------------------------------------

    @staticmethod
    def _ref(note: Any, url: str = "") -> CommentRef:
        raw = getattr(note, "author", None)
        author = raw if isinstance(raw, dict) else {}
        author_id = author.get("id")
        return CommentRef(
            id=int(note.id),
            body=str(note.body or ""),
            url=url,
            author=str(author.get("username", "")),
            author_id=author_id if isinstance(author_id, int) else None,
        )

    def _note_url(self, number: int, note_id: int) -> str:
        web = self.repo.web_url.rstrip("/")
        return f"{web}/-/merge_requests/{number}#note_{note_id}" if web else ""

    def list_comments(self, number: int) -> list[CommentRef]:
        with self._api(f"list notes of merge request !{number}"):
            notes = self._mr(number).notes.list(iterator=True, sort="asc", order_by="created_at")
            refs = [self._ref(n, self._note_url(number, int(n.id))) for n in notes if not getattr(n, "system", False)]
        return sorted(refs, key=lambda c: c.id)

    def get_comment(self, number: int, comment_id: int) -> CommentRef | None:
        # GET /projects/:id/merge_requests/:iid/notes/:note_id finds only a note of that merge request.
        try:
            with self._api(f"read note {comment_id} on merge request !{number}"):
                note = self._mr(number).notes.get(int(comment_id))
        except errors.ForgeNotFoundError:
            return None
        if getattr(note, "system", False):
            return None  # GitLab's own notes ("added 1 commit") are nobody's command
        return self._ref(note, self._note_url(number, int(note.id)))

    def create_comment(self, number: int, body: str) -> CommentRef:
        self.check_comment_length(body)
        with self._api(f"comment on merge request !{number}"):
            note = self._mr(number).notes.create({"body": body})
        return self._ref(note, self._note_url(number, int(note.id)))

    def edit_comment(self, number: int, comment_id: int, body: str) -> CommentRef:
        self.check_comment_length(body)
        with self._api(f"edit note {comment_id} on merge request !{number}"):
            note = self._mr(number).notes.update(comment_id, {"body": body})
        author = note.get("author", {}).get("username", "") if isinstance(note, dict) else ""
        return CommentRef(id=comment_id, body=body, url=self._note_url(number, comment_id), author=author)

    def delete_comment(self, number: int, comment_id: int) -> None:
        with self._api(f"delete note {comment_id} on merge request !{number}"):
            self._mr(number).notes.delete(comment_id)

    # -- statuses and reactions -------------------------------------------------------------------

    def _set_status(self, sha: str, state: base.StatusState, context: str, description: str, target_url: str) -> None:
        data = {"state": _STATUS[state], "name": context, "description": description}
        if target_url:
            data["target_url"] = target_url
        try:
            with self._api(f"set status {context} on commit {sha[:12]}"):
                self._project.commits.get(sha, lazy=True).statuses.create(data)
        except errors.ForgeValidationError as exc:
            # GitLab refuses a transition to the state a status already has ("Cannot transition
            # status via :enqueue from :pending"); for an idempotent job that is success.
            if "cannot transition status" in exc.message.lower():
                log.debug("status %s on %s already %s", context, sha[:12], state)
                return
            raise

    def add_reaction(self, number: int, comment_id: int, reaction: base.Reaction = "eyes") -> None:
        name = _AWARDS.get(reaction, reaction)
        try:
            with self._api(f"award {name} to note {comment_id} on merge request !{number}"):
                self._mr(number).notes.get(comment_id, lazy=True).awardemojis.create({"name": name})
        except errors.ForgeError as exc:
            if exc.status in (400, 404, 409, 422) and "already been taken" in exc.message:
                return  # awarded before: repeating a reaction is harmless
            raise

    # -- people -----------------------------------------------------------------------------------

    def get_permission(self, username: str) -> Permission:
        with self._api(f"look up user {username}"):
            users = self._client.users.list(username=username, get_all=False)
        if not users:
            return Permission.NONE
        user_id = int(users[0].id)
        try:
            with self._api(f"read the membership of {username}"):
                member = self._project.members_all.get(user_id)
        except errors.ForgeNotFoundError as exc:
            if "project" in exc.message.lower():
                raise
            return Permission.NONE
        return permission_for_access_level(int(member.access_level))

    # -- pull requests ----------------------------------------------------------------------------

    def get_pull_request(self, number: int) -> PullRequestInfo:
        with self._api(f"read merge request !{number}"):
            mr = self._project.mergerequests.get(number)
            return self._info(mr)

    def label_added_by(self, number: int, label: str) -> str:
        # GET /projects/:id/merge_requests/:iid/resource_label_events, oldest first.
        actor = ""
        with self._api(f"read the label events of merge request !{number}"):
            for event in self._mr(number).resourcelabelevents.list(iterator=True):
                named = event.label.get("name") if isinstance(event.label, dict) else None
                user = event.user if isinstance(event.user, dict) else {}
                if event.action == "add" and named == label:
                    actor = str(user.get("username") or "")
        return actor

    def find_open_pull_request(self, head: str) -> PullRequestInfo | None:
        with self._api(f"find the open merge request for branch {head}"):
            for mr in self._project.mergerequests.list(state="opened", source_branch=head, iterator=True):
                if mr.source_branch == head:
                    return self._info(mr)
        return None

    def _create_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequestInfo:
        with self._api(f"open a merge request from {head} into {base}"):
            mr = self._project.mergerequests.create(
                {"source_branch": head, "target_branch": base, "title": title, "description": body}
            )
            return self._info(mr)

    def _info(self, mr: ProjectMergeRequest) -> PullRequestInfo:
        """Map an MR; the merge method comes from which SHA GitLab filled in.

        ``merge_commit_sha`` set: a merge commit (also when squashed first: the merge commit's first
        parent is still the old target). Else ``squash_commit_sha``: squashed and fast-forwarded.
        Else a fast-forward of the MR's own commits, ending at ``sha``: a rebase-style range.
        """
        raw_state = str(mr.state)
        state: Literal["open", "closed", "merged"] = (
            "merged" if raw_state == "merged" else ("open" if raw_state == "opened" else "closed")
        )
        merged = state == "merged"
        merge_sha: str | None = None
        method: base.MergeMethod | None = None
        count = 0
        if merged:
            if getattr(mr, "merge_commit_sha", None):
                merge_sha, method = str(mr.merge_commit_sha), "merge"
            elif getattr(mr, "squash_commit_sha", None):
                merge_sha, method = str(mr.squash_commit_sha), "squash"
            else:
                merge_sha, method = str(mr.sha), "rebase"
            count = len(list(mr.commits()))
        author = mr.author.get("username", "") if isinstance(mr.author, dict) else ""
        return PullRequestInfo(
            number=int(mr.iid),
            title=str(mr.title or ""),
            url=str(mr.web_url or ""),
            author=author,
            state=state,
            base_ref=str(mr.target_branch),
            head_ref=str(mr.source_branch),
            head_sha=str(mr.sha or ""),
            merged=merged,
            merge_commit_sha=merge_sha,
            merge_method=method,
            commit_count=count,
            # A deleted source project leaves no source_project_id: still someone else's commits.
            is_fork=mr.source_project_id is None or mr.source_project_id != mr.target_project_id,
            body=str(getattr(mr, "description", "") or ""),
            labels=tuple(str(name) for name in getattr(mr, "labels", None) or ()),
        )

    # -- issues ---------------------------------------------------------------------------------

    @staticmethod
    def _issue(issue: ProjectIssue) -> IssueRef:
        raw = getattr(issue, "author", None)
        author = raw if isinstance(raw, dict) else {}
        author_id = author.get("id")
        return IssueRef(
            number=int(issue.iid),
            title=str(issue.title or ""),
            body=str(getattr(issue, "description", "") or ""),
            url=str(getattr(issue, "web_url", "") or ""),
            state="open" if str(issue.state) == "opened" else "closed",
            author=str(author.get("username", "")),
            author_id=author_id if isinstance(author_id, int) else None,
        )

    def _issue_note_url(self, number: int, note_id: int) -> str:
        web = self.repo.web_url.rstrip("/")
        return f"{web}/-/issues/{number}#note_{note_id}" if web else ""

    def open_issues(self, author: str) -> list[IssueRef]:
        with self._api(f"list the open issues of {author}"):
            found = [
                self._issue(i) for i in self._project.issues.list(state="opened", author_username=author, iterator=True)
            ]
        return sorted(found, key=lambda i: i.number)

    def get_issue(self, number: int) -> IssueRef | None:
        try:
            with self._api(f"read issue #{number}"):
                return self._issue(self._project.issues.get(number))
        except errors.ForgeNotFoundError:
            return None

    def open_issue(self, title: str, body: str) -> IssueRef:
        self.check_comment_length(body)
        with self._api("open an issue"):
            return self._issue(self._project.issues.create({"title": title, "description": body}))

    def edit_issue(self, number: int, title: str, body: str) -> IssueRef:
        self.check_comment_length(body)
        with self._api(f"edit issue #{number}"):
            data = self._project.issues.update(number, {"title": title, "description": body})
        if not isinstance(data, dict):
            raise errors.ForgeError(f"GitLab: PUT issue #{number} did not return an issue")
        raw = data.get("author")
        author: dict[str, Any] = raw if isinstance(raw, dict) else {}
        return IssueRef(
            number=number,
            title=str(data.get("title") or title),
            body=str(data.get("description") or body),
            url=str(data.get("web_url") or ""),
            state="open" if data.get("state") == "opened" else "closed",
            author=str(author.get("username", "")),
            author_id=author.get("id") if isinstance(author.get("id"), int) else None,
        )

    def _close_issue(self, number: int) -> None:
        with self._api(f"close issue #{number}"):
            self._project.issues.update(number, {"state_event": "close"})

    def comment_on_issue(self, number: int, body: str) -> CommentRef:
        self.check_comment_length(body)
        with self._api(f"comment on issue #{number}"):
            note = self._project.issues.get(number, lazy=True).notes.create({"body": body})
        return self._ref(note, self._issue_note_url(number, int(note.id)))

    def get_issue_comment(self, number: int, comment_id: int) -> CommentRef | None:
        # GET /projects/:id/issues/:iid/notes/:note_id finds only a note of that issue.
        try:
            with self._api(f"read note {comment_id} on issue #{number}"):
                note = self._project.issues.get(number, lazy=True).notes.get(int(comment_id))
        except errors.ForgeNotFoundError:
            return None
        if getattr(note, "system", False):
            return None
        return self._ref(note, self._issue_note_url(number, int(note.id)))

    # -- git --------------------------------------------------------------------------------------

    def git_credentials(self) -> base.GitCredentials:
        # GitLab checks the password as a personal/project/group access token whatever the user name
        # is; "oauth2" also covers OAuth tokens.
        return base.GitCredentials(username="oauth2", password=self._token)

    # -- deployments ------------------------------------------------------------------------------

    #: GitLab creates a deployment in a status (``running``, ``success``, ``failed``, ``canceled``).
    deployment_created_in_state = True

    def create_deployment(self, update: base.DeploymentUpdate) -> int | None:
        """A deployment created outside CI, in the environment of that name (GitLab creates it if new)."""
        status = _DEPLOYMENT_STATUS[update.state]
        if status is None:
            return None
        data = {"environment": update.environment, "sha": update.sha, "ref": update.ref, "tag": False, "status": status}
        with self._api(f"create a deployment of {update.sha[:12]} to {update.environment}"):
            created = self._project.deployments.create(data)
        environment = getattr(created, "environment", None) or {}
        if update.environment_url and environment.get("external_url") != update.environment_url:
            with self._api(f"set the URL of environment {update.environment}"):
                self._project.environments.update(environment["id"], {"external_url": update.environment_url})
        return int(created.id)

    def update_deployment(self, deployment_id: int, update: base.DeploymentUpdate) -> None:
        """PUT the deployment's status; a transition GitLab refuses (``running`` again after ``failed``) is skipped."""
        status = _DEPLOYMENT_STATUS[update.state]
        if status is None:
            return
        try:
            with self._api(f"set deployment {deployment_id} of {update.environment} {status}"):
                self._project.deployments.update(deployment_id, {"status": status})
        except errors.ForgeValidationError as exc:
            # GitLab's deployments only go created → running, and any state → another final one.
            log.info("deployment %s of %s stays as it was: %s", deployment_id, update.environment, exc.message)


def _quote(ident: int | str) -> str:
    return str(ident) if isinstance(ident, int) else urllib.parse.quote(ident, safe="")


def gitlab_client(url: str, token: str, policy: RetryPolicy) -> gitlab.Gitlab:
    install_log_redaction()
    register_secret(token)
    return _Gitlab(url, private_token=token, timeout=policy.timeout, per_page=100, session=retrying_session(policy))
