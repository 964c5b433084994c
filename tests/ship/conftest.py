"""Fixtures for the chart tests on the local cluster: extra namespaces and the documented Secrets."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.ship.chart import Kube


@pytest.fixture
def kube(kube_cluster) -> Iterator[Kube]:
    api_client = kube_cluster.api_client()
    try:
        yield Kube(api_client)
    finally:
        api_client.close()


@pytest.fixture
def make_namespace(kube: Kube) -> Iterator[Callable[[str], str]]:
    """Create fresh namespaces (deleted after the test), e.g. deploy targets next to the release's."""
    created: list[str] = []

    def make(prefix: str) -> str:
        name = f"t-{prefix}-{uuid.uuid4().hex[:6]}"
        kube.create_namespace(name)
        created.append(name)
        return name

    yield make
    for name in created:
        kube.core().delete_namespace(name, propagation_policy="Background")


def create_documented_secrets(kube: Kube, namespace: str, *, redis_secret: bool = True) -> None:
    """The Secret layout the chart README documents: one per component, plus the Redis password."""
    kube.create_secret(namespace, "mergeway-web", {"GITHUB_WEBHOOK_SECRET": "s3", "GITLAB_WEBHOOK_SECRET": "s4"})
    kube.create_secret(namespace, "mergeway-worker", {"GITHUB_TOKEN": "ghp_x", "GITLAB_TOKEN": "glpat-x"})
    if redis_secret:
        kube.create_secret(namespace, "mergeway-redis", {"redis-password": "0123456789abcdef"})
