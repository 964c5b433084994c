"""Jobs published by the web service are genuine Celery messages that a real worker runs."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from mergeway import metrics
from mergeway.config import Settings
from mergeway.events import PullRequest, PullRequestMerged, Repository, to_dict
from mergeway.forge import ForgeUnavailableError
from mergeway.intake.publish import RedisCeleryPublisher
from mergeway.logs import record_context
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.services import (
    FIXTURES,
    ServiceManager,
    github_headers,
    queued_jobs,
)
from tests.fixtures.waiting import wait_for
from workers.celery_app import create_celery

EVENT = PullRequestMerged(
    delivery_id="d-123",
    repo=Repository(forge="github", full_name="o/r", clone_url="https://github.com/o/r.git"),
    pr=PullRequest(
        number=5, title="t", head_sha="a" * 40, head_ref="f", base_ref="main", author="me", merge_commit_sha="b" * 40
    ),
    merged_by="me",
)
#: Values that legitimately differ per publisher (who sent it, a random tag, how args are summarised).
VOLATILE_HEADERS = {"origin", "argsrepr"}
VOLATILE_PROPERTIES = {"delivery_tag", "reply_to"}


def decode(raw: bytes) -> dict[str, object]:
    message: dict[str, object] = json.loads(raw)
    return message


def test_light_message_is_what_celery_itself_publishes(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    app = create_celery(Settings.from_env({"REDIS_URL": redis_server.url}))
    task_id = str(uuid.uuid4())
    app.send_task("mergeway.deploy", args=[to_dict(EVENT)], task_id=task_id, queue="deploy").forget()
    [celery_raw] = redis_client.lrange("deploy", 0, -1)
    redis_client.delete("deploy")
    RedisCeleryPublisher(redis_client).publish("deploy", EVENT, job_id=task_id)
    [light_raw] = redis_client.lrange("deploy", 0, -1)
    celery, light = decode(celery_raw), decode(light_raw)

    assert set(celery) == set(light)
    for key in ("content-type", "content-encoding"):
        assert celery[key] == light[key]
    ch, lh = celery["headers"], light["headers"]
    assert isinstance(ch, dict) and isinstance(lh, dict)
    assert set(ch) == set(lh)
    assert {k: v for k, v in ch.items() if k not in VOLATILE_HEADERS} == {
        k: v for k, v in lh.items() if k not in VOLATILE_HEADERS
    }
    cp, lp = celery["properties"], light["properties"]
    assert isinstance(cp, dict) and isinstance(lp, dict)
    assert set(cp) == set(lp)
    assert {k: v for k, v in cp.items() if k not in VOLATILE_PROPERTIES} == {
        k: v for k, v in lp.items() if k not in VOLATILE_PROPERTIES
    }
    assert json.loads(base64.b64decode(str(celery["body"]))) == json.loads(base64.b64decode(str(light["body"])))


def result_meta(client: redis.Redis, task_id: str) -> dict[str, object] | None:
    raw = client.get(f"celery-task-meta-{task_id}")
    return json.loads(raw) if raw else None


def test_worker_runs_jobs_delivered_through_the_web_service(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
) -> None:
    env = {
        **service_env,
        # Whatever a job tries to reach answers "connection refused" at once: no real forge or cluster.
        "GITHUB_API_URL": "http://127.0.0.1:9",
        "GITLAB_URL": "http://127.0.0.1:9",
        "MERGEWAY_FORGE_RETRIES": "0",
        "MERGEWAY_CACHE_DIR": str(services.workdir / "cache"),
    }
    web = services.web(env)
    worker = services.worker(env)

    # A real merged-PR delivery while the forge answers nothing: the deploy job's first step (reading
    # the repository from the forge) must fail, and the failure must be visible.
    body = (FIXTURES / "github" / "pull_request.closed.merged.json").read_bytes()
    headers = github_headers(body, "pull_request")
    status, answer = web.request("POST", "/webhooks/github", body, headers)
    assert status == 202 and isinstance(answer, dict), answer
    job_id = answer["job_id"]

    started = worker.wait_log(lambda r: r.get("job_id") == job_id and r.get("msg") == "deploy job started")
    assert started["delivery_id"] == headers["X-GitHub-Delivery"]
    assert (started["repo"], started["pr"], started["job"]) == ("anbraten/test-ready-release-go", 62, "deploy")
    finished = worker.wait_log(
        lambda r: (
            r.get("job_id") == job_id and r.get("msg", "").startswith(("deploy job succeeded", "deploy job failed"))
        )
    )
    assert finished["msg"].startswith("deploy job failed: ForgeUnavailableError"), finished
    assert finished["level"] == "ERROR" and "ForgeUnavailableError" in finished["exc"]
    assert finished["delivery_id"] == headers["X-GitHub-Delivery"]
    # The job logs its end just before Celery stores the final state (it says STARTED until then).
    meta = wait_for(
        lambda: (m := result_meta(redis_client, job_id)) and m["status"] in ("SUCCESS", "FAILURE") and m,
        timeout=30,
        message="final task state",
    )
    assert meta["status"] == "FAILURE", f"a failed deploy was recorded as {meta['status']}:\n{worker.logs()[-3000:]}"
    # Celery stores an exception it cannot import by name as its builtin base class; the message says what failed.
    assert "could not read the repository in anbraten/test-ready-release-go" in str(meta["result"]["exc_message"])
    assert queued_jobs(redis_client) == []
    assert "Traceback" not in web.logs()


@pytest.fixture
def worker_context(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The environment a worker's job context is built from (the context is cached per process)."""
    from mergeway.jobs.context import default_context

    for name, value in {
        "GITHUB_TOKEN": "t" * 20,
        "GITLAB_TOKEN": "t" * 20,
        "MERGEWAY_CACHE_DIR": str(tmp_path),
        "MERGEWAY_POLICY": "allow-all",
        "GITHUB_API_URL": "http://127.0.0.1:9",  # refuses connections at once
        "MERGEWAY_FORGE_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    default_context.cache_clear()
    yield
    default_context.cache_clear()


@pytest.mark.usefixtures("worker_context")
def test_a_failing_job_fails_loudly(caplog: pytest.LogCaptureFixture) -> None:
    from workers import tasks

    # A merge whose forge cannot be reached: the job's first call fails.
    before = metrics.JOBS.labels("deploy", "failed")._value.get()
    with caplog.at_level(logging.INFO, logger="mergeway.jobs"):
        result = tasks.deploy.apply(args=[to_dict(EVENT)], task_id="job-1")
    assert result.failed()
    assert isinstance(result.result, ForgeUnavailableError)
    [failed] = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "mergeway.jobs"]
    assert failed.getMessage().startswith("deploy job failed: ForgeUnavailableError: GitHub: could not read")
    context = record_context(failed)
    assert (context["job_id"], context["delivery_id"], context["repo"], context["pr"]) == ("job-1", "d-123", "o/r", 5)
    assert metrics.JOBS.labels("deploy", "failed")._value.get() == before + 1


