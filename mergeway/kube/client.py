"""A thin, concurrent HTTP client for the Kubernetes API, built on the official client's plumbing.

The generated typed API is convenient but slow for bulk work (it deserialises every response into
model classes). Mergeway only needs raw JSON for server-side apply and dry runs, so it uses the
official ``ApiClient`` for what matters -- kubeconfig loading, TLS, authentication and token refresh
-- and sends raw requests through it, with a connection pool sized for the dry-run concurrency.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from mergeway.kube.retry import RetryPolicy, is_transient

APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "mergeway"


@dataclass
class KubeError(Exception):
    """The API server refused a request. ``message`` is its own explanation, for the PR comment."""

    status: int
    reason: str
    message: str

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

    def __init__(self, api_client: Any, *, retries: int = 4, timeout: float = 30.0, retry_seconds: float = 0.0) -> None:
        self.api = api_client
        self.retry = RetryPolicy(budget=retry_seconds, min_attempts=retries)
        self.timeout = timeout
        self._version = ""

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, *, pool_size: int = 32, **kwargs: Any
    ) -> KubeClient:
        configuration = k8s_client.Configuration()
        try:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path or None, context=context or None, client_configuration=configuration
            )
        except (k8s_config.ConfigException, OSError) as exc:
            where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise KubeError(status=0, reason="Config", message=f"cannot load kubeconfig {where}: {exc}") from None
        configuration.connection_pool_maxsize = pool_size
        return cls(k8s_client.ApiClient(configuration), **kwargs)

    def server_version(self) -> str:
        """The API server's version (``v1.36.3``), which Helm charts see as ``.Capabilities.KubeVersion``."""
        if not self._version:
            info = self.request("GET", "/version")
            self._version = str((info or {}).get("gitVersion", ""))
        return self._version

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

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
        """Send one request and return the decoded JSON; raise :class:`KubeError` on refusal.

        Transient failures (:mod:`mergeway.kube.retry`: no answer, 429, 5xx, "object has been
        modified") are retried with jittered backoff, honouring ``Retry-After``; anything else is
        returned to the caller at once, because a 4xx is the API server's verdict on the object and
        is exactly what the PR comment must show.
        """
        headers = {"Accept": accept}
        if body is not None:
            # Bodies stay Python objects: the official client serialises them as JSON, which is also
            # valid YAML for ``application/apply-patch+yaml``.
            headers["Content-Type"] = content_type
        attempts = self.retry.attempts()
        while True:
            try:
                method_, url, headers_, body_, post = self.api.param_serialize(
                    method,
                    path,
                    query_params=list((query or {}).items()),
                    header_params=dict(headers),
                    body=body,
                    auth_settings=["BearerToken"],
                )
                response = self.api.call_api(
                    method_,
                    url,
                    header_params=headers_,
                    body=body_,
                    post_params=post,
                    _request_timeout=timeout or self.timeout,
                )
                data = response.read()
            except (ApiException, Urllib3Error, OSError) as exc:  # transport-level failures
                if attempts.again():
                    continue
                raise KubeError(
                    status=0, reason="Unreachable", message=f"cannot reach the API server: {type(exc).__name__}"
                ) from None
            if 200 <= response.status <= 299:
                return json.loads(data) if data else None
            if is_transient(response.status, data) and attempts.again(response.headers.get("Retry-After")):
                continue
            raise _error_from(response.status, str(response.reason or ""), data)
