"""A checkout cache for workers: one bare mirror per repository, one clean worktree per job.

Cloning a repository for every job costs its whole history each time. Instead each repository has
a bare mirror under ``<cache>/mirrors/<forge>/<owner>/<name>.git`` that is fetched incrementally
(only objects the mirror lacks cross the network), and a job gets ``git worktree add --detach`` at
the exact SHA it was asked for, in a fresh directory removed afterwards.

Concurrency: every operation that writes the mirror (init, fetch, worktree add/remove) holds an
exclusive ``flock`` on ``<cache>/locks/<forge>/<owner>/<name>.lock``, so jobs on the same repository in
threads or in separate worker processes take turns; jobs on different repositories do not wait for
each other. Worktrees stay usable after the lock is released: auto-gc is disabled in mirrors, and
detached worktree HEADs count as reachable anyway.

Branch refs are mirrored with ``+refs/heads/*`` and ``--prune``: a force-push replaces the ref, a
deleted branch disappears. Pull request heads are fetched one at a time by their forge ref
(``refs/pull/N/head`` / ``refs/merge-requests/N/head``), which exist even for forks and keep
force-pushed-away commits out of reach only once the forge garbage-collects them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from mergeway.config import Settings
from mergeway.events import Repository
from mergeway.forge import forge_for
from mergeway.forge.base import GitCredentials
from mergeway.forge.identity import clone_url, git_origins
from mergeway.git.run import CredentialHostError, GitError, GitResult, base_env, credential_env, run_git

log = logging.getLogger("mergeway.git")

CredentialsProvider = Callable[[Repository], GitCredentials | None]
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class CheckoutError(RuntimeError):
    """The requested commit could not be checked out (missing, or the mirror is unusable)."""


class LockTimeoutError(CheckoutError):
    """Another job held the repository's mirror lock for longer than ``lock_timeout``."""


@dataclass(frozen=True)
class FetchResult:
    """What one fetch did: wall time, and the refspecs asked for (``fetched`` is False when skipped)."""

    seconds: float
    fetched: bool
    refspecs: tuple[str, ...] = ()


def pr_head_ref(repo: Repository, number: int) -> str:
    """Where the forge publishes a pull request's head commit."""
    if repo.forge == "gitlab":
        return f"refs/merge-requests/{number}/head"
    return f"refs/pull/{number}/head"


