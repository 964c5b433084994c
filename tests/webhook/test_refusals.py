"""What a forge (or anyone else) sees when a delivery cannot be accepted, against real gunicorn."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import uuid

import redis

import mergeway
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.services import (
    FIXTURES,
    TEST_GITHUB_SECRET,
    TEST_GITLAB_SECRET,
    ServiceManager,
    WebProcess,
    github_headers,
    gitlab_headers,
    queued_jobs,
)
from tests.fixtures.waiting import wait_for

OPENED = FIXTURES / "github" / "pull_request.opened.json"
MR_OPEN = FIXTURES / "gitlab" / "merge_request.open.json"
MB = 1024 * 1024


def post_github(web: WebProcess, body: bytes, **headers: str) -> tuple[int, dict[str, object]]:
    h = github_headers(body, "pull_request")
    h.update(headers)
    status, answer = web.request("POST", "/webhooks/github", body, h)
    assert isinstance(answer, dict), answer
    return status, answer


def test_wrong_or_missing_github_signature_is_401(web: WebProcess, redis_client: redis.Redis) -> None:
    body = OPENED.read_bytes()
    forged = github_headers(body, "pull_request", secret="not-the-secret")
    assert web.request("POST", "/webhooks/github", body, forged) == (
        401,
        {"error": "missing or invalid X-Hub-Signature-256"},
    )
    headers = github_headers(body, "pull_request")
    del headers["X-Hub-Signature-256"]
    assert web.request("POST", "/webhooks/github", body, headers)[0] == 401
    # A valid signature of a different body does not authorise this one.
    headers = github_headers(body, "pull_request")
    assert web.request("POST", "/webhooks/github", body + b" ", headers)[0] == 401
    assert queued_jobs(redis_client) == []


def test_wrong_or_missing_gitlab_token_is_401_and_never_echoed(web: WebProcess, redis_client: redis.Redis) -> None:
    body = MR_OPEN.read_bytes()
    status, answer = web.request(
        "POST", "/webhooks/gitlab", body, gitlab_headers("Merge Request Hook", token="guess-123")
    )
    assert (status, answer) == (401, {"error": "missing or invalid X-Gitlab-Token"})
    headers = gitlab_headers("Merge Request Hook")
    del headers["X-Gitlab-Token"]
    assert web.request("POST", "/webhooks/gitlab", body, headers)[0] == 401
    # The GitHub secret is not a GitLab token.
    assert (
        web.request("POST", "/webhooks/gitlab", body, gitlab_headers("Merge Request Hook", token=TEST_GITHUB_SECRET))[0]
        == 401
    )
    assert queued_jobs(redis_client) == []
    assert "guess-123" not in web.logs()


def test_body_that_is_not_json_is_400(web: WebProcess) -> None:
    for body in (b"not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b"", b'"a string"', b"[" * 100_000):
        status, answer = post_github(web, body)
        assert (status, answer) == (400, {"error": "body is not a JSON object"}), body[:20]
    status, _ = web.request("POST", "/webhooks/gitlab", b"<xml/>", gitlab_headers("Merge Request Hook"))
    assert status == 400


def test_form_encoded_github_delivery_is_accepted(web: WebProcess, redis_client: redis.Redis) -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": OPENED.read_text()}).encode()
    status, answer = post_github(web, body, **{"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, answer["status"]) == (202, "queued")
    assert len(queued_jobs(redis_client)) == 1


def _raw_request(web: WebProcess, head: bytes) -> socket.socket:
    sock = socket.create_connection((web.host, web.port), timeout=30)
    sock.sendall(head)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, object]]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _content_length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body[: _content_length(data)])


def _content_length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def test_30_mb_body_is_413_before_the_body_is_read(web: WebProcess) -> None:
    """The declared length alone is refused: the answer comes without sending a single body byte."""
    size = 30 * MB
    head = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: pull_request\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\n"
        f"X-Hub-Signature-256: sha256={'0' * 64}\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    with _raw_request(web, head) as sock:
        assert _read_response(sock) == (413, {"error": "request body too large"})


def _send_while_reading(sock: socket.socket, payload: bytes) -> tuple[int, dict[str, object]]:
    """Send ``payload`` while a thread reads the answer, as a client that streams its upload would."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(_read_response, sock)
        view = memoryview(payload)
        try:
            for offset in range(0, len(view), MB):
                sock.sendall(view[offset : offset + MB])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and stopped listening: that is the point
        return answer.result(timeout=30)


def test_30_mb_body_sent_whole_is_413(web: WebProcess) -> None:
    body = b"[" + b"0," * (15 * MB) + b"0]"
    assert len(body) > 30 * MB
    head = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: pull_request\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\n"
        f"X-Hub-Signature-256: sha256={'0' * 64}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with _raw_request(web, head) as sock:
        assert _send_while_reading(sock, body) == (413, {"error": "request body too large"})


