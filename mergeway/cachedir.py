"""Where Mergeway keeps its cache on this machine: ``$XDG_CACHE_HOME/mergeway``, else ``~/.cache/mergeway``.

Its own module, not part of :mod:`mergeway.config`: the ``mergeway`` command needs only this of the
settings, and importing every setting's definition is a noticeable part of a short run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def user_cache(env: Mapping[str, str] | None = None) -> Path:
    """The user's cache for Mergeway, honouring ``XDG_CACHE_HOME`` as the tooling does."""
    env = os.environ if env is None else env
    return Path(env.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache").expanduser() / "mergeway"
