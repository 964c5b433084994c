"""Whatever arrives (random bytes, random headers, mangled real payloads, correctly signed or not),
the service answers without a server error. Runs the real Flask app on a live Redis, in-process
for speed (hundreds of requests per endpoint)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mergeway.config import Settings
from mergeway.intake.signatures import sign_github
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.services import TEST_GITHUB_SECRET, TEST_GITLAB_SECRET, event_header, fixture_files
from webhook_service import create_app

FIXTURES = [(p.parent.name, event_header(p), json.loads(p.read_bytes())) for p in fixture_files()]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=60)


def mangle(data: Any, draw: Any) -> Any:
    """Replace or delete a few values anywhere in a real payload."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            choice = draw(st.integers(0, 30))
            if choice == 0:
                continue
            out[key] = draw(json_values) if choice == 1 else mangle(value, draw)
        return out
    if isinstance(data, list):
        return [mangle(v, draw) for v in data]
    return data


@st.composite
def deliveries(draw: Any) -> tuple[str, bytes, dict[str, str]]:
    forge, event, payload = draw(st.sampled_from(FIXTURES))
    kind = draw(st.sampled_from(["mangled", "random-json", "bytes", "fixture"]))
    if kind == "mangled":
        body = json.dumps(mangle(payload, draw)).encode()
    elif kind == "random-json":
        body = json.dumps(draw(json_values)).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        body = json.dumps(payload).encode()
    if draw(st.booleans()):
        event = draw(header_text)
    headers: dict[str, str] = {}
    authentic = draw(st.integers(0, 3)) > 0
    if forge == "github":
        headers["X-GitHub-Event"] = event
        headers["X-Hub-Signature-256"] = sign_github(TEST_GITHUB_SECRET, body) if authentic else draw(header_text)
        headers["X-GitHub-Delivery"] = draw(st.uuids().map(str) | header_text)
    else:
        headers["X-Gitlab-Event"] = event
        headers["X-Gitlab-Token"] = TEST_GITLAB_SECRET if authentic else draw(header_text)
        headers[draw(st.sampled_from(["Idempotency-Key", "X-Gitlab-Event-UUID"]))] = draw(
            st.uuids().map(str) | header_text
        )
    headers["Content-Type"] = draw(
        st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""])
    )
    for name, value in draw(
        st.dictionaries(header_text.filter(lambda s: s.isascii() and s.isalnum() and s), header_text, max_size=3)
    ).items():
        headers.setdefault(name, value)
    return forge, body, headers


@pytest.fixture(scope="module")
def client(redis_server: RedisServer) -> Iterator[FlaskClient]:
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    settings_ = Settings.from_env(
        {
            "REDIS_URL": redis_server.url,
            "GITHUB_WEBHOOK_SECRET": TEST_GITHUB_SECRET,
            "GITLAB_WEBHOOK_SECRET": TEST_GITLAB_SECRET,
            "MERGEWAY_BOT_LOGINS": "mergeway-bot",
            "LOG_LEVEL": "WARNING",
            "MERGEWAY_POLICY": "allow-all",
        },
        role="web",
    )
    app = create_app(settings_, configure_logs=False)
    yield app.test_client()
    redis.Redis.from_url(redis_server.url).flushall()


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(delivery=deliveries())
def test_never_a_server_error(client: FlaskClient, delivery: tuple[str, bytes, dict[str, str]]) -> None:
    forge, body, headers = delivery
    response = client.post(f"/webhooks/{forge}", data=body, headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)
    answer = response.get_json()
    assert isinstance(answer, dict)
    assert set(answer) <= {"status", "reason", "error", "job_id", "job", "event", "repo", "pr"}
    text = response.get_data(as_text=True)
    assert TEST_GITHUB_SECRET not in text and TEST_GITLAB_SECRET not in text


@settings(max_examples=200, deadline=None)
@given(
    forge=st.sampled_from(["github", "gitlab"]),
    body=st.binary(max_size=300),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "X-GitHub-Event",
                "X-Hub-Signature-256",
                "X-GitHub-Delivery",
                "X-Gitlab-Event",
                "X-Gitlab-Token",
                "Idempotency-Key",
                "X-Gitlab-Event-UUID",
                "Content-Type",
            ]
        ),
        header_text,
    ),
)
def test_random_bytes_and_headers_never_a_server_error(
    client: FlaskClient, forge: str, body: bytes, headers: dict[str, str]
) -> None:
    response = client.post(f"/webhooks/{forge}", data=body, headers=headers)
    assert response.status_code < 500
    assert isinstance(response.get_json(), dict)
