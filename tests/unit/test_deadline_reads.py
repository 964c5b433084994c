"""The web worker's safety net (webhook_service/buffered_worker.py ``DeadlineReads``), on a real socket pair.

A request reaches a thread only when whole, so its parser should never read the client socket.
Should it still, every read shares the request's deadline: a client trickling a byte now and then
must not hold the thread past it, as it would under a plain per-read socket timeout.
"""

from __future__ import annotations

import socket
import threading
import time

from webhook_service.buffered_worker import DeadlineReads


def test_a_trickling_client_is_cut_off_at_the_deadline_and_the_socket_is_left_as_it_was() -> None:
    server, client = socket.socketpair()
    stop = threading.Event()

    def trickle() -> None:  # the attacker: one byte every 0.1 s, far inside any per-read timeout
        while not stop.wait(0.1):
            try:
                client.send(b"a")
            except OSError:
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    reads = DeadlineReads(server, time.monotonic() + 1.0)
    received = b""
    try:
        while len(received) < 100:  # 10 s of trickle: far past the deadline
            received += reads.recv(1)
        raise AssertionError(f"still reading after {len(received)} trickled bytes")
    except TimeoutError:
        pass
    finally:
        stop.set()
        thread.join(timeout=5)
        client.close()
    assert received, "bytes sent before the deadline are read"
    assert server.gettimeout() is None, "the socket is back to blocking for the code that owns it"
    server.close()


def test_other_socket_calls_go_to_the_socket() -> None:
    server, client = socket.socketpair()
    with server, client:
        reads = DeadlineReads(server, time.monotonic() + 5)
        reads.settimeout(2.5)
        assert server.gettimeout() == 2.5 == reads.gettimeout()
        client.sendall(b"ab")
        assert reads.recv(2) == b"ab"
        assert server.gettimeout() == 2.5
