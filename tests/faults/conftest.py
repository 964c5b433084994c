"""Helpers for the fault scenarios: a whole chain whose parts a test can kill, cut and restart.

``chain`` builds on the same pieces as the ``stack`` fixture (forge simulator, gunicorn, the session
Redis, Celery workers, the local cluster) but lets each test choose the workers' settings and start
or kill workers itself, each with its own cache directory, as separate hosts would have.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import KubeCluster
from tests.fixtures.e2e import Stack, stack_env
from tests.fixtures.e2e import slow_deployment as e2e_slow_deployment
from tests.fixtures.forgesim import SimHarness
from tests.fixtures.services import TEST_GITHUB_SECRET, TEST_GITLAB_SECRET, ServiceManager, ServiceProcess

DEPLOY = "mergeway/deploy/staging"
PREVIEW = "mergeway/preview/staging"
DEPLOY_MARKER = "<!-- mergeway:deploy:staging -->"
PREVIEW_MARKER = "<!-- mergeway:preview:staging -->"


class Chain(Stack):
    """A :class:`Stack` that starts extra workers as if on other hosts, and kills them like one."""

    def worker(
        self, name: str, *, concurrency: int = 1, env: dict[str, str] | None = None, **kw: Any
    ) -> ServiceProcess:
        """A worker with its own cache directory (its own 'host'), sharing Redis with the others."""
        cache = Path(self.extra["tmp"]) / f"cache-{name}"
        worker = self.services.worker(
            {**self.env, **(env or {}), "MERGEWAY_CACHE_DIR": str(cache)}, concurrency=concurrency, **kw
        )
        self.workers.append(worker)
        return worker

    @staticmethod
    def kill_host(worker: ServiceProcess) -> None:
        """SIGKILL the worker's whole process group (main process and pool) at once: a lost host."""
        assert worker.process is not None
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)


def slow_deployment(name: str, ready_after: str) -> str:
    """:func:`tests.fixtures.e2e.slow_deployment` as the YAML file a pull request adds."""
    return yaml.safe_dump(e2e_slow_deployment(name, ready_after))


def config_map(name: str, **data: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})


@pytest.fixture
def chain_factory(
    forge_sim: SimHarness,
    services: ServiceManager,
    service_env: dict[str, str],
    kube_cluster: KubeCluster,
    namespace: str,
    tmp_path: Path,
    redis_client: Any,
) -> Iterator[Callable[..., Chain]]:
    """``chain_factory(workers=1, **env)``: web + ``workers`` workers (own cache dirs) with ``env``."""

    def build(workers: int = 1, concurrency: int = 1, **overrides: str) -> Chain:
        env = {**stack_env(service_env, forge_sim, kube_cluster, tmp_path / "cache-web"), **overrides}
        web = services.web(env)
        forge_sim.set_webhook("github", f"{web.url}/webhooks/github", TEST_GITHUB_SECRET)
        forge_sim.set_webhook("gitlab", f"{web.url}/webhooks/gitlab", TEST_GITLAB_SECRET)
        chain = Chain(forge_sim, web, [], env, namespace, kube_cluster, services, extra={"tmp": str(tmp_path)})
        for index in range(workers):
            chain.worker(f"host{index}", concurrency=concurrency)
        return chain

    yield build


def job_records(workers: list[ServiceProcess], message: str) -> list[dict[str, Any]]:
    """Every JSON log record with ``msg == message`` across ``workers``, tagged with the worker name."""
    return [{**r, "worker": w.name} for w in workers for r in w.log_records() if r.get("msg") == message]
