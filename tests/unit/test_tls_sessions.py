"""TLS session resumption in the API transport, against a real TLS server whose ticket keys can change.

A resumed handshake costs both sides about half a full one, and a burst of requests opens a dozen
connections, so the transport resumes one session. It must also notice when the server stops
accepting that session (its ticket expired, the server restarted with new ticket keys) and take
the fresh one: a worker's client lives for days and a ticket for hours.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mergeway.kube.kubeconfig import Credentials
from mergeway.kube.transport import DirectTransport, Request

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class TlsServer:
    """Answers every request with ``{}``, and records for each connection whether it resumed a session."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self.context = self.new_keys()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.resumed: list[bool] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def new_keys(self) -> ssl.SSLContext:
        """A context of its own: fresh session-ticket keys, so tickets issued before are refused."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(raw,), daemon=True).start()

    def _answer(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                self.resumed.append(conn.session_reused)
                buffer = b""
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                    while b"\r\n\r\n" in buffer:
                        _, buffer = buffer.split(b"\r\n\r\n", 1)
                        conn.sendall(ANSWER)
        except (OSError, ssl.SSLError):
            return


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TlsServer]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make the test server's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=test", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tls = TlsServer(cert, key)
    yield tls
    tls.listener.close()


def test_the_session_is_resumed_and_replaced_when_the_server_stops_accepting_it(server: TlsServer) -> None:
    transport = DirectTransport(
        Credentials(server=f"https://127.0.0.1:{server.port}", ca_data=server.cert.read_bytes())
    )

    def on_a_new_connection() -> None:
        transport.close()  # no idle connection left: the next request connects again
        assert transport.send(Request("GET", "/version", None, {}, None, 10)).status == 200

    on_a_new_connection()  # full handshake; the session is kept
    on_a_new_connection()  # resumed
    on_a_new_connection()  # resumed
    server.context = server.new_keys()  # as after a restart, or once the ticket has expired
    on_a_new_connection()  # cannot resume: a full handshake, and a fresh session
    on_a_new_connection()  # resumed again, with the fresh one
    assert server.resumed == [False, True, True, False, True]
