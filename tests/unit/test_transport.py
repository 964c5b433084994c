"""The API-server transport's HTTP/1.1 client against a real local server (real sockets, no cluster).

What a user would notice if it were wrong: a list answered in chunks read short, a request lost
when the API server closes an idle keep-alive connection (it does, after its idle timeout), or a
connection reused after the server said ``Connection: close``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping

import pytest

from mergeway.kube.kubeconfig import Credentials
from mergeway.kube.transport import DirectTransport, Request, TransportError

#: One scripted answer: given the request head, the raw bytes to send, and whether to close after.
Answer = Callable[[bytes], tuple[bytes, bool]]


class ScriptedServer:
    """Accepts connections and answers each request with the next scripted answer."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        buf = b""
        while self.answers:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(buf) < length:
                buf += conn.recv(65536)
            body, buf = buf[:length], buf[length:]
            self.requests.append(head + b"\r\n\r\n" + body)
            raw, close = self.answers.pop(0)(head)
            conn.sendall(raw)
            if close:
                return

    def close(self) -> None:
        self.listener.close()


Serve = Callable[[list[Answer]], tuple["ScriptedServer", DirectTransport]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[ScriptedServer] = []

    def start(answers: list[Answer]) -> tuple[ScriptedServer, DirectTransport]:
        server = ScriptedServer(answers)
        servers.append(server)
        return server, DirectTransport(Credentials(server=f"http://127.0.0.1:{server.port}"))

    yield start
    for server in servers:
        server.close()


def _json(status: int, doc: object, *, close: bool = False, extra: str = "") -> Answer:
    body = json.dumps(doc).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return lambda _: (head.encode() + body, close)


def _chunked(doc: object) -> Answer:
    body = json.dumps(doc).encode()
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    chunks = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
    return lambda _: (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: "v1"\r\n\r\n' + chunks, False)


def _send(
    transport: DirectTransport, method: str = "GET", body: object = None
) -> tuple[int, object, Mapping[str, str]]:
    response = transport.send(Request(method, "/api/v1/things", {"limit": "2"}, {}, body, 5))
    return response.status, json.loads(response.data) if response.data else None, response.headers


def test_keep_alive_chunked_lists_and_case_insensitive_headers(serve: Serve) -> None:
    items = {"items": [{"name": f"n{i}"} for i in range(50)]}
    server, transport = serve([_chunked(items), _json(200, {"ok": 1})])
    status, doc, headers = _send(transport)
    assert (status, doc) == (200, items)
    assert headers.get("etag") == headers.get("ETag") == '"v1"'
    assert _send(transport, "PATCH", {"a": 1})[:2] == (200, {"ok": 1})
    assert server.connections == 1  # the second request reused the connection
    assert server.requests[0].startswith(b"GET /api/v1/things?limit=2 HTTP/1.1\r\n")
    assert server.requests[1].endswith(b'\r\n\r\n{"a":1}')


def test_a_request_on_a_connection_the_server_closed_meanwhile_is_sent_again(serve: Serve) -> None:
    # The server closes the idle keep-alive connection just as the next request arrives (its idle
    # timeout racing the client): that request got no answer and goes once more on a new connection.
    server, transport = serve([_json(200, {"n": 1}), lambda _: (b"", True), _json(201, {"n": 2})])
    assert _send(transport)[:2] == (200, {"n": 1})
    assert _send(transport, "PATCH", {"x": 1})[:2] == (201, {"n": 2})
    assert server.connections == 2
    assert server.requests[1] == server.requests[2]  # the same request, sent again unchanged


def test_connection_close_is_honoured_and_a_body_without_length_is_read_to_the_end(serve: Serve) -> None:
    until_eof: Answer = lambda _: (b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"whole": true}', True)  # noqa: E731
    server, transport = serve([until_eof, _json(404, {"reason": "NotFound"})])
    assert _send(transport)[:2] == (200, {"whole": True})
    assert _send(transport)[:2] == (404, {"reason": "NotFound"})
    assert server.connections == 2


def test_no_answer_at_all_is_a_transport_error(serve: Serve) -> None:
    server, transport = serve([lambda _: (b"", True)])  # accepts, reads, closes without a byte
    with pytest.raises(TransportError):
        _send(transport)
    server.close()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    with pytest.raises(TransportError):
        DirectTransport(Credentials(server=f"http://127.0.0.1:{dead}")).send(
            Request("GET", "/version", None, {}, None, 2)
        )


@pytest.mark.parametrize("path", ["/api/v1/x\r\nX-Smuggled: 1", "/api/v1/a b", "/api/v1/x\nGET /api"])
def test_a_request_head_with_a_control_character_or_space_is_never_sent(serve: Serve, path: str) -> None:
    server, transport = serve([_json(200, {"ok": 1})])
    with pytest.raises(ValueError, match="refusing an API request"):
        transport.send(Request("GET", path, None, {}, None, 5))
    assert _send(transport)[:2] == (200, {"ok": 1})  # the connection was not used for the refused one
    assert server.requests == [server.requests[0]] and b"Smuggled" not in server.requests[0]
