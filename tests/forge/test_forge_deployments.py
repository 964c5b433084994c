"""The forge's own deployments through Mergeway's clients (PyGithub, python-gitlab) against the simulator.

What a user sees in the forge's Environments view: one deployment per merge and environment, on the
merge commit, moving through its states; the environment's earlier deployment turning inactive on
GitHub; the environment's URL on both forges.
"""

from __future__ import annotations

import redis

from mergeway.deployments import ForgeDeploymentIds
from mergeway.forge.base import DeploymentUpdate
from mergeway.report.publish import Publisher
from tests.fixtures.forgesim import SimHarness


def _merged(sim: SimHarness, forge: str, branch: str, value: str) -> tuple[object, str]:
    name = "acme/shop" if forge == "github" else "group/shop"
    repo = sim.find_repo(forge, name) or sim.create_repo(forge, name, {"deploy/a.yaml": "a: 0\n"})  # type: ignore[arg-type]
    pr = sim.open_pr(repo, branch, files={"deploy/a.yaml": f"a: {value}\n"})
    sim.merge(repo, pr)
    sha = sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return repo, sha


def test_github_deployments_move_through_their_states_and_retire_the_previous_one(forge_sim: SimHarness) -> None:
    repo, first = _merged(forge_sim, "github", "one", "1")
    forge = forge_sim.forge(repo)  # type: ignore[arg-type]
    update = DeploymentUpdate("staging", first, "main", "queued", "Queued", pr=1)

    one = forge.create_deployment(update)
    assert one is not None
    for state in ("queued", "in_progress", "success"):
        forge.update_deployment(
            one,
            DeploymentUpdate(
                "staging",
                first,
                "main",
                state,
                f"now {state}",
                log_url="https://x.example/c/1",  # type: ignore[arg-type]
                environment_url="https://staging.example.com/",
            ),
        )
    _, second = _merged(forge_sim, "github", "two", "2")
    two = forge.create_deployment(DeploymentUpdate("staging", second, "main", "queued", pr=2))
    assert two is not None
    forge.update_deployment(two, DeploymentUpdate("staging", second, "main", "success", "done"))

    deployments = forge_sim.github_deployments.of(repo)  # type: ignore[arg-type]
    assert [(d.environment, d.sha, d.ref, d.task) for d in deployments] == [
        ("staging", first, first, "deploy"),
        ("staging", second, second, "deploy"),
    ]
    assert deployments[0].payload == {"ref": "main", "pull_request": 1}
    assert [s.state for s in deployments[0].statuses] == ["queued", "in_progress", "success", "inactive"]
    assert deployments[0].statuses[2].log_url == "https://x.example/c/1"
    assert deployments[0].statuses[2].environment_url == "https://staging.example.com/"
    assert deployments[1].state == "success"


def test_github_deployment_descriptions_are_cut_to_what_github_accepts(forge_sim: SimHarness) -> None:
    repo, sha = _merged(forge_sim, "github", "one", "1")
    forge = forge_sim.forge(repo)  # type: ignore[arg-type]
    long = DeploymentUpdate("staging", sha, "main", "failure", "x" * 500)
    deployment = forge.create_deployment(long)
    assert deployment is not None
    forge.update_deployment(deployment, long)
    status = forge_sim.github_deployments.of(repo)[0].statuses[-1]  # type: ignore[arg-type]
    assert status.state == "failure" and len(status.description) == 140


def test_gitlab_deployments_start_running_and_keep_the_environment_url(forge_sim: SimHarness) -> None:
    repo, sha = _merged(forge_sim, "gitlab", "one", "1")
    forge = forge_sim.forge(repo)  # type: ignore[arg-type]
    url = "https://staging.example.com/"

    assert forge.create_deployment(DeploymentUpdate("staging", sha, "main", "queued", environment_url=url)) is None
    created = forge.create_deployment(DeploymentUpdate("staging", sha, "main", "in_progress", environment_url=url))
    assert created is not None
    forge.update_deployment(created, DeploymentUpdate("staging", sha, "main", "error", "held"))
    forge.update_deployment(created, DeploymentUpdate("staging", sha, "main", "in_progress"))  # refused: skipped
    forge.update_deployment(created, DeploymentUpdate("staging", sha, "main", "success"))

    [deployment] = forge_sim.gitlab_deployments.of(repo)  # type: ignore[arg-type]
    assert (deployment.environment, deployment.sha, deployment.ref, deployment.status) == (
        "staging",
        sha,
        "main",
        "success",
    )
    environment = forge_sim.gitlab_deployments.environment(repo, "staging")  # type: ignore[arg-type]
    assert environment is not None and environment.external_url == url


def test_the_publisher_creates_one_deployment_per_environment_and_commit(forge_sim: SimHarness) -> None:
    repo, sha = _merged(forge_sim, "github", "one", "1")
    publisher = Publisher(forge_sim.forge(repo), 1)  # type: ignore[arg-type]
    for state in ("queued", "in_progress", "failure"):
        publisher.deployment(DeploymentUpdate("staging", sha, "main", state, f"now {state}"))  # type: ignore[arg-type]
    publisher.deployment(DeploymentUpdate("production", sha, "main", "queued"))

    deployments = forge_sim.github_deployments.of(repo)  # type: ignore[arg-type]
    assert [d.environment for d in deployments] == ["staging", "production"]
    assert [(s.state, s.description) for s in deployments[0].statuses] == [
        ("queued", "now queued"),
        ("in_progress", "now in_progress"),
        ("failure", "now failure"),
    ]


def test_a_deploy_that_ended_without_its_outcome_leaves_no_deployment_open(forge_sim: SimHarness) -> None:
    repo, sha = _merged(forge_sim, "github", "one", "1")
    publisher = Publisher(forge_sim.forge(repo), 1)  # type: ignore[arg-type]
    publisher.deployment(DeploymentUpdate("staging", sha, "main", "in_progress", "Applying"))
    publisher.unfinished("deploy", "job-1", "the worker was killed", [(sha, "mergeway/deploy/staging")], sha)

    [deployment] = forge_sim.github_deployments.of(repo)  # type: ignore[arg-type]
    assert [s.state for s in deployment.statuses] == ["in_progress", "error"]
    assert "killed" in deployment.statuses[-1].description


def test_in_a_production_environment_mergeway_retires_the_previous_deployment_itself(
    forge_sim: SimHarness, redis_client: redis.Redis
) -> None:
    """GitHub's ``auto_inactive`` skips production environments; the previous success must not stay active."""
    repo, first = _merged(forge_sim, "github", "one", "1")
    _, second = _merged(forge_sim, "github", "two", "2")
    ids = ForgeDeploymentIds(redis_client, "github:acme/shop")
    for number, sha in ((1, first), (2, second)):  # one job each: a publisher each, the ids in Redis
        publisher = Publisher(forge_sim.forge(repo), number, deployment_ids=ids)  # type: ignore[arg-type]
        publisher.deployment(DeploymentUpdate("production", sha, "main", "success", "Deployed", pr=number))

    old, new = forge_sim.github_deployments.of(repo, "production")  # type: ignore[arg-type]
    assert old.production and (old.state, new.state) == ("inactive", "success")
    assert old.statuses[-1].description == f"Replaced by deployment {new.id}"
