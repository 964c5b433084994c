"""Issue 24, finding 4: a few unauthenticated sockets must not stall intake.

Before the fix, gunicorn's gthread worker gave each connection a thread as soon as it was
accepted and that thread blocked reading the request line, the headers and (in intake) the
declared ``Content-Length`` with no deadline: 16 sockets sending headers and one body byte held
every thread of the default web process, and a correctly signed delivery got no answer while they
stayed open (GitHub does not retry it: the delivery is lost).

These tests run the web process exactly as the Procfile does (``mergeway-web``, its gunicorn
settings, 2 processes of 4 threads like the default on 2 cores) and attack it as a client would, with raw
sockets. The attacker's pacing (a header byte now and then) is the attack itself, not a wait
for the server: every wait on the server is a condition with a timeout.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from tests.fixtures.services import (
    FIXTURES,
    ROOT,
    ServiceManager,
    WebProcess,
    github_headers,
    gitlab_headers,
    procfile_command,
    queued_jobs,
)
from tests.fixtures.waiting import wait_for

OPENED = FIXTURES / "github" / "pull_request.opened.json"
MR_OPEN = FIXTURES / "gitlab" / "merge_request.open.json"
#: Body stallers: sockets that send a delivery's headers and one byte of the body they announce.
STALLED_BODIES = 64
#: Header tricklers: sockets that send the request line and then a header byte now and then.
TRICKLED_HEADERS = 16
#: Idle sockets: connected, nothing sent (gunicorn 27's gthread gave each a thread for 5 s).
IDLE = 16
#: The deadline in force (the default, MERGEWAY_REQUEST_TIMEOUT_SECONDS unset).
DEFAULT_DEADLINE = 5.0


def _stalled_body(web: WebProcess) -> socket.socket:
    """A connection that announces a delivery, sends its headers and one byte of the body, then waits."""
    body = OPENED.read_bytes()
    headers = github_headers(body, "pull_request", secret="attacker-guess")
    head = f"POST /webhooks/github HTTP/1.1\r\nHost: {web.host}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    sock = socket.create_connection((web.host, web.port), timeout=10)
    sock.sendall(head.encode() + body[:1])
    return sock


def _trickle(web: WebProcess, stop: threading.Event, sockets: list[socket.socket]) -> None:
    """Slowloris: the request line at once, then one header byte every half second until refused."""
    sock = socket.create_connection((web.host, web.port), timeout=10)
    sockets.append(sock)
    sock.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Padding: ")
    while not stop.wait(0.5):
        try:
            sock.send(b"a")
        except OSError:  # the server closed it: the trickle is over
            return


def _still_waiting(sock: socket.socket) -> bool:
    """True while the server has neither answered nor closed this socket (nothing to read yet)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # an answer, or b"": closed by the server
    except BlockingIOError:
        return True
    except OSError:
        pass  # reset by the server: not waiting either
    finally:
        sock.setblocking(True)
    return False


def _answer(sock: socket.socket) -> tuple[int, dict[str, object]] | str:
    """What the server sent before closing: ``(status, JSON body)``, or ``"closed"`` if nothing."""
    sock.settimeout(10)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    if not data:
        return "closed"
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


