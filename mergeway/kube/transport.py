"""HTTP transports to an API server: a direct urllib3 pool, or the official client for plugin auth.

Mergeway sends raw JSON (server-side apply bodies, dry runs, lists), so it needs no generated models:
the direct transport is one keep-alive urllib3 pool with TLS set up from :mod:`mergeway.kube.kubeconfig`.
Bodies are encoded once with ``json.dumps`` (the official client first walks every object to
"sanitise" it, which costs more CPU than the request itself for large manifests).

Credentials that need a program to mint them (``exec`` plugins, ``auth-provider``) go through the
official ``kubernetes`` client instead, which implements their refresh; it is imported only then.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import urllib3

from mergeway.kube.kubeconfig import Credentials


class TransportError(OSError):
    """The request did not get an HTTP answer (refused, reset, TLS, timeout)."""


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Mapping[str, str]
    data: bytes


class Transport(Protocol):
    host: str

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: Any,
        timeout: float,
    ) -> Response: ...


def _ssl_context(creds: Credentials) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=creds.ca_data.decode("ascii") if creds.ca_data else None)
    if creds.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if creds.cert_data and creds.key_data:
        # ssl only loads client keys from files: write them to a private file and remove it at once.
        fd, path = tempfile.mkstemp(prefix="mergeway-tls-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(creds.cert_data + b"\n" + creds.key_data)
            ctx.load_cert_chain(path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
    return ctx


class DirectTransport:
    """One thread-safe keep-alive connection pool to one API server."""

    #: How long a token read from a file is trusted before it is read again (kubelet rotates them).
    TOKEN_TTL = 60.0

    def __init__(self, creds: Credentials, *, pool_size: int = 16) -> None:
        self.creds = creds
        self.host = creds.server
        url = urlsplit(creds.server)
        if not url.hostname or url.scheme not in ("http", "https"):
            raise ValueError(f"the API server address {creds.server!r} is not an http(s) URL")
        kwargs: dict[str, Any] = {"maxsize": pool_size, "block": True, "retries": False}
        if url.scheme == "https":
            kwargs["ssl_context"] = _ssl_context(creds)
            if creds.tls_server_name:
                kwargs["server_hostname"] = creds.tls_server_name
            if creds.insecure:
                kwargs["cert_reqs"] = "CERT_NONE"
                kwargs["assert_hostname"] = False
            self.pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(url.hostname, url.port or 443, **kwargs)
        else:
            self.pool = urllib3.HTTPConnectionPool(url.hostname, url.port or 80, **kwargs)
        self.prefix = url.path.rstrip("/")
        self._token_lock = threading.Lock()
        self._token, self._token_read = "", 0.0

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
            return urllib3.util.make_headers(basic_auth=f"{creds.username}:{creds.password}")["authorization"]
        return ""

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: Any,
        timeout: float,
    ) -> Response:
        url = self.prefix + path + ("?" + urlencode(list(query.items())) if query else "")
        all_headers = dict(headers)
        auth = self._authorization()
        if auth:
            all_headers["Authorization"] = auth
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            response = self.pool.urlopen(
                method,
                url,
                body=payload,
                headers=all_headers,
                timeout=urllib3.Timeout(total=timeout),
                redirect=False,
                preload_content=True,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransportError(type(exc).__name__) from None
        return Response(response.status, str(response.reason or ""), response.headers, response.data or b"")


class OfficialTransport:
    """The official client's ``ApiClient``, for credentials only it can mint (exec, auth-provider)."""

    def __init__(self, kubeconfig: str | None, context: str | None, *, pool_size: int = 16) -> None:
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

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: Any,
        timeout: float,
    ) -> Response:
        from kubernetes.client.exceptions import ApiException

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
                method_, url, header_params=headers_, body=body_, post_params=post, _request_timeout=timeout
            )
            data = response.read()  # type: ignore[no-untyped-call]
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransportError(type(exc).__name__) from None
        return Response(response.status, str(response.reason or ""), response.headers or {}, data or b"")