def test_30_mb_chunked_body_is_cut_off_at_the_limit(web: WebProcess) -> None:
    head = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: pull_request\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\n"
        f"X-Hub-Signature-256: sha256={'0' * 64}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n" % MB + b" " * MB + b"\r\n"
    with _raw_request(web, head) as sock:
        assert _send_while_reading(sock, chunk * 30 + b"0\r\n\r\n") == (413, {"error": "request body too large"})


def test_unknown_event_is_202_ignored(web: WebProcess, redis_client: redis.Redis) -> None:
    body = OPENED.read_bytes()
    status, answer = web.request("POST", "/webhooks/github", body, github_headers(body, "deployment_status"))
    assert (status, answer) == (202, {"status": "ignored", "reason": "GitHub event 'deployment_status' is not handled"})
    status, answer = web.request("POST", "/webhooks/gitlab", MR_OPEN.read_bytes(), gitlab_headers("Pipeline Hook"))
    assert (status, answer) == (202, {"status": "ignored", "reason": "GitLab event 'pipeline' is not handled"})
    assert queued_jobs(redis_client) == []


def test_same_delivery_twice_is_one_job(web: WebProcess, redis_client: redis.Redis) -> None:
    body = OPENED.read_bytes()
    delivery = str(uuid.uuid4())
    first = web.request("POST", "/webhooks/github", body, github_headers(body, "pull_request", delivery=delivery))
    second = web.request("POST", "/webhooks/github", body, github_headers(body, "pull_request", delivery=delivery))
    assert first[0] == 202 and first[1]["status"] == "queued"  # type: ignore[index]
    assert second == (200, {"status": "duplicate"})
    # GitLab: Idempotency-Key, and X-Gitlab-Event-UUID when the key is absent (GitLab < 17.4).
    mr = MR_OPEN.read_bytes()
    key = str(uuid.uuid4())
    for _ in range(2):
        web.request("POST", "/webhooks/gitlab", mr, gitlab_headers("Merge Request Hook", delivery=key))
    old = gitlab_headers("Merge Request Hook")
    del old["Idempotency-Key"]
    other = mr + b"\n"  # another delivery: a body of its own
    assert web.request("POST", "/webhooks/gitlab", other, old)[1]["status"] == "queued"  # type: ignore[index]
    assert web.request("POST", "/webhooks/gitlab", other, old) == (200, {"status": "duplicate"})
    jobs = queued_jobs(redis_client)
    assert len(jobs) == 3
    assert len({j.task_id for j in jobs}) == 3


def test_another_body_with_a_new_delivery_id_is_a_new_job(web: WebProcess, redis_client: redis.Redis) -> None:
    for body in (OPENED.read_bytes(), OPENED.read_bytes() + b"\n"):
        assert web.request("POST", "/webhooks/github", body, github_headers(body, "pull_request"))[0] == 202
    assert len(queued_jobs(redis_client)) == 2


