"""Issue 24, finding 10, as the chart renders it (``helm template``, no cluster).

Egress is allowed by destination, never by port alone: before, the worker could reach any address
on 443 and 6443 (cloud metadata, other tenants' services) and both pods any address on Redis's
port. And a policy that lets a repository write into the namespace Mergeway is installed in is
refused, since such a repository could rewrite Mergeway's own ConfigMap (policy, kubeconfig) or its
worker Deployment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ship.chart import CHART, KUBE_VERSION, helm, manifests, template

METADATA = "169.254.0.0/16"
PRIVATE = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}


def _policies(*sets: str) -> dict[str, dict[str, Any]]:
    result = template(*sets)
    assert result.returncode == 0, result.stderr
    return {o["metadata"]["name"]: o["spec"] for o in manifests(result.stdout) if o["kind"] == "NetworkPolicy"}


def _ports(rule: dict[str, Any]) -> set[int]:
    return {p["port"] for p in rule["ports"]}


def test_every_egress_rule_names_its_destinations() -> None:
    policies = _policies()
    for name, spec in policies.items():
        for rule in spec["egress"]:
            assert rule.get("to"), f"{name}: an egress rule without destinations allows every address: {rule}"
    web, worker = policies["mw-web"]["egress"], policies["mw-worker"]["egress"]
    dns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
           "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}  # fmt: skip
    assert [(r["to"], _ports(r)) for r in web] == [([dns], {53}), ([{"podSelector": {}}], {6379})]
    assert worker[:2] == web, "the worker reaches DNS and Redis as the web pods do"
    forges, api = worker[2], worker[3]
    assert _ports(forges) == {443}
    block = forges["to"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0" and {METADATA, *PRIVATE} <= set(block["except"])
    # No cluster to look the API server's endpoints up in: the private ranges, never everything.
    assert _ports(api) == {443, 6443}
    assert {peer["ipBlock"]["cidr"] for peer in api["to"]} == PRIVATE
    assert len(worker) == 4


def test_egress_destinations_are_values_to_extend() -> None:
    worker = _policies(
        "networkPolicy.egress.redis.to[0].ipBlock.cidr=10.20.0.5/32",
        "networkPolicy.egress.redis.port=6380",
        "networkPolicy.egress.forges.to[0].ipBlock.cidr=192.168.7.0/24",
        "networkPolicy.egress.apiServer.to[0].ipBlock.cidr=172.18.0.2/32",
        "networkPolicy.egress.apiServer.ports={6443}",
        "networkPolicy.egress.extra[0].to[0].ipBlock.cidr=203.0.113.9/32",
        "networkPolicy.egress.extra[0].ports[0].port=8443",
    )["mw-worker"]["egress"]
    assert [(r["to"][0].get("ipBlock", {}).get("cidr"), _ports(r)) for r in worker[1:]] == [
        ("10.20.0.5/32", {6380}),
        ("192.168.7.0/24", {443}),
        ("172.18.0.2/32", {6443}),
        ("203.0.113.9/32", {8443}),
    ]


def test_egress_without_destinations_is_refused_by_the_schema() -> None:
    args = ["template", "mw", str(CHART), "--namespace", "mergeway", "--kube-version", KUBE_VERSION]
    result = helm(*args, "-f", str(CHART / "ci" / "values.yaml"), "--set-json", "networkPolicy.egress.forges.to=[]")
    assert result.returncode != 0
    assert "at '/networkPolicy/egress/forges/to'" in result.stderr, result.stderr


@pytest.mark.parametrize("glob", ["mergeway", "*", "merge*", "[m]ergeway", "mergewa?"])
def test_a_policy_that_grants_mergeways_own_namespace_is_refused(glob: str) -> None:
    result = template(f"policy.rules[0].namespaces={{shop,{glob}}}", "rbac.clusterWide=true")
    assert result.returncode != 0
    assert (
        f'policy.rules[0]: namespace "{glob}" matches "mergeway", the namespace Mergeway is installed in: a '
        "repository could then rewrite Mergeway's own ConfigMap (policy, kubeconfig) or its worker"
    ) in result.stderr, result.stderr


def test_a_rule_without_namespaces_grants_every_namespace_and_is_refused() -> None:
    result = template("policy.rules[1].repositories={github:acme/ops}")
    assert result.returncode != 0
    assert 'policy.rules[1]: namespace "*" matches "mergeway"' in result.stderr, result.stderr


def test_namespaces_that_only_look_alike_are_accepted() -> None:
    assert _policies("policy.rules[0].namespaces={mergeway-*,x-mergeway,shop}")


def test_the_worker_may_not_be_granted_its_own_namespace() -> None:
    result = template("rbac.namespaces={shop,mergeway}")
    assert result.returncode != 0
    assert 'rbac.namespaces: "mergeway" is the namespace Mergeway is installed in' in result.stderr, result.stderr


def test_both_pods_know_their_namespace_so_the_service_checks_it_too() -> None:
    result = template()
    assert result.returncode == 0, result.stderr
    for deployment in (o for o in manifests(result.stdout) if o["kind"] == "Deployment"):
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["MERGEWAY_OWN_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


@pytest.fixture
def api_server_slice(kube: Any) -> Iterator[tuple[list[str], set[int]]]:
    """The API server's EndpointSlice (``default/kubernetes``), as every cluster's API server writes it.

    The local cluster's API server runs without its endpoint reconciler (and listens on loopback,
    which a slice may not hold), so the test writes one like it, with a documentation address, when
    the slice is missing, and removes it afterwards.
    """
    from kubernetes import client

    discovery = client.DiscoveryV1Api(kube.api_client)
    try:
        found = discovery.read_namespaced_endpoint_slice("kubernetes", "default")
        created = False
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        found = discovery.create_namespaced_endpoint_slice(
            "default",
            client.V1EndpointSlice(
                metadata=client.V1ObjectMeta(name="kubernetes", labels={"kubernetes.io/service-name": "kubernetes"}),
                address_type="IPv4",
                endpoints=[client.V1Endpoint(addresses=["192.0.2.10"])],
                ports=[client.DiscoveryV1EndpointPort(name="https", port=16443, protocol="TCP")],
            ),
        )
        created = True
    try:
        yield [a for e in found.endpoints for a in e.addresses], {p.port for p in found.ports}
    finally:
        if created:
            discovery.delete_namespaced_endpoint_slice("kubernetes", "default")


@pytest.mark.cluster
def test_with_a_cluster_the_worker_reaches_exactly_its_api_servers_endpoints(
    kube_cluster: Any, api_server_slice: tuple[list[str], set[int]]
) -> None:
    """Where helm can ask the cluster (install, upgrade, ``--dry-run=server``), the rule names its addresses."""
    ci = str(CHART / "ci" / "values.yaml")
    args = ["template", "mw", str(CHART), "--namespace", "mergeway", "-f", ci, "--dry-run=server"]
    args += ["--kube-version", KUBE_VERSION]
    result = helm(*args, kubeconfig=kube_cluster.kubeconfig)
    assert result.returncode == 0, result.stderr
    worker = next(o for o in manifests(result.stdout) if o["metadata"]["name"] == "mw-worker")
    api = worker["spec"]["egress"][3]
    ips, ports = api_server_slice
    assert ips and [peer["ipBlock"]["cidr"] for peer in api["to"]] == [f"{ip}/32" for ip in ips]
    assert _ports(api) == ports | {443, 6443}
