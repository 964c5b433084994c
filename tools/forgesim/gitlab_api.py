"""The subset of GitLab REST v4 that python-gitlab calls for Mergeway's operations, plus webhook payloads.

Projects are addressed by numeric id or URL-encoded path (``group%2Fname``), as python-gitlab does.
Error bodies use GitLab's ``{"message": ...}`` form, including its quirks that matter to clients:
404 messages say *what* was not found ("404 Project Not Found"), and posting a commit status in
the state it already has is refused with "Cannot transition status via ...".
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from tools.forgesim.api import ApiError, ApiRequest, ApiResponse, Principal, Router, paginate
from tools.forgesim.state import SimComment, SimPR, SimRepo, SimStatus, gl_hook_time, gl_iso, now

if TYPE_CHECKING:
    from tools.forgesim.server import ForgeSim

STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
NOTE_LIMIT = 1_000_000
STATE_IDS = {"open": 1, "closed": 2, "merged": 3}
#: Fork projects are not modelled as repositories; their ids sit this far above the project they fork.
FORK_ID_OFFSET = 1_000_000


def error(status: int, message: Any) -> ApiError:
    return ApiError(status, {"message": message})


def _label_id(repo: SimRepo, name: str) -> int:
    """A label's id, derived from its name (stable per project; labels are not modelled otherwise)."""
    return int.from_bytes(hashlib.sha256(f"{repo.full_name}:{name}".encode()).digest()[:4], "big")


def source_project_id(pr: SimPR) -> int:
    """The project a merge request comes from: a fork (``fork_owner``) is a project of its own."""
    return pr.repo.id + FORK_ID_OFFSET if pr.fork_owner else pr.repo.id


