"""Run git safely: argument lists, timeouts, a clean environment, credentials never on argv.

Every git child gets an environment built from scratch rather than ``os.environ``: an inherited
``GIT_DIR``, ``GIT_INDEX_FILE`` or ``GIT_CONFIG_PARAMETERS`` (set, for example, when a worker runs
inside a git hook or a CI job) would silently point git at the wrong repository or change its
config. User and system config files are ignored too, so a developer's ``~/.gitconfig`` cannot
change what the worker does, and ``GIT_TERMINAL_PROMPT=0`` turns a missing credential into an
error instead of a hang.

Credentials travel as an ``http.<url>.extraHeader`` set through ``GIT_CONFIG_COUNT`` /
``GIT_CONFIG_KEY_n`` / ``GIT_CONFIG_VALUE_n`` in the child's environment (the technique
``actions/checkout`` uses): not in the URL, not in ``-c`` on the command line (visible in ``ps``),
and scoped to the forge's host so a redirect elsewhere does not receive it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from mergeway.forge.base import GitCredentials
from mergeway.redaction import redact, register_secret

log = logging.getLogger("mergeway.git")

#: The only variables a git child inherits: enough to find binaries, reach a proxy and trust a CA.
PASSTHROUGH = (
    "PATH", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy",
)  # fmt: skip

#: Indirection so tests can record every git process (argv and env) this module starts.
_popen = subprocess.Popen


class GitError(RuntimeError):
    """A git command failed. The message quotes git's own error, with secrets masked."""

    def __init__(self, args: Sequence[str], returncode: int | None, stderr: str, *, note: str = "") -> None:
        self.git_args = list(args)
        self.returncode = returncode
        self.stderr = redact(stderr)
        tail = " ".join(self.stderr.strip().splitlines()[-5:])
        what = note or f"exit status {returncode}"
        super().__init__(redact(f"git {' '.join(args[:2])} failed ({what}): {tail}".rstrip(": ")))


class GitTimeoutError(GitError):
    """A git command ran past its timeout and was killed (with its children)."""


@dataclass(frozen=True)
class GitResult:
    stdout: str
    stderr: str
    returncode: int
    seconds: float


def base_env(home: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for git: nothing inherited beyond :data:`PASSTHROUGH`."""
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(
        {
            "HOME": str(home or Path(tempfile.gettempdir())),
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GCM_INTERACTIVE": "never",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Mergeway",
            "GIT_AUTHOR_EMAIL": "mergeway@localhost",
            "GIT_COMMITTER_NAME": "Mergeway",
            "GIT_COMMITTER_EMAIL": "mergeway@localhost",
        }
    )
    if extra:
        env.update(extra)
    return env


class CredentialHostError(ValueError):
    """Credentials were about to be offered to a host other than the configured forge's."""


def credential_env(
    url: str, credentials: GitCredentials | None, *, allowed_origins: Collection[str] | None = None
) -> dict[str, str]:
    """Config entries (as ``GIT_CONFIG_*`` variables) that authenticate git to ``url``'s host.

    With ``allowed_origins`` (``scheme://host:port``, see :func:`mergeway.forge.identity.origin`),
    a URL on any other origin is refused before anything is configured: the forge token goes to the
    configured forge or nowhere. Redirects are not followed, so the header cannot travel on either.
    """
    if credentials is None:
        return {}
    register_secret(credentials.password)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CredentialHostError("credentials can only be sent to an http(s) remote")
    if allowed_origins is not None and _origin(parts) not in allowed_origins:
        raise CredentialHostError(
            f"refusing to send forge credentials to {parts.hostname}:{parts.port or ''}, "
            "which is not the configured forge"
        )
    prefix = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/"
    basic = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    register_secret(basic)
    return {
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": f"http.{prefix}.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        # No credential helper may store or offer anything else.
        "GIT_CONFIG_KEY_1": "credential.helper",
        "GIT_CONFIG_VALUE_1": "",
        "GIT_CONFIG_KEY_2": "http.followRedirects",
        "GIT_CONFIG_VALUE_2": "false",
    }


def _origin(parts: SplitResult) -> str:
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    secrets: Sequence[str] = (),
    stdin: bytes | None = None,
    check: bool = True,
) -> GitResult:
    """Run ``git *args`` and return its output; raise :class:`GitError` on failure.

    ``env`` replaces the default :func:`base_env`. ``secrets`` are values that must not appear on the
    command line (checked, as a guard against a future caller's mistake) and are masked in errors.
    """
    argv = ["git", *args]
    for secret in secrets:
        register_secret(secret)
        if secret and any(secret in arg for arg in argv):
            raise ValueError("refusing to run git with a credential on its command line")
    child_env = dict(env) if env is not None else base_env()
    log.debug("git %s (cwd=%s)", " ".join(args), cwd or ".")
    started = time.monotonic()
    proc = _popen(
        argv,
        cwd=str(cwd) if cwd else None,
        env=child_env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so a timeout kills git-remote-http and friends as well
    )
    try:
        out, err = proc.communicate(input=stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        raise GitTimeoutError(
            args, None, err.decode("utf-8", "replace"), note=f"timed out after {timeout:.0f}s"
        ) from None
    seconds = time.monotonic() - started
    result = GitResult(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), proc.returncode, seconds)
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, result.stderr)
    return result


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
