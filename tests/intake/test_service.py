"""The intake pipeline without HTTP, against a real Redis: dedupe TTL and enqueue-failure recovery."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from mergeway.config import Settings
from mergeway.intake.service import Intake
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.services import FIXTURES, TEST_GITHUB_SECRET, TEST_GITLAB_SECRET, github_headers, queued_jobs

OPENED = (FIXTURES / "github" / "pull_request.opened.json").read_bytes()


def settings(redis_url: str) -> Settings:
    return Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "GITHUB_WEBHOOK_SECRET": TEST_GITHUB_SECRET,
            "GITLAB_WEBHOOK_SECRET": TEST_GITLAB_SECRET,
            "MERGEWAY_DEDUPE_TTL_SECONDS": "3600",
            "MERGEWAY_POLICY": "allow-all",
        },
        role="web",
    )


def test_a_failed_enqueue_claims_nothing_so_the_redelivery_is_queued(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    intake = Intake(settings(redis_server.url), redis_client)
    headers = github_headers(OPENED, "pull_request", delivery=str(uuid.uuid4()))
    redis_server.stop()
    try:
        first = intake.handle("github", headers, OPENED)
    finally:
        redis_server.start()
    assert (first.status, first.body) == (503, {"error": "job queue unavailable, please redeliver later"})
    assert queued_jobs(redis_client) == []
    second = intake.handle("github", headers, OPENED)
    assert (second.status, second.body["status"]) == (202, "queued")
    third = intake.handle("github", headers, OPENED)
    assert (third.status, third.body) == (200, {"status": "duplicate"})
    assert [j.task_id for j in queued_jobs(redis_client)] == [second.body["job_id"]]


class CountingRedis(redis.Redis):
    """A real client that records each command it sends (each is one round trip)."""

    sent: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]))
        return super().execute_command(*args, **options)


def test_one_redis_round_trip_per_accepted_delivery(redis_server: RedisServer) -> None:
    client = CountingRedis.from_url(redis_server.url)
    client.sent = []
    intake = Intake(settings(redis_server.url), client)
    intake.handle("github", github_headers(OPENED, "pull_request"), OPENED)  # the first one loads the script
    client.sent.clear()
    reply = intake.handle("github", github_headers(OPENED + b" ", "pull_request"), OPENED + b" ")
    assert reply.status == 202
    assert client.sent == ["EVALSHA"]


def test_delivery_ids_are_remembered_for_the_configured_ttl(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    intake = Intake(settings(redis_server.url), redis_client)
    delivery = str(uuid.uuid4())
    reply = intake.handle("github", github_headers(OPENED, "pull_request", delivery=delivery), OPENED)
    assert reply.status == 202
    key = f"mergeway:delivery:github:{delivery}"
    assert 3500 < redis_client.ttl(key) <= 3600
    # The claim records the job it started, for whoever investigates a duplicate.
    assert redis_client.get(key) == reply.body["job_id"].encode()


def test_headers_are_case_insensitive_in_plain_dicts(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    intake = Intake(settings(redis_server.url), redis_client)
    headers = {k.lower(): v for k, v in github_headers(OPENED, "pull_request").items()}
    assert intake.handle("github", headers, OPENED).status == 202
