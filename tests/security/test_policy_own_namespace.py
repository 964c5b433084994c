"""No policy may let a repository write into the namespace Mergeway itself runs in.

Issue 24, finding 10 (service part): with cluster-wide RBAC and a rule ``namespaces: ["*"]``, a
repository could rewrite Mergeway's own ConfigMap (its policy, its kubeconfig) or its worker
Deployment, and so grant itself everything. The chart refuses such a policy at install
(tests/ship/test_chart_egress.py); the service refuses it at start-up too when it knows its own
namespace (``MERGEWAY_OWN_NAMESPACE``, which the chart sets from the pod's namespace), so a policy
edited after install, or an install without the chart, stops at the next restart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.services import ServiceManager

RULE = "rules:\n  - repositories: ['github:acme/*']\n    clusters: [in-cluster]\n"


def _env(service_env: dict[str, str], tmp_path: Path, policy: str) -> dict[str, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    env = {k: v for k, v in service_env.items() if k not in ("MERGEWAY_POLICY", "MERGEWAY_POLICY_FILE")}
    return {**env, "MERGEWAY_POLICY_FILE": str(path), "MERGEWAY_OWN_NAMESPACE": "mergeway"}


@pytest.mark.parametrize("process", ["web", "worker"])
@pytest.mark.parametrize(
    ("namespaces", "listed"),
    [("['*']", "*"), ("[shop, 'merge*']", "shop, merge*"), (None, "*")],
    ids=["everything", "glob", "no-namespaces-key"],
)
def test_a_policy_granting_mergeways_own_namespace_stops_the_service(
    process: str,
    namespaces: str | None,
    listed: str,
    services: ServiceManager,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    policy = RULE + (f"    namespaces: {namespaces}\n" if namespaces else "")
    env = _env(service_env, tmp_path, policy)
    proc = (services.web if process == "web" else services.worker)(env, wait=False)
    assert proc.wait_exit(timeout=60) == 2
    assert (
        f"mergeway-{process} refuses to start: MERGEWAY_POLICY_FILE ({tmp_path / 'policy.yaml'}): rules[0] "
        f"(namespaces: {listed}) lets github:acme/* deploy into namespace 'mergeway', the namespace Mergeway "
        "itself runs in (MERGEWAY_OWN_NAMESPACE)"
    ) in proc.logs(), proc.logs()
    assert "Traceback" not in proc.logs()


def test_allow_all_with_a_known_namespace_stops_the_service(
    services: ServiceManager, service_env: dict[str, str]
) -> None:
    env = {k: v for k, v in service_env.items() if k != "MERGEWAY_POLICY_FILE"}
    web = services.web({**env, "MERGEWAY_POLICY": "allow-all", "MERGEWAY_OWN_NAMESPACE": "mergeway"}, wait=False)
    assert web.wait_exit(timeout=60) == 2
    assert "MERGEWAY_POLICY: allow-all lets every repository deploy into namespace 'mergeway'" in web.logs()


def test_a_policy_granting_other_namespaces_starts(
    services: ServiceManager, service_env: dict[str, str], tmp_path: Path
) -> None:
    env = _env(service_env, tmp_path, RULE + "    namespaces: [shop, 'mergeway-*']\n")
    services.web(env)  # waits for /healthz
    services.worker(env)  # waits for "ready"
