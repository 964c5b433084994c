"""One environment's step, shared by the preview and the deploy jobs.

Both jobs do the same things for an environment before they part ways (dry run or apply): ask the
policy whether the repository may use the environment at all, get the cluster's client, render the
manifests for that cluster and have the policy admit every rendered object before any of them is
sent. And both must end every environment with its own comment and status, whatever went wrong on
the way: :meth:`EnvironmentStep.run` turns each *expected* failure (git, the checkout, the
repository's config, the policy, rendering, the cluster, an ApplySet owned by someone else) into the
sentence the pull request shows. Anything else is a bug: it propagates, and the worker reports the
job as unfinished (``workers/outcomes.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import Field, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from mergeway.events import Repository
from mergeway.git import CheckoutError, GitError
from mergeway.jobs.applysets import parent_impostors
from mergeway.jobs.context import JobContext
from mergeway.kube.applyset import ApplySetConflict
from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.clusters import UnknownCluster
from mergeway.kube.discovery import Discovery
from mergeway.render import Rendered, RenderError
from mergeway.repoconfig import Environment, RepoConfigError
from mergeway.report import failures as texts

log = logging.getLogger("mergeway.jobs.environment")


#: The slot (comment and status) of a failure before any environment is known: the repository's config.
CONFIG_ENV = "config"


class Refused(Exception):
    """The environment stops here, on purpose; the message is what the pull request is told."""


#: Failures of reading the repository at a commit (fetch, checkout, ``.mergeway.yaml``).
READ_ERRORS = (CheckoutError, GitError, RepoConfigError)
#: Everything an environment's step may fail with and still report its own outcome.
EXPECTED = (*READ_ERRORS, Refused, UnknownCluster, RenderError, KubeError)


def describe(exc: Exception, verb: str, env: Environment | None = None) -> str:
    """An expected failure in the pull request's words; ``verb`` is what was tried ("deploy")."""
    if isinstance(exc, CheckoutError | GitError):
        return texts.unreadable(exc)
    if env is not None and isinstance(exc, RenderError):
        return texts.render_failed(env.path, exc)
    if env is not None and isinstance(exc, KubeError) and not isinstance(exc, ApplySetConflict):
        return texts.cluster_failed(env.cluster, verb, exc.status, exc)
    return str(exc)


class Report(Protocol):
    """An immutable report (a frozen dataclass) with the sentence of an expected failure."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def error(self) -> str: ...


R = TypeVar("R", bound=Report)


@dataclass
class EnvironmentStep:
    """What preview and deploy do for one environment before the dry run or the apply."""

    ctx: JobContext
    repo: Repository
    #: Replaced by the deploy with the environment as the commit it deploys configures it.
    env: Environment
    #: "preview" or "deploy": the word cluster errors use.
    verb: str

    def run(self, report: R, body: Callable[[], R]) -> R:
        """``body()``, or a copy of ``report`` saying why when it fails as expected (see :data:`EXPECTED`)."""
        try:
            return body()
        except EXPECTED as exc:
            return replace(report, error=self.stopped(exc))

    def stopped(self, exc: Exception) -> str:
        """What the pull request is told about an expected failure (see :data:`EXPECTED`); logged for operators."""
        log.info("%s of %s stopped: %s", self.verb, self.env.name, type(exc).__name__)
        return describe(exc, self.verb, self.env)

    def check_policy(self) -> None:
        """Raise :class:`Refused` when the policy refuses the environment as a whole (cluster, namespace, branch)."""
        repo = self.repo
        known = self.ctx.clusters.known()
        decision = self.ctx.policy.check(
            repo.forge, repo.full_name, self.env, known, default_branch=repo.default_branch
        )
        if not decision.allowed:
            raise Refused(texts.policy_refused(decision.reason))

    def client(self) -> KubeClient:
        return self.ctx.clusters.client(self.env.cluster)

    def render(self, root: Path, client: KubeClient) -> Rendered:
        return self.ctx.render(root, self.env, client)

    def admit(self, rendered: Rendered, discovery: Discovery) -> None:
        """Raise :class:`Refused` unless the policy admits every rendered object (checked before any is sent).

        An object with the identity of an ApplySet parent is refused first, whatever the policy
        (allow-all too): it would rewrite what a prune deletes (:func:`~mergeway.jobs.applysets.parent_impostor`).
        """
        impostors = parent_impostors(rendered.manifests)
        if impostors:
            raise Refused(texts.not_allowed(impostors))
        repo = self.repo
        policy = self.ctx.policy
        # Discovery only when objects are checked: allow-all asks the cluster nothing here.
        kinds = {(m.api_version, m.kind) for m in rendered.manifests}
        scopes = {} if policy.allows_everything else discovery.scopes(kinds)
        refusal = policy.admit(repo.forge, repo.full_name, self.env, rendered.manifests, scopes)
        if refusal:
            raise Refused(texts.policy_refused(refusal))
