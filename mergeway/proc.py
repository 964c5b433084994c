"""Run external tools (git, kubectl, helm): the one place Mergeway starts a process.

Every call is an argument list (never a shell string, so nothing from a webhook can become a
command), has a timeout (a hung tool must not hold a worker forever), may have a cap on what it
prints (a template looping a million times must not fill the worker's memory), and gets an
environment built from an allow-list (:func:`clean_env`) or from nothing (:func:`sandbox`), never
the worker's own. Each child leads its own process group, and the whole group is killed when the
call ends, on a timeout as on success, so nothing a tool started (``git-remote-http``, a helm
plugin) outlives it.

Renderers get more than a clean environment: :func:`sandbox` gives each run a fresh, empty HOME
(a ``.gitconfig`` or ``.kube/config`` committed to the repository is never read), git configuration
switched off, a PATH with nothing on it (kustomize finds no ``git`` to fetch a remote base with, so
no ``ssh``, credential helper or fsmonitor hook can run), no cluster credentials and a proxy that
leads nowhere. The static checks in :mod:`mergeway.render.kustomize` and :mod:`mergeway.render.helm`
refuse remote references first; the sandbox is what holds if one of them is ever missed.

A sandboxed run is also *confined* (:class:`Confinement`): the tool is started through
:mod:`mergeway.renderjail`, which limits its memory and CPU time and (isolation on, the default)
lets the kernel refuse it every path but the repository it renders and its own scratch directory:
no ``/proc/<pid>/environ`` or memory of the worker, no mounted secret, kubeconfig or ServiceAccount
token, no TCP connection. A tool stopped by a limit fails with a message naming the setting.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mergeway import renderjail

#: The only variables a child inherits from the worker: enough to find binaries, trust a CA and
#: reach the forge through a proxy. Sandboxed renderers inherit none of them.
INHERITED_ENV = (
    "PATH", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy",
)  # fmt: skip
#: A closed local port: with every proxy variable pointing here, a renderer's HTTP(S) request fails.
NOWHERE = "http://127.0.0.1:9"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
#: How much of stderr is kept from its start and from its end (a tool's first complaint, git's
#: final ``fatal:`` line); the middle of a longer stream is dropped.
STDERR_KEEP = 32 * 1024

#: The confinement program (:mod:`mergeway.renderjail`), started by path with the worker's Python.
RENDERJAIL = Path(renderjail.__file__).resolve()
#: Signals that end a process the kernel stopped at its CPU limit (soft, then hard).
_CPU_SIGNALS = (-signal.SIGXCPU, -signal.SIGKILL)
#: How Go's runtime reports an allocation refused by RLIMIT_DATA.
_OUT_OF_MEMORY = ("fatal error: runtime: out of memory", "fatal error: out of memory")

#: Indirection so tests can record every process (argv and environment) Mergeway starts.
_popen = subprocess.Popen


class ToolError(RuntimeError):
    """A tool failed. ``message`` is its own explanation (stderr), trimmed, for the PR comment."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(f"{tool}: {message}")
        self.tool = tool
        self.message = message


class TimedOut(Exception):
    """The child ran past its deadline; it and its process group were killed."""

    def __init__(self, timeout: float, stderr: str) -> None:
        super().__init__(f"timed out after {timeout:g}s")
        self.timeout = timeout
        self.stderr = stderr


class OutputTooLarge(Exception):
    """The child printed more than ``limit`` bytes on stdout; it and its process group were killed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the output is larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Completed:
    """A child that exited by itself, whatever its exit status."""

    stdout: str
    stderr: str
    returncode: int
    seconds: float
    #: CPU time (user + system) and peak resident memory of the child, from the kernel (``wait4``).
    cpu_seconds: float = 0.0
    max_rss_bytes: int = 0


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child's environment: :data:`INHERITED_ENV` from the worker, a fixed locale, then ``extra``."""
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env["LC_ALL"] = "C"
    if extra:
        env.update(extra)
    return env


