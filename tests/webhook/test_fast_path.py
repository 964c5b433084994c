"""The webhook routes' WSGI fast path answers exactly as the Flask routes do, for any delivery.

Deliveries are served without Flask's request machinery (``webhook_service.routes.WebhookFastPath``)
because it cost as much CPU as the intake work itself. A forge must not be able to tell: for real
fixtures, mangled and random payloads, forged signatures and odd headers, the status, the headers
that matter and the JSON body are byte for byte those of the Flask route (job ids aside, which are
fresh per delivery). Each app has its own Redis database, so both see every delivery as new.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mergeway.config import Settings
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.services import TEST_GITHUB_SECRET, TEST_GITLAB_SECRET
from tests.webhook.test_random_deliveries import deliveries
from webhook_service import create_app
from webhook_service.routes import WebhookFastPath


def _app(redis_server: RedisServer, db: int) -> Flask:
    env = {
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + f"/{db}",
        "GITHUB_WEBHOOK_SECRET": TEST_GITHUB_SECRET,
        "GITLAB_WEBHOOK_SECRET": TEST_GITLAB_SECRET,
        "MERGEWAY_BOT_LOGINS": "mergeway-bot",
        "LOG_LEVEL": "WARNING",
        "MERGEWAY_POLICY": "allow-all",
    }
    return create_app(Settings.from_env(env, role="web"), configure_logs=False)


@pytest.fixture(scope="module")
def apps(redis_server: RedisServer) -> Iterator[tuple[Flask, Flask]]:
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    fast, flask_only = _app(redis_server, 1), _app(redis_server, 2)
    assert isinstance(fast.wsgi_app, WebhookFastPath)
    flask_only.wsgi_app = flask_only.wsgi_app.flask_app  # type: ignore[attr-defined,method-assign]
    yield fast, flask_only
    for db in (1, 2):
        redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + f"/{db}").flushdb()


def _answer(app: Flask, forge: str, body: bytes, headers: dict[str, str]) -> tuple[str, str | None, bytes]:
    response = app.test_client().post(f"/webhooks/{forge}", data=body, headers=headers)
    data = re.sub(rb'"job_id":"[0-9a-f-]{36}"', b'"job_id":"-"', response.get_data())
    return response.status, response.headers.get("Content-Type"), data


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(delivery=deliveries(), twice=st.booleans())
def test_fast_path_answers_as_the_flask_route(
    apps: tuple[Flask, Flask], delivery: tuple[str, bytes, dict[str, str]], twice: bool
) -> None:
    fast, flask_only = apps
    forge, body, headers = delivery
    rounds = 2 if twice else 1  # the second time it is a duplicate (or refused the same way again)
    for _ in range(rounds):
        assert _answer(fast, forge, body, headers) == _answer(flask_only, forge, body, headers)
