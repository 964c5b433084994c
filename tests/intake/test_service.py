"""The intake pipeline without HTTP, against a real Redis: dedupe TTL and enqueue-failure recovery."""

from __future__ import annotations

import uuid
from collections.abc import Callable

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


def commands_seen_by_redis(url: str, action: Callable[[], object]) -> list[str]:
    """What Redis received from clients (not from inside scripts) while ``action`` ran, via ``MONITOR``."""
    marker = f"end-of-action-{uuid.uuid4()}"
    signal = redis.Redis.from_url(url)
    signal.ping()  # connected (and introduced itself) before watching
    with redis.Redis.from_url(url).monitor() as monitor:
        action()
        signal.echo(marker)
        seen = []
        while True:
            entry = monitor.next_command()
            if marker in entry["command"]:
                return seen
            if entry["client_type"] != "lua":
                seen.append(entry["command"].split(" ", 1)[0].upper())


def test_one_redis_round_trip_per_accepted_delivery(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    intake = Intake(settings(redis_server.url), redis.Redis.from_url(redis_server.url))
    intake.handle("github", github_headers(OPENED, "pull_request"), OPENED)  # connects and loads the script
    replies = []
    body = OPENED + b" "
    sent = commands_seen_by_redis(
        redis_server.url, lambda: replies.append(intake.handle("github", github_headers(body, "pull_request"), body))
    )
    assert replies[0].status == 202
    assert sent == ["EVALSHA"]
    # A Redis that lost its scripts (restarted, flushed) gets the script with the delivery: still one command.
    redis_client.script_flush()
    body = OPENED + b"  "
    sent = commands_seen_by_redis(
        redis_server.url, lambda: replies.append(intake.handle("github", github_headers(body, "pull_request"), body))
    )
    assert replies[1].status == 202
    assert sent == ["EVALSHA", "EVAL"]
    assert len(queued_jobs(redis_client)) == 3


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


def test_the_first_delivery_after_a_redis_restart_is_queued_not_refused(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """Each intake thread keeps its Redis connection; one that a restart broke is replaced on the spot."""
    intake = Intake(settings(redis_server.url), redis.Redis.from_url(redis_server.url))
    before = intake.handle("github", github_headers(OPENED, "pull_request"), OPENED)
    assert before.status == 202
    redis_server.stop()
    redis_server.start()
    body = OPENED + b" "
    after = intake.handle("github", github_headers(body, "pull_request"), body)
    assert (after.status, after.body["status"]) == (202, "queued")
    assert after.body["job_id"] in [j.task_id for j in queued_jobs(redis_client)]