def test_redis_down_is_503_and_not_ready_then_recovers(
    web: WebProcess, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    body = OPENED.read_bytes()
    delivery = str(uuid.uuid4())
    assert web.request("GET", "/readyz") == (200, {"status": "ready"})
    redis_server.stop()
    assert web.request("GET", "/readyz") == (503, {"error": "redis unreachable"})
    assert web.request("GET", "/healthz") == (200, {"status": "ok", "version": mergeway.__version__})
    status, answer = web.request(
        "POST", "/webhooks/github", body, github_headers(body, "pull_request", delivery=delivery)
    )
    assert (status, answer) == (503, {"error": "job queue unavailable, please redeliver later"})
    redis_server.start()
    # The web's Redis client reconnects on its next command: wait for that rather than race it.
    wait_for(
        lambda: web.request("GET", "/readyz") == (200, {"status": "ready"}) or None,
        timeout=15,
        message="/readyz to answer ready once Redis is back",
    )
    # The forge's redelivery (same id) is processed, not dropped as a duplicate.
    status, answer = web.request(
        "POST", "/webhooks/github", body, github_headers(body, "pull_request", delivery=delivery)
    )
    assert (status, answer["status"]) == (202, "queued")  # type: ignore[index]
    assert len(queued_jobs(redis_server.client())) == 1


def test_errors_are_json_without_traces(web: WebProcess) -> None:
    assert web.request("GET", "/nowhere") == (404, {"error": "not found"})
    assert web.request("GET", "/webhooks/github") == (405, {"error": "method not allowed"})
    status, answer = web.request("POST", "/webhooks/github", b"{}", {"X-GitHub-Event": "push"})
    assert (status, answer) == (401, {"error": "missing or invalid X-Hub-Signature-256"})
    status, answer = post_github(web, OPENED.read_bytes(), **{"X-GitHub-Delivery": "bad id with spaces"})
    assert (status, answer) == (400, {"error": "malformed delivery id header"})
    body = b"{}"
    headers = github_headers(body, "pull_request")
    del headers["X-GitHub-Event"]
    assert web.request("POST", "/webhooks/github", body, headers) == (
        400,
        {"error": "X-GitHub-Event header is missing"},
    )
    payload = json.loads(OPENED.read_bytes())
    del payload["pull_request"]["number"]
    status, answer = post_github(web, json.dumps(payload).encode())
    assert (status, answer) == (400, {"error": "payload lacks pull_request.number"})


def metric_samples(web: WebProcess) -> dict[str, float]:
    status, text = web.request("GET", "/metrics")
    assert status == 200 and isinstance(text, str)
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


QUEUED = 'mergeway_webhooks_total{event="pull_request",forge="github",result="queued"}'
UNAUTHORIZED = 'mergeway_webhooks_total{event="pull_request",forge="github",result="unauthorized"}'


def test_metrics(web: WebProcess, redis_client: redis.Redis) -> None:
    # The web service is shared by the module: counters carry what earlier tests did, so compare deltas.
    before = metric_samples(web)
    body = OPENED.read_bytes()
    for i in range(3):
        distinct = body + b" " * (i + 1)  # three deliveries, not one replayed (and not an earlier test's)
        assert web.request("POST", "/webhooks/github", distinct, github_headers(distinct, "pull_request"))[0] == 202
    assert web.request("POST", "/webhooks/github", body, github_headers(body, "pull_request", secret="wrong"))[0] == 401
    after = metric_samples(web)
    # Counted across both gunicorn workers (multiprocess mode), whichever served each request.
    assert after[QUEUED] - before.get(QUEUED, 0) == 3
    assert after[UNAUTHORIZED] - before.get(UNAUTHORIZED, 0) == 1
    assert after['mergeway_queue_depth{queue="preview"}'] == 3  # redis_client emptied the queues first
    assert after['mergeway_queue_depth{queue="deploy"}'] == 0
    assert any(k.startswith("mergeway_webhook_duration_seconds_bucket") for k in after)


def test_secrets_never_appear_in_logs(web: WebProcess, redis_client: redis.Redis) -> None:
    # Deliveries that carry or get close to the secrets: accepted, forged, and guessed tokens. Their
    # bodies are this test's own, so later tests' deliveries are not dropped as replays of them.
    body = OPENED.read_bytes() + b"\n\n"
    web.request("POST", "/webhooks/github", body, github_headers(body, "pull_request"))
    web.request("POST", "/webhooks/github", body, github_headers(body, "pull_request", secret=TEST_GITLAB_SECRET))
    mr = MR_OPEN.read_bytes() + b"\n\n"
    web.request("POST", "/webhooks/gitlab", mr, gitlab_headers("Merge Request Hook"))
    web.request("POST", "/webhooks/gitlab", mr, gitlab_headers("Merge Request Hook", token=TEST_GITHUB_SECRET))
    web.request("POST", "/webhooks/gitlab", mr, gitlab_headers("Merge Request Hook", token=TEST_GITLAB_SECRET + "x"))
    # Everything the service logged so far: these deliveries, and whatever earlier tests of the module did.
    logs = web.logs()
    assert logs.count('"delivery_id"') >= 5, "the web service logs each delivery"
    assert TEST_GITHUB_SECRET not in logs
    assert TEST_GITLAB_SECRET not in logs
    assert "Traceback" not in logs


def test_refuses_to_start_without_the_secret_of_an_enabled_forge(
    services: ServiceManager, service_env: dict[str, str]
) -> None:
    env = {k: v for k, v in service_env.items() if k != "GITHUB_WEBHOOK_SECRET"}
    web = services.web(env, wait=False)
    assert web.wait_exit(timeout=30) != 0
    assert "GITHUB_WEBHOOK_SECRET is required" in web.logs()
    assert TEST_GITLAB_SECRET not in web.logs()


def test_a_disabled_forge_needs_no_secret_and_answers_404(
    services: ServiceManager, service_env: dict[str, str]
) -> None:
    env = {k: v for k, v in service_env.items() if k != "GITHUB_WEBHOOK_SECRET"}
    env["MERGEWAY_FORGES"] = "gitlab"
    web = services.web(env)
    body = OPENED.read_bytes()
    assert web.request("POST", "/webhooks/github", body, github_headers(body, "pull_request")) == (
        404,
        {"error": "github webhooks are not enabled on this server"},
    )
    status, answer = web.request("POST", "/webhooks/gitlab", MR_OPEN.read_bytes(), gitlab_headers("Merge Request Hook"))
    assert (status, answer["status"]) == (202, "queued")  # type: ignore[index]
