"""The end-to-end stack (tests/fixtures/e2e.py) started with a real policy file instead of allow-all.

``policy_stack(text)`` writes ``text`` (``{ns}`` is replaced by the test's namespace) to a file,
starts the Procfile's web service and worker with ``MERGEWAY_POLICY_FILE`` pointing at it, and
returns the same :class:`~tests.fixtures.e2e.Stack` the e2e tests use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import KubeCluster
from tests.fixtures.e2e import Stack, stack_env
from tests.fixtures.forgesim import SimHarness
from tests.fixtures.services import TEST_GITHUB_SECRET, TEST_GITLAB_SECRET, ServiceManager


@pytest.fixture
def policy_stack(
    forge_sim: SimHarness,
    services: ServiceManager,
    service_env: dict[str, str],
    kube_cluster: KubeCluster,
    namespace: str,
    tmp_path: Path,
    redis_client: Any,
) -> Callable[[str], Stack]:
    def start(policy: str) -> Stack:
        path = tmp_path / "policy.yaml"
        path.write_text(policy.replace("{ns}", namespace))
        env = stack_env(service_env, forge_sim, kube_cluster, tmp_path / "cache")
        env.pop("MERGEWAY_POLICY", None)
        env["MERGEWAY_POLICY_FILE"] = str(path)
        web = services.web(env)
        worker = services.worker(env, concurrency=2)
        forge_sim.set_webhook("github", f"{web.url}/webhooks/github", TEST_GITHUB_SECRET)
        forge_sim.set_webhook("gitlab", f"{web.url}/webhooks/gitlab", TEST_GITLAB_SECRET)
        return Stack(forge_sim, web, [worker], env, namespace, kube_cluster, services)

    return start
