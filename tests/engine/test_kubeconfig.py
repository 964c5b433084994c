"""Reading kubeconfig files without the official client: the precedence rules kubectl users rely on."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from mergeway.kube import kubeconfig


def _write(
    path: Path,
    contexts: list[tuple[str, str, str]],
    clusters: dict[str, dict[str, object]],
    users: dict[str, dict[str, object]],
    current: str = "",
) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "contexts": [{"name": n, "context": {"cluster": c, "user": u}} for n, c, u in contexts],
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_first_file_wins_and_relative_paths_resolve_against_their_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "ca.pem").write_bytes(b"CA-A")
    first = _write(
        tmp_path / "a" / "config",
        [("dev", "c1", "u1")],
        {"c1": {"server": "https://one.example:6443/", "certificate-authority": "ca.pem"}},
        {"u1": {"token": "tok-1"}},
        current="dev",
    )
    second = _write(
        tmp_path / "b" / "config",
        [("dev", "c2", "u2"), ("prod", "c2", "u2")],
        {"c2": {"server": "https://two.example", "insecure-skip-tls-verify": True}},
        {
            "u2": {
                "client-certificate-data": base64.b64encode(b"CERT").decode(),
                "client-key-data": base64.b64encode(b"KEY").decode(),
            }
        },
        current="prod",
    )
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    dev = kubeconfig.resolve()
    assert (dev.server, dev.ca_data, dev.token) == ("https://one.example:6443", b"CA-A", "tok-1")
    prod = kubeconfig.resolve(context="prod")
    assert (prod.server, prod.insecure, prod.cert_data, prod.key_data) == ("https://two.example", True, b"CERT", b"KEY")
    assert kubeconfig.list_contexts() == ["dev", "prod"]


def test_plugin_users_go_to_the_official_loader(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "config",
        [("eks", "c", "u")],
        {"c": {"server": "https://eks.example"}},
        {"u": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}}},
        current="eks",
    )
    assert kubeconfig.resolve(str(path)).needs_official


def test_unknown_context_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", [("a", "c", "u")], {"c": {"server": "https://x"}}, {"u": {}}, current="a")
    with pytest.raises(kubeconfig.KubeconfigError, match="'nope' is not in the kubeconfig"):
        kubeconfig.resolve(str(path), "nope")
    with pytest.raises(kubeconfig.KubeconfigError, match="no kubeconfig"):
        kubeconfig.resolve(str(tmp_path / "missing"))
