"""Who may read the environments page, against the real web service (gunicorn) and Redis.

Off unless configured (404 on every page path, HTML and JSON); basic auth with hashed passwords
(401 and a ``WWW-Authenticate`` challenge without or with wrong credentials); an auth proxy's
header believed only from the proxy's addresses; settings that would open the page by mistake
stop the service at start-up. Records are written with the same :class:`Deployments` the workers
use (the end-to-end deploys are in test_environments_page.py).
"""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
import redis

from mergeway.config import ConfigError, Settings
from mergeway.deployments import Deployment, Deployments
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.services import ROOT, ServiceManager
from tests.fixtures.waiting import wait_for

PATHS = (
    "/",
    "/api/environments",
    "/environments/github/acme/shop/staging",
    "/api/environments/github/acme/shop/staging",
)
PASSWORD = "correct horse battery staple"


def seed(client: redis.Redis) -> None:
    record = Deployment(
        "github:acme/shop",
        "staging",
        "0123456789abcdef0123456789abcdef01234567",
        pr=12,
        merged_by="carol",
        title='Say "hi" <img src=x onerror=alert(1)>',
        cluster="prod-eu",
        namespace="shop",
        repository_url="https://github.example/acme/shop",
    )
    Deployments(client).save(record.enter("queued").enter("applying").enter("applied").enter("healthy"))


def page_hash(password: str, user: str = "") -> str:
    """What ``mergeway page-hash`` prints for ``password`` read from stdin."""
    out = subprocess.run(
        [sys.executable, "-m", "mergeway.cli", "page-hash", *([user] if user else [])],
        input=password + "\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_page_is_off_by_default(services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis):
    seed(redis_client)
    web = services.web(service_env)
    for path in PATHS:
        assert web.request("GET", path) == (404, {"error": "not found"}), path
    assert web.request("GET", "/healthz")[0] == 200


def test_public_serves_escaped_html_and_json(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
):
    seed(redis_client)
    web = services.web({**service_env, "MERGEWAY_PAGE": "public"})
    status, body = web.request("GET", "/")
    assert status == 200 and isinstance(body, str)
    assert "&lt;img src=x onerror=alert(1)&gt;" in body and "<img" not in body
    assert '<meta http-equiv="refresh" content="30">' in body
    assert '<a href="https://github.example/acme/shop/commit/0123456789abcdef0123456789abcdef01234567">' in body
    status, answer = web.request("GET", "/api/environments?repository=acme/shop")
    assert status == 200 and isinstance(answer, dict)
    (row,) = answer["environments"]
    assert (row["phase"], row["cluster"], row["namespace"], row["pr"], row["merged_by"]) == (
        "healthy",
        "prod-eu",
        "shop",
        12,
        "carol",
    )
    assert web.request("GET", "/api/environments/github/acme/shop/prod") == (404, {"error": "not found"})
    for secret in (service_env["GITHUB_WEBHOOK_SECRET"], service_env["GITHUB_TOKEN"], service_env["GITLAB_TOKEN"]):
        assert secret not in body and secret not in str(answer)


def test_users_need_their_password(services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis):
    seed(redis_client)
    entry = page_hash(PASSWORD, "alice")
    assert entry.startswith("alice:scrypt:") and PASSWORD not in entry
    web = services.web({**service_env, "MERGEWAY_PAGE_USERS": f"{entry},bob:{page_hash('other')}"})
    for headers in ({}, basic("alice", "wrong"), basic("mallory", PASSWORD), {"Authorization": "Bearer x"}):
        for path in PATHS:
            conn_status, answer = web.request("GET", path, headers=headers)
            assert (conn_status, answer) == (401, {"error": "unauthorized"}), (path, headers)
    challenge = _header(web.url, "/", "WWW-Authenticate")
    assert challenge.startswith('Basic realm="Mergeway environments"')
    for _ in range(2):  # the second answer comes from the remembered check: still the same
        status, body = web.request("GET", "/", headers=basic("alice", PASSWORD))
        assert status == 200 and "acme/shop" in str(body)
    assert web.request("GET", "/api/environments", headers=basic("bob", "other"))[0] == 200


def test_a_proxys_header_counts_only_from_the_proxy(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
):
    seed(redis_client)
    proxy = {**service_env, "MERGEWAY_PAGE": "proxy", "MERGEWAY_PAGE_PROXY_FROM": "127.0.0.0/8"}
    web = services.web(proxy)
    assert web.request("GET", "/", headers={"X-Forwarded-User": "alice"})[0] == 200
    assert web.request("GET", "/")[0] == 403  # from the proxy's address, but nobody signed in
    elsewhere = services.web({**proxy, "MERGEWAY_PAGE_PROXY_FROM": "10.9.8.7"})
    assert elsewhere.request("GET", "/", headers={"X-Forwarded-User": "alice"}) == (403, {"error": "forbidden"})


def _header(url: str, path: str, name: str) -> str:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.getheader(name) or ""
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MERGEWAY_PAGE": "yes"}, "MERGEWAY_PAGE must be empty, off, public or proxy"),
        ({"MERGEWAY_PAGE_USERS": "alice:hunter2"}, "MERGEWAY_PAGE_USERS entries must look like user:hash"),
        ({"MERGEWAY_PAGE_USERS": "alice"}, "MERGEWAY_PAGE_USERS entries must look like user:hash"),
        ({"MERGEWAY_PAGE_USERS": "alice:md5:x$y$z"}, "MERGEWAY_PAGE_USERS entries must look like user:hash"),
        ({"MERGEWAY_PAGE": "proxy"}, "MERGEWAY_PAGE=proxy needs MERGEWAY_PAGE_PROXY_FROM"),
        ({"MERGEWAY_PAGE": "proxy", "MERGEWAY_PAGE_PROXY_FROM": "the-proxy"}, "MERGEWAY_PAGE_PROXY_FROM entries"),
        (
            {"MERGEWAY_PAGE": "public", "MERGEWAY_PAGE_USERS": "a:scrypt:32768:8:1$s$h"},
            "MERGEWAY_PAGE must be empty",
        ),
    ],
)
def test_settings_that_would_open_the_page_by_mistake_are_refused(env: dict[str, str], message: str) -> None:
    base = {"GITHUB_WEBHOOK_SECRET": "s", "GITLAB_WEBHOOK_SECRET": "s", "MERGEWAY_POLICY": "allow-all"}
    with pytest.raises(ConfigError, match=message.replace("$", r"\$")) as raised:
        Settings.from_env({**base, **env}, role="web")
    assert "hunter2" not in str(raised.value)


def test_a_refused_setting_stops_the_web_service(services: ServiceManager, service_env: dict[str, str]) -> None:
    web = services.web({**service_env, "MERGEWAY_PAGE": "pubic"}, wait=False)
    assert web.wait_exit(timeout=60) != 0
    assert "MERGEWAY_PAGE must be empty, off, public or proxy" in web.logs()


def test_redis_down_is_503_then_the_page_comes_back(
    services: ServiceManager, service_env: dict[str, str], redis_server: RedisServer, redis_client: redis.Redis
):
    seed(redis_client)
    web = services.web({**service_env, "MERGEWAY_PAGE": "public"})
    assert web.request("GET", "/")[0] == 200
    redis_server.stop()
    for path in PATHS:
        assert web.request("GET", path) == (503, {"error": "redis unreachable"}), path
    redis_server.start()
    seed(redis_server.client())
    wait_for(lambda: web.request("GET", "/")[0] == 200 or None, timeout=15, message="the page once Redis is back")
