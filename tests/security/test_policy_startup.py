"""Without a policy the service does not start: every repository deploying anywhere must be a choice.

Issue 9, finding 11 (policy part): with no policy file, every repository could deploy to every
namespace of every cluster, silently. Web and worker now refuse to start (exit 2, one clear line)
unless ``MERGEWAY_POLICY_FILE`` names a valid policy or the operator sets ``MERGEWAY_POLICY=allow-all``;
a policy file with a mistake stops them too, naming the mistake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.services import ServiceManager

NO_POLICY = "no policy: set MERGEWAY_POLICY_FILE to the operator's policy file"


def _without_policy(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("MERGEWAY_POLICY", "MERGEWAY_POLICY_FILE")}


@pytest.mark.parametrize("process", ["web", "worker"])
def test_refuses_to_start_without_a_policy(process: str, services: ServiceManager, service_env: dict[str, str]) -> None:
    start = services.web if process == "web" else services.worker
    proc = start(_without_policy(service_env), wait=False)
    assert proc.wait_exit(timeout=60) == 2
    assert f"mergeway-{process} refuses to start: {NO_POLICY}" in proc.logs()
    assert "Traceback" not in proc.logs()


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            "rules:\n  - repositories: [github:acme/shop]\n    namespace: [shop]\n",
            "rules[0]: unknown key(s): namespace",
        ),
        ("rules: [\n", "policy file is not valid YAML"),
    ],
)
def test_a_bad_policy_file_stops_the_worker_with_the_mistake(
    policy: str, message: str, services: ServiceManager, service_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    worker = services.worker({**_without_policy(service_env), "MERGEWAY_POLICY_FILE": str(path)}, wait=False)
    assert worker.wait_exit(timeout=60) == 2
    assert f"mergeway-worker refuses to start: MERGEWAY_POLICY_FILE ({path}): {message}" in worker.logs()


def test_allow_all_must_be_spelled_out(services: ServiceManager, service_env: dict[str, str]) -> None:
    web = services.web({**_without_policy(service_env), "MERGEWAY_POLICY": "allow"}, wait=False)
    assert web.wait_exit(timeout=60) == 2
    assert "MERGEWAY_POLICY must be empty or allow-all" in web.logs()
