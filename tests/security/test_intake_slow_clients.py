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
import threading
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import redis

from tests.fixtures.services import (
    FIXTURES,
    ServiceManager,
    WebProcess,
    github_headers,
    gitlab_headers,
    queued_jobs,
)
from tests.fixtures.waiting import wait_for

OPENED = FIXTURES / "github" / "pull_request.opened.json"
MR_OPEN = FIXTURES / "gitlab" / "merge_request.open.json"
#: Body stallers: sockets that send a delivery's headers and one byte of the body they announce.
STALLED_BODIES = 64
#: Header tricklers: sockets that send the request line and then a header byte now and then.
TRICKLED_HEADERS = 16
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
        return not sock.recv(1, socket.MSG_PEEK)  # b"": closed by the server
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


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
    """The default web process with 64 stalled bodies and 16 trickled headers open against it."""
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
        yield web, stalled + tricklers
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
    stalled, tricklers = slow[:STALLED_BODIES], slow[STALLED_BODIES:]
    wait_for(
        lambda: not any(_still_waiting(sock) for sock in slow),
        timeout=DEFAULT_DEADLINE + 15,
        message="every slow socket answered or closed",
    )
    timeout = (408, {"error": "request timeout"})
    assert [_answer(sock) for sock in stalled] == [timeout] * STALLED_BODIES
    assert all(_answer(sock) in (timeout, "closed") for sock in tricklers)
    # The service is still healthy and answering.
    assert web.request("GET", "/healthz")[0] == 200
