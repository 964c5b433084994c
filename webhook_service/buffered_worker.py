"""A gunicorn worker that reads each request whole, within a deadline, before a thread sees it.

Why: gunicorn's ``gthread`` worker hands a connection to a thread as soon as its first bytes
arrive, and that thread then blocks reading the rest of the request line, the headers and the
body, with no deadline (gunicorn's ``timeout`` only watches the worker process's heartbeat). A
handful of unauthenticated sockets sending headers and one body byte held every thread, and real
deliveries, which GitHub does not retry, went unanswered (issue 24).

How: this worker keeps the ``gthread`` design (an event loop accepts and polls connections, a
thread pool runs the application) but moves all *reading* into the event loop. Each connection's
bytes are appended to a buffer as the poller reports them, :mod:`webhook_service.framing` says
when the request is whole, and only then is the connection handed to a thread, its parser primed
with the buffered bytes, so a thread never waits on a client. A client that has not sent its
whole request within ``MERGEWAY_REQUEST_TIMEOUT_SECONDS`` of connecting (or of its first byte on
a kept-alive connection) is answered ``408`` with a JSON body, like the application's other
refusals, and closed; a connection that sent nothing is just closed. Closing a connection while
the client may still be sending ("lingering close") is done by the event loop too, never by a
thread or a blocking call. Answers go out with a send timeout, so a client that stops reading
holds a thread for at most that long.

What it costs: memory for requests in flight, bounded per process by ``MERGEWAY_WEB_BUFFER_BYTES``
(past it the largest request still being read is refused with 503, so clients sending big bodies
fast cannot exhaust memory while small deliveries go on), and the reads happen on one thread per
process; bench/README.md has the measurements. TLS, HTTP/2 and the uwsgi protocol are not
handled here (Mergeway terminates TLS in front of gunicorn): the worker refuses to start with them.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import util  # type: ignore[import-untyped]
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker  # type: ignore[import-untyped]
from werkzeug.http import HTTP_STATUS_CODES

from mergeway import jsonfast, metrics
from mergeway.config import Settings
from webhook_service.framing import RequestFraming, Verdict

#: Largest single read from a client socket.
_RECV = 256 * 1024
#: How long a closing connection is drained (the client may still be sending), and how much of it.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1024 * 1024
#: How often the event loop looks for connections past their deadline.
_SCAN_SECONDS = 0.25
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: File descriptors kept for everything but client connections (listeners, Redis, logs, metrics).
_SPARE_FILES = 64


def _open_files_allowed() -> int:
    """The process's open-file limit, raised to the hard limit: each connection held is one file.

    Running out would make ``accept`` fail (EMFILE) and crash the worker, so the worker accepts
    no more connections than this allows, whatever ``worker_connections`` says.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
            soft = max(soft, target)
        except (ValueError, OSError):
            pass
    return soft


