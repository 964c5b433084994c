"""What a job needs from the outside world, gathered in one object and passed in: ``run(event, ctx)``.

Jobs receive a :class:`JobContext` instead of reaching for globals, so tests can run a job against
a forge and the local cluster with a context built from explicit settings. The worker builds the
process's clients once from its environment (:func:`default_context`) and passes each job its own
copy, carrying that job's status journal (:meth:`JobContext.for_job`); nothing is patched while a
job runs.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis

from mergeway import policy as policy_mod
from mergeway import repoconfig
from mergeway.config import Settings
from mergeway.deployments import ForgeDeploymentIds
from mergeway.events import CommentCommand, Event, IssueCommand, Repository
from mergeway.forge import forge_for, retry_policy
from mergeway.forge.base import Forge, LockFactory
from mergeway.forge.identity import check_path, verified_command, verified_issue_command, verified_repository
from mergeway.git import CheckoutCache
from mergeway.jobs.applysets import owner_identity
from mergeway.jobs.locks import held_lock
from mergeway.kube.client import KubeClient
from mergeway.kube.clusters import ClusterRegistry
from mergeway.render import Rendered, render
from mergeway.report.publish import Publisher, StatusJournal

E = TypeVar("E", bound=Event)
Checkout = Callable[[Repository, str, int | None], AbstractContextManager[Path]]
ForgeFactory = Callable[[Repository], Forge]


@dataclass
class JobContext:
    settings: Settings
    forge_factory: ForgeFactory
    git: CheckoutCache
    clusters: ClusterRegistry
    policy: policy_mod.Policy
    redis: redis.Redis | None = None
    #: Told of every commit status the job sets (see :class:`~mergeway.report.publish.Publisher`).
    journal: StatusJournal | None = None
    _forges: dict[tuple[str, str], Forge] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def checkout(self) -> Checkout:
        return self.git.checkout

    def forge(self, repo: Repository) -> Forge:
        key = (repo.forge, repo.full_name)
        with self._lock:
            if key not in self._forges:
                self._forges[key] = self.forge_factory(repo)
            return self._forges[key]

    def for_job(self, journal: StatusJournal | None) -> JobContext:
        """This context for one job: the same clients (and forge cache), that job's status journal."""
        return dataclasses.replace(self, journal=journal)

    def publisher(self, event: Event) -> Publisher:
        """The one way out for ``event``'s job: its pull request, comment lock, link and status journal."""
        pr = getattr(event, "pr", None)
        ids = ForgeDeploymentIds(self.redis, owner_identity(event.repo)) if self.redis is not None else None
        return Publisher(
            self.forge(event.repo),
            pr.number if pr else 0,
            lock=self.comment_lock(event),
            target_url=self.target_url(event),
            journal=self.journal,
            deployment_ids=ids,
        )

    def verified(self, event: E) -> E:
        """``event`` with its repository as the configured forge reports it (see :mod:`mergeway.forge.identity`).

        Raises :class:`~mergeway.forge.identity.IdentityError` when the delivery's claims do not hold
        (a GitHub App installation that does not own the repository, a GitLab path that is not the
        project's, a command comment that is not on that pull request): the job then does nothing at
        all, on no repository. A command's author and text are the forge's, never the payload's.
        """
        check_path(event.repo.forge, event.repo.full_name)
        forge = self.forge_factory(event.repo)
        repo = verified_repository(event.repo, self.settings, forge, retry_policy(self.settings))
        verified = dataclasses.replace(event, repo=repo)
        if isinstance(verified, CommentCommand):
            verified = verified_command(verified, self.forge(repo))  # type: ignore[assignment]
        if isinstance(verified, IssueCommand):
            verified = verified_issue_command(verified, self.forge(repo))  # type: ignore[assignment]
        return verified

    def load_repo_config(self, root: Path) -> repoconfig.RepoConfig:
        return repoconfig.load(root)

    def comment_lock(self, event: Event) -> LockFactory | None:
        """A Redis lock per pull request, so two jobs never race on its sticky comments."""
        if self.redis is None:
            return None
        pr = getattr(event, "pr", None)
        key = f"mergeway:lock:comments:{event.repo.forge}:{event.repo.full_name}:{pr.number if pr else 0}"
        client = self.redis
        return lambda: client.lock(key, timeout=120, blocking_timeout=120)

    def env_lock(
        self, cluster: str, environment: str, on_wait: Callable[[], None] | None = None
    ) -> AbstractContextManager[None]:
        """One deploy per (cluster, environment) at a time, across all workers."""
        if self.redis is None:
            raise RuntimeError("deploys need Redis for their per-environment lock")
        return held_lock(self.redis, f"mergeway:lock:deploy:{cluster}:{environment}", on_wait=on_wait)

    def render(self, root: Path, env: repoconfig.Environment, client: KubeClient) -> Rendered:
        """An environment's manifests, rendered for its cluster (whose version Helm charts see).

        A path missing from the commit renders as an empty environment: deleting every manifest (or
        reverting the PR that added them) removes the directory, and the plan then prunes it all.
        """
        return render(
            root,
            env.path,
            namespace=env.namespace,
            release=env.helm.release or env.name,
            values=env.helm.values,
            kube_version=client.server_version(),
            missing_ok=True,
            limits=self.settings.input_limits(),
        )

    def target_url(self, event: Event) -> str:
        return self.settings.public_url


def context_from_settings(settings: Settings) -> JobContext:
    cache = CheckoutCache.from_settings(settings)
    return JobContext(
        settings=settings,
        forge_factory=lambda repo: forge_for(repo, settings),
        git=cache,
        clusters=ClusterRegistry(settings),
        policy=settings.load_policy(),
        redis=redis.Redis.from_url(settings.redis_url),
    )


@functools.cache
def default_context() -> JobContext:
    """The worker process's context, built once from its environment."""
    return context_from_settings(Settings.from_env(role="worker"))
