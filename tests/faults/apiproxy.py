"""A TLS reverse proxy in front of the local cluster's API server that can be made to misbehave.

The local cluster is shared by every test session on the machine, so its kube-apiserver is never
restarted by a test. Instead the worker under test talks to this proxy (its kubeconfig points
here), which forwards every request over a real TLS connection to the real API server, and on
demand:

* ``fail(status, times=..., match=..., headers=...)`` answers the next matching requests itself
  (503, 500, 429 with ``Retry-After``, 409 "the object has been modified") without forwarding;
* ``reset(times=..., match=...)`` cuts the next matching requests' connections without an answer;
* ``down()`` / ``up()`` stops listening and drops every open connection, then listens again on the
  same port: to the client exactly an API server that was restarted;
* ``restart_on(match, seconds)`` does that when the next matching request arrives (that request is
  cut), and comes back ``seconds`` later: a restart at a chosen moment of a deploy.

It serves with the API server's own certificate (issued for 127.0.0.1 by the cluster CA) and
forwards as the cluster admin, so clients verify TLS as usual and see real API answers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Fault:
    kind: str  # "status", "reset" or "restart"
    pattern: re.Pattern[str]
    remaining: int
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hits: int = 0


class ApiProxy:
    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        upstream = urlsplit(config["clusters"][0]["cluster"]["server"])
        self.upstream_host, self.upstream_port = upstream.hostname or "127.0.0.1", upstream.port or 443
        pki = kubeconfig.parent / "pki"
        self.client_ssl = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.client_ssl.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ssl.load_cert_chain(str(pki / "apiserver.crt"), str(pki / "apiserver.key"))
        self.port = _free_port()
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.connections: set[socket.socket] = set()
        self.kubeconfig = workdir / "kubeconfig-via-proxy"
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.write_text(yaml.safe_dump(config))

    # -- faults ------------------------------------------------------------------------------------

    def fail(
        self, status: int, *, times: int = 1, match: str = "", headers: dict[str, str] | None = None, message: str = ""
    ) -> Fault:
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": message or f"injected {status}",
                "code": status,
            }
        ).encode()
        return self._add(Fault("status", re.compile(match), times, status, dict(headers or {}), body))

    def reset(self, *, times: int = 1, match: str = "") -> Fault:
        return self._add(Fault("reset", re.compile(match), times))

    def restart_on(self, match: str, seconds: float) -> Fault:
        return self._add(Fault("restart", re.compile(match), 1, status=int(seconds * 1000)))

    def _restart(self, seconds: float) -> None:
        self.down()
        timer = threading.Timer(seconds, self.up)
        timer.daemon = True
        timer.start()

    def _add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.pattern.search(f"{method} {path}"):
                    fault.remaining -= 1
                    fault.hits += 1
                    return fault
        return None

    # -- lifecycle ---------------------------------------------------------------------------------

    def up(self) -> None:
        proxy = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self) -> tuple[Any, Any]:
                sock, addr = self.socket.accept()
                wrapped = proxy.server_ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                with proxy.lock:
                    proxy.connections.add(wrapped)
                return wrapped, addr

        self.server = Server(("127.0.0.1", self.port), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="api-proxy")
        self.thread.start()

    def down(self) -> None:
        """Stop listening and cut every open connection (an API server going away)."""
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            connections, self.connections = self.connections, set()
        for sock in connections:
            _rst(sock)
        self.server = None

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> http.client.HTTPResponse:
        conn = http.client.HTTPSConnection(self.upstream_host, self.upstream_port, context=self.client_ssl, timeout=60)
        conn.request(method, path, body=body or None, headers=headers)
        return conn.getresponse()


def _handler(proxy: ApiProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = proxy.take(self.command, self.path)
            if fault is not None and fault.kind == "restart":
                threading.Thread(target=proxy._restart, args=(fault.status / 1000,), daemon=True).start()
                fault = Fault("reset", fault.pattern, 0)
            if fault is not None and fault.kind == "reset":
                proxy.requests.append((self.command, self.path, 0))
                _rst(self.connection)
                self.close_connection = True
                return
            if fault is not None:
                proxy.requests.append((self.command, self.path, fault.status))
                self.send_response(fault.status)
                for key, value in fault.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(fault.body)))
                self.end_headers()
                self.wfile.write(fault.body)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host", "authorization"}}
            try:
                response = proxy.forward(self.command, self.path, headers, body)
            except OSError:
                _rst(self.connection)
                self.close_connection = True
                return
            data = response.read()
            proxy.requests.append((self.command, self.path, response.status))
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815 - http.server's names

    return Handler


def _rst(sock: socket.socket) -> None:
    """Cut the connection now, with no answer: SO_LINGER 0 (reset on close) and a shutdown, which
    takes effect even while the handler's file objects still reference the socket."""
    for step in (
        lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)),
        lambda: sock.shutdown(socket.SHUT_RDWR),
        sock.close,
    ):
        with contextlib.suppress(OSError):
            step()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