def refusal(status: int) -> bytes:
    """A complete ``Connection: close`` answer with the JSON body the application gives for ``status``."""
    name = HTTP_STATUS_CODES[status]
    body = jsonfast.dumps_sorted_ascii({"error": name.lower()})
    head = (
        f"HTTP/1.1 {status} {name}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_TIMED_OUT = refusal(408)
_HEAD_TOO_LARGE = refusal(431)
_OVER_BUDGET = refusal(503)


class DeadlineReads:
    """The parser's view of a client socket: every read shares one deadline.

    A safety net: a request reaches a thread only when whole (or refused from what is buffered),
    so its parser reads from the buffer alone. Should gunicorn's parser or the application still
    want bytes the framing did not wait for, they get them only until the deadline, however slowly
    the client trickles them (a plain socket timeout would restart at each byte).
    """

    __slots__ = ("deadline", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def recv(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request read past its deadline")
        previous = self.sock.gettimeout()
        self.sock.settimeout(remaining if previous is None else min(previous, remaining))
        try:
            return self.sock.recv(size)
        finally:
            self.sock.settimeout(previous)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class BufferedConn(TConn):  # type: ignore[misc]
    """A connection, plus the request being read into memory and its deadline."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.buffer = bytearray()
        self.framing: RequestFraming | None = None
        self.deadline = 0.0
        #: Kept alive after an answer: the request deadline starts at its first byte, not now.
        self.kept_alive = False
        #: Handed over before the request was whole (refused from its start): closed afterwards.
        self.partial = False
        self.registered = False
        self.drained = 0
        #: Bytes of this connection's requests counted against the process's buffer budget.
        self.held = 0


class BufferedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` with reading in the event loop: see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = Settings.from_env()
        self.request_timeout = settings.request_timeout_seconds
        self.max_body = settings.max_body_bytes
        cfg = self.cfg
        line, fields, field_size = cfg.limit_request_line, cfg.limit_request_fields, cfg.limit_request_field_size
        self.max_head = (line or 8190) + (fields or 32768) * ((field_size or 8190) + 2) + 4
        #: Request bytes held at once (read, or read and waiting for a thread), and the bound on it.
        self.held = 0
        self.budget = max(settings.web_buffer_bytes, self.max_body + self.max_head)
        #: Connections being read (insertion-ordered), and connections being closed.
        self.reading: dict[BufferedConn, None] = {}
        self.lingering: dict[BufferedConn, None] = {}
        self._next_scan = 0.0
        self.worker_connections = min(int(self.cfg.worker_connections), _open_files_allowed() - _SPARE_FILES)

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        unsupported = [
            what
            for what, used in (
                ("TLS (certfile/keyfile)", cfg.is_ssl),
                ("HTTP/2", "h2" in (getattr(cfg, "http_protocols", None) or ())),
                ("the uwsgi protocol", getattr(cfg, "protocol", "http") != "http"),
            )
            if used
        ]
        if unsupported:
            log.error("mergeway-web refuses to start: %s is not supported; terminate it in front", unsupported[0])
            raise SystemExit(2)

    # --- reading, in the event loop -----------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                # Out of files after all (shared with something else): accept no more than now.
                self.log.warning("out of file descriptors at %d connections; accepting no more", self.nr_conns)
                self.worker_connections = max(self.nr_conns, 1)
                return
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._await_request(BufferedConn(self.cfg, sock, client, listener.getsockname()), b"", self.request_timeout)

    def _await_request(self, conn: BufferedConn, data: bytes, idle: float) -> None:
        """Start reading a request; ``data`` is what the client already pipelined, ``idle`` how long to wait."""
        conn.buffer = bytearray(data)
        self._hold(conn, len(data))
        conn.framing = RequestFraming(self.max_head, self.max_body)
        conn.partial = False
        conn.deadline = time.monotonic() + (self.request_timeout if data else idle)
        conn.sock.setblocking(False)
        self.reading[conn] = None
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        conn.registered = True
        if data:
            self._advance(conn)

    def _on_readable(self, conn: BufferedConn, _sock: Any) -> None:
        data = _recv(conn.sock)
        if data is None:
            return
        if not data:
            self._close(conn)
            return
        if not conn.buffer and conn.kept_alive:
            conn.deadline = time.monotonic() + self.request_timeout
        conn.buffer += data
        self._hold(conn, len(data))
        while self.held > self.budget and self.reading:
            self._shed()
        if conn in self.reading:
            self._advance(conn)

    def _hold(self, conn: BufferedConn, size: int) -> None:
        conn.held += size
        self.held += size

    def _release(self, conn: BufferedConn) -> None:
        self.held -= conn.held
        conn.held = 0

    def _shed(self) -> None:
        """Over the budget: refuse the largest request still being read (503), sparing small deliveries."""
        largest = max(self.reading, key=lambda c: c.held)
        self.log.warning(
            "request refused: %d bytes of requests held, over MERGEWAY_WEB_BUFFER_BYTES; %d of them this one's",
            self.held,
            largest.held,
        )
        self._refuse(largest, _OVER_BUDGET, "over_budget")

    def _advance(self, conn: BufferedConn) -> None:
        framing = conn.framing
        assert framing is not None
        before = framing.head_end
        verdict = framing.feed(conn.buffer)
        if verdict is Verdict.INCOMPLETE:
            head_just_in = before is None and framing.head_end == len(conn.buffer)
            if head_just_in and framing.expects_continue and framing.needs_body:
                self._send(conn, _CONTINUE)  # the client waits for this before sending its body
            return
        if verdict is Verdict.HEAD_TOO_LARGE:
            self._refuse(conn, _HEAD_TOO_LARGE, "head_too_large")
            return
        self._hand_over(conn, partial=verdict is Verdict.HAND_OVER)

    def _hand_over(self, conn: BufferedConn, *, partial: bool) -> None:
        """Give the connection to a thread, its parser primed with everything buffered."""
        self._stop_polling(conn)
        self.reading.pop(conn, None)
        conn.partial = partial
        conn.data_ready = True
        conn.sock.setblocking(True)
        conn.init()
        unreader = conn.parser.unreader
        unreader.sock = DeadlineReads(conn.sock, time.monotonic() + self.request_timeout)
        unreader.unread(bytes(conn.buffer))
        conn.buffer = bytearray()
        self.enqueue_req(conn)

    # --- in a thread ------------------------------------------------------------------------------

    def handle_request(self, req: Any, conn: BufferedConn) -> bool:
        # Answered while buffering (or the body is here already, or it is refused unread).
        req._expected_100_continue = False
        # Bounds sending the answer to a client that stops reading (reads are bounded by DeadlineReads).
        conn.sock.settimeout(self.request_timeout)
        return bool(super().handle_request(req, conn))

    def _keepalive_after(self, conn: BufferedConn, keepalive: bool) -> bool:
        if conn.partial:
            return False  # the rest of the body is still coming: drained while closing, not here
        return bool(super()._keepalive_after(conn, keepalive))

    # --- back in the event loop -------------------------------------------------------------------

    def finish_request(self, conn: BufferedConn, fs: Any) -> None:
        try:
            keep = not fs.cancelled() and fs.result() is True
        except Exception:
            keep = False
        self._release(conn)
        if keep and not conn.partial:
            conn.kept_alive = True
            idle = self.cfg.keepalive if self.alive else min(self.cfg.keepalive, STOP_KEEPALIVE_LINGER)
            self._await_request(conn, conn.parser.unreader.take_buffered(), idle)
        else:
            self._linger(conn)

    def murder_keepalived(self, force: bool = False) -> None:
        """Also refuse requests past their deadline (408), close idle connections and end lingering closes."""
        super().murder_keepalived(force)
        now = time.monotonic()
        if not force and now < self._next_scan:
            return
        self._next_scan = now + _SCAN_SECONDS
        for conn in [c for c in self.reading if force or c.deadline <= now]:
            if conn.buffer and not force:
                self.log.info("request timed out after %ss: %d bytes received", self.request_timeout, len(conn.buffer))
                self._refuse(conn, _TIMED_OUT, "timeout")
            else:
                self._close(conn)
        for conn in [c for c in self.lingering if force or c.deadline <= now]:
            self._close(conn)

    def _cap_keepalive(self, deadline: float) -> None:
        super()._cap_keepalive(deadline)
        for conn in self.reading:
            if not conn.buffer:
                conn.deadline = min(conn.deadline, deadline)

    def _refuse(self, conn: BufferedConn, answer: bytes, reason: str) -> None:
        metrics.WEB_REFUSED.labels(reason).inc()
        self._send(conn, answer)
        self._linger(conn)

    def _send(self, conn: BufferedConn, data: bytes) -> None:
        """Best effort, never blocking: a short answer fits an empty socket buffer."""
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def _linger(self, conn: BufferedConn) -> None:
        """Close after draining what the client still sends, so it reads our answer instead of a reset."""
        self._stop_polling(conn)
        self.reading.pop(conn, None)
        self._release(conn)
        conn.buffer = bytearray()
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.deadline = time.monotonic() + _LINGER_SECONDS
        conn.drained = 0
        self.lingering[conn] = None
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_linger_readable, conn))
        conn.registered = True

    def _on_linger_readable(self, conn: BufferedConn, _sock: Any) -> None:
        data = _recv(conn.sock)
        if data is None:
            return
        conn.drained += len(data)
        if not data or conn.drained > _LINGER_BYTES:
            self._close(conn)

    def _stop_polling(self, conn: BufferedConn) -> None:
        if conn.registered:
            conn.registered = False
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)

    def _close(self, conn: BufferedConn) -> None:
        self._release(conn)
        self._stop_polling(conn)
        self.reading.pop(conn, None)
        self.lingering.pop(conn, None)
        self.nr_conns -= 1
        util.close(conn.sock)


def _recv(sock: Any) -> bytes | None:
    """One non-blocking read: ``None`` when nothing is ready yet, ``b""`` when the peer left or the socket broke."""
    try:
        data: bytes = sock.recv(_RECV)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""
    return data
