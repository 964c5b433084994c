"""Deployments on the simulated forges: GitHub's Deployments and statuses, GitLab's deployments and environments.

GitHub (``deployment`` and ``deployment-status`` in GitHub's OpenAPI description; docs.github.com
/rest/deployments): ``POST /repos/{o}/{r}/deployments`` (201), ``GET`` the list (newest first,
filtered by ``sha``, ``ref``, ``task``, ``environment``) and one; ``POST .../deployments/{id}/statuses``
(201), ``GET`` the statuses (newest first) and one. Rules kept: ``ref`` must name a branch, tag or
commit (422); without ``required_contexts`` every commit status context must be ``success`` (409);
``environment`` defaults to ``production``, which is then a production environment; a status
``description`` is at most 140 characters (422); ``log_url`` also sets ``target_url``; a ``success``
status with ``auto_inactive`` (default true) adds an ``inactive`` status to every prior deployment
of the same environment whose last state is ``success``, unless transient or production (GitHub's
documented rule). Not emulated: ``auto_merge`` (Mergeway sends ``false``), the 202 merge answer.

GitLab (doc/api/deployments.md, doc/api/environments.md): ``POST /projects/:id/deployments``
(201; ``environment``, ``sha``, ``ref``, ``tag`` and ``status`` required, status one of
``running``, ``success``, ``failed``, ``canceled``; the environment is created on first use),
``PUT .../deployments/:id`` (the status moves as GitLab's state machine allows: ``running`` only
from ``created``, a final status from any other; 400 otherwise, in the simulator's own words),
``GET`` the list (``environment``, ``status`` filters) and one; ``GET /projects/:id/environments``
(``name`` filter), ``GET`` one (with its ``last_deployment``: the newest successful one) and ``PUT``
one (``external_url``).

No webhook is sent for either: Mergeway subscribes to pull requests and comments only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tools.forgesim.api import ApiError, ApiRequest, ApiResponse, paginate
from tools.forgesim.state import SimRepo, gl_iso, iso, now

if TYPE_CHECKING:
    from tools.forgesim.github_api import GitHubAPI
    from tools.forgesim.gitlab_api import GitLabAPI

DOCS = "https://docs.github.com/rest/deployments/deployments"
STATUS_DOCS = "https://docs.github.com/rest/deployments/statuses"
GITHUB_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
GITLAB_STATUSES = ("running", "success", "failed", "canceled")
DESCRIPTION_LIMIT = 140


@dataclass
class SimDeploymentStatus:
    id: int
    state: str
    creator: str
    description: str = ""
    environment: str = ""
    log_url: str = ""
    environment_url: str = ""
    created_at: float = field(default_factory=now)


@dataclass
class SimDeployment:
    """A GitHub Deployment (``statuses`` oldest first) or a GitLab deployment (``status``)."""

    id: int
    repo: SimRepo
    sha: str
    ref: str
    environment: str
    creator: str
    task: str = "deploy"
    payload: Any = field(default_factory=dict)
    description: str = ""
    original_environment: str = ""
    transient: bool = False
    production: bool = False
    statuses: list[SimDeploymentStatus] = field(default_factory=list)
    #: GitLab: the per-project number and the status.
    iid: int = 0
    status: str = "created"
    tag: bool = False
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    @property
    def state(self) -> str:
        """GitHub: the latest status's state (``pending`` before any)."""
        return self.statuses[-1].state if self.statuses else "pending"


@dataclass
class SimEnvironment:
    """A GitLab environment, created by its first deployment."""

    id: int
    repo: SimRepo
    name: str
    external_url: str = ""
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


def _github_error(status: int, message: str, docs: str = DOCS, **extra: Any) -> ApiError:
    return ApiError(status, {"message": message, "documentation_url": docs, **extra})


