"""Map the cluster names repositories use to kubeconfig contexts the operator controls.

Repositories say ``cluster: staging``; only the server knows what that means. With
``MERGEWAY_CLUSTERS=staging=ctx-a,prod=ctx-b`` exactly those names exist; without it, every context
in the kubeconfig is a cluster under its own name (the single-cluster and local-demo case).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from mergeway.kube import kubeconfig
from mergeway.kube.client import KubeClient


class ClusterSettings(Protocol):
    """What the registry reads of the service's settings (``mergeway.config.Settings`` has it).

    A protocol, not the settings class: the engine takes plain values and imports no configuration.
    """

    @property
    def clusters(self) -> Mapping[str, str]: ...
    @property
    def kubeconfig(self) -> str: ...
    @property
    def dry_run_concurrency(self) -> int: ...
    @property
    def kube_retry_seconds(self) -> float: ...


class UnknownCluster(LookupError):
    pass


class ClusterRegistry:
    """One shared, thread-safe :class:`KubeClient` per cluster name."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self._clients: dict[str, KubeClient] = {}
        self._lock = threading.Lock()

    def contexts(self) -> dict[str, str]:
        if self.settings.clusters:
            return dict(self.settings.clusters)
        return {name: name for name in kubeconfig.list_contexts(self.settings.kubeconfig or None)}

    def known(self) -> set[str]:
        return set(self.contexts())

    def client(self, name: str) -> KubeClient:
        with self._lock:
            if name not in self._clients:
                context = self.contexts().get(name)
                if context is None:
                    raise UnknownCluster(f"cluster {name!r} is not configured on this Mergeway server")
                self._clients[name] = KubeClient.from_kubeconfig(
                    self.settings.kubeconfig or None,
                    context,
                    pool_size=max(4, self.settings.dry_run_concurrency * 2),
                    retry_seconds=self.settings.kube_retry_seconds,
                )
            return self._clients[name]