@dataclass(frozen=True)
class Confinement:
    """What a renderer process may use: memory, CPU time, and (``isolate``) which paths at all.

    ``readable`` are the only paths it may read (the repository it renders), ``writable`` the only
    ones it may write (its sandbox); the settings are ``MERGEWAY_RENDER_MEMORY_BYTES``,
    ``MERGEWAY_RENDER_CPU_SECONDS`` and ``MERGEWAY_RENDER_ISOLATION``.
    """

    memory_bytes: int
    cpu_seconds: int
    isolate: bool
    readable: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` started through :mod:`mergeway.renderjail` with these limits."""
        options = ["--memory", str(self.memory_bytes), "--cpu", str(self.cpu_seconds)]
        options += ["--isolate"] if self.isolate else []
        options += [arg for path in self.readable for arg in ("--read", path)]
        options += [arg for path in self.writable for arg in ("--write", path)]
        return [sys.executable, "-I", "-S", str(RENDERJAIL), *options, "--", *argv]

    def explain(self, done: Completed) -> str | None:
        """Why a confined run failed, when a limit or the confinement itself was the reason."""
        if done.returncode == renderjail.SETUP_FAILED and renderjail.PREFIX in done.stderr:
            reason = done.stderr.split(renderjail.PREFIX, 1)[1].strip().splitlines()[0]
            return (
                f"cannot confine the renderer ({reason}); renders are refused rather than run with "
                "access to the worker's secrets (MERGEWAY_RENDER_ISOLATION)"
            )
        if self.cpu_seconds and done.returncode in _CPU_SIGNALS and done.cpu_seconds >= self.cpu_seconds - 0.5:
            return f"stopped: it used more than {self.cpu_seconds} s of CPU time (MERGEWAY_RENDER_CPU_SECONDS)"
        if self.memory_bytes and any(marker in done.stderr for marker in _OUT_OF_MEMORY):
            mib = self.memory_bytes // (1024 * 1024)
            return f"stopped: it needed more than {mib} MiB of memory (MERGEWAY_RENDER_MEMORY_BYTES)"
        return None


def render_confinement() -> Confinement:
    """The configured limits and isolation, read when a render starts (:meth:`Settings.read`)."""
    # Here, not at the top: settings (with the policy parser) cost ~50 ms of a CLI kustomize/helm run.
    from mergeway.config import Settings

    return Confinement(
        memory_bytes=Settings.read("render_memory_bytes"),
        cpu_seconds=Settings.read("render_cpu_seconds"),
        isolate=Settings.read("render_isolation") == "landlock",
    )


@dataclass(frozen=True)
class Sandbox:
    """Where one renderer run lives: its own empty HOME, the environment to start it with, and
    the confinement to start it in (pass ``confine=box.confinement`` to :func:`run`)."""

    home: Path
    env: dict[str, str]
    confinement: Confinement


@contextmanager
def sandbox(readable: Sequence[str | Path] = (), confinement: Confinement | None = None) -> Iterator[Sandbox]:
    """A throwaway HOME and an environment with nothing inherited, removed afterwards.

    Nothing comes from the worker's environment: not its PATH (so no ``git``/``ssh`` can be found;
    tools are started by absolute path), not its HOME, KUBECONFIG, tokens or proxy settings. The
    run's :class:`Confinement` (``confinement``, else the configured one) may read ``readable``
    and write the sandbox's own directories, nothing else.
    """
    limits = confinement if confinement is not None else render_confinement()
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
        confined = Confinement(
            memory_bytes=limits.memory_bytes,
            cpu_seconds=limits.cpu_seconds,
            isolate=limits.isolate,
            readable=(*limits.readable, *(str(Path(p).resolve()) for p in readable)),
            writable=(*limits.writable, str(base.resolve())),
        )
        yield Sandbox(home=home, env=env, confinement=confined)


def execute(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    max_output: int | None = None,
) -> Completed:
    """Run ``argv`` to completion and return what it printed and its exit status.

    ``env`` replaces :func:`clean_env`. Raises :class:`TimedOut` past ``timeout`` seconds,
    :class:`OutputTooLarge` as soon as stdout exceeds ``max_output`` bytes, and :class:`OSError`
    when the program cannot be started. The child's process group is killed in every case.
    """
    started = time.monotonic()
    child = _popen(
        list(argv),
        cwd=str(cwd) if cwd is not None else None,
        env=dict(env) if env is not None else clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr, usage = _collect(child, timeout=timeout, max_output=max_output)
    finally:
        _kill_group(child)
    return Completed(
        stdout,
        stderr,
        child.returncode,
        time.monotonic() - started,
        cpu_seconds=usage.cpu_seconds,
        max_rss_bytes=usage.max_rss_bytes,
    )


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    max_output: int | None = None,
    output_setting: str = "",
    max_message: int = 4000,
    confine: Confinement | None = None,
) -> Completed:
    """Run a tool and return its output; raise :class:`ToolError` on failure, timeout or too much output.

    ``max_output`` bounds stdout, and the error names ``output_setting`` (the variable that raises
    the bound). With ``confine`` the tool runs in that :class:`Confinement`, and a run stopped by
    one of its limits fails with a message naming the setting instead of the tool's last words.
    """
    name = os.path.basename(argv[0])
    try:
        wrapped = confine.wrap(argv) if confine is not None else argv
        done = execute(wrapped, timeout=timeout, cwd=cwd, env=env, max_output=max_output)
    except OSError as exc:
        raise ToolError(name, f"cannot run: {exc.strerror}") from None
    except TimedOut as exc:
        raise ToolError(name, str(exc)) from None
    except OutputTooLarge as exc:
        bound = f" ({output_setting})" if output_setting else ""
        raise ToolError(name, f"refused: {exc}{bound}") from None
    if done.returncode != 0:
        stopped = confine.explain(done) if confine is not None else None
        if stopped is not None:
            raise ToolError(name, stopped)
        message = done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}"
        if len(message) > max_message:
            message = message[:max_message] + " …"
        raise ToolError(name, message)
    return done


class _Stderr:
    """Stderr as read: its first and last :data:`STDERR_KEEP` bytes."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = False

    def add(self, chunk: bytes) -> None:
        room = STDERR_KEEP - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > STDERR_KEEP:
            del self.tail[: len(self.tail) - STDERR_KEEP]
            self.dropped = True

    def text(self) -> str:
        gap = b"\n...\n" if self.dropped else b""
        return bytes(self.head + gap + self.tail).decode("utf-8", errors="replace")


def _collect(child: subprocess.Popen[bytes], *, timeout: float, max_output: int | None) -> tuple[str, str, _Usage]:
    """Read both pipes until the child exits, enforcing the deadline and the stdout bound.

    The child is reaped here with ``wait4`` so its CPU time and peak memory are known (the reason
    a confined tool was stopped, and what a render cost).
    """
    assert child.stdout is not None and child.stderr is not None
    deadline = time.monotonic() + timeout
    out, err = bytearray(), _Stderr()
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ, out)
        selector.register(child.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimedOut(timeout, err.text())
            for key, _ in selector.select(timeout=remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.data is err:
                    err.add(chunk)
                else:
                    out += chunk
                    if max_output is not None and len(out) > max_output:
                        raise OutputTooLarge(max_output)
    usage = _reap(child, deadline)
    if usage is None:
        raise TimedOut(timeout, err.text())
    return out.decode("utf-8", errors="replace"), err.text(), usage


@dataclass(frozen=True)
class _Usage:
    """What the kernel counted for a child that exited: CPU time and peak resident memory."""

    cpu_seconds: float = 0.0
    max_rss_bytes: int = 0


def _reap(child: subprocess.Popen[bytes], deadline: float) -> _Usage | None:
    """Wait for the child until ``deadline`` (at least briefly); its usage, or None on timeout.

    Sets ``child.returncode`` as :meth:`subprocess.Popen.wait` would, so the Popen object knows
    the child is gone.
    """
    give_up, pause = max(deadline, time.monotonic() + 0.1), 0.0005
    while True:
        try:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        except ChildProcessError:  # already reaped through the Popen object
            child.wait()
            return _Usage()
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return _Usage(usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)
        if time.monotonic() >= give_up:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """End the child's process group (harmless when it already exited) and reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    for pipe in (child.stdout, child.stderr):
        if pipe is not None:
            pipe.close()