class GitHubDeployments:
    """GitHub's deployment and deployment-status endpoints, registered on :class:`GitHubAPI`'s router."""

    def __init__(self, api: GitHubAPI) -> None:
        self.api = api
        self.sim = api.sim
        self.deployments: list[SimDeployment] = []
        r = "/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/deployments"
        api.router.add("GET", r, self.list_deployments)
        api.router.add("POST", r, self.create_deployment)
        api.router.add("GET", rf"{r}/(?P<did>\d+)", self.get_deployment)
        api.router.add("GET", rf"{r}/(?P<did>\d+)/statuses", self.list_statuses)
        api.router.add("POST", rf"{r}/(?P<did>\d+)/statuses", self.create_status)
        api.router.add("GET", rf"{r}/(?P<did>\d+)/statuses/(?P<sid>\d+)", self.get_status)

    # -- what tests read --------------------------------------------------------------------------

    def of(self, repo: SimRepo, environment: str | None = None) -> list[SimDeployment]:
        """``repo``'s deployments (of ``environment``), oldest first."""
        with self.sim.lock:
            return [
                d for d in self.deployments if d.repo is repo and (environment is None or d.environment == environment)
            ]

    # -- JSON shapes ------------------------------------------------------------------------------

    def deployment_json(self, d: SimDeployment, api: str, web: str) -> dict[str, Any]:
        repo_url = f"{api}/repos/{d.repo.full_name}"
        return {
            "url": f"{repo_url}/deployments/{d.id}",
            "id": d.id,
            "node_id": f"DE_{d.id}",
            "sha": d.sha,
            "ref": d.ref,
            "task": d.task,
            "payload": d.payload,
            "original_environment": d.original_environment,
            "environment": d.environment,
            "description": d.description or None,
            "creator": self.api.user_json(d.creator, api, web),
            "created_at": iso(d.created_at),
            "updated_at": iso(d.updated_at),
            "statuses_url": f"{repo_url}/deployments/{d.id}/statuses",
            "repository_url": repo_url,
            "transient_environment": d.transient,
            "production_environment": d.production,
            "performed_via_github_app": None,
        }

    def status_json(self, d: SimDeployment, s: SimDeploymentStatus, api: str, web: str) -> dict[str, Any]:
        repo_url = f"{api}/repos/{d.repo.full_name}"
        return {
            "url": f"{repo_url}/deployments/{d.id}/statuses/{s.id}",
            "id": s.id,
            "node_id": f"DES_{s.id}",
            "state": s.state,
            "creator": self.api.user_json(s.creator, api, web),
            "description": s.description,
            "environment": s.environment,
            "target_url": s.log_url,
            "created_at": iso(s.created_at),
            "updated_at": iso(s.created_at),
            "deployment_url": f"{repo_url}/deployments/{d.id}",
            "repository_url": repo_url,
            "environment_url": s.environment_url,
            "log_url": s.log_url,
            "performed_via_github_app": None,
        }

    # -- handlers ---------------------------------------------------------------------------------

    def _deployment(self, repo: SimRepo, did: str) -> SimDeployment:
        found = next((d for d in self.deployments if d.repo is repo and d.id == int(did)), None)
        if found is None:
            raise _github_error(404, "Not Found")
        return found

    def list_deployments(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        items = [
            d
            for d in reversed(self.deployments)
            if d.repo is repo
            and all(req.args.get(k) in (None, getattr(d, k)) for k in ("sha", "ref", "task", "environment"))
        ]
        page = paginate(req, items, default_per_page=30)
        page.body = [self.deployment_json(d, req.api_base, req.web_base) for d in page.body]
        return page

    def get_deployment(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        return ApiResponse(
            200, self.deployment_json(self._deployment(repo, req.match["did"]), req.api_base, req.web_base)
        )

    def create_deployment(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req, "write")
        body = req.json if isinstance(req.json, dict) else {}
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise _github_error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        sha = repo.git.resolve(f"refs/heads/{ref}") or repo.git.resolve(f"refs/tags/{ref}")
        if sha is None and re.fullmatch(r"[0-9a-fA-F]{7,40}", ref):
            sha = repo.git.resolve(ref)
        if sha is None:
            raise _github_error(422, f"No ref found for: {ref}")
        required = body.get("required_contexts")
        if required is None or required:
            failing = self._failing_contexts(repo, sha, required)
            if failing:
                raise _github_error(
                    409, f"Conflict: Commit status checks failed for {ref}.", errors=[{"contexts": failing}]
                )
        environment = str(body.get("environment") or "production")
        production = body.get("production_environment")
        payload = body.get("payload", {})
        deployment = SimDeployment(
            id=next(self.sim._ids),
            repo=repo,
            sha=sha,
            ref=ref,
            environment=environment,
            original_environment=environment,
            creator=self.api.actor(req.principal),
            task=str(body.get("task") or "deploy"),
            payload=payload if isinstance(payload, dict | str) else {},
            description=str(body.get("description") or ""),
            transient=bool(body.get("transient_environment", False)),
            production=bool(production) if production is not None else environment == "production",
        )
        self.deployments.append(deployment)
        return ApiResponse(201, self.deployment_json(deployment, req.api_base, req.web_base))

    def _failing_contexts(self, repo: SimRepo, sha: str, required: list[str] | None) -> list[dict[str, str]]:
        latest: dict[str, str] = {}
        for status in self.sim.statuses:  # oldest first: the last one per context counts
            if status.repo is repo and status.sha == sha:
                latest[status.context] = status.state
        contexts = required if required is not None else list(latest)
        return [{"context": c, "state": latest.get(c, "missing")} for c in contexts if latest.get(c) != "success"]

    def list_statuses(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        deployment = self._deployment(repo, req.match["did"])
        page = paginate(req, list(reversed(deployment.statuses)), default_per_page=30)
        page.body = [self.status_json(deployment, s, req.api_base, req.web_base) for s in page.body]
        return page

    def get_status(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        deployment = self._deployment(repo, req.match["did"])
        found = next((s for s in deployment.statuses if s.id == int(req.match["sid"])), None)
        if found is None:
            raise _github_error(404, "Not Found", STATUS_DOCS)
        return ApiResponse(200, self.status_json(deployment, found, req.api_base, req.web_base))

    def create_status(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req, "write")
        deployment = self._deployment(repo, req.match["did"])
        body = req.json if isinstance(req.json, dict) else {}
        state = body.get("state")
        if state not in GITHUB_STATES:
            raise _github_error(
                422,
                "Validation Failed",
                STATUS_DOCS,
                errors=[{"resource": "DeploymentStatus", "field": "state", "code": "invalid"}],
            )
        description = str(body.get("description") or "")
        if len(description) > DESCRIPTION_LIMIT:
            raise _github_error(
                422,
                "Validation Failed",
                STATUS_DOCS,
                errors=[
                    {
                        "resource": "DeploymentStatus",
                        "code": "custom",
                        "field": "description",
                        "message": "description is too long (maximum is 140 characters)",
                    }
                ],
            )
        if body.get("environment"):
            deployment.environment = str(body["environment"])
        creator = self.api.actor(req.principal)
        status = self._add_status(
            deployment,
            str(state),
            creator,
            description=description,
            log_url=str(body.get("log_url") or body.get("target_url") or ""),
            environment_url=str(body.get("environment_url") or ""),
        )
        if state == "success" and body.get("auto_inactive", True) is not False:
            for prior in self.deployments:
                if (
                    prior.repo is repo
                    and prior.id < deployment.id
                    and prior.environment == deployment.environment
                    and not prior.transient
                    and not prior.production
                    and prior.state == "success"
                ):
                    self._add_status(prior, "inactive", creator, environment_url=prior.statuses[-1].environment_url)
        return ApiResponse(201, self.status_json(deployment, status, req.api_base, req.web_base))

    def _add_status(self, deployment: SimDeployment, state: str, creator: str, **fields: str) -> SimDeploymentStatus:
        status = SimDeploymentStatus(
            id=next(self.sim._ids), state=state, creator=creator, environment=deployment.environment, **fields
        )
        deployment.statuses.append(status)
        deployment.updated_at = status.created_at
        return status


def _gitlab_error(status: int, message: Any) -> ApiError:
    return ApiError(
        status, {"message": message} if status != 400 or not isinstance(message, str) else {"error": message}
    )


class GitLabDeployments:
    """GitLab's deployment and environment endpoints, registered on :class:`GitLabAPI`'s router."""

    def __init__(self, api: GitLabAPI) -> None:
        self.api = api
        self.sim = api.sim
        self.deployments: list[SimDeployment] = []
        self.environments: list[SimEnvironment] = []
        p = "/projects/(?P<pid>[^/]+)"
        add = api.router.add
        add("GET", f"{p}/deployments", self.list_deployments)
        add("POST", f"{p}/deployments", self.create_deployment)
        add("GET", rf"{p}/deployments/(?P<did>\d+)", self.get_deployment)
        add("PUT", rf"{p}/deployments/(?P<did>\d+)", self.update_deployment)
        add("GET", f"{p}/environments", self.list_environments)
        add("GET", rf"{p}/environments/(?P<eid>\d+)", self.get_environment)
        add("PUT", rf"{p}/environments/(?P<eid>\d+)", self.update_environment)

    # -- what tests read --------------------------------------------------------------------------

    def of(self, repo: SimRepo, environment: str | None = None) -> list[SimDeployment]:
        with self.sim.lock:
            return [
                d for d in self.deployments if d.repo is repo and (environment is None or d.environment == environment)
            ]

    def environment(self, repo: SimRepo, name: str) -> SimEnvironment | None:
        with self.sim.lock:
            return next((e for e in self.environments if e.repo is repo and e.name == name), None)

    # -- JSON shapes ------------------------------------------------------------------------------

    def environment_json(self, e: SimEnvironment, web: str, *, full: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": e.id,
            "name": e.name,
            "slug": re.sub(r"[^a-z0-9]+", "-", e.name.lower()).strip("-"),
            "description": None,
            "external_url": e.external_url or None,
            "state": "available",
            "tier": "production" if e.name == "production" else ("staging" if e.name == "staging" else "other"),
            "created_at": gl_iso(e.created_at),
            "updated_at": gl_iso(e.updated_at),
            "auto_stop_at": None,
            "enable_advanced_logs_querying": False,
            "logs_api_path": f"/{e.repo.full_name}/-/logs/k8s.json?environment_name={e.name}",
            "kubernetes_namespace": None,
            "flux_resource_path": None,
        }
        if full:
            last = [
                d for d in self.deployments if d.repo is e.repo and d.environment == e.name and d.status == "success"
            ]
            data["last_deployment"] = self.deployment_json(last[-1], web, environment=False) if last else None
        return data

    def deployment_json(self, d: SimDeployment, web: str, *, environment: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": d.id,
            "iid": d.iid,
            "ref": d.ref,
            "sha": d.sha,
            "created_at": gl_iso(d.created_at),
            "updated_at": gl_iso(d.updated_at),
            "status": d.status,
            "user": self.api.user_json(d.creator, web),
            "deployable": None,
        }
        if environment:
            env = self.environment(d.repo, d.environment)
            assert env is not None
            data["environment"] = self.environment_json(env, web)
        return data

    # -- handlers ---------------------------------------------------------------------------------

    def _deployment(self, repo: SimRepo, did: str) -> SimDeployment:
        found = next((d for d in self.deployments if d.repo is repo and d.id == int(did)), None)
        if found is None:
            raise _gitlab_error(404, "404 Not found")
        return found

    def list_deployments(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        items = [
            d
            for d in self.deployments
            if d.repo is repo
            and req.args.get("environment") in (None, d.environment)
            and req.args.get("status") in (None, d.status)
        ]
        if req.args.get("sort") == "desc":
            items.reverse()
        page = paginate(req, items, default_per_page=20, gitlab_headers=True)
        page.body = [self.deployment_json(d, req.web_base) for d in page.body]
        return page

    def get_deployment(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        return ApiResponse(200, self.deployment_json(self._deployment(repo, req.match["did"]), req.web_base))

    def create_deployment(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req, "write")
        body = self.api._body(req)
        for name in ("environment", "sha", "ref", "tag", "status"):
            if body.get(name) in (None, ""):
                raise _gitlab_error(400, f"{name} is missing")
        status = str(body["status"])
        if status not in GITLAB_STATUSES:
            raise _gitlab_error(400, "status does not have a valid value")
        sha = str(body["sha"])
        if repo.git.commit_info(sha) is None:
            raise _gitlab_error(400, {"sha": ["is not a commit of this project"]})  # wording: the simulator's own
        name = str(body["environment"])
        env = self.environment(repo, name)
        if env is None:
            env = SimEnvironment(next(self.sim._ids), repo, name)
            self.environments.append(env)
        deployment = SimDeployment(
            id=next(self.sim._ids),
            repo=repo,
            sha=sha,
            ref=str(body["ref"]),
            environment=name,
            creator=self.api.actor(req.principal),
            iid=1 + sum(1 for d in self.deployments if d.repo is repo),
            status=status,
            tag=str(body["tag"]).lower() == "true",
        )
        self.deployments.append(deployment)
        return ApiResponse(201, self.deployment_json(deployment, req.web_base))

    def update_deployment(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req, "write")
        deployment = self._deployment(repo, req.match["did"])
        status = str(self.api._body(req).get("status") or "")
        if status not in GITLAB_STATUSES:
            raise _gitlab_error(400, "status does not have a valid value")
        allowed = deployment.status == "created" if status == "running" else deployment.status != status
        if not allowed:  # GitLab's state machine refuses the event; wording: the simulator's own
            raise _gitlab_error(400, f"Cannot transition status from {deployment.status} to {status}")
        deployment.status = status
        deployment.updated_at = now()
        return ApiResponse(200, self.deployment_json(deployment, req.web_base))

    def _environment(self, repo: SimRepo, eid: str) -> SimEnvironment:
        found = next((e for e in self.environments if e.repo is repo and e.id == int(eid)), None)
        if found is None:
            raise _gitlab_error(404, "404 Environment Not Found")
        return found

    def list_environments(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        items = [e for e in self.environments if e.repo is repo and req.args.get("name") in (None, e.name)]
        page = paginate(req, items, default_per_page=20, gitlab_headers=True)
        page.body = [self.environment_json(e, req.web_base) for e in page.body]
        return page

    def get_environment(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req)
        return ApiResponse(
            200, self.environment_json(self._environment(repo, req.match["eid"]), req.web_base, full=True)
        )

    def update_environment(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._project(req, "write")
        env = self._environment(repo, req.match["eid"])
        url = self.api._body(req).get("external_url")
        if url is not None:
            if url and not re.match(r"^https?://[^\s/]+", str(url)):
                raise _gitlab_error(400, {"external_url": ["is blocked: Only allowed schemes are http, https"]})
            env.external_url = str(url)
            env.updated_at = now()
        return ApiResponse(200, self.environment_json(env, req.web_base, full=True))
