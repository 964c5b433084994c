"""Hostile repository content shared by the security tests: a git config that runs a command, remote
base spellings kustomize fetches with git, a local HTTP server that records every request, and a
YAML alias bomb."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Spellings of a remote base that kustomize clones with git (hosts that cannot be reached).
REMOTE_BASES = (
    "deploy@127.0.0.1:org/repo.git",
    "git@127.0.0.1:org/repo.git",
    "git::ssh://x@127.0.0.1/org/repo",
    "127.0.0.1:org/repo//deploy?ref=main",
    "git::https://127.0.0.1/org/repo",
    "ssh://git@127.0.0.1/org/repo.git",
    "https://127.0.0.1/org/repo.git//deploy?ref=v1",
    "github.com/org/repo",
    "gh:org/repo",
    "org/repo?ref=main",
)


def gitconfig(marker: Path) -> str:
    """A .gitconfig whose every hook writes ``id`` into ``marker``: any git run that reads it shows."""
    run = f"sh -c 'id > {marker}'"
    return (
        "[core]\n"
        f"\tsshCommand = {run} --\n"
        f"\tfsmonitor = {run}\n"
        "[credential]\n"
        f"\thelper = !{run}\n"
        '[url "ssh://git@127.0.0.1/"]\n'
        "\tinsteadOf = https://127.0.0.1/\n"
    )


def alias_bomb(levels: int = 9) -> str:
    """The classic "billion laughs": a few hundred bytes, 9**levels strings once expanded."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: lol", "data:"]
    lines.append('  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\n"


@dataclass
class RecordingServer:
    """An HTTP server (on 127.0.0.1 by default) that answers every request with a ConfigMap and remembers it."""

    url: str
    requests: list[str] = field(default_factory=list)


def outward_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: nothing is sent, the kernel only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


@contextmanager
def recording_server(host: str = "127.0.0.1") -> Iterator[RecordingServer]:
    record = RecordingServer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            record.requests.append(self.path)
            body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\ndata:\n  k: leaked\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    record.url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()
