"""Run git safely: argument lists, timeouts, a clean environment, credentials never on argv.

Git runs through :func:`mergeway.proc.execute` like every other tool (its own process group, killed
when the call ends, so a timeout also ends ``git-remote-http`` and friends). Every git child gets an
environment built from :func:`mergeway.proc.clean_env`'s allow-list rather than ``os.environ``: an
inherited ``GIT_DIR``, ``GIT_INDEX_FILE`` or ``GIT_CONFIG_PARAMETERS`` (set, for example, when a
worker runs inside a git hook or a CI job) would silently point git at the wrong repository or
change its config. User and system config files are ignored too, so a developer's ``~/.gitconfig``
cannot change what the worker does, and ``GIT_TERMINAL_PROMPT=0`` turns a missing credential into an
error instead of a hang.

Credentials travel as an ``http.<url>.extraHeader`` set through ``GIT_CONFIG_COUNT`` /
``GIT_CONFIG_KEY_n`` / ``GIT_CONFIG_VALUE_n`` in the child's environment (the technique
``actions/checkout`` uses): not in the URL, not in ``-c`` on the command line (visible in ``ps``),
and scoped to the forge's host so a redirect elsewhere does not receive it.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from mergeway import proc
from mergeway.forge.base import GitCredentials
from mergeway.redaction import redact, register_secret

log = logging.getLogger("mergeway.git")


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


#: What a git command printed, its exit status and how long it took.
GitResult = proc.Completed


def base_env(home: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for git: :func:`mergeway.proc.clean_env` plus settings that make git predictable."""
    return proc.clean_env(
        {
            "HOME": str(home or Path(tempfile.gettempdir())),
            "GIT_TERMINAL_PROMPT": "0",
            "GCM_INTERACTIVE": "never",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Mergeway",
            "GIT_AUTHOR_EMAIL": "mergeway@localhost",
            "GIT_COMMITTER_NAME": "Mergeway",
            "GIT_COMMITTER_EMAIL": "mergeway@localhost",
            **(extra or {}),
        }
    )


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
    log.debug("git %s (cwd=%s)", " ".join(args), cwd or ".")
    try:
        result = proc.execute(argv, cwd=cwd, env=env if env is not None else base_env(), timeout=timeout)
    except proc.TimedOut as exc:
        raise GitTimeoutError(args, None, exc.stderr, note=f"timed out after {timeout:.0f}s") from None
    if check and result.returncode != 0:
        raise GitError(args, result.returncode, result.stderr)
    return result
