"""HTTP transports to an API server: direct keep-alive connections, or the official client for plugin auth.

Mergeway sends raw JSON (server-side apply bodies, dry runs, lists), so it needs no generated models:
the direct transport is a small HTTP/1.1 client over keep-alive TLS connections set up from
:mod:`mergeway.kube.kubeconfig`. Bodies are encoded once with ``json.dumps`` (the official client first
walks every object to "sanitise" it, which costs more CPU than the request itself for large
manifests).

Credentials that need a program to mint them (``exec`` plugins, ``auth-provider``) go through the
official ``kubernetes`` client instead, which implements their refresh; it is imported only then.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlencode, urlsplit

from mergeway.kube.kubeconfig import Credentials


class TransportError(OSError):
    """The request did not get an HTTP answer (refused, reset, TLS, timeout)."""


class Response(NamedTuple):
    status: int
    reason: str
    headers: Mapping[str, str]
    data: bytes


class Request(NamedTuple):
    """One API request as a transport sends it: the body is JSON-encoded by the transport."""

    method: str
    path: str
    query: Mapping[str, str] | None
    headers: Mapping[str, str]
    body: Any
    timeout: float


class Transport(Protocol):
    host: str

    def send(self, request: Request) -> Response: ...


def _ssl_context(creds: Credentials) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=creds.ca_data.decode("ascii") if creds.ca_data else None)
    if creds.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if creds.cert_data and creds.key_data:
        _load_client_pair(ctx, creds.cert_data + b"\n" + creds.key_data)
    return ctx


def _load_client_pair(ctx: ssl.SSLContext, pem: bytes) -> None:
    """Load a client certificate and key held in memory: ssl reads them only from a file.

    On Linux the file is anonymous (``memfd_create``), so the key never touches a disk; elsewhere,
    or without ``/proc``, it is a private temporary file removed at once.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("mergeway-tls", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(fd), "wb") as handle:
                handle.write(pem)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
            return
        except FileNotFoundError:  # no /proc: fall through to a file
            pass
        finally:
            os.close(fd)
    import tempfile  # only without /proc; the CLI's import path stays free of it (test_cli_startup)

    fd, path = tempfile.mkstemp(prefix="mergeway-tls-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        ctx.load_cert_chain(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


#: No line of a request head may hold a control character (CR and LF above all) of its own.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Headers(dict[str, str]):
    """Response headers by lower-cased name; ``get`` is case-insensitive like HTTP header names."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class _Connection:
    """One keep-alive HTTP/1.1 connection, used by one thread at a time.

    Reads into a buffer of its own: a response head (status line and headers) is found and split
    in one step instead of a ``readline`` per header, which matters at hundreds of small answers.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.timeout: float | None = None
        #: Set once a response said ``Connection: close`` (or was read to EOF): not reusable.
        self.closing = False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def dropped(self) -> bool:
        """Whether the peer closed (or wrote to) an idle connection: then it must not be reused."""
        if self.closing or self.buf:
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def exchange(self, request: bytes, method: str, timeout: float) -> tuple[int, str, _Headers, bytes]:
        """Send one request and read its whole answer."""
        if timeout != self.timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout
        self.sock.sendall(request)
        status, reason, headers = self._head()
        while 100 <= status < 200:  # interim answers (Mergeway sends no Expect, but a proxy may)
            status, reason, headers = self._head()
        if method == "HEAD" or status in (204, 304):
            data = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            data = self._chunked()
        elif "content-length" in headers:
            data = self._take(int(headers["content-length"]))
        else:
            data = self._to_eof()
        if "close" in headers.get("connection", "").lower() or self.buf:
            self.closing = True  # told to, or more bytes than the answer: never reuse it
        return status, reason, headers, data

    def _fill(self) -> None:
        chunk = self.sock.recv(_RECV)
        if not chunk:
            raise _Closed("connection closed by the server")
        self.buf += chunk

    def _until(self, marker: bytes, limit: int) -> bytes:
        """The bytes before ``marker`` (which is consumed too)."""
        start = 0
        while (end := self.buf.find(marker, start)) < 0:
            if len(self.buf) > limit:
                raise ValueError("response head too long")
            start = max(0, len(self.buf) - len(marker) + 1)
            self._fill()
        found = bytes(self.buf[:end])
        del self.buf[: end + len(marker)]
        return found

    def _head(self) -> tuple[int, str, _Headers]:
        lines = self._until(b"\r\n\r\n", _MAX_HEAD).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit() or len(lines) > _MAX_HEADERS:
            raise ValueError("not an HTTP/1.x response")
        headers = _Headers()
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip().lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return int(code), reason, headers

    def _take(self, length: int) -> bytes:
        if length < 0:
            raise ValueError("negative Content-Length")
        while len(self.buf) < length:
            self._fill()
        data = bytes(self.buf[:length])
        del self.buf[:length]
        return data

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._until(b"\r\n", _MAX_HEAD).split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while self._until(b"\r\n", _MAX_HEAD):  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._take(size))
            if self._take(2) != b"\r\n":
                raise ValueError("malformed chunk")

    def _to_eof(self) -> bytes:
        self.closing = True
        while True:
            try:
                self._fill()
            except _Closed:
                break
        data = bytes(self.buf)
        self.buf.clear()
        return data


