"""Read kubeconfig files (and in-cluster credentials) without importing the official client.

Importing the ``kubernetes`` package costs about 0.35 s of CPU (it loads every generated model),
which is more than a whole ``kubectl diff`` of a small environment. The kubeconfig format itself is
small and stable, so the common credentials are read here: a server with a CA, client certificates,
bearer tokens and token files, and a ServiceAccount inside a pod. Users that need a program to mint
credentials (``exec`` plugins, ``auth-provider``) are marked ``needs_official`` and the caller hands
them to the official loader, which implements their refresh logic.

Lookup follows kubectl: ``$KUBECONFIG`` is a ``:``-separated list whose files are merged, the first
file that names a context, cluster or user wins, and the first ``current-context`` wins.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, NamedTuple

import yaml

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER = "in-cluster"


class KubeconfigError(ValueError):
    """The kubeconfig is missing, unreadable, or does not name what was asked for."""


class Credentials(NamedTuple):
    """Everything needed to open an authenticated connection to one API server."""

    server: str
    ca_data: bytes = b""
    insecure: bool = False
    tls_server_name: str = ""
    cert_data: bytes = b""
    key_data: bytes = b""
    token: str = ""
    #: Re-read on every connection refresh: projected ServiceAccount tokens rotate.
    token_file: str = ""
    username: str = ""
    password: str = ""
    #: ``exec`` or ``auth-provider`` users: the official loader must mint the credentials.
    needs_official: bool = False


def default_paths(explicit: str | None = None) -> list[Path]:
    """The kubeconfig files to merge, in precedence order."""
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _named(items: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out.setdefault(item["name"], item)
    return out


class Kubeconfig:
    """The merged view of one or more kubeconfig files."""

    def __init__(self) -> None:
        self.contexts: dict[str, dict[str, Any]] = {}
        self.clusters: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.current_context = ""
        #: Relative file references are resolved against the directory of the file that defined them.
        self.base: dict[tuple[str, str], Path] = {}

    @classmethod
    def load(cls, explicit: str | None = None) -> Kubeconfig:
        merged = cls()
        found = False
        for path in default_paths(explicit):
            try:
                doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}  # noqa: S506 - safe loader
            except FileNotFoundError:
                continue
            except (OSError, yaml.YAMLError) as exc:
                raise KubeconfigError(f"cannot read kubeconfig {path}: {type(exc).__name__}") from None
            if not isinstance(doc, dict):
                raise KubeconfigError(f"kubeconfig {path} is not a mapping")
            found = True
            merged._merge(doc, path.parent)
        if not found:
            raise KubeconfigError(f"no kubeconfig at {', '.join(str(p) for p in default_paths(explicit))}")
        return merged

    def _merge(self, doc: dict[str, Any], base: Path) -> None:
        for section, target in (("contexts", self.contexts), ("clusters", self.clusters), ("users", self.users)):
            for name, item in _named(doc.get(section)).items():
                if name not in target:
                    target[name] = item
                    self.base[(section, name)] = base
        if not self.current_context and isinstance(doc.get("current-context"), str):
            self.current_context = doc["current-context"]

    def credentials(self, context: str | None = None) -> Credentials:
        name = context or self.current_context
        if not name or name not in self.contexts:
            raise KubeconfigError(f"context {name!r} is not in the kubeconfig")
        ctx = self.contexts[name].get("context") or {}
        cluster_name, user_name = str(ctx.get("cluster", "")), str(ctx.get("user", ""))
        if cluster_name not in self.clusters:
            raise KubeconfigError(f"context {name!r} names cluster {cluster_name!r}, which is not defined")
        cluster = self.clusters[cluster_name].get("cluster") or {}
        user = (self.users.get(user_name) or {}).get("user") or {}
        server = str(cluster.get("server", ""))
        if not server:
            raise KubeconfigError(f"cluster {cluster_name!r} has no server")
        cbase = self.base[("clusters", cluster_name)]
        ubase = self.base.get(("users", user_name), cbase)
        token_file = str(user.get("tokenFile", ""))
        return Credentials(
            server=server.rstrip("/"),
            ca_data=_data(cluster, "certificate-authority", cbase),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            tls_server_name=str(cluster.get("tls-server-name", "")),
            cert_data=_data(user, "client-certificate", ubase),
            key_data=_data(user, "client-key", ubase),
            token=str(user.get("token", "")),
            token_file=str(ubase / token_file) if token_file else "",
            username=str(user.get("username", "")),
            password=str(user.get("password", "")),
            needs_official=bool(user.get("exec") or user.get("auth-provider")),
        )


def _data(section: dict[str, Any], key: str, base: Path) -> bytes:
    """``<key>-data`` (base64) or the file ``<key>`` (relative to the kubeconfig's directory)."""
    inline = section.get(f"{key}-data")
    if inline:
        try:
            return base64.b64decode(str(inline), validate=False)
        except ValueError:
            raise KubeconfigError(f"{key}-data is not base64") from None
    file = section.get(key)
    if file:
        try:
            return (base / str(file)).expanduser().read_bytes()
        except OSError as exc:
            raise KubeconfigError(f"cannot read {key} {file}: {exc.strerror}") from None
    return b""


def in_cluster() -> Credentials | None:
    """A pod's own ServiceAccount, as ``rest.InClusterConfig`` finds it, or None outside a pod."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token = SA_DIR / "token"
    if not host or not port or not token.is_file():
        return None
    if ":" in host:
        host = f"[{host}]"
    ca = SA_DIR / "ca.crt"
    return Credentials(
        server=f"https://{host}:{port}",
        ca_data=ca.read_bytes() if ca.is_file() else b"",
        token_file=str(token),
    )


def list_contexts(explicit: str | None = None) -> list[str]:
    """Context names of the merged kubeconfig (``[]`` when there is none)."""
    try:
        return list(Kubeconfig.load(explicit).contexts)
    except KubeconfigError:
        return []


def resolve(explicit: str | None = None, context: str | None = None) -> Credentials:
    """Credentials for ``context`` (or the current one); the pod's ServiceAccount as a fallback.

    ``context == "in-cluster"`` asks for the pod's own ServiceAccount explicitly.
    """
    if context == IN_CLUSTER:
        creds = in_cluster()
        if creds is None:
            raise KubeconfigError("not running in a pod: no ServiceAccount token")
        return creds
    try:
        return Kubeconfig.load(explicit).credentials(context)
    except KubeconfigError:
        if not explicit and not context and not os.environ.get("KUBECONFIG"):
            creds = in_cluster()
            if creds is not None:
                return creds
        raise
