"""Run external tools (kubectl, helm) safely on content a pull request controls.

Every call is an argument list (never a shell string, so nothing from a webhook can become a
command), has a timeout (a hung tool must not hold a worker forever), a cap on what it may print (a
template looping a million times must not fill the worker's memory), and a sanitised environment.
Renderers get more than a clean environment: :func:`sandbox` gives each run a fresh, empty HOME
(a ``.gitconfig`` or ``.kube/config`` committed to the repository is never read), git configuration
switched off, a PATH with nothing on it (kustomize finds no ``git`` to fetch a remote base with, so
no ``ssh``, credential helper or fsmonitor hook can run), no cluster credentials and a proxy that
leads nowhere. The static checks in :mod:`mergeway.render.kustomize` and :mod:`mergeway.render.helm`
refuse remote references first; the sandbox is what holds if one of them is ever missed.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Variables a child process may inherit: enough to find binaries and behave predictably.
SAFE_ENV_VARS = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")
#: A closed local port: with every proxy variable pointing here, a renderer's HTTP(S) request fails.
NOWHERE = "http://127.0.0.1:9"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_STDERR_KEEP = 64 * 1024


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


@dataclass(frozen=True)
class Sandbox:
    """Where one renderer run lives: its own empty HOME, and the environment to start it with."""

    home: Path
    env: dict[str, str]


@contextmanager
def sandbox() -> Iterator[Sandbox]:
    """A throwaway HOME and an environment with nothing inherited, removed afterwards.

    Nothing comes from the worker's environment: not its PATH (so no ``git``/``ssh`` can be found;
    tools are started by absolute path), not its HOME, KUBECONFIG, tokens or proxy settings.
    """
    with tempfile.TemporaryDirectory(prefix="mergeway-render-") as tmp:
        base = Path(tmp)
        home, empty_bin, scratch = base / "home", base / "bin", base / "tmp"
        for directory in (home, empty_bin, scratch):
            directory.mkdir(mode=0o700)
        env = {
            "HOME": str(home),
            "PATH": str(empty_bin),
            "TMPDIR": str(scratch),
            "LC_ALL": "C.UTF-8",
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "KUBECONFIG": "/dev/null",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_SYSTEM": "/dev/null",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "NO_PROXY": "",
            "no_proxy": "",
            **dict.fromkeys(_PROXY_VARS, NOWHERE),
        }
        yield Sandbox(home=home, env=env)


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    max_output: int | None = None,
    output_setting: str = "",
    max_message: int = 4000,
) -> Result:
    """Run ``argv`` and return its output; raise :class:`ToolError` on failure, timeout or too much output.

    ``max_output`` bounds stdout: the tool is killed as soon as it prints more, and the error names
    ``output_setting`` (the variable that raises the bound). The child gets its own process group,
    so a timeout or kill also ends anything it started.
    """
    name = os.path.basename(argv[0])
    try:
        child = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(name, f"cannot run: {exc.strerror}") from None
    try:
        stdout, stderr = _collect(child, name, timeout=timeout, max_output=max_output, setting=output_setting)
    finally:
        _kill_group(child)
    if child.returncode != 0:
        message = stderr.strip() or stdout.strip() or f"exit code {child.returncode}"
        if len(message) > max_message:
            message = message[:max_message] + " …"
        raise ToolError(name, message)
    return Result(stdout=stdout, stderr=stderr)


def _collect(
    child: subprocess.Popen[bytes], name: str, *, timeout: float, max_output: int | None, setting: str
) -> tuple[str, str]:
    """Read both pipes until the child exits, enforcing the deadline and the stdout bound."""
    assert child.stdout is not None and child.stderr is not None
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ, out)
        selector.register(child.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ToolError(name, f"timed out after {timeout:g}s")
            for key, _ in selector.select(timeout=remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                if buffer is err and len(err) >= _STDERR_KEEP:
                    continue
                buffer += chunk
                if buffer is out and max_output is not None and len(out) > max_output:
                    bound = f" ({setting})" if setting else ""
                    raise ToolError(name, f"refused: the output is larger than {max_output} bytes{bound}")
    try:
        child.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise ToolError(name, f"timed out after {timeout:g}s") from None
    return out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace")


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """End the child's process group (harmless when it already exited) and reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    for pipe in (child.stdout, child.stderr):
        if pipe is not None:
            pipe.close()
