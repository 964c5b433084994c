"""Run external tools (kubectl, helm, git) safely.

Every call is an argument list (never a shell string, so nothing from a webhook can become a
command), has a timeout (a hung tool must not hold a worker forever), and gets a sanitised
environment: only what the tool needs, so cluster credentials, forge tokens and webhook secrets in
the worker's environment never reach a renderer that runs repository-controlled templates.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Variables a child process may inherit: enough to find binaries and behave predictably.
SAFE_ENV_VARS = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")


class ToolError(RuntimeError):
    """A tool failed. ``message`` is its own explanation (stderr), trimmed, for the PR comment."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(f"{tool}: {message}")
        self.tool = tool
        self.message = message


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a child process, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k in SAFE_ENV_VARS}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["LC_ALL"] = "C.UTF-8"
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    max_message: int = 4000,
) -> Result:
    """Run ``argv`` and return its output; raise :class:`ToolError` on failure or timeout."""
    name = os.path.basename(argv[0])
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else clean_env(),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(name, f"timed out after {timeout:g}s") from None
    except OSError as exc:
        raise ToolError(name, f"cannot run: {exc.strerror}") from None
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}"
        if len(message) > max_message:
            message = message[:max_message] + " …"
        raise ToolError(name, message)
    return Result(stdout=proc.stdout, stderr=proc.stderr)