@pytest.fixture
def attacked(services: ServiceManager, service_env: dict[str, str]) -> Iterator[tuple[WebProcess, list[socket.socket]]]:
    """The default web process with 64 stalled bodies, 16 trickled headers and 16 idle sockets open against it.

    Yields the web process and the sockets in that order.
    """
    web = services.web(service_env, workers=2, threads=4)
    stop = threading.Event()
    tricklers: list[socket.socket] = []
    with ExitStack() as stack:
        stack.callback(stop.set)
        stalled = [_stalled_body(web) for _ in range(STALLED_BODIES)]
        for sock in stalled:
            stack.callback(sock.close)
        threads = [
            threading.Thread(target=_trickle, args=(web, stop, tricklers), daemon=True) for _ in range(TRICKLED_HEADERS)
        ]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(tricklers) == TRICKLED_HEADERS, timeout=10, message="every trickler connected")
        for sock in tricklers:
            stack.callback(sock.close)
        idle = [stack.enter_context(socket.create_connection((web.host, web.port), timeout=10)) for _ in range(IDLE)]
        yield web, stalled + tricklers + idle
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def test_signed_deliveries_are_queued_while_slow_sockets_hold_connections(
    attacked: tuple[WebProcess, list[socket.socket]], redis_client: redis.Redis
) -> None:
    web, slow = attacked
    github_body = OPENED.read_bytes()
    deliveries = [
        ("/webhooks/github", github_body, github_headers(github_body, "pull_request")),
        ("/webhooks/gitlab", MR_OPEN.read_bytes(), gitlab_headers("Merge Request Hook")),
    ]
    job_ids = []
    for path, body, headers in deliveries:
        status, answer = web.request("POST", path, body, headers)
        assert isinstance(answer, dict) and (status, answer["status"]) == (202, "queued"), (status, answer)
        job_ids.append(answer["job_id"])
    # Served while every slow socket was still held open, not after the server gave up on them.
    assert all(_still_waiting(sock) for sock in slow), "a slow socket was refused before the deliveries were served"
    assert sorted(job.task_id for job in queued_jobs(redis_client)) == sorted(job_ids)


def test_slow_sockets_get_408_after_the_deadline(attacked: tuple[WebProcess, list[socket.socket]]) -> None:
    web, slow = attacked
    stalled, tricklers = slow[:STALLED_BODIES], slow[STALLED_BODIES : STALLED_BODIES + TRICKLED_HEADERS]
    idle = slow[STALLED_BODIES + TRICKLED_HEADERS :]
    wait_for(
        lambda: not any(_still_waiting(sock) for sock in slow),
        timeout=DEFAULT_DEADLINE + 15,
        message="every slow socket answered or closed",
    )
    timeout = (408, {"error": "request timeout"})
    assert [_answer(sock) for sock in stalled] == [timeout] * STALLED_BODIES
    trickled = [_answer(sock) for sock in tricklers]
    assert all(answer in (timeout, "closed") for answer in trickled)
    assert [_answer(sock) for sock in idle] == ["closed"] * IDLE  # nothing asked, nothing answered
    # The service is still healthy and answering, and counts what it refused.
    assert web.request("GET", "/healthz")[0] == 200
    _, text = web.request("GET", "/metrics")
    refused = STALLED_BODIES + trickled.count(timeout)
    assert f'mergeway_web_refused_total{{reason="timeout"}} {refused}.0' in str(text).splitlines()


# --- What a real client still gets from the buffering worker ---------------------------------------


