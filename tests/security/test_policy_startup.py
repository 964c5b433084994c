"""Without a policy the service does not start: every repository deploying anywhere must be a choice.

Issue 9, finding 11 (policy part): with no policy file, every repository could deploy to every
namespace of every cluster, silently. Web and worker now refuse to start (exit 2, one clear line)
unless ``MERGEWAY_POLICY_FILE`` names a valid policy or the operator sets ``MERGEWAY_POLICY=allow-all``;
a policy file with a mistake stops them too, naming the mistake.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from mergeway.events import Command, CommentCommand, PullRequest, Repository
from mergeway.intake.publish import RedisCeleryPublisher
from tests.fixtures.forgesim import SimHarness
from tests.fixtures.services import TEST_GITHUB_SECRET, ServiceManager, log_tail, queued_jobs
from tests.fixtures.waiting import wait_for

NO_POLICY = "no policy: set MERGEWAY_POLICY_FILE to the operator's policy file"


#: A job waiting on its queue when a worker starts.
HELP_EVENT = CommentCommand(
    delivery_id="d-policy",
    repo=Repository(forge="github", full_name="acme/shop", clone_url="https://github.com/acme/shop.git"),
    pr=PullRequest(number=1, title="t", head_sha="a" * 40, head_ref="f", base_ref="main", author="alice"),
    command=Command("help"),
    author="alice",
    comment_id=1,
)


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


#: Policy files an operator can get wrong, and what the refusal says about each.
BROKEN_POLICIES = [
    pytest.param(
        b"rules:\n  - repositories: [github:acme/shop]\n    namespace: [shop]\n",
        "rules[0]: unknown key(s): namespace",
        id="typo",
    ),
    pytest.param(b"rules: [\n", "policy file is not valid YAML", id="yaml"),
    pytest.param(b"rules:\n  - repositories: [github:acme/\xe9quipe]\n", "policy file is not UTF-8 text", id="latin-1"),
    pytest.param(None, "policy file cannot be read: No such file or directory", id="missing"),
    pytest.param(
        b"rules: []\nfreeze:\n  - {repositories: ['github:acme/*'], cron: '0 18 * * 8', duration: 62h}\n",
        "freeze[0].cron: '0 18 * * 8' is not a valid cron expression",
        id="freeze-cron",
    ),
]


def _policy_file(tmp_path: Path, content: bytes | None) -> Path:
    path = tmp_path / "policy.yaml"
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(("content", "message"), BROKEN_POLICIES)
def test_a_broken_policy_stops_the_worker_before_it_takes_a_job(
    content: bytes | None,
    message: str,
    services: ServiceManager,
    service_env: dict[str, str],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    RedisCeleryPublisher(redis_client).publish("help", HELP_EVENT, job_id="job-before-the-worker")
    path = _policy_file(tmp_path, content)
    worker = services.worker({**_without_policy(service_env), "MERGEWAY_POLICY_FILE": str(path)}, wait=False)

    assert worker.wait_exit(timeout=60) == 2
    assert f"mergeway-worker refuses to start: MERGEWAY_POLICY_FILE ({path}): {message}" in worker.logs()
    assert "Traceback" not in worker.logs()
    assert [job.task_id for job in queued_jobs(redis_client)] == ["job-before-the-worker"]  # left for a good worker


@pytest.mark.parametrize(("content", "message"), BROKEN_POLICIES)
def test_a_broken_policy_stops_the_web_service(
    content: bytes | None, message: str, services: ServiceManager, service_env: dict[str, str], tmp_path: Path
) -> None:
    path = _policy_file(tmp_path, content)
    web = services.web({**_without_policy(service_env), "MERGEWAY_POLICY_FILE": str(path)}, wait=False)

    assert web.wait_exit(timeout=60) == 2
    assert f"mergeway-web refuses to start: MERGEWAY_POLICY_FILE ({path}): {message}" in web.logs()
    assert "Traceback" not in web.logs()


@pytest.mark.usefixtures("redis_client")  # an empty Redis: no job left by another test runs first
def test_the_policy_a_worker_started_with_is_the_one_its_jobs_use(
    services: ServiceManager, service_env: dict[str, str], forge_sim: SimHarness, tmp_path: Path
) -> None:
    """A policy edited after start-up takes effect at the next restart, where a mistake stops the rollout.

    Read again by each job process at its first job instead, a broken edit would fail every job of
    a running worker (and a fixed one would apply to some processes and not others).
    """
    path = _policy_file(tmp_path, b"rules:\n  - repositories: ['github:acme/*']\n    clusters: [staging]\n")
    env = {
        **_without_policy(service_env),
        "MERGEWAY_POLICY_FILE": str(path),
        "GITHUB_API_URL": forge_sim.github_api_url,
        "GITHUB_TOKEN": forge_sim.bot_token("github"),
        "MERGEWAY_CACHE_DIR": str(tmp_path / "cache"),
        "MERGEWAY_GITHUB_WRITE_INTERVAL_SECONDS": "0",
        "MERGEWAY_BOT_LOGINS": "mergeway-bot",
    }
    web = services.web(env)
    worker = services.worker(env, queues=["help"])
    repo = forge_sim.create_repo("github", "acme/shop", {"README.md": "# shop\n"})
    pr = forge_sim.open_pr(repo, "change", files={"README.md": "# shop, changed\n"})
    forge_sim.set_webhook("github", f"{web.url}/webhooks/github", TEST_GITHUB_SECRET)

    path.write_bytes(b"rules: [\n")  # an edit with a mistake, while the worker runs
    forge_sim.comment(repo, pr, "/help", author="alice")

    wait_for(
        lambda: [c for c in forge_sim.list_comments(repo, pr.number) if "<!-- mergeway:help -->" in c.body],
        timeout=60,
        message="the /help answer",
        detail=lambda: log_tail(worker),
    )
    assert "not valid YAML" not in worker.logs()