def test_celery_settings_that_keep_jobs_safe() -> None:
    app = create_celery(Settings.from_env({}))
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.accept_content == ["json"] and app.conf.task_serializer == "json"
    assert app.conf.worker_prefetch_multiplier == 1
    assert {q.name for q in app.conf.task_queues} == {
        "preview",
        "deploy",
        "rollback",
        "help",
        "drift",
        "drift-schedule",
        "merge_group",
        "merge_group_cancel",
        "revert-drift",
        "adopt-drift",
    }
    # The visibility timeout is a lease the worker renews (workers/lease.py), not "longer than any job".
    assert app.conf.broker_transport_options["visibility_timeout"] == 60
    assert app.conf.broker_transport_options["unacked_restore_throttle"] == 1
    assert any(step.__name__ == "LeaseRenewal" for step in app.steps["consumer"])
    limits = app.conf.task_annotations["mergeway.deploy"]
    assert limits["soft_time_limit"] < limits["time_limit"]


def test_worker_refuses_to_start_without_forge_credentials(
    services: ServiceManager, service_env: dict[str, str]
) -> None:
    env = {k: v for k, v in service_env.items() if k != "GITLAB_TOKEN"}
    worker = services.worker(env, wait=False)
    assert worker.wait_exit(timeout=60) == 2
    assert "GITLAB_TOKEN is required" in worker.logs()