def _signed(body: bytes, *extra: str) -> bytes:
    """The head of a correctly signed GitHub delivery of ``body`` (plus ``extra`` header lines)."""
    lines = ["POST /webhooks/github HTTP/1.1", "Host: x", *extra]
    lines += [f"{name}: {value}" for name, value in github_headers(body, "pull_request").items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_answer(sock: socket.socket) -> tuple[bytes, tuple[int, dict[str, object]]]:
    """One answer off a kept-alive connection: ``(its head, (status, JSON body))``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of an answer"
        rest += chunk
    assert len(rest) == length, "more than one answer arrived at once"
    return head, (int(head.split(b" ", 2)[1]), json.loads(rest))


def test_a_delivery_sent_in_pieces_and_a_chunked_one_are_queued(web: WebProcess, redis_client: redis.Redis) -> None:
    body = OPENED.read_bytes()
    request = _signed(body, f"Content-Length: {len(body)}") + body
    with socket.create_connection((web.host, web.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for start in range(0, len(request), 700):  # the head and the body split across sends
            sock.sendall(request[start : start + 700])
        _, (status, answer) = _read_answer(sock)
        assert (status, answer["status"]) == (202, "queued")
        body2 = body + b" "
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(body2[i : i + 1000]), body2[i : i + 1000]) for i in range(0, len(body2), 1000)
        )
        sock.sendall(_signed(body2, "Transfer-Encoding: chunked") + chunks)
        sock.sendall(b"0\r\n\r\n")
        _, (status, answer) = _read_answer(sock)
        assert (status, answer["status"]) == (202, "queued")
    assert len(queued_jobs(redis_client)) == 2


def test_pipelined_deliveries_are_each_answered_in_order(web: WebProcess, redis_client: redis.Redis) -> None:
    bodies = [OPENED.read_bytes() + b" " * n for n in range(3)]
    requests = b"".join(_signed(b, f"Content-Length: {len(b)}") + b for b in bodies)
    with socket.create_connection((web.host, web.port), timeout=10) as sock:
        sock.sendall(requests[:-10])  # two whole requests and most of a third
        answers = [_read_answer(sock)[1] for _ in range(2)]
        sock.sendall(requests[-10:])
        answers.append(_read_answer(sock)[1])
    assert [(status, answer["status"]) for status, answer in answers] == [(202, "queued")] * 3
    assert sorted(j.task_id for j in queued_jobs(redis_client)) == sorted(str(a["job_id"]) for _, a in answers)


def test_expect_100_continue_gets_one_go_ahead_then_the_answer(web: WebProcess, redis_client: redis.Redis) -> None:
    body = OPENED.read_bytes()
    with socket.create_connection((web.host, web.port), timeout=10) as sock:
        sock.sendall(_signed(body, f"Content-Length: {len(body)}", "Expect: 100-continue"))
        go_ahead = b""
        while not go_ahead.endswith(b"\r\n\r\n"):
            go_ahead += sock.recv(1)
        assert go_ahead == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        head, (status, answer) = _read_answer(sock)
    assert head.startswith(b"HTTP/1.1 202 ")
    assert (status, answer["status"]) == (202, "queued")


def test_headers_that_never_end_are_431(web: WebProcess) -> None:
    with socket.create_connection((web.host, web.port), timeout=10) as sock:
        sock.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(64):  # 1 MiB of one header, past gunicorn's bounds on the whole head
                sock.sendall(b"X-" + b"a" * (16 * 1024 - 2))
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed while sending: the answer is still to be read
        assert _answer(sock) == (431, {"error": "request header fields too large"})


def test_big_bodies_past_the_buffer_budget_are_refused_503_not_small_deliveries(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
) -> None:
    """Bodies in flight are held in memory: past MERGEWAY_WEB_BUFFER_BYTES the largest request being read is shed."""
    env = {
        **service_env,
        "MERGEWAY_MAX_BODY_BYTES": str(1024 * 1024),
        "MERGEWAY_WEB_BUFFER_BYTES": str(2 * 1024 * 1024),
    }
    web = services.web(env, workers=1)
    body = OPENED.read_bytes()
    with ExitStack() as stack:
        # A signed delivery half sent when the big bodies arrive: it must not be the one refused.
        small = stack.enter_context(socket.create_connection((web.host, web.port), timeout=10))
        small.sendall(_signed(body, f"Content-Length: {len(body)}") + body[:1000])
        big = []
        for _ in range(3):  # 3 x 900 KB sent of 1,000,000 announced: 2.7 MB against a 2 MiB budget
            sock = stack.enter_context(socket.create_connection((web.host, web.port), timeout=10))
            sock.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            sock.sendall(b"[" + b"0," * 450_000)
            big.append(sock)
        wait_for(lambda: not all(_still_waiting(s) for s in big), timeout=10, message="a big body refused")
        small.sendall(body[1000:])
        _, (status, answer) = _read_answer(small)
        assert (status, answer["status"]) == (202, "queued"), (status, answer)
        refused = [s for s in big if not _still_waiting(s)]
        assert len(refused) == 1, "only as many as needed to get back under the budget"
        assert _answer(refused[0]) == (503, {"error": "service unavailable"})
    assert [job.task_id for job in queued_jobs(redis_client)] == [answer["job_id"]]


def test_tls_in_gunicorn_is_refused_at_start(tmp_path: Path, service_env: dict[str, str]) -> None:
    """The worker reads requests as plain bytes: TLS must end in front of it, so gunicorn's own is refused."""
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("not used: the service refuses before loading it\n")
    argv = [*procfile_command("web"), "--bind", "127.0.0.1:0", "--certfile", str(tmp_path / "cert.pem")]
    argv += ["--keyfile", str(tmp_path / "key.pem")]
    env = {**service_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refuses to start: TLS (certfile/keyfile) is not supported" in done.stderr
