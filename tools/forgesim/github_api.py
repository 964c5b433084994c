"""The subset of GitHub REST v3 that PyGithub calls for Mergeway's operations, plus webhook payloads.

Shapes follow the published API closely enough for PyGithub to work unmodified: every object
carries its absolute ``url`` (PyGithub addresses follow-up requests by it), lists paginate with
``Link`` headers, and errors have GitHub's ``{"message", "errors", "documentation_url"}`` form.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jwt

from tools.forgesim.api import ApiError, ApiRequest, ApiResponse, Principal, Router, paginate
from tools.forgesim.state import SimApp, SimComment, SimPR, SimRepo, SimStatus, SimToken, SimUser, iso, now

#: The creation time the simulator gives accounts and Apps (GitHub requires one; nothing reads it).
SIM_EPOCH = "2020-01-01T00:00:00Z"

if TYPE_CHECKING:
    from tools.forgesim.server import ForgeSim

DOCS = "https://docs.github.com/rest"
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
STATES = ("pending", "success", "failure", "error")
COMMENT_LIMIT = 65_536
_LEGACY = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}


def error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> ApiError:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS}
    if errors:
        body["errors"] = errors
    return ApiError(status, body)


class GitHubAPI:
    def __init__(self, sim: ForgeSim) -> None:
        self.sim = sim
        self.router = Router()
        r = "/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        add = self.router.add
        add("GET", "/user", self.get_user)
        add("GET", "/app", self.get_app)
        add("POST", r"/app/installations/(?P<iid>\d+)/access_tokens", self.create_installation_token)
        add("GET", f"{r}/installation", self.get_repo_installation)
        add("GET", r, self.get_repo)
        add("GET", f"{r}/pulls", self.list_pulls)
        add("POST", f"{r}/pulls", self.create_pull)
        add("GET", rf"{r}/pulls/(?P<number>\d+)", self.get_pull)
        add("GET", rf"{r}/pulls/(?P<number>\d+)/commits", self.pull_commits)
        add("GET", rf"{r}/issues/(?P<number>\d+)", self.get_issue)
        add("GET", rf"{r}/issues/(?P<number>\d+)/comments", self.list_comments)
        add("POST", rf"{r}/issues/(?P<number>\d+)/comments", self.create_comment)
        add("GET", rf"{r}/issues/(?P<number>\d+)/events", self.list_issue_events)
        add("GET", rf"{r}/issues/comments/(?P<cid>\d+)", self.get_comment)
        add("PATCH", rf"{r}/issues/comments/(?P<cid>\d+)", self.edit_comment)
        add("DELETE", rf"{r}/issues/comments/(?P<cid>\d+)", self.delete_comment)
        add("GET", rf"{r}/issues/comments/(?P<cid>\d+)/reactions", self.list_reactions)
        add("POST", rf"{r}/issues/comments/(?P<cid>\d+)/reactions", self.create_reaction)
        add("GET", f"{r}/commits/(?P<ref>[^/]+)", self.get_commit)
        add("GET", f"{r}/commits/(?P<ref>[^/]+)/statuses", self.list_statuses)
        add("POST", f"{r}/statuses/(?P<sha>[0-9a-fA-F]+)", self.create_status)
        add("GET", f"{r}/collaborators/(?P<user>[^/]+)/permission", self.get_permission)

    # -- authentication ---------------------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> Principal:
        auth = headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        if not auth:
            raise error(401, "Requires authentication")
        if scheme.lower() == "bearer" and value.count(".") == 2:
            return Principal(app=self._verify_jwt(value))
        if scheme.lower() not in ("token", "bearer"):
            raise error(401, "Bad credentials")
        token = self.sim.tokens.get(value)
        if token is None or token.forge != "github" or token.expired():
            raise error(401, "Bad credentials")
        return Principal(token=token)

    def _verify_jwt(self, token: str) -> SimApp:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            app = self.sim.apps.get(int(str(claims.get("iss"))))
            if app is None:
                raise error(401, "Integration not found")
            jwt.decode(
                token, app.public_key_pem, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]}, leeway=30
            )
        except (jwt.PyJWTError, ValueError):
            raise error(401, "A JSON web token could not be decoded") from None
        return app

    def _require_app(self, req: ApiRequest) -> SimApp:
        if req.principal.app is None:
            raise error(401, "A JSON web token could not be decoded")
        return req.principal.app

    def _repo(self, req: ApiRequest, need: str = "read") -> SimRepo:
        repo = self.sim.find_repo("github", f"{req.match['owner']}/{req.match['name']}")
        if repo is None or not self.sim.can_access(req.principal, repo, "read"):
            raise error(404, "Not Found")
        if need == "write" and not self.sim.can_access(req.principal, repo, "write"):
            if req.principal.token is not None and req.principal.token.installation_id is not None:
                raise error(403, "Resource not accessible by integration")
            raise error(403, "Must have push access to repository")
        return repo

    def _pr(self, repo: SimRepo, number: str) -> SimPR:
        pr = self.sim.prs.get(("github", repo.full_name, int(number)))
        if pr is None:
            raise error(404, "Not Found")
        return pr

    def actor(self, principal: Principal) -> str:
        return self.sim.actor_login("github", principal)

    # -- JSON shapes -------------------------------------------------------------------------------

    def user_json(self, login: str, api: str, web: str) -> dict[str, Any]:
        """GitHub's ``simple-user``: every field the REST description and the webhook schemas require."""
        user: SimUser = self.sim.user("github", login)
        url = f"{api}/users/{user.login}"
        return {
            "login": user.login,
            "id": user.id,
            "node_id": f"U_{user.id}",
            "avatar_url": f"{web}/avatars/u/{user.id}",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{web}/{user.login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": "Bot" if user.bot else "User",
            "user_view_type": "public",
            "site_admin": False,
        }

    def repo_json(self, repo: SimRepo, api: str, web: str) -> dict[str, Any]:
        """GitHub's ``repository`` (as in pull requests and webhooks), with every required field."""
        url = f"{api}/repos/{repo.full_name}"
        templates = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "contributors_url": "/contributors",
            "deployments_url": "/deployments",
            "downloads_url": "/downloads",
            "events_url": "/events",
            "forks_url": "/forks",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "hooks_url": "/hooks",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "languages_url": "/languages",
            "merges_url": "/merges",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "stargazers_url": "/stargazers",
            "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers",
            "subscription_url": "/subscription",
            "tags_url": "/tags",
            "teams_url": "/teams",
            "trees_url": "/git/trees{/sha}",
        }
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": True,
            "owner": self.user_json(repo.owner, api, web),
            "html_url": repo.web_url,
            "description": None,
            "fork": False,
            "url": url,
            **{key: url + suffix for key, suffix in templates.items()},
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at),
            "pushed_at": iso(now()),
            "git_url": repo.clone_url,
            "ssh_url": repo.clone_url,
            "clone_url": repo.clone_url,
            "svn_url": repo.web_url,
            "homepage": None,
            "size": 0,
            "default_branch": repo.default_branch,
            "visibility": "private",
            "archived": False,
            "disabled": False,
            "has_issues": True,
            "has_projects": False,
            "has_downloads": False,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "language": None,
            "license": None,
            "mirror_url": None,
            "forks": 0,
            "forks_count": 0,
            "open_issues": 0,
            "open_issues_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "allow_forking": True,
            "is_template": False,
            "topics": [],
        }

    def _fork_json(self, repo_json: dict[str, Any], owner: str, api: str, web: str) -> dict[str, Any]:
        name = repo_json["name"]
        return {
            **repo_json,
            "full_name": f"{owner}/{name}",
            "fork": True,
            "owner": self.user_json(owner, api, web),
            "html_url": f"{web}/{owner}/{name}",
        }

    def _head_repo_json(self, pr: SimPR, repo_json: dict[str, Any], api: str, web: str) -> dict[str, Any] | None:
        if not pr.fork_owner:
            return repo_json
        return None if pr.fork_deleted else self._fork_json(repo_json, pr.fork_owner, api, web)

    def pr_json(self, pr: SimPR, api: str, web: str) -> dict[str, Any]:
        repo = pr.repo
        url = f"{api}/repos/{repo.full_name}/pulls/{pr.number}"
        issue_url = f"{api}/repos/{repo.full_name}/issues/{pr.number}"
        html = f"{repo.web_url}/pull/{pr.number}"
        base_sha = repo.git.branch_head(pr.base_ref) or pr.base_sha
        repo_json = self.repo_json(repo, api, web)
        comments = sum(1 for c in self.sim.comments.values() if c.repo is repo and c.number == pr.number)
        return {
            "url": url,
            "id": pr.id,
            "node_id": f"PR_{pr.id}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_url,
            "number": pr.number,
            "state": "open" if pr.state == "open" else "closed",
            "locked": False,
            "title": pr.title,
            "user": self.user_json(pr.author, api, web),
            "body": pr.body,
            "created_at": iso(pr.created_at),
            "updated_at": iso(pr.updated_at),
            "closed_at": iso(pr.closed_at),
            "merged_at": iso(pr.merged_at),
            "merge_commit_sha": pr.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "labels": [self.label_json(pr.repo, name, api) for name in pr.labels],
            "milestone": None,
            "draft": False,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{api}/repos/{repo.full_name}/pulls/comments{{/number}}",
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{api}/repos/{repo.full_name}/statuses/{pr.head_sha}",
            "head": {
                "label": f"{pr.fork_owner or repo.owner}:{pr.head_ref}",
                "ref": pr.head_ref,
                "sha": pr.head_sha,
                "user": self.user_json(pr.fork_owner or repo.owner, api, web),
                "repo": self._head_repo_json(pr, repo_json, api, web),
            },
            "base": {
                "label": f"{repo.owner}:{pr.base_ref}",
                "ref": pr.base_ref,
                "sha": base_sha,
                "user": self.user_json(repo.owner, api, web),
                "repo": repo_json,
            },
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "issue": {"href": issue_url},
                "comments": {"href": f"{issue_url}/comments"},
                "commits": {"href": f"{url}/commits"},
                "statuses": {"href": f"{api}/repos/{repo.full_name}/statuses/{pr.head_sha}"},
                "review_comments": {"href": f"{url}/comments"},
                "review_comment": {"href": f"{api}/repos/{repo.full_name}/pulls/comments{{/number}}"},
            },
            "author_association": "OWNER" if pr.author == repo.owner else "CONTRIBUTOR",
            "auto_merge": None,
            "active_lock_reason": None,
            "merged": pr.merged,
            "mergeable": pr.state == "open" or None,
            "rebaseable": pr.state == "open" or None,
            "mergeable_state": "clean" if pr.state == "open" else "unknown",
            "merged_by": self.user_json(pr.merged_by, api, web) if pr.merged_by else None,
            "comments": comments,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": len(self.sim.pr_commits(pr)),
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
        }

    @staticmethod
    def label_json(repo: SimRepo, name: str, api: str) -> dict[str, Any]:
        """A label as GitHub's REST API shows it (ids derived from the name, stable per repository)."""
        ident = int.from_bytes(hashlib.sha256(f"{repo.full_name}:{name}".encode()).digest()[:4], "big")
        return {
            "id": ident,
            "node_id": f"LA_{ident}",
            "url": f"{api}/repos/{repo.full_name}/labels/{quote(name, safe='')}",
            "name": name,
            "color": "ededed",
            "default": False,
            "description": None,
        }

    def issue_json(self, pr: SimPR, api: str, web: str) -> dict[str, Any]:
        repo = pr.repo
        url = f"{api}/repos/{repo.full_name}/issues/{pr.number}"
        comments = sum(1 for c in self.sim.comments.values() if c.repo is repo and c.number == pr.number)
        return {
            "url": url,
            "repository_url": f"{api}/repos/{repo.full_name}",
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{repo.web_url}/pull/{pr.number}",
            "id": pr.id + 500_000,
            "node_id": f"I_{pr.id}",
            "number": pr.number,
            "title": pr.title,
            "user": self.user_json(pr.author, api, web),
            "labels": [self.label_json(pr.repo, name, api) for name in pr.labels],
            "state": "open" if pr.state == "open" else "closed",
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": comments,
            "created_at": iso(pr.created_at),
            "updated_at": iso(pr.updated_at),
            "closed_at": iso(pr.closed_at),
            "author_association": "OWNER" if pr.author == repo.owner else "CONTRIBUTOR",
            "active_lock_reason": None,
            "reactions": self._rollup(f"{url}/reactions", []),
            "pull_request": {
                "url": f"{api}/repos/{repo.full_name}/pulls/{pr.number}",
                "html_url": f"{repo.web_url}/pull/{pr.number}",
                "diff_url": f"{repo.web_url}/pull/{pr.number}.diff",
                "patch_url": f"{repo.web_url}/pull/{pr.number}.patch",
                "merged_at": iso(pr.merged_at),
            },
            "body": pr.body,
        }

    def comment_json(self, c: SimComment, api: str, web: str) -> dict[str, Any]:
        repo = c.repo
        return {
            "url": f"{api}/repos/{repo.full_name}/issues/comments/{c.id}",
            "html_url": f"{repo.web_url}/{'issues' if c.on_issue else 'pull'}/{c.number}#issuecomment-{c.id}",
            "issue_url": f"{api}/repos/{repo.full_name}/issues/{c.number}",
            "id": c.id,
            "node_id": f"IC_{c.id}",
            "user": self.user_json(c.author, api, web),
            "created_at": iso(c.created_at),
            "updated_at": iso(c.updated_at),
            "author_association": "OWNER" if c.author == repo.owner else "NONE",
            "body": c.body,
            "performed_via_github_app": None,
            "reactions": self._rollup(
                f"{api}/repos/{repo.full_name}/issues/comments/{c.id}/reactions",
                [r.content for r in self.sim.reactions if r.repo is repo and r.comment_id == c.id],
            ),
        }

    @staticmethod
    def _rollup(url: str, contents: list[str]) -> dict[str, Any]:
        """GitHub's ``reactions`` summary on issues and comments (required in webhook payloads)."""
        return {"url": url, "total_count": len(contents), **{name: contents.count(name) for name in REACTIONS}}

    def status_json(self, s: SimStatus, api: str, web: str) -> dict[str, Any]:
        return {
            "url": f"{api}/repos/{s.repo.full_name}/statuses/{s.sha}",
            "avatar_url": None,
            "id": s.id,
            "node_id": f"SC_{s.id}",
            "state": s.state,
            "description": s.description or None,
            "target_url": s.target_url or None,
            "context": s.context,
            "created_at": iso(s.created_at),
            "updated_at": iso(s.created_at),
            "creator": self.user_json(s.creator, api, web),
        }

    def commit_json(self, repo: SimRepo, info: dict[str, Any], api: str) -> dict[str, Any]:
        base = f"{api}/repos/{repo.full_name}"
        sha = str(info["sha"])
        return {
            "sha": sha,
            "node_id": f"C_{sha}",
            "url": f"{base}/commits/{sha}",
            "html_url": f"{repo.web_url}/commit/{sha}",
            "comments_url": f"{base}/commits/{sha}/comments",
            "commit": {
                "url": f"{base}/git/commits/{sha}",
                "message": info["message"],
                "tree": {"sha": info["tree"], "url": f"{base}/git/trees/{info['tree']}"},
                "author": {"name": info["author_name"], "email": info["author_email"], "date": info["author_date"]},
                "committer": {
                    "name": info["committer_name"],
                    "email": info["committer_email"],
                    "date": info["committer_date"],
                },
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": None,
            "committer": None,
            "parents": [
                {"sha": p, "url": f"{base}/commits/{p}", "html_url": f"{repo.web_url}/commit/{p}"}
                for p in info["parents"]
            ],
            "stats": {"total": 0, "additions": 0, "deletions": 0},
            "files": [],
        }

    # -- handlers ---------------------------------------------------------------------------------

    def get_user(self, req: ApiRequest) -> ApiResponse:
        """``GET /user``: GitHub's ``public-user`` (a token's own account), a simple-user plus profile."""
        user = self.user_json(self.actor(req.principal), req.api_base, req.web_base)
        profile = {"name": None, "company": None, "blog": "", "location": None, "email": None}
        profile |= {"hireable": None, "bio": None, "public_repos": 0, "public_gists": 0}
        profile |= {"followers": 0, "following": 0, "created_at": SIM_EPOCH, "updated_at": SIM_EPOCH}
        return ApiResponse(200, {**user, **profile})

    def get_app(self, req: ApiRequest) -> ApiResponse:
        app = self._require_app(req)
        return ApiResponse(
            200,
            {
                "id": app.app_id,
                "slug": app.slug,
                "name": app.slug,
                "node_id": f"A_{app.app_id}",
                "owner": self.user_json(f"{app.slug}-owner", req.api_base, req.web_base),
                "description": None,
                "external_url": f"{req.web_base}/apps/{app.slug}",
                "html_url": f"{req.web_base}/apps/{app.slug}",
                "created_at": SIM_EPOCH,
                "updated_at": SIM_EPOCH,
                "permissions": {"pull_requests": "write", "statuses": "write", "issues": "write", "contents": "write"},
                "events": ["pull_request", "issue_comment"],
            },
        )

    def _installation_json(self, app: SimApp, iid: int, repo: SimRepo, req: ApiRequest) -> dict[str, Any]:
        return {
            "id": iid,
            "account": self.user_json(repo.owner, req.api_base, req.web_base),
            "access_tokens_url": f"{req.api_base}/app/installations/{iid}/access_tokens",
            "repositories_url": f"{req.api_base}/installation/repositories",
            "html_url": f"{req.web_base}/settings/installations/{iid}",
            "app_id": app.app_id,
            "app_slug": app.slug,
            "target_id": 1,
            "target_type": "Organization",
            "permissions": {"pull_requests": "write", "statuses": "write", "issues": "write", "contents": "write"},
            "events": ["pull_request", "issue_comment"],
            "created_at": iso(now()),
            "updated_at": iso(now()),
            "single_file_name": None,
            "repository_selection": "selected",
            "suspended_at": None,
            "suspended_by": None,
        }

    def get_repo_installation(self, req: ApiRequest) -> ApiResponse:
        app = self._require_app(req)
        full = f"{req.match['owner']}/{req.match['name']}"
        repo = self.sim.find_repo("github", full)
        for iid, repos in app.installations.items():
            if repo is not None and repo.full_name in repos:
                return ApiResponse(200, self._installation_json(app, iid, repo, req))
        raise error(404, "Not Found")

    def create_installation_token(self, req: ApiRequest) -> ApiResponse:
        app = self._require_app(req)
        iid = int(req.match["iid"])
        if iid not in app.installations:
            raise error(404, "Not Found")
        value = "ghs_" + secrets.token_hex(18)
        token = SimToken(
            value=value, forge="github", installation_id=iid, expires_at=now() + self.sim.installation_token_ttl
        )
        with self.sim.lock:
            self.sim.tokens[value] = token
            self.sim.issued_installation_tokens.append(token)
        return ApiResponse(
            201,
            {
                "token": value,
                "expires_at": iso(token.expires_at),
                "permissions": {"pull_requests": "write", "statuses": "write", "issues": "write", "contents": "write"},
                "repository_selection": "selected",
            },
        )

    def get_repo(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        data = self.repo_json(repo, req.api_base, req.web_base)
        writable = self.sim.can_access(req.principal, repo, "write")
        data["permissions"] = {"admin": False, "maintain": writable, "push": writable, "triage": True, "pull": True}
        data["network_count"] = 0
        data["subscribers_count"] = 0
        return ApiResponse(200, data)

    def list_pulls(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        state = req.args.get("state", "open")
        head = req.args.get("head", "")
        base = req.args.get("base", "")
        with self.sim.lock:
            prs = [p for (forge, full, _), p in self.sim.prs.items() if forge == "github" and full == repo.full_name]
        if state in ("open", "closed"):
            prs = [p for p in prs if (p.state == "open") == (state == "open")]
        if head:
            owner, _, branch = head.rpartition(":")
            prs = [p for p in prs if p.head_ref == branch and (not owner or owner == repo.owner)]
        if base:
            prs = [p for p in prs if p.base_ref == base]
        prs.sort(key=lambda p: p.number, reverse=req.args.get("direction", "desc") == "desc")
        page = paginate(req, prs, default_per_page=30)
        page.body = [self.pr_json(p, req.api_base, req.web_base) for p in page.body]
        return page

    def create_pull(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, "write")
        body = req.json if isinstance(req.json, dict) else {}
        title, head, base = body.get("title"), str(body.get("head", "")), str(body.get("base", ""))
        if not title:
            raise error(
                422, "Validation Failed", [{"resource": "PullRequest", "field": "title", "code": "missing_field"}]
            )
        branch = head.rpartition(":")[2]
        try:
            pr = self.sim.core_open_pr(
                repo, branch, base, str(title), str(body.get("body") or ""), self.actor(req.principal), via_api=True
            )
        except ValueError as exc:
            kind = str(exc)
            if kind == "exists":
                message = f"A pull request already exists for {repo.owner}:{branch}."
                raise error(
                    422, "Validation Failed", [{"resource": "PullRequest", "code": "custom", "message": message}]
                ) from None
            if kind == "no-commits":
                raise error(
                    422,
                    "Validation Failed",
                    [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"No commits between {base} and {branch}",
                        }
                    ],
                ) from None
            field = "head" if kind == "no-head" else "base"
            raise error(
                422, "Validation Failed", [{"resource": "PullRequest", "field": field, "code": "invalid"}]
            ) from None
        return ApiResponse(201, self.pr_json(pr, req.api_base, req.web_base))

    def get_pull(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        return ApiResponse(200, self.pr_json(self._pr(repo, req.match["number"]), req.api_base, req.web_base))

    def pull_commits(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        pr = self._pr(repo, req.match["number"])
        infos = [repo.git.commit_info(sha) for sha in self.sim.pr_commits(pr)]
        page = paginate(req, [i for i in infos if i], default_per_page=30)
        page.body = [self.commit_json(repo, i, req.api_base) for i in page.body]
        return page

    def get_issue(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        return ApiResponse(200, self.issue_json(self._pr(repo, req.match["number"]), req.api_base, req.web_base))

    def list_comments(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        pr = self._pr(repo, req.match["number"])
        with self.sim.lock:
            comments = sorted(
                (c for c in self.sim.comments.values() if c.repo is repo and c.number == pr.number), key=lambda c: c.id
            )
        page = paginate(req, comments, default_per_page=30)
        page.body = [self.comment_json(c, req.api_base, req.web_base) for c in page.body]
        return page

    def list_issue_events(self, req: ApiRequest) -> ApiResponse:
        """``GET /repos/{o}/{r}/issues/{n}/events``: the ``labeled``/``unlabeled`` events, oldest first."""
        repo = self._repo(req)
        pr = self._pr(repo, req.match["number"])
        with self.sim.lock:
            events = list(pr.label_events)
        page = paginate(req, events, default_per_page=30)
        api = req.api_base
        page.body = [
            {
                "id": e.id,
                "node_id": f"LE_{e.id}",
                "url": f"{api}/repos/{repo.full_name}/issues/events/{e.id}",
                "actor": self.user_json(e.actor, api, req.web_base),
                "event": "labeled" if e.action == "add" else "unlabeled",
                "commit_id": None,
                "commit_url": None,
                "created_at": iso(e.created_at),
                "performed_via_github_app": None,
                "label": {"name": e.label, "color": "ededed"},
            }
            for e in page.body
        ]
        return page

    def _check_body(self, body: Any) -> str:
        if not isinstance(body, str) or not body:
            raise error(
                422, "Validation Failed", [{"resource": "IssueComment", "field": "body", "code": "missing_field"}]
            )
        if len(body) > COMMENT_LIMIT:
            raise error(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "IssueComment",
                        "field": "body",
                        "code": "custom",
                        "message": f"body is too long (maximum is {COMMENT_LIMIT} characters)",
                    }
                ],
            )
        return body

    def create_comment(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        pr = self._pr(repo, req.match["number"])
        body = self._check_body((req.json or {}).get("body"))
        comment = self.sim.core_add_comment(repo, pr.number, body, self.actor(req.principal), via_api=True)
        return ApiResponse(201, self.comment_json(comment, req.api_base, req.web_base))

    def _comment(self, repo: SimRepo, cid: str) -> SimComment:
        comment = self.sim.comments.get(("github", int(cid)))
        if comment is None or comment.repo is not repo:
            raise error(404, "Not Found")
        return comment

    def get_comment(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        return ApiResponse(200, self.comment_json(self._comment(repo, req.match["cid"]), req.api_base, req.web_base))

    def _may_edit(self, req: ApiRequest, repo: SimRepo, comment: SimComment) -> None:
        if comment.author != self.actor(req.principal) and not self.sim.can_access(req.principal, repo, "write"):
            raise error(403, "Must have admin rights to Repository.")

    def edit_comment(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        comment = self._comment(repo, req.match["cid"])
        self._may_edit(req, repo, comment)
        body = self._check_body((req.json or {}).get("body"))
        with self.sim.lock:
            comment.body = body
            comment.updated_at = now()
        return ApiResponse(200, self.comment_json(comment, req.api_base, req.web_base))

    def delete_comment(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        comment = self._comment(repo, req.match["cid"])
        self._may_edit(req, repo, comment)
        with self.sim.lock:
            self.sim.comments.pop(("github", comment.id), None)
        return ApiResponse(204, None)

    def _reaction_json(self, reaction: Any, req: ApiRequest) -> dict[str, Any]:
        return {
            "id": reaction.id,
            "node_id": f"REA_{reaction.id}",
            "user": self.user_json(reaction.user, req.api_base, req.web_base),
            "content": reaction.content,
            "created_at": iso(reaction.created_at),
        }

    def list_reactions(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        comment = self._comment(repo, req.match["cid"])
        items = [r for r in self.sim.reactions if r.repo is repo and r.comment_id == comment.id]
        page = paginate(req, items, default_per_page=30)
        page.body = [self._reaction_json(r, req) for r in page.body]
        return page

    def create_reaction(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        comment = self._comment(repo, req.match["cid"])
        content = (req.json or {}).get("content")
        if content not in REACTIONS:
            raise error(422, "Validation Failed", [{"resource": "Reaction", "field": "content", "code": "invalid"}])
        reaction, created = self.sim.core_add_reaction(repo, comment.id, str(content), self.actor(req.principal))
        return ApiResponse(201 if created else 200, self._reaction_json(reaction, req))

    def get_commit(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        ref = req.match["ref"]
        sha = repo.git.resolve(ref) or repo.git.resolve(f"refs/heads/{ref}")
        info = repo.git.commit_info(sha) if sha else None
        if info is None:
            raise error(422 if len(ref) == 40 else 404, f"No commit found for SHA: {ref}")
        return ApiResponse(200, self.commit_json(repo, info, req.api_base))

    def list_statuses(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        sha = repo.git.resolve(req.match["ref"]) or ""
        items = sorted((s for s in self.sim.statuses if s.repo is repo and s.sha == sha), key=lambda s: -s.id)
        page = paginate(req, items, default_per_page=30)
        page.body = [self.status_json(s, req.api_base, req.web_base) for s in page.body]
        return page

    def create_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, "write")
        sha = req.match["sha"].lower()
        body = req.json if isinstance(req.json, dict) else {}
        if repo.git.commit_info(sha) is None:
            raise error(422, f"No commit found for SHA: {sha}")
        state = body.get("state")
        if state not in STATES:
            raise error(422, "Validation Failed", [{"resource": "Status", "field": "state", "code": "invalid"}])
        description = str(body.get("description") or "")
        if len(description) > 140:
            raise error(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "Status",
                        "code": "custom",
                        "field": "description",
                        "message": "description is too long (maximum is 140 characters)",
                    }
                ],
            )
        status = self.sim.core_add_status(
            repo,
            sha,
            str(body.get("context") or "default"),
            str(state),
            description,
            str(body.get("target_url") or ""),
            self.actor(req.principal),
        )
        return ApiResponse(201, self.status_json(status, req.api_base, req.web_base))

    def get_permission(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req)
        login = req.match["user"]
        if ("github", login.lower()) not in self.sim.users:
            raise error(404, f"{login} is not a user")
        role = repo.members.get(login)
        permission = _LEGACY.get(str(role), "none") if role else "none"
        return ApiResponse(
            200,
            {
                "permission": permission,
                "role_name": role or "none",
                "user": {**self.user_json(login, req.api_base, req.web_base), "role_name": role or "none"},
            },
        )

    # -- webhooks ---------------------------------------------------------------------------------

    def pull_request_hook(
        self,
        pr: SimPR,
        action: str,
        sender: str,
        api: str,
        web: str,
        before: str | None = None,
        installation_id: int | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"action": action, "number": pr.number, "pull_request": self.pr_json(pr, api, web)}
        if action == "synchronize":
            payload["before"] = before
            payload["after"] = pr.head_sha
        payload["repository"] = self.repo_json(pr.repo, api, web)
        if installation_id is not None:
            payload["installation"] = {"id": installation_id, "node_id": f"MDIz{installation_id}"}
        payload["sender"] = self.user_json(sender, api, web)
        return payload

    def issue_comment_hook(
        self, comment: SimComment, pr: SimPR, api: str, web: str, installation_id: int | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "action": "created",
            "issue": self.issue_json(pr, api, web),
            "comment": self.comment_json(comment, api, web),
            "repository": self.repo_json(pr.repo, api, web),
            "sender": self.user_json(comment.author, api, web),
        }
        if installation_id is not None:
            payload["installation"] = {"id": installation_id, "node_id": f"MDIz{installation_id}"}
        return payload
