"""Issues on the simulated forges: GitHub's Issues API and GitLab's project issues, with their comments.

Mergeway keeps one issue per (repository, environment) for drift and reads commands from comments
on it, so both forges' shapes are kept as published:

* GitHub (``issue``, ``issue-comment`` in GitHub's OpenAPI description): ``GET``/``POST
  /repos/{o}/{r}/issues`` (the list includes pull requests, each with a ``pull_request`` key, as on
  GitHub), ``GET``/``PATCH .../issues/{n}`` (``state: closed`` closes), and the comments under
  ``.../issues/{n}/comments``. Issues and pull requests share one numbering. A comment on an issue
  sends ``issue_comment`` whose ``issue`` has no ``pull_request`` key.
* GitLab (doc/api/issues.md, doc/api/notes.md): ``GET``/``POST /projects/:id/issues``, ``GET``/``PUT
  .../issues/:iid`` (``state_event: close``), and notes under ``.../issues/:iid/notes``. Issues have
  their own ``iid`` numbering, apart from merge requests'. A note sends ``Note Hook`` with
  ``noteable_type: Issue`` and an ``issue`` object.

The routes that share a path with a pull request's (``GET /issues/{n}``, its comments) are put in
front of :mod:`github_api`'s and hand a pull request's number on to those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tools.forgesim.api import ApiError, ApiRequest, ApiResponse, Handler, paginate
from tools.forgesim.state import SimComment, SimRepo, gl_hook_time, gl_iso, iso, now

if TYPE_CHECKING:
    from tools.forgesim.github_api import GitHubAPI
    from tools.forgesim.gitlab_api import GitLabAPI
    from tools.forgesim.server import ForgeSim


@dataclass
class SimIssue:
    repo: SimRepo
    number: int
    id: int
    title: str
    body: str
    author: str
    state: Literal["open", "closed"] = "open"
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    closed_at: float | None = None
    closed_by: str | None = None


def core_open_issue(sim: ForgeSim, repo: SimRepo, title: str, body: str, author: str) -> SimIssue:
    """A new open issue; GitHub numbers it after every issue and pull request, GitLab after issues only."""
    with sim.lock:
        taken = [i.number for (f, full, _), i in sim.issues.items() if f == repo.forge and full == repo.full_name]
        if repo.forge == "github":
            taken += [p.number for (f, full, _), p in sim.prs.items() if f == repo.forge and full == repo.full_name]
        issue = SimIssue(repo, 1 + max(taken, default=0), next(sim._ids), title, body, author)
        sim.issues[(repo.forge, repo.full_name, issue.number)] = issue
        sim.add_user(repo.forge, author)
        return issue


def set_state(issue: SimIssue, state: Literal["open", "closed"], by: str) -> None:
    if issue.state == state:
        return
    issue.state = state
    issue.updated_at = now()
    issue.closed_at, issue.closed_by = (now(), by) if state == "closed" else (None, None)


def _prepend(router: Any, method: str, pattern: str, handler: Handler) -> None:
    """A route tried before the ones already registered (the pull request routes on shared paths)."""
    router.add(method, pattern, handler)
    router.routes.insert(0, router.routes.pop())


class GitHubIssuesAPI:
    """GitHub's issue endpoints, registered on :class:`GitHubAPI`'s router."""

    def __init__(self, api: GitHubAPI) -> None:
        self.api = api
        self.sim = api.sim
        r = "/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        router = api.router
        self._pr_get = api.get_issue
        self._pr_comments = api.list_comments
        self._pr_comment = api.create_comment
        _prepend(router, "GET", rf"{r}/issues", self.list_issues)
        _prepend(router, "POST", rf"{r}/issues", self.create_issue)
        _prepend(router, "GET", rf"{r}/issues/(?P<number>\d+)", self.get_issue)
        _prepend(router, "PATCH", rf"{r}/issues/(?P<number>\d+)", self.edit_issue)
        _prepend(router, "GET", rf"{r}/issues/(?P<number>\d+)/comments", self.list_comments)
        _prepend(router, "POST", rf"{r}/issues/(?P<number>\d+)/comments", self.create_comment)

    def _issue(self, repo: SimRepo, number: str) -> SimIssue | None:
        return self.sim.issues.get(("github", repo.full_name, int(number)))

    def issue_json(self, issue: SimIssue, api: str, web: str) -> dict[str, Any]:
        """GitHub's ``issue``: the pull request's issue shape without ``pull_request``."""
        repo = issue.repo
        url = f"{api}/repos/{repo.full_name}/issues/{issue.number}"
        comments = sum(1 for c in self.sim.comments.values() if c.repo is repo and c.number == issue.number)
        return {
            "url": url,
            "repository_url": f"{api}/repos/{repo.full_name}",
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{repo.web_url}/issues/{issue.number}",
            "id": issue.id + 500_000,
            "node_id": f"I_{issue.id}",
            "number": issue.number,
            "title": issue.title,
            "user": self.api.user_json(issue.author, api, web),
            "labels": [],
            "state": issue.state,
            "state_reason": "completed" if issue.state == "closed" else None,
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": comments,
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "closed_by": self.api.user_json(issue.closed_by, api, web) if issue.closed_by else None,
            "author_association": "OWNER" if issue.author == repo.owner else "CONTRIBUTOR",
            "active_lock_reason": None,
            "reactions": self.api._rollup(f"{url}/reactions", []),
            "body": issue.body,
        }

    def list_issues(self, req: ApiRequest) -> ApiResponse:
        """Issues and pull requests (GitHub lists both here), newest first unless ``direction=asc``."""
        repo = self.api._repo(req)
        state, creator = req.args.get("state", "open"), req.args.get("creator", "")
        with self.sim.lock:
            issues: list[Any] = [
                i for (f, full, _), i in self.sim.issues.items() if (f, full) == ("github", repo.full_name)
            ]
            issues += self.sim._prs_of(repo)
        if state in ("open", "closed"):
            issues = [i for i in issues if (i.state == "open") == (state == "open")]
        if creator:
            issues = [i for i in issues if i.author.lower() == creator.lower()]
        issues.sort(key=lambda i: i.number, reverse=req.args.get("direction", "desc") == "desc")
        page = paginate(req, issues, default_per_page=30)
        page.body = [self._json(i, req) for i in page.body]
        return page

    def _json(self, item: Any, req: ApiRequest) -> dict[str, Any]:
        if isinstance(item, SimIssue):
            return self.issue_json(item, req.api_base, req.web_base)
        return self.api.issue_json(item, req.api_base, req.web_base)

    def create_issue(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        body = req.json if isinstance(req.json, dict) else {}
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _invalid("Issue", "title", "missing_field")
        text = body.get("body") or ""
        if not isinstance(text, str) or len(text) > 65_536:
            raise _invalid("Issue", "body", "invalid")
        issue = core_open_issue(self.sim, repo, title, text, self.api.actor(req.principal))
        return ApiResponse(201, self.issue_json(issue, req.api_base, req.web_base))

    def get_issue(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        issue = self._issue(repo, req.match["number"])
        if issue is None:
            return self._pr_get(req)
        return ApiResponse(200, self.issue_json(issue, req.api_base, req.web_base))

    def edit_issue(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        issue = self._issue(repo, req.match["number"])
        if issue is None:
            raise ApiError(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        actor = self.api.actor(req.principal)
        if actor != issue.author and not self.sim.can_access(req.principal, repo, "write"):
            raise ApiError(403, {"message": "Must have push access to edit this issue.", "documentation_url": ""})
        body = req.json if isinstance(req.json, dict) else {}
        with self.sim.lock:
            if "title" in body:
                if not isinstance(body["title"], str) or not body["title"].strip():
                    raise _invalid("Issue", "title", "missing_field")
                issue.title = body["title"]
            if "body" in body:
                if not isinstance(body["body"], str | None) or len(body["body"] or "") > 65_536:
                    raise _invalid("Issue", "body", "invalid")
                issue.body = body["body"] or ""
            if "state" in body:
                if body["state"] not in ("open", "closed"):
                    raise _invalid("Issue", "state", "invalid")
                set_state(issue, body["state"], actor)
            issue.updated_at = now()
        return ApiResponse(200, self.issue_json(issue, req.api_base, req.web_base))

    def list_comments(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        issue = self._issue(repo, req.match["number"])
        if issue is None:
            return self._pr_comments(req)
        with self.sim.lock:
            comments = sorted(
                (c for c in self.sim.comments.values() if c.repo is repo and c.number == issue.number),
                key=lambda c: c.id,
            )
        page = paginate(req, comments, default_per_page=30)
        page.body = [self.api.comment_json(c, req.api_base, req.web_base) for c in page.body]
        return page

    def create_comment(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        issue = self._issue(repo, req.match["number"])
        if issue is None:
            return self._pr_comment(req)
        body = self.api._check_body((req.json or {}).get("body"))
        comment = core_add_issue_comment(self.sim, issue, body, self.api.actor(req.principal), via_api=True)
        return ApiResponse(201, self.api.comment_json(comment, req.api_base, req.web_base))

    def issue_comment_hook(
        self, comment: SimComment, issue: SimIssue, api: str, web: str, installation_id: int | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "action": "created",
            "issue": self.issue_json(issue, api, web),
            "comment": self.api.comment_json(comment, api, web),
            "repository": self.api.repo_json(issue.repo, api, web),
            "sender": self.api.user_json(comment.author, api, web),
        }
        if installation_id is not None:
            payload["installation"] = {"id": installation_id, "node_id": f"MDIz{installation_id}"}
        return payload


def _invalid(resource: str, name: str, code: str) -> ApiError:
    return ApiError(
        422,
        {
            "message": "Validation Failed",
            "errors": [{"resource": resource, "field": name, "code": code}],
            "documentation_url": "https://docs.github.com/rest/issues/issues",
        },
    )


def core_add_issue_comment(
    sim: ForgeSim, issue: SimIssue, body: str, author: str, *, via_api: bool = False
) -> SimComment:
    """A comment (GitHub) or note (GitLab) on ``issue``; sends its webhook like any comment."""
    repo = issue.repo
    with sim.lock:
        comment = SimComment(id=next(sim._ids), repo=repo, number=issue.number, body=body, author=author, on_issue=True)
        sim.comments[(repo.forge, comment.id)] = comment
        issue.updated_at = now()
        if sim.api_webhooks or not via_api:
            send_issue_comment_hook(sim, comment, issue)
        return comment


def send_issue_comment_hook(sim: ForgeSim, comment: SimComment, issue: SimIssue) -> None:
    repo = issue.repo
    web = sim.web_url(repo.forge)
    if repo.forge == "github":
        iid = sim.installation_for(repo)
        payload = sim.github_issues.issue_comment_hook(comment, issue, f"{web}/api/v3", web, iid)
        sim.webhooks.send("github", "issue_comment", payload, wait=False, repo_id=repo.id)
    else:
        payload = sim.gitlab_issues.note_hook(comment, issue, web)
        sim.webhooks.send("gitlab", "Note Hook", payload, wait=False, repo_id=repo.id)


class GitLabIssuesAPI:
    """GitLab's project issue endpoints and their notes, registered on :class:`GitLabAPI`'s router."""

    def __init__(self, api: GitLabAPI) -> None:
        self.api = api
        self.sim = api.sim
        p = "/projects/(?P<pid>[^/]+)"
        issue = rf"{p}/issues/(?P<iid>\d+)"
        add = api.router.add
        add("GET", f"{p}/issues", self.list_issues)
        add("POST", f"{p}/issues", self.create_issue)
        add("GET", issue, self.get_issue)
        add("PUT", issue, self.edit_issue)
        add("GET", f"{issue}/notes", self.list_notes)
        add("POST", f"{issue}/notes", self.create_note)
        add("GET", rf"{issue}/notes/(?P<nid>\d+)", self.get_note)

    def _issue(self, repo: SimRepo, iid: str) -> SimIssue:
        issue = self.sim.issues.get(("gitlab", repo.full_name, int(iid)))
        if issue is None:
            raise ApiError(404, {"message": "404 Not found"})
        return issue

    def issue_json(self, issue: SimIssue, web: str) -> dict[str, Any]:
        """doc/api/issues.md, "Single project issue" (the fields the documentation's example has)."""
        repo = issue.repo
        author = self.api.user_json(issue.author, web)
        closed_by = self.api.user_json(issue.closed_by, web) if issue.closed_by else None
        notes = sum(1 for c in self.sim.comments.values() if c.repo is repo and c.on_issue and c.number == issue.number)
        url = f"{repo.web_url}/-/issues/{issue.number}"
        return {
            "id": issue.id,
            "iid": issue.number,
            "project_id": repo.id,
            "title": issue.title,
            "description": issue.body,
            "state": "opened" if issue.state == "open" else "closed",
            "created_at": gl_iso(issue.created_at),
            "updated_at": gl_iso(issue.updated_at),
            "closed_at": gl_iso(issue.closed_at),
            "closed_by": closed_by,
            "labels": [],
            "milestone": None,
            "assignees": [],
            "assignee": None,
            "author": author,
            "type": "ISSUE",
            "issue_type": "issue",
            "user_notes_count": notes,
            "merge_requests_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "due_date": None,
            "confidential": False,
            "discussion_locked": None,
            "web_url": url,
            "time_stats": {
                "time_estimate": 0,
                "total_time_spent": 0,
                "human_time_estimate": None,
                "human_total_time_spent": None,
            },
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_tasks": False,
            "_links": {
                "self": f"{web}/api/v4/projects/{repo.id}/issues/{issue.number}",
                "notes": f"{web}/api/v4/projects/{repo.id}/issues/{issue.number}/notes",
                "award_emoji": f"{web}/api/v4/projects/{repo.id}/issues/{issue.number}/award_emoji",
                "project": f"{web}/api/v4/projects/{repo.id}",
                "closed_as_duplicate_of": None,
            },
            "references": {
                "short": f"#{issue.number}",
                "relative": f"#{issue.number}",
                "full": f"{repo.full_name}#{issue.number}",
            },
            "severity": "UNKNOWN",
            "moved_to_id": None,
            "service_desk_reply_to": None,
        }

    def note_json(self, note: SimComment, issue: SimIssue, web: str) -> dict[str, Any]:
        """doc/api/notes.md: the note entity, on an issue."""
        return {
            "id": note.id,
            "type": None,
            "body": note.body,
            "attachment": None,
            "author": self.api.user_json(note.author, web),
            "created_at": gl_iso(note.created_at),
            "updated_at": gl_iso(note.updated_at),
            "system": False,
            "noteable_id": issue.id,
            "noteable_type": "Issue",
            "project_id": note.repo.id,
            "resolvable": False,
            "confidential": False,
            "internal": False,
            "noteable_iid": issue.number,
            "commands_changes": {},
        }

    def list_issues(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        state = req.args.get("state", "all")
        author = req.args.get("author_username", "")
        with self.sim.lock:
            issues = [i for (f, full, _), i in self.sim.issues.items() if (f, full) == ("gitlab", repo.full_name)]
        if state in ("opened", "closed"):
            issues = [i for i in issues if (i.state == "open") == (state == "opened")]
        if author:
            issues = [i for i in issues if i.author == author]
        if req.args.get("author_id", ""):
            issues = [i for i in issues if str(self.sim.user("gitlab", i.author).id) == req.args["author_id"]]
        issues.sort(key=lambda i: (i.created_at, i.id), reverse=req.args.get("sort", "desc") == "desc")
        page = paginate(req, issues, default_per_page=20, gitlab_headers=True)
        page.body = [self.issue_json(i, req.web_base) for i in page.body]
        return page

    def create_issue(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        body = self.api._body(req)
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ApiError(400, {"error": "title is missing"})
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > 1_048_576:
            raise ApiError(400, {"message": {"description": ["is too long (maximum is 1048576 characters)"]}})
        issue = core_open_issue(self.sim, repo, title, description, self.api.actor(req.principal))
        return ApiResponse(201, self.issue_json(issue, req.web_base))

    def get_issue(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        return ApiResponse(200, self.issue_json(self._issue(repo, req.match["iid"]), req.web_base))

    def edit_issue(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        issue = self._issue(repo, req.match["iid"])
        actor = self.api.actor(req.principal)
        if actor != issue.author and not self.sim.can_access(req.principal, repo, "write"):
            raise ApiError(403, {"message": "403 Forbidden"})
        body = self.api._body(req)
        with self.sim.lock:
            if "title" in body:
                issue.title = str(body["title"])
            if "description" in body:
                issue.body = str(body["description"] or "")
            event = body.get("state_event")
            if event is not None and event not in ("close", "reopen"):
                raise ApiError(400, {"error": "state_event does not have a valid value"})
            if event:
                set_state(issue, "closed" if event == "close" else "open", actor)
            issue.updated_at = now()
        return ApiResponse(200, self.issue_json(issue, req.web_base))

    def list_notes(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        issue = self._issue(repo, req.match["iid"])
        with self.sim.lock:
            notes = [
                c for c in self.sim.comments.values() if c.repo is repo and c.on_issue and c.number == issue.number
            ]
        notes.sort(key=lambda c: (c.created_at, c.id), reverse=req.args.get("sort", "desc") == "desc")
        page = paginate(req, notes, default_per_page=20, gitlab_headers=True)
        page.body = [self.note_json(n, issue, req.web_base) for n in page.body]
        return page

    def create_note(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        issue = self._issue(repo, req.match["iid"])
        body = self.api._check_body(self.api._body(req).get("body"))
        note = core_add_issue_comment(self.sim, issue, body, self.api.actor(req.principal), via_api=True)
        return ApiResponse(201, self.note_json(note, issue, req.web_base))

    def get_note(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        issue = self._issue(repo, req.match["iid"])
        note = self.sim.comments.get(("gitlab", int(req.match["nid"])))
        if note is None or note.repo is not repo or not note.on_issue or note.number != issue.number:
            raise ApiError(404, {"message": "404 Note Not Found"})
        return ApiResponse(200, self.note_json(note, issue, req.web_base))

    def note_hook(self, note: SimComment, issue: SimIssue, web: str) -> dict[str, Any]:
        """``Note Hook`` for a comment on an issue (webhook_events.md, "Comment on an issue")."""
        repo = issue.repo
        author = self.sim.user("gitlab", note.author)
        issue_author = self.sim.user("gitlab", issue.author)
        return {
            "object_kind": "note",
            "event_type": "note",
            "user": self.api._hook_user(note.author, web),
            "project_id": repo.id,
            "project": self.api._hook_project(repo, web),
            "repository": {"name": repo.name, "url": repo.clone_url, "description": None, "homepage": repo.web_url},
            "object_attributes": {
                "id": note.id,
                "note": note.body,
                "noteable_type": "Issue",
                "author_id": author.id,
                "created_at": gl_hook_time(note.created_at),
                "updated_at": gl_hook_time(note.updated_at),
                "project_id": repo.id,
                "attachment": None,
                "line_code": None,
                "commit_id": "",
                "noteable_id": issue.id,
                "system": False,
                "st_diff": None,
                "action": "create",
                "url": f"{repo.web_url}/-/issues/{issue.number}#note_{note.id}",
            },
            "issue": {
                "id": issue.id,
                "iid": issue.number,
                "title": issue.title,
                "description": issue.body,
                "state": "opened" if issue.state == "open" else "closed",
                "author_id": issue_author.id,
                "project_id": repo.id,
                "created_at": gl_hook_time(issue.created_at),
                "updated_at": gl_hook_time(issue.updated_at),
                "closed_at": gl_hook_time(issue.closed_at),
                "confidential": False,
                "url": f"{repo.web_url}/-/issues/{issue.number}",
                "assignee_ids": [],
                "assignee_id": None,
                "labels": [],
                "milestone_id": None,
                "state_id": 1 if issue.state == "open" else 2,
            },
        }