class CheckoutCache:
    """Mirrors and per-job worktrees under ``root``."""

    def __init__(
        self,
        root: Path,
        credentials: CredentialsProvider,
        *,
        timeout: float = 600.0,
        lock_timeout: float = 600.0,
        remote_url: Callable[[Repository], str] | None = None,
        allowed_origins: Collection[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.credentials = credentials
        self.timeout = timeout
        self.lock_timeout = lock_timeout
        #: Where a repository is fetched from; default ``repo.clone_url`` (the worker builds it instead).
        self.remote_url = remote_url or (lambda repo: repo.clone_url)
        #: Origins credentials may go to (``None``: the remote's own, for caches built by hand).
        self.allowed_origins = allowed_origins
        self._home = self.root / "home"  # an empty HOME for git children

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckoutCache:
        """The worker's cache: git talks only to the configured forge hosts, with the API's credentials.

        The remote is rebuilt from the configured host and the repository path on every use, so a
        ``clone_url`` that came from anywhere else is never contacted.
        """
        return cls(
            settings.cache_dir / "git",
            lambda repo: forge_for(repo, settings).git_credentials(),
            timeout=settings.git_timeout_seconds,
            remote_url=lambda repo: clone_url(repo.forge, repo.full_name, settings),
            allowed_origins=git_origins(settings),
        )

    # -- paths and locks ---------------------------------------------------------------------------

    def _relpath(self, repo: Repository) -> Path:
        segments = repo.full_name.split("/")
        if not segments or not all(_SEGMENT.match(s) and s not in (".", "..") for s in segments):
            raise CheckoutError(f"unexpected repository name {repo.full_name!r}")
        return Path(repo.forge, *segments)

    def mirror_path(self, repo: Repository) -> Path:
        rel = self._relpath(repo)
        return self.root / "mirrors" / rel.parent / f"{rel.name}.git"

    @contextlib.contextmanager
    def _locked(self, repo: Repository) -> Iterator[None]:
        rel = self._relpath(repo)
        lock_path = self.root / "locks" / rel.parent / f"{rel.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise LockTimeoutError(
                            f"gave up waiting {self.lock_timeout:.0f}s for the git mirror of {repo.full_name}"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- git plumbing -----------------------------------------------------------------------------

    def _git(
        self, repo: Repository, args: list[str], *, cwd: Path | None = None, remote: bool = False, check: bool = True
    ) -> GitResult:
        """Run git on the mirror; with ``remote`` the child gets credentials for the clone URL."""
        self._home.mkdir(parents=True, exist_ok=True)
        extra: dict[str, str] = {}
        secrets: list[str] = []
        if remote:
            creds = self.credentials(repo)
            if creds is not None:
                try:
                    extra = credential_env(self.remote_url(repo), creds, allowed_origins=self.allowed_origins)
                except CredentialHostError as exc:
                    raise CheckoutError(f"{repo.full_name}: {exc}") from None
                secrets.append(creds.password)
        env = base_env(self._home, extra)
        git_dir = ["--git-dir", str(self.mirror_path(repo))] if cwd is None else []
        return run_git([*git_dir, *args], cwd=cwd, env=env, timeout=self.timeout, secrets=secrets, check=check)

    def _ensure_mirror(self, repo: Repository) -> Path:
        path = self.mirror_path(repo)
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", str(path)], env=base_env(self._home), timeout=self.timeout)
            for key, value in (
                ("gc.auto", "0"),
                ("core.logAllRefUpdates", "false"),
                ("fetch.writeCommitGraph", "false"),
                ("protocol.version", "2"),
            ):
                self._git(repo, ["config", key, value])
        url = self.remote_url(repo)
        current = self._git(repo, ["config", "--get", "remote.origin.url"], check=False).stdout.strip()
        if current != url:
            if "@" in url.split("//", 1)[-1].split("/", 1)[0]:
                raise CheckoutError(f"clone URL of {repo.full_name} must not carry credentials")
            self._git(repo, ["config", "remote.origin.url", url])
        return path

    def has_commit(self, repo: Repository, sha: str) -> bool:
        if not self.mirror_path(repo).joinpath("HEAD").exists():
            return False
        return self._git(repo, ["cat-file", "-e", f"{sha}^{{commit}}"], check=False).returncode == 0

    def contains(self, repo: Repository, newer: str, older: str) -> bool:
        """Whether ``newer``'s history includes ``older`` (both in the mirror; a commit contains itself)."""
        if not self.has_commit(repo, newer) or not self.has_commit(repo, older):
            return False
        args = ["merge-base", "--is-ancestor", older, newer]
        return self._git(repo, args, check=False).returncode == 0

    def _fetch_locked(self, repo: Repository, pr_number: int | None, sha: str | None) -> FetchResult:
        started = time.monotonic()
        refspecs = ["+refs/heads/*:refs/heads/*"]
        if pr_number is not None:
            ref = pr_head_ref(repo, pr_number)
            refspecs.append(f"+{ref}:{ref}")
        fetch = ["fetch", "--quiet", "--prune", "--no-tags", "--no-auto-gc", "--no-write-fetch-head", "origin"]
        try:
            self._git(repo, [*fetch, *refspecs], remote=True)
        except GitError as exc:
            if pr_number is None or "couldn't find remote ref" not in exc.stderr:
                raise
            # The forge removed the PR ref (GitLab cleans them up after merge): branches still matter.
            log.info("%s has no %s any more; fetching branches only", repo.full_name, refspecs[-1])
            refspecs.pop()
            self._git(repo, [*fetch, *refspecs], remote=True)
        if sha is not None and not self.has_commit(repo, sha):
            # Reachable from no ref we mirror (an older push of a force-pushed PR, say). GitHub and
            # GitLab serve reachable commits by id; if that fails the commit is really gone.
            self._git(
                repo,
                ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "origin", sha],
                remote=True,
                check=False,
            )
        return FetchResult(time.monotonic() - started, True, tuple(refspecs))

    # -- public API ---------------------------------------------------------------------------------

    def fetch(self, repo: Repository, *, pr_number: int | None = None, sha: str | None = None) -> FetchResult:
        """Bring the mirror up to date (branches, plus the PR head when ``pr_number`` is given)."""
        with self._locked(repo):
            self._ensure_mirror(repo)
            return self._fetch_locked(repo, pr_number, sha)

    def branch_head(self, repo: Repository, branch: str) -> str:
        """The branch's current head after a fetch: what a deploy job should apply."""
        self.fetch(repo)
        result = self._git(repo, ["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"], check=False)
        if result.returncode != 0:
            raise CheckoutError(f"branch {branch} does not exist in {repo.full_name}")
        return result.stdout.strip()

    @contextlib.contextmanager
    def checkout(self, repo: Repository, sha: str, pr_number: int | None = None) -> Iterator[Path]:
        """A clean worktree at exactly ``sha`` for the duration of the ``with`` block.

        Fetches only when the mirror lacks ``sha`` (so a re-run of a job costs no network), then
        checks out detached at that commit. Raises :class:`CheckoutError` when the commit does not
        exist on the forge (e.g. a force-push removed it and it was never fetched).
        """
        sha = sha.strip().lower()
        if not _SHA.match(sha):
            raise CheckoutError(f"not a full commit SHA: {sha!r}")
        worktree = self.root / "worktrees" / f"{repo.forge}-{uuid.uuid4().hex[:8]}-{sha[:12]}"
        with self._locked(repo):
            self._ensure_mirror(repo)
            if not self.has_commit(repo, sha):
                result = self._fetch_locked(repo, pr_number, sha)
                log.info("fetched %s in %.2fs for %s", repo.full_name, result.seconds, sha[:12])
            if not self.has_commit(repo, sha):
                raise CheckoutError(
                    f"commit {sha[:12]} is not in {repo.full_name}: it was never pushed, or a force-push "
                    "removed it before Mergeway fetched it"
                )
            self._git(repo, ["worktree", "prune"])
            worktree.parent.mkdir(parents=True, exist_ok=True)
            self._git(repo, ["worktree", "add", "--quiet", "--detach", "--force", str(worktree), sha])
        try:
            yield worktree
        finally:
            with self._locked(repo):
                removed = self._git(repo, ["worktree", "remove", "--force", str(worktree)], check=False)
                if removed.returncode != 0:
                    shutil.rmtree(worktree, ignore_errors=True)
                    self._git(repo, ["worktree", "prune"], check=False)

    def push(self, repo: Repository, worktree: Path, branch: str, *, source: str = "HEAD", force: bool = False) -> None:
        """Push ``source`` from a job's worktree to ``refs/heads/<branch>`` on the forge."""
        args = ["push", "--quiet", "--no-verify"]
        if force:
            args.append("--force")
        self._git(repo, [*args, "origin", f"{source}:refs/heads/{branch}"], cwd=worktree, remote=True)

    def git(self, repo: Repository, worktree: Path, *args: str) -> GitResult:
        """Run a local git command (no network, no credentials) in a job's worktree, e.g. ``revert``."""
        return self._git(repo, list(args), cwd=worktree)
