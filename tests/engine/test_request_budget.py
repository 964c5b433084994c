"""What a preview and a deploy send to the real API server: the requests the guarantees cost, no more.

Every request is one the API server's CPU pays for, and on a small cluster that is the floor of a
deploy's time. These tests count what reaches the server (the real transport, observed), so a
change that quietly doubles the requests per object shows up here, not only in a benchmark.
"""

from __future__ import annotations

import socket
import ssl
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mergeway.kube.apply import Applier
from mergeway.kube.applyset import ApplySet
from mergeway.kube.client import KubeClient
from mergeway.kube.diff import Differ
from mergeway.kube.transport import DirectTransport, Request, Response, Transport
from mergeway.render.manifests import Manifest

pytestmark = pytest.mark.cluster


class Observed:
    """The real transport, with a count of what was sent through it."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.host = inner.host
        self.sent: Counter[str] = Counter()

    def send(self, request: Request) -> Response:
        dry = "dryRun" in (request.query or {})
        self.sent[f"{request.method} dry-run" if dry else request.method] += 1
        return self.inner.send(request)


@pytest.fixture
def observed(kube_cluster) -> tuple[KubeClient, Observed]:
    client = KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))
    spy = Observed(client.transport)
    client.transport = spy
    return client, spy


def _secret(name: str, value: str) -> Manifest:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"token": value}}
    return Manifest(obj, f"{name}.yaml")


def _config(name: str) -> Manifest:
    return Manifest(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}, "c.yaml"
    )


def test_an_unchanged_secret_previews_as_unchanged_without_a_dry_run(observed, namespace) -> None:
    client, spy = observed
    applyset = ApplySet("budget-secrets", namespace)
    secrets = [_secret("a", "one"), _secret("b", "two")]
    Applier(client).deploy(secrets, applyset=applyset, default_namespace=namespace, wait=False)

    spy.sent.clear()
    plan = Differ(client).plan_for(secrets, applyset, default_namespace=namespace)
    assert plan.summary() == "0 to add, 0 to change, 0 to prune, 2 unchanged"
    assert spy.sent["PATCH dry-run"] == 0  # stringData is stored as data: nothing to ask the server

    spy.sent.clear()
    plan = Differ(client).plan_for(
        [_secret("a", "one"), _secret("b", "rotated")], applyset, default_namespace=namespace
    )
    assert plan.summary() == "0 to add, 1 to change, 0 to prune, 1 unchanged"
    assert spy.sent["PATCH dry-run"] == 1  # only the rotated one is asked about


def test_an_unchanged_secret_without_values_is_not_dry_run_again(observed, namespace) -> None:
    """Install bundles ship placeholder Secrets (no data) that a controller fills in later."""
    client, spy = observed
    applyset = ApplySet("budget-empty", namespace)
    empty = Manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "filled-later"}}, "s.yaml")
    Applier(client).deploy([empty], applyset=applyset, default_namespace=namespace, wait=False)

    spy.sent.clear()
    again = Applier(client).deploy([empty], applyset=applyset, default_namespace=namespace, wait=False)
    assert again.counts() == {"added": 0, "changed": 0, "pruned": 0, "unchanged": 1}
    assert spy.sent["PATCH dry-run"] == spy.sent["PATCH"] == 0


def test_a_deploy_of_new_objects_sends_one_dry_run_and_one_apply_each(observed, namespace) -> None:
    client, spy = observed
    applyset = ApplySet("budget-new", namespace)
    objects = [_config(f"c-{i:02d}") for i in range(12)]
    result = Applier(client).deploy(objects, applyset=applyset, default_namespace=namespace, wait=False)
    assert result.counts() == {"added": 12, "changed": 0, "pruned": 0, "unchanged": 0}
    assert spy.sent["PATCH dry-run"] == 12  # everything validated before anything is applied
    assert spy.sent["PATCH"] == 12 + 1  # the objects, and the ApplySet parent once: nothing changes it after
    assert spy.sent["GET"] <= 5  # discovery (2), the parent, one LIST of the collection
    assert sum(spy.sent.values()) <= 12 * 2 + 7

    spy.sent.clear()
    again = Applier(client).deploy(objects, applyset=applyset, default_namespace=namespace, wait=False)
    assert again.counts() == {"added": 0, "changed": 0, "pruned": 0, "unchanged": 12}
    assert spy.sent["PATCH dry-run"] == spy.sent["PATCH"] == 0  # nothing changed, nothing sent


def test_a_deploy_records_its_commit_on_the_parent_only_after_applying(observed, namespace) -> None:
    client, spy = observed
    applyset = ApplySet("budget-commit", namespace, repository="github:acme/app", environment="prod")
    objects = [_config(f"k-{i:02d}") for i in range(3)]
    result = Applier(client).deploy(
        objects, applyset=applyset, default_namespace=namespace, commit="c0ffee", wait=False
    )
    assert result.ok
    # Before the objects: the kinds and namespaces (so a crash leaves them findable), no commit yet;
    # after them: the commit, which says that this commit is what the cluster runs.
    assert spy.sent["PATCH"] == 3 + 2
    stored = applyset.read(client)
    assert stored is not None and stored.commit == "c0ffee"


def test_a_burst_of_connections_resumes_one_tls_session(kube_cluster) -> None:
    """Each concurrent request opens a connection; after the first, each resumes its TLS session.

    A full handshake (certificate checks, a signature by the client key) costs the API server and
    the client about twice a resumed one, and a preview of 50 objects opens a dozen connections.
    """
    client = KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig))
    transport = client.transport
    assert isinstance(transport, DirectTransport) and transport.ssl_context is not None
    sockets: list[ssl.SSLSocket] = []
    real_wrap = transport.ssl_context.wrap_socket

    def wrap(sock: socket.socket, **kwargs: Any) -> ssl.SSLSocket:
        wrapped = real_wrap(sock, **kwargs)
        sockets.append(wrapped)
        return wrapped

    transport.ssl_context.wrap_socket = wrap  # type: ignore[method-assign]
    # The first connection: a full handshake, and the session ticket.
    version = client.request("GET", "/api/v1/namespaces", query={"limit": "1"})["metadata"]["resourceVersion"]
    # Six watches that each hold their connection for a second: six connections in use at once.
    watch = {"watch": "1", "resourceVersion": version, "timeoutSeconds": "1"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(lambda _: transport.send(Request("GET", "/api/v1/namespaces", watch, {}, None, 30)), range(6))
        )
    assert [a.status for a in answers] == [200] * 6
    assert len(sockets) >= 6, "five or six connections were opened during the watches"
    assert not sockets[0].session_reused
    assert all(s.session_reused for s in sockets[1:]), [s.session_reused for s in sockets]
