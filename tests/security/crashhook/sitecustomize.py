"""Test-only: a worker whose pool process dies like an OOM kill while rendering a hostile repository.

Loaded by Python at start-up (``sitecustomize``) when this directory is first on ``PYTHONPATH`` of a
worker started by ``tests/security/test_poison.py``. Rendering an environment that contains a file
named ``oom.yaml`` SIGKILLs the process doing it, exactly what the kernel's OOM killer does to a
pool process whose memory a rendered input blew up. Product code knows nothing of this.
"""

import os
import signal
from pathlib import Path
from typing import Any

from mergeway.jobs import context

_render = context.JobContext.render


def _render_or_die(self: Any, root: Path, env: Any, client: Any) -> Any:
    if (Path(root) / env.path / "oom.yaml").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return _render(self, root, env, client)


context.JobContext.render = _render_or_die  # type: ignore[method-assign]