class GitLabAPI:
    def __init__(self, sim: ForgeSim) -> None:
        self.sim = sim
        self.router = Router()
        p = "/projects/(?P<pid>[^/]+)"
        mr = rf"{p}/merge_requests/(?P<iid>\d+)"
        add = self.router.add
        add("GET", "/user", self.get_user)
        add("GET", "/users", self.list_users)
        add("GET", p, self.get_project)
        add("GET", rf"{p}/members/all/(?P<uid>\d+)", self.get_member)
        add("GET", f"{p}/merge_requests", self.list_mrs)
        add("POST", f"{p}/merge_requests", self.create_mr)
        add("GET", mr, self.get_mr)
        add("GET", f"{mr}/commits", self.mr_commits)
        add("GET", f"{mr}/resource_label_events", self.list_label_events)
        add("GET", f"{mr}/notes", self.list_notes)
        add("POST", f"{mr}/notes", self.create_note)
        add("GET", rf"{mr}/notes/(?P<nid>\d+)", self.get_note)
        add("PUT", rf"{mr}/notes/(?P<nid>\d+)", self.edit_note)
        add("DELETE", rf"{mr}/notes/(?P<nid>\d+)", self.delete_note)
        add("GET", rf"{mr}/notes/(?P<nid>\d+)/award_emoji", self.list_awards)
        add("POST", rf"{mr}/notes/(?P<nid>\d+)/award_emoji", self.create_award)
        add("POST", f"{p}/statuses/(?P<sha>[0-9a-fA-F]+)", self.create_status)
        add("GET", f"{p}/repository/commits/(?P<sha>[^/]+)/statuses", self.list_statuses)
        add("GET", f"{p}/repository/commits/(?P<sha>[^/]+)", self.get_commit)

    # -- authentication ---------------------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> Principal:
        value = headers.get("Private-Token", "") or headers.get("PRIVATE-TOKEN", "")
        if not value:
            scheme, _, bearer = headers.get("Authorization", "").partition(" ")
            value = bearer.strip() if scheme.lower() == "bearer" else ""
        if not value:
            raise error(401, "401 Unauthorized")
        token = self.sim.tokens.get(value)
        if token is None or token.forge != "gitlab" or token.expired():
            raise error(401, "401 Unauthorized")
        return Principal(token=token)

    def _project(self, req: ApiRequest, need: str = "read") -> SimRepo:
        ident = unquote(req.match["pid"])
        repo = (
            self.sim.find_repo_by_id("gitlab", int(ident)) if ident.isdigit() else self.sim.find_repo("gitlab", ident)
        )
        if repo is None or not self.sim.can_access(req.principal, repo, "read"):
            raise error(404, "404 Project Not Found")
        if need == "write" and not self.sim.can_access(req.principal, repo, "write"):
            raise error(403, "403 Forbidden")
        return repo

    def _mr(self, repo: SimRepo, iid: str) -> SimPR:
        pr = self.sim.prs.get(("gitlab", repo.full_name, int(iid)))
        if pr is None:
            raise error(404, "404 Not found")
        return pr

    def _note(self, repo: SimRepo, pr: SimPR, nid: str) -> SimComment:
        note = self.sim.comments.get(("gitlab", int(nid)))
        if note is None or note.repo is not repo or note.on_issue or note.number != pr.number:
            raise error(404, "404 Note Not Found")
        return note

    def actor(self, principal: Principal) -> str:
        return self.sim.actor_login("gitlab", principal)

    @staticmethod
    def _body(req: ApiRequest) -> dict[str, Any]:
        if isinstance(req.json, dict):
            return req.json
        return dict(req.args)

    # -- JSON shapes -------------------------------------------------------------------------------

    def user_json(self, login: str, web: str) -> dict[str, Any]:
        user = self.sim.user("gitlab", login)
        return {
            "id": user.id,
            "username": user.login,
            "name": user.name,
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"{web}/{user.login}",
            "bot": user.bot,
        }

    def project_json(self, repo: SimRepo, web: str) -> dict[str, Any]:
        ns = repo.namespace
        return {
            "id": repo.id,
            "description": None,
            "name": repo.name,
            "name_with_namespace": f"{ns} / {repo.name}",
            "path": repo.name,
            "path_with_namespace": repo.full_name,
            "created_at": gl_iso(repo.created_at),
            "default_branch": repo.default_branch,
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": repo.clone_url,
            "http_url_to_repo": repo.clone_url,
            "web_url": repo.web_url,
            "readme_url": None,
            "forks_count": 0,
            "avatar_url": None,
            "star_count": 0,
            "last_activity_at": gl_iso(now()),
            "visibility": "private",
            "namespace": {
                "id": 1,
                "name": ns,
                "path": ns.rsplit("/", 1)[-1],
                "kind": "group",
                "full_path": ns,
                "parent_id": None,
                "avatar_url": None,
                "web_url": f"{web}/groups/{ns}",
            },
        }

    def mr_json(self, pr: SimPR, web: str) -> dict[str, Any]:
        repo = pr.repo
        state = {"open": "opened", "closed": "closed", "merged": "merged"}[pr.state]
        base_sha = repo.git.branch_head(pr.base_ref) or pr.base_sha
        author = self.user_json(pr.author, web)
        merged_by = self.user_json(pr.merged_by, web) if pr.merged_by else None
        notes = sum(1 for c in self.sim.comments.values() if c.repo is repo and c.number == pr.number)
        return {
            "id": pr.id,
            "iid": pr.number,
            "project_id": repo.id,
            "title": pr.title,
            "description": pr.body,
            "state": state,
            "created_at": gl_iso(pr.created_at),
            "updated_at": gl_iso(pr.updated_at),
            "merged_by": merged_by,
            "merge_user": merged_by,
            "merged_at": gl_iso(pr.merged_at),
            "closed_by": None,
            "closed_at": gl_iso(pr.closed_at),
            "target_branch": pr.base_ref,
            "source_branch": pr.head_ref,
            "user_notes_count": notes,
            "upvotes": 0,
            "downvotes": 0,
            "author": author,
            "assignees": [],
            "assignee": None,
            "reviewers": [],
            "source_project_id": source_project_id(pr),
            "target_project_id": repo.id,
            "labels": list(pr.labels),
            "draft": False,
            "work_in_progress": False,
            "milestone": None,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable" if pr.state == "open" else "not_open",
            "sha": pr.head_sha,
            "merge_commit_sha": pr.merge_commit_sha,
            "squash_commit_sha": pr.squash_commit_sha,
            "discussion_locked": None,
            "should_remove_source_branch": None,
            "force_remove_source_branch": False,
            "prepared_at": gl_iso(pr.created_at),
            "reference": f"!{pr.number}",
            "references": {
                "short": f"!{pr.number}",
                "relative": f"!{pr.number}",
                "full": f"{repo.full_name}!{pr.number}",
            },
            "web_url": f"{repo.web_url}/-/merge_requests/{pr.number}",
            "time_stats": {
                "time_estimate": 0,
                "total_time_spent": 0,
                "human_time_estimate": None,
                "human_total_time_spent": None,
            },
            "squash": pr.merge_method == "squash",
            "squash_on_merge": pr.merge_method == "squash",
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_conflicts": False,
            "blocking_discussions_resolved": True,
            "diff_refs": {"base_sha": base_sha, "head_sha": pr.head_sha, "start_sha": base_sha},
        }

    def note_json(self, note: SimComment, web: str) -> dict[str, Any]:
        pr = self.sim.prs[("gitlab", note.repo.full_name, note.number)]
        return {
            "id": note.id,
            "type": None,
            "body": note.body,
            "attachment": None,
            "author": self.user_json(note.author, web),
            "created_at": gl_iso(note.created_at),
            "updated_at": gl_iso(note.updated_at),
            "system": False,
            "noteable_id": pr.id,
            "noteable_type": "MergeRequest",
            "project_id": note.repo.id,
            "resolvable": False,
            "confidential": False,
            "internal": False,
            "noteable_iid": pr.number,
            "commands_changes": {},
        }

    def status_json(self, s: SimStatus, web: str) -> dict[str, Any]:
        return {
            "id": s.id,
            "sha": s.sha,
            "ref": None,
            "status": s.state,
            "name": s.context,
            "target_url": s.target_url or None,
            "description": s.description or None,
            "created_at": gl_iso(s.created_at),
            "started_at": None,
            "finished_at": None,
            "allow_failure": False,
            "coverage": None,
            "pipeline_id": s.id,
            "author": self.user_json(s.creator, web),
        }

    def commit_json(self, repo: SimRepo, info: dict[str, Any]) -> dict[str, Any]:
        message = str(info["message"])
        return {
            "id": info["sha"],
            "short_id": str(info["sha"])[:8],
            "title": message.splitlines()[0] if message else "",
            "message": message,
            "author_name": info["author_name"],
            "author_email": info["author_email"],
            "authored_date": info["author_date"],
            "committer_name": info["committer_name"],
            "committer_email": info["committer_email"],
            "committed_date": info["committer_date"],
            "created_at": info["committer_date"],
            "parent_ids": info["parents"],
            "trailers": {},
            "web_url": f"{repo.web_url}/-/commit/{info['sha']}",
        }

    # -- handlers ---------------------------------------------------------------------------------

    def get_user(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.user_json(self.actor(req.principal), req.web_base))

    def list_users(self, req: ApiRequest) -> ApiResponse:
        username = req.args.get("username", "")
        users = [
            u
            for (forge, _), u in self.sim.users.items()
            if forge == "gitlab" and (not username or u.login.lower() == username.lower())
        ]
        page = paginate(req, users, default_per_page=20, gitlab_headers=True)
        page.body = [self.user_json(u.login, req.web_base) for u in page.body]
        return page

    def get_project(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.project_json(self._project(req), req.web_base))

    def get_member(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        uid = int(req.match["uid"])
        user = next((u for (forge, _), u in self.sim.users.items() if forge == "gitlab" and u.id == uid), None)
        level = repo.members.get(user.login) if user else None
        if user is None or not level:
            raise error(404, "404 Not found")
        data = self.user_json(user.login, req.web_base)
        data.update({"access_level": int(level), "expires_at": None, "created_at": gl_iso(repo.created_at)})
        return ApiResponse(200, data)

    def list_mrs(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        state = req.args.get("state", "all")
        with self.sim.lock:
            prs = [p for (forge, full, _), p in self.sim.prs.items() if forge == "gitlab" and full == repo.full_name]
        wanted = {"opened": "open", "closed": "closed", "merged": "merged"}.get(state)
        if wanted:
            prs = [p for p in prs if p.state == wanted]
        if req.args.get("source_branch"):
            prs = [p for p in prs if p.head_ref == req.args["source_branch"]]
        if req.args.get("target_branch"):
            prs = [p for p in prs if p.base_ref == req.args["target_branch"]]
        prs.sort(key=lambda p: p.number, reverse=req.args.get("sort", "desc") == "desc")
        page = paginate(req, prs, default_per_page=20, gitlab_headers=True)
        page.body = [self.mr_json(p, req.web_base) for p in page.body]
        return page

    def create_mr(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req, "write")
        body = self._body(req)
        for key in ("source_branch", "target_branch", "title"):
            if not body.get(key):
                raise error(400, f"{key} is missing")
        try:
            pr = self.sim.core_open_pr(
                repo,
                str(body["source_branch"]),
                str(body["target_branch"]),
                str(body["title"]),
                str(body.get("description") or ""),
                self.actor(req.principal),
                via_api=True,
            )
        except ValueError as exc:
            if str(exc) == "exists":
                existing = next(
                    p
                    for (f, full, _), p in self.sim.prs.items()
                    if f == "gitlab"
                    and full == repo.full_name
                    and p.head_ref == body["source_branch"]
                    and p.state == "open"
                )
                raise error(
                    409, [f"Another open merge request already exists for this source branch: !{existing.number}"]
                ) from None
            raise error(400, {"base": [f"Invalid merge request: {exc}"]}) from None
        return ApiResponse(201, self.mr_json(pr, req.web_base))

    def get_mr(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        return ApiResponse(200, self.mr_json(self._mr(repo, req.match["iid"]), req.web_base))

    def mr_commits(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        pr = self._mr(repo, req.match["iid"])
        infos = [repo.git.commit_info(sha) for sha in reversed(self.sim.pr_commits(pr))]  # newest first
        page = paginate(req, [i for i in infos if i], default_per_page=20, gitlab_headers=True)
        page.body = [self.commit_json(repo, i) for i in page.body]
        return page

    def list_label_events(self, req: ApiRequest) -> ApiResponse:
        """``GET .../merge_requests/:iid/resource_label_events``: who added or removed which label, oldest first."""
        repo = self._project(req)
        pr = self._mr(repo, req.match["iid"])
        with self.sim.lock:
            events = list(pr.label_events)
        page = paginate(req, events, default_per_page=20, gitlab_headers=True)
        page.body = [
            {
                "id": e.id,
                "user": self.user_json(e.actor, req.web_base),
                "created_at": gl_iso(e.created_at),
                "resource_type": "MergeRequest",
                "resource_id": pr.id,
                "label": {
                    "id": _label_id(repo, e.label),
                    "name": e.label,
                    "color": "#ededed",
                    "description": None,
                },
                "action": e.action,
            }
            for e in page.body
        ]
        return page

    def list_notes(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        pr = self._mr(repo, req.match["iid"])
        with self.sim.lock:
            notes = [
                c for c in self.sim.comments.values() if c.repo is repo and not c.on_issue and c.number == pr.number
            ]
        notes.sort(key=lambda c: (c.created_at, c.id), reverse=req.args.get("sort", "desc") == "desc")
        page = paginate(req, notes, default_per_page=20, gitlab_headers=True)
        page.body = [self.note_json(n, req.web_base) for n in page.body]
        return page

    def _check_body(self, body: Any) -> str:
        if not isinstance(body, str) or not body.strip():
            raise error(400, "body is missing")
        if len(body) > NOTE_LIMIT:
            raise error(400, {"note": [f"is too long (maximum is {NOTE_LIMIT} characters)"]})
        return body

    def create_note(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        pr = self._mr(repo, req.match["iid"])
        body = self._check_body(self._body(req).get("body"))
        note = self.sim.core_add_comment(repo, pr.number, body, self.actor(req.principal), via_api=True)
        return ApiResponse(201, self.note_json(note, req.web_base))

    def get_note(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        pr = self._mr(repo, req.match["iid"])
        return ApiResponse(200, self.note_json(self._note(repo, pr, req.match["nid"]), req.web_base))

    def _may_edit(self, req: ApiRequest, repo: SimRepo, note: SimComment) -> None:
        if note.author != self.actor(req.principal) and not self.sim.can_access(req.principal, repo, "write"):
            raise error(403, "403 Forbidden")

    def edit_note(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        pr = self._mr(repo, req.match["iid"])
        note = self._note(repo, pr, req.match["nid"])
        self._may_edit(req, repo, note)
        body = self._check_body(self._body(req).get("body"))
        with self.sim.lock:
            note.body = body
            note.updated_at = now()
        return ApiResponse(200, self.note_json(note, req.web_base))

    def delete_note(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        pr = self._mr(repo, req.match["iid"])
        note = self._note(repo, pr, req.match["nid"])
        self._may_edit(req, repo, note)
        with self.sim.lock:
            self.sim.comments.pop(("gitlab", note.id), None)
        return ApiResponse(204, None)

    def _award_json(self, award: Any, web: str) -> dict[str, Any]:
        return {
            "id": award.id,
            "name": award.content,
            "user": self.user_json(award.user, web),
            "created_at": gl_iso(award.created_at),
            "updated_at": gl_iso(award.created_at),
            "awardable_id": award.comment_id,
            "awardable_type": "Note",
        }

    def list_awards(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        pr = self._mr(repo, req.match["iid"])
        note = self._note(repo, pr, req.match["nid"])
        items = [r for r in self.sim.reactions if r.repo is repo and r.comment_id == note.id]
        page = paginate(req, items, default_per_page=20, gitlab_headers=True)
        page.body = [self._award_json(a, req.web_base) for a in page.body]
        return page

    def create_award(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        pr = self._mr(repo, req.match["iid"])
        note = self._note(repo, pr, req.match["nid"])
        name = str(self._body(req).get("name") or "")
        if not name:
            raise error(400, "name is missing")
        award, created = self.sim.core_add_reaction(repo, note.id, name, self.actor(req.principal))
        if not created:
            raise error(404, "404 Award Emoji Name has already been taken Not Found")
        return ApiResponse(201, self._award_json(award, req.web_base))

    def create_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req, "write")
        sha = req.match["sha"].lower()
        body = self._body(req)
        if repo.git.commit_info(sha) is None:
            raise error(404, "404 References Not Found")
        state = body.get("state")
        if state not in STATES:
            raise error(400, "state does not have a valid value")
        name = str(body.get("name") or body.get("context") or "default")
        with self.sim.lock:
            previous = [s for s in self.sim.statuses if s.repo is repo and s.sha == sha and s.context == name]
        if previous and previous[-1].state == state and state in ("pending", "running"):
            verb = "enqueue" if state == "pending" else "run"
            raise error(
                400,
                f"Cannot transition status via :{verb} from :{state} "
                f'(Reason(s): Status cannot transition via "{verb}".)',
            )
        status = self.sim.core_add_status(
            repo,
            sha,
            name,
            str(state),
            str(body.get("description") or ""),
            str(body.get("target_url") or ""),
            self.actor(req.principal),
        )
        return ApiResponse(201, self.status_json(status, req.web_base))

    def list_statuses(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        sha = repo.git.resolve(unquote(req.match["sha"])) or ""
        items = [s for s in self.sim.statuses if s.repo is repo and s.sha == sha]
        page = paginate(req, items, default_per_page=20, gitlab_headers=True)
        page.body = [self.status_json(s, req.web_base) for s in page.body]
        return page

    def get_commit(self, req: ApiRequest) -> ApiResponse:
        repo = self._project(req)
        ref = unquote(req.match["sha"])
        sha = repo.git.resolve(ref) or repo.git.resolve(f"refs/heads/{ref}")
        info = repo.git.commit_info(sha) if sha else None
        if info is None:
            raise error(404, "404 Commit Not Found")
        return ApiResponse(200, self.commit_json(repo, info))

    # -- webhooks ---------------------------------------------------------------------------------

    def _hook_user(self, login: str, web: str) -> dict[str, Any]:
        user = self.sim.user("gitlab", login)
        return {"id": user.id, "name": user.name, "username": user.login, "avatar_url": None, "email": "[REDACTED]"}

    def _hook_project(self, repo: SimRepo, web: str) -> dict[str, Any]:
        ns = repo.namespace
        return {
            "id": repo.id,
            "name": repo.name,
            "description": None,
            "web_url": repo.web_url,
            "avatar_url": None,
            "git_ssh_url": repo.clone_url,
            "git_http_url": repo.clone_url,
            "namespace": ns,
            "visibility_level": 0,
            "path_with_namespace": repo.full_name,
            "default_branch": repo.default_branch,
            "ci_config_path": None,
            "homepage": repo.web_url,
            "url": repo.clone_url,
            "ssh_url": repo.clone_url,
            "http_url": repo.clone_url,
        }

    def _source_project(self, pr: SimPR, web: str) -> dict[str, Any]:
        """A hook's ``source``: the fork project a fork's merge request comes from, as GitLab sends it.

        The fork is not a repository of the simulator: its URLs name ``<fork_owner>/<name>`` on this
        host, where nothing answers, so a receiver that fetched from them would fail visibly.
        """
        project = self._hook_project(pr.repo, web)
        if not pr.fork_owner:
            return project
        path = f"{pr.fork_owner}/{pr.repo.name}"
        root = pr.repo.web_url[: -len(pr.repo.full_name)]
        web_url, git_url = f"{root}{path}", f"{root}{path}.git"
        project.update(
            id=source_project_id(pr),
            namespace=pr.fork_owner,
            path_with_namespace=path,
            web_url=web_url,
            homepage=web_url,
            git_ssh_url=git_url,
            git_http_url=git_url,
            url=git_url,
            ssh_url=git_url,
            http_url=git_url,
        )
        return project

    def _last_commit(self, repo: SimRepo, sha: str) -> dict[str, Any]:
        info = repo.git.commit_info(sha) or {}
        message = str(info.get("message", ""))
        return {
            "id": sha,
            "message": message,
            "title": message.splitlines()[0] if message else "",
            "timestamp": info.get("committer_date"),
            "url": f"{repo.web_url}/-/commit/{sha}",
            "author": {"name": info.get("author_name", ""), "email": info.get("author_email", "")},
        }

    def _mr_attrs(self, pr: SimPR, web: str) -> dict[str, Any]:
        repo = pr.repo
        author = self.sim.user("gitlab", pr.author)
        state = {"open": "opened", "closed": "closed", "merged": "merged"}[pr.state]
        return {
            "assignee_id": None,
            "author_id": author.id,
            "created_at": gl_hook_time(pr.created_at),
            "description": pr.body,
            "head_pipeline_id": None,
            "id": pr.id,
            "iid": pr.number,
            "last_edited_at": None,
            "last_edited_by_id": None,
            "merge_commit_sha": pr.merge_commit_sha,
            "merge_error": None,
            "merge_params": {"force_remove_source_branch": "0"},
            "merge_status": "can_be_merged",
            "merge_user_id": None,
            "merge_when_pipeline_succeeds": False,
            "milestone_id": None,
            "source_branch": pr.head_ref,
            "source_project_id": source_project_id(pr),
            "state_id": STATE_IDS[pr.state],
            "target_branch": pr.base_ref,
            "target_project_id": repo.id,
            "time_estimate": 0,
            "title": pr.title,
            "updated_at": gl_hook_time(pr.updated_at),
            "updated_by_id": None,
            "url": f"{repo.web_url}/-/merge_requests/{pr.number}",
            "source": self._source_project(pr, web),
            "target": self._hook_project(repo, web),
            "last_commit": self._last_commit(repo, pr.head_sha),
            "work_in_progress": False,
            "draft": False,
            "total_time_spent": 0,
            "time_change": 0,
            "human_total_time_spent": None,
            "human_time_change": None,
            "human_time_estimate": None,
            "assignee_ids": [],
            "reviewer_ids": [],
            "labels": [],
            "state": state,
            "blocking_discussions_resolved": True,
            "detailed_merge_status": "mergeable",
            "first_contribution": False,
            "prepared_at": gl_hook_time(pr.created_at),
        }

    def merge_request_hook(
        self, pr: SimPR, action: str, sender: str, web: str, oldrev: str | None = None
    ) -> dict[str, Any]:
        attrs = self._mr_attrs(pr, web)
        attrs["action"] = action
        if oldrev is not None:
            attrs["oldrev"] = oldrev
        changes: dict[str, Any] = {"updated_at": {"previous": None, "current": gl_hook_time(pr.updated_at)}}
        if action in ("merge", "close"):
            changes["state_id"] = {"previous": 1, "current": STATE_IDS[pr.state]}
        repo = pr.repo
        return {
            "object_kind": "merge_request",
            "event_type": "merge_request",
            "user": self._hook_user(sender, web),
            "project": self._hook_project(repo, web),
            "object_attributes": attrs,
            "labels": [],
            "changes": changes,
            "repository": {"name": repo.name, "url": repo.clone_url, "description": None, "homepage": repo.web_url},
            "assignees": [],
            "reviewers": [],
        }

    def note_hook(self, note: SimComment, pr: SimPR, web: str) -> dict[str, Any]:
        repo = pr.repo
        author = self.sim.user("gitlab", note.author)
        # GitLab's Note Hook example carries these two on the merge request too (null when unset).
        mr = {**self._mr_attrs(pr, web), "assignee": None, "position": None}
        return {
            "object_kind": "note",
            "event_type": "note",
            "user": self._hook_user(note.author, web),
            "project_id": repo.id,
            "project": self._hook_project(repo, web),
            "repository": {"name": repo.name, "url": repo.clone_url, "description": None, "homepage": repo.web_url},
            "object_attributes": {
                "id": note.id,
                "note": note.body,
                "noteable_type": "MergeRequest",
                "author_id": author.id,
                "created_at": gl_hook_time(note.created_at),
                "updated_at": gl_hook_time(note.updated_at),
                "project_id": repo.id,
                "attachment": None,
                "line_code": None,
                "commit_id": "",
                "noteable_id": pr.id,
                "system": False,
                "st_diff": None,
                "action": "create",
                "url": f"{repo.web_url}/-/merge_requests/{pr.number}#note_{note.id}",
            },
            "merge_request": mr,
        }