class _Closed(OSError):
    """The server closed the connection before a complete answer."""


_RECV = 262144
_MAX_HEAD = 65536
_MAX_HEADERS = 200


class DirectTransport:
    """Keep-alive HTTP/1.1 connections to one API server, shared by threads (one request each at a time).

    A small client of its own rather than urllib3: importing urllib3 (with ``http.client`` and the
    ``email`` parser it pulls in) is a noticeable part of a small CLI run, and per request it
    parses headers through ``email.feedparser`` and sends header and body in separate writes. Here
    a request is one ``sendall`` and a response is read with a buffered reader; idle connections
    are kept LIFO, checked for a close by the server before reuse, and a request that fails on a
    reused connection before any answer is sent once more on a new one (the server may close an
    idle connection at any moment; every request Mergeway sends is safe to repeat, see
    :mod:`mergeway.kube.retry`).
    """

    #: How long a token read from a file is trusted before it is read again (kubelet rotates them).
    TOKEN_TTL = 60.0

    def __init__(self, creds: Credentials, *, pool_size: int = 16) -> None:
        self.creds = creds
        self.host = creds.server
        url = urlsplit(creds.server)
        if not url.hostname or url.scheme not in ("http", "https"):
            raise ValueError(f"the API server address {creds.server!r} is not an http(s) URL")
        self.address = (url.hostname, url.port or (443 if url.scheme == "https" else 80))
        netloc = url.netloc.rpartition("@")[2]
        # The idna codec (and the Unicode tables it loads) only for a name that needs it.
        self.authority = netloc.encode("ascii") if netloc.isascii() else netloc.encode("idna")
        self.ssl_context = _ssl_context(creds) if url.scheme == "https" else None
        self.server_hostname = creds.tls_server_name or url.hostname
        self.prefix = url.path.rstrip("/")
        self.pool_size = pool_size
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._token, self._token_read = "", 0.0
        self._session: ssl.SSLSession | None = None

    def _authorization(self) -> str:
        creds = self.creds
        if creds.token_file:
            with self._token_lock:
                if time.monotonic() - self._token_read > self.TOKEN_TTL:
                    with open(creds.token_file, encoding="utf-8") as handle:
                        self._token = handle.read().strip()
                    self._token_read = time.monotonic()
                return f"Bearer {self._token}"
        if creds.token:
            return f"Bearer {creds.token}"
        if creds.username:
            basic = base64.b64encode(f"{creds.username}:{creds.password}".encode("latin-1")).decode("ascii")
            return f"Basic {basic}"
        return ""

    def _connect(self, timeout: float) -> _Connection:
        """A new connection; TLS resumes the session of an earlier one when the server offered it.

        A burst of concurrent requests opens a connection per thread at once, and a full handshake
        (certificate checks, the client key's signature) costs both sides about twice a resumed one.
        """
        sock = socket.create_connection(self.address, timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname, session=self._session)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _remember_session(self, conn: _Connection) -> None:
        """Keep a resumable TLS session (TLS 1.3 sends its ticket with the first answer).

        Replaced whenever a connection could not resume with it: a worker's client lives for days
        and a ticket for hours, and such a connection brings a fresh ticket. Not replaced by one
        that resumed: reading a socket's session copies it (certificates and all, about 0.3 ms),
        and a burst opens a dozen connections.
        """
        if isinstance(conn.sock, ssl.SSLSocket) and (self._session is None or not conn.sock.session_reused):
            session = conn.sock.session
            if session is not None and session.has_ticket:
                self._session = session

    def _checkout(self) -> _Connection | None:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.dropped():
                    return conn
                conn.close()
        return None

    def _checkin(self, conn: _Connection) -> None:
        if conn.closing:
            conn.close()
            return
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _encode(self, request: Request) -> bytes:
        """The request's bytes: head and body in one buffer, so it goes out in one write."""
        method, query, body = request.method, request.query, request.body
        target = self.prefix + request.path + ("?" + urlencode(list(query.items())) if query else "")
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.authority.decode('ascii')}"]
        lines.extend(f"{name}: {value}" for name, value in request.headers.items())
        auth = self._authorization()
        if auth:
            lines.append(f"Authorization: {auth}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(payload)}")
        if " " in target or any(_CONTROL.search(line) for line in lines):
            # Names are quoted into paths (mergeway.kube.discovery); this is the last line of defence
            # against a request line or header that another request could be smuggled into.
            raise ValueError("refusing an API request whose target has a space, or whose head has a control character")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload

    def send(self, request: Request) -> Response:
        raw, method, timeout = self._encode(request), request.method, request.timeout
        conn = self._checkout()
        fresh = conn is None
        try:
            if conn is None:
                conn = self._connect(timeout)
            try:
                status, reason, answer, data = conn.exchange(raw, method, timeout)
            except (_Closed, ConnectionError, ssl.SSLEOFError):
                if fresh:
                    raise
                # The server closed the idle connection as we sent: once more, on a new one.
                conn.close()
                conn = self._connect(timeout)
                status, reason, answer, data = conn.exchange(raw, method, timeout)
        except (OSError, ValueError) as exc:
            if conn is not None:
                conn.close()
            raise TransportError(type(exc).__name__) from None
        if fresh:
            self._remember_session(conn)
        self._checkin(conn)
        return Response(status, reason, answer, data)


