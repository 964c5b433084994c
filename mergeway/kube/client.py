"""A thin, concurrent HTTP client for the Kubernetes API: raw JSON in and out.

The generated typed API is convenient but slow for bulk work (it deserialises every response into
model classes, and importing it costs more than a small ``kubectl diff``). Mergeway only needs raw
JSON for server-side apply and dry runs, so requests go through :mod:`mergeway.kube.transport`: a
keep-alive pool sized for the dry-run concurrency, with credentials read by
:mod:`mergeway.kube.kubeconfig` (the official client is used only for plugin-minted credentials).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mergeway.kube import kubeconfig
from mergeway.kube.retry import RetryPolicy, is_transient
from mergeway.kube.transport import DirectTransport, OfficialTransport, Request, Response, Transport, TransportError

APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "mergeway"


class KubeError(Exception):
    """The API server refused a request. ``message`` is its own explanation, for the PR comment."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(status, reason, message)
        self.status = status
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message or f"{self.status} {self.reason}"


def _error_from(status: int, reason: str, data: bytes | None) -> KubeError:
    """Build an error from the API server's ``Status`` body, whose message names the field at fault."""
    message = ""
    try:
        body = json.loads(data or b"")
        message = str(body.get("message", ""))
        reason = str(body.get("reason", reason))
    except (ValueError, TypeError, AttributeError):
        message = (data or b"").decode("utf-8", "replace")[:2000]
    return KubeError(status=status, reason=reason, message=message)


class KubeClient:
    """Raw JSON requests to one cluster. Thread-safe: share one instance across worker threads."""

    def __init__(
        self,
        transport: Transport,
        *,
        retries: int = 4,
        timeout: float = 30.0,
        cache_dir: Path | None = None,
        retry_seconds: float = 0.0,
    ) -> None:
        self.transport = transport
        self.retry = RetryPolicy(budget=retry_seconds, min_attempts=retries)
        self.timeout = timeout
        self.cache_dir = cache_dir
        self._version = ""
        self._etags: dict[tuple[str, str], tuple[str, Any]] = {}

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, *, pool_size: int = 32, **kwargs: Any
    ) -> KubeClient:
        """A client for ``context`` of the kubeconfig at ``path`` (default: ``$KUBECONFIG``, the pod's account)."""
        try:
            creds = kubeconfig.resolve(path or None, context or None)
            transport: Transport = (
                OfficialTransport(path or None, context or None, pool_size=pool_size)
                if creds.needs_official
                else DirectTransport(creds, pool_size=pool_size)
            )
        except (kubeconfig.KubeconfigError, OSError, ValueError) as exc:
            where = path or "$KUBECONFIG" if path or not context else "the kubeconfig"
            raise KubeError(status=0, reason="Config", message=f"cannot load {where}: {exc}") from None
        return cls(transport, **kwargs)

    def server_version(self) -> str:
        """The API server's version (``v1.36.3``), which Helm charts see as ``.Capabilities.KubeVersion``."""
        if not self._version:
            info = self.request("GET", "/version")
            self._version = str((info or {}).get("gitVersion", ""))
        return self._version

    @property
    def host(self) -> str:
        return self.transport.host

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON; raise :class:`KubeError` on refusal."""
        headers = {"Accept": accept}
        if body is not None:
            # Bodies are sent as JSON, which is also valid YAML for ``application/apply-patch+yaml``.
            headers["Content-Type"] = content_type
        response = self._send(Request(method, path, query, headers, body, timeout or self.timeout))
        if 200 <= response.status <= 299:
            return json.loads(response.data) if response.data else None
        raise _error_from(response.status, response.reason, response.data)

    def text(self, path: str, *, query: Mapping[str, str] | None = None) -> str:
        """GET a plain-text document (a pod's log), decoded leniently; raise :class:`KubeError` on refusal."""
        response = self._send(Request("GET", path, query, {"Accept": "text/plain"}, None, self.timeout))
        if 200 <= response.status <= 299:
            return response.data.decode("utf-8", "replace")
        raise _error_from(response.status, response.reason, response.data)

    def get_cached(
        self, path: str, *, accept: str = "application/json", reduce: Callable[[Any], Any] = lambda doc: doc
    ) -> Any:
        """GET a document that rarely changes (discovery), revalidated by ETag instead of re-sent.

        The API server answers ``304 Not Modified`` to a matching ``If-None-Match``, so a warm
        client neither makes the server serialise nor itself parse the (large) document again; only
        ``reduce(document)``, what the caller needs of it, is kept. The cache lives as long as this
        client (a worker shares one per cluster across jobs) and, when ``cache_dir`` is set (the
        CLI), on disk between runs, as kubectl's discovery cache does.
        """
        key = (path, accept)
        cached = self._etags.get(key) or self._read_disk(key)
        headers = {"Accept": accept}
        if cached:
            headers["If-None-Match"] = cached[0]
        response = self._send(Request("GET", path, None, headers, None, self.timeout))
        if response.status == 304 and cached:
            self._etags[key] = cached
            return cached[1]
        if not 200 <= response.status <= 299:
            raise _error_from(response.status, response.reason, response.data)
        value = reduce(json.loads(response.data) if response.data else None)
        etag = response.headers.get("ETag") or ""
        if etag:
            self._etags[key] = (etag, value)
            self._write_disk(key, etag, value)
        return value

    def _disk_path(self, key: tuple[str, str]) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(f"{self.host}\0{key[0]}\0{key[1]}".encode()).hexdigest()[:32]
        return self.cache_dir / f"{digest}.json"

    def _read_disk(self, key: tuple[str, str]) -> tuple[str, Any] | None:
        path = self._disk_path(key)
        if path is None:
            return None
        try:
            etag, _, data = path.read_bytes().partition(b"\n")
            return etag.decode(), json.loads(data)
        except (OSError, ValueError):
            return None

    def _write_disk(self, key: tuple[str, str], etag: str, value: Any) -> None:
        path = self._disk_path(key)
        if path is None:
            return
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(etag.encode() + b"\n" + json.dumps(value, separators=(",", ":")).encode())
            tmp.replace(path)

    def _send(self, request: Request) -> Response:
        """Send with retries: transient failures (:mod:`mergeway.kube.retry`: no answer, 429, 5xx,
        "the object has been modified") are retried with jittered backoff, honouring ``Retry-After``.

        Anything else is returned to the caller at once, because a 4xx is the API server's verdict on
        the object and is exactly what the PR comment must show.
        """
        attempts = self.retry.attempts()
        while True:
            try:
                response = self.transport.send(request)
            except TransportError as exc:  # refused, reset, TLS or timeout: no answer at all
                if attempts.again():
                    continue
                raise KubeError(status=0, reason="Unreachable", message=f"cannot reach the API server: {exc}") from None
            if is_transient(response.status, response.data) and attempts.again(response.headers.get("Retry-After")):
                continue
            return response