class OfficialTransport:
    """The official client's ``ApiClient``, for credentials only it can mint (exec, auth-provider)."""

    def __init__(self, kubeconfig: str | None, context: str | None, *, pool_size: int = 16) -> None:
        # The official client only for exec/auth-provider credentials: importing it costs a plain CLI
        # run ~0.3 s, and tests/unit/test_cli_startup.py keeps it off the import path.
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config

        configuration = k8s_client.Configuration()
        try:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig or None, context=context or None, client_configuration=configuration
            )
        except k8s_config.ConfigException as exc:
            raise OSError(f"cannot load kubeconfig: {exc}") from None
        configuration.connection_pool_maxsize = pool_size
        self.api = k8s_client.ApiClient(configuration)
        self.host = str(configuration.host)

    def send(self, request: Request) -> Response:
        # Loaded with the official client above, never on the CLI's plain path (test_cli_startup).
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            method_, url, headers_, body_, post = self.api.param_serialize(
                request.method,
                request.path,
                query_params=list((request.query or {}).items()),
                header_params=dict(request.headers),
                body=request.body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(
                method_, url, header_params=headers_, body=body_, post_params=post, _request_timeout=request.timeout
            )
            data = response.read()  # type: ignore[no-untyped-call]
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransportError(type(exc).__name__) from None
        return Response(response.status, str(response.reason or ""), response.headers or {}, data or b"")
