"""Real git repositories on disk for the forge simulator, and git's smart HTTP in front of them.

Tests change repositories through plumbing (``hash-object``, ``update-index`` on a private index,
``commit-tree``, ``update-ref``) so no working tree is needed and each helper is a few fast git
calls. Bulk history (the 1,000-commit fetch benchmark) goes through one ``git fast-import``.
Merges run in a throwaway worktree because that is where git's merge machinery lives.

Clients reach the repositories through ``git http-backend`` (the CGI program git ships), run per
request with the body on stdin, exactly as a web server would run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Symlink:
    """A file committed as a symbolic link to ``target`` (git mode 120000), as a PR can push one."""

    target: str


Files = Mapping[str, str | bytes | Symlink | None]


@dataclass(frozen=True)
class Author:
    name: str
    email: str


SIM_AUTHOR = Author("Forge Simulator", "forgesim@localhost")


class GitFailed(RuntimeError):
    pass


def _env(author: Author | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    author = author or SIM_AUTHOR
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": tempfile.gettempdir(),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": author.name,
        "GIT_COMMITTER_EMAIL": author.email,
    }
    if extra:
        env.update(extra)
    return env


def git(
    args: list[str],
    *,
    cwd: Path | None = None,
    git_dir: Path | None = None,
    stdin: bytes | None = None,
    author: Author | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 120.0,
) -> str:
    argv = ["git"] + (["--git-dir", str(git_dir)] if git_dir else []) + args
    proc = subprocess.run(
        argv, cwd=cwd, input=stdin, capture_output=True, env=_env(author, env), timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise GitFailed(f"{' '.join(argv[:4])}...: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout.decode("utf-8", "replace")


class BareRepo:
    """One bare repository plus the operations a test (or a merge button) performs on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()

    def init(self, default_branch: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        git(["init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(self.path)])
        for key, value in (
            ("http.receivepack", "true"),
            ("uploadpack.allowAnySHA1InWant", "true"),
            ("gc.auto", "0"),
            ("receive.denyDeleteCurrent", "warn"),
        ):
            self.git(["config", key, value])

    def git(self, args: list[str], **kwargs: object) -> str:
        return git(args, git_dir=self.path, **kwargs)  # type: ignore[arg-type]

    # -- reading ------------------------------------------------------------------------------------

    def refs(self) -> dict[str, str]:
        out = self.git(["for-each-ref", "--format=%(refname) %(objectname)"])
        refs: dict[str, str] = {}
        for line in out.splitlines():
            name, _, sha = line.partition(" ")
            if name:
                refs[name] = sha
        return refs

    def resolve(self, rev: str) -> str | None:
        out = self.git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], check=False).strip()
        return out or None

    def branch_head(self, branch: str) -> str | None:
        return self.resolve(f"refs/heads/{branch}")

    def commit_info(self, sha: str) -> dict[str, object] | None:
        fmt = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
        out = self.git(["show", "-s", f"--format={fmt}", sha, "--"], check=False)
        if not out:
            return None
        parts = out.split("\x00")
        if len(parts) < 10:
            return None
        return {
            "sha": parts[0],
            "tree": parts[1],
            "parents": parts[2].split() if parts[2] else [],
            "author_name": parts[3],
            "author_email": parts[4],
            "author_date": parts[5],
            "committer_name": parts[6],
            "committer_email": parts[7],
            "committer_date": parts[8],
            "message": parts[9].rstrip("\n"),
        }

    def rev_list(self, spec: list[str]) -> list[str]:
        return self.git(["rev-list", "--reverse", *spec]).split()

    def is_ancestor(self, older: str, newer: str) -> bool:
        proc = subprocess.run(
            ["git", "--git-dir", str(self.path), "merge-base", "--is-ancestor", older, newer],
            env=_env(),
            capture_output=True,
            check=False,
        )
        return proc.returncode == 0

    # -- writing ------------------------------------------------------------------------------------

    def update_ref(self, ref: str, new: str | None, old: str | None = None) -> None:
        if new is None:
            self.git(["update-ref", "-d", ref] + ([old] if old else []))
        else:
            self.git(["update-ref", ref, new] + ([old] if old else []))

    def commit_files(self, parent: str | None, files: Files, message: str, author: Author) -> str:
        """A new commit: ``parent``'s tree with ``files`` written (``None`` deletes). Returns its SHA."""
        with tempfile.TemporaryDirectory(prefix="forgesim-index-") as tmp:
            index_env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent:
                self.git(["read-tree", parent], env=index_env)
            for name, content in files.items():
                if content is None:
                    # Mode 0 removes the entry; unlike --force-remove it needs no work tree (bare repo).
                    self.git(["update-index", "--index-info"], env=index_env, stdin=f"0 {'0' * 40}\t{name}\n".encode())
                    continue
                mode = "120000" if isinstance(content, Symlink) else "100644"
                if isinstance(content, Symlink):
                    data = content.target.encode()
                else:
                    data = content.encode() if isinstance(content, str) else content
                blob = self.git(["hash-object", "-w", "--stdin"], stdin=data).strip()
                self.git(["update-index", "--add", "--cacheinfo", f"{mode},{blob},{name}"], env=index_env)
            tree = self.git(["write-tree"], env=index_env).strip()
        parents = ["-p", parent] if parent else []
        return self.git(["commit-tree", tree, *parents, "-m", message], author=author).strip()

    def bulk_commits(self, branch: str, count: int, author: Author, *, path: str = "history.txt") -> str:
        """Append ``count`` commits to ``branch`` with one ``git fast-import`` (each edits ``path``)."""
        head = self.branch_head(branch)
        now = int(time.time())
        lines: list[bytes] = []
        for i in range(count):
            content = f"line {i}\n".encode() * 3
            message = f"history commit {i}\n".encode()
            lines.append(f"commit refs/heads/{branch}\n".encode())
            lines.append(f"committer {author.name} <{author.email}> {now + i} +0000\n".encode())
            lines.append(f"data {len(message)}\n".encode() + message)
            if i == 0 and head:
                lines.append(f"from {head}\n".encode())
            lines.append(f"M 100644 inline {path}.{i % 50}\n".encode())
            lines.append(f"data {len(content)}\n".encode() + content + b"\n")
        self.git(["fast-import", "--quiet"], stdin=b"".join(lines), timeout=600)
        new = self.branch_head(branch)
        assert new is not None
        return new

    def merge(self, base_branch: str, head_sha: str, method: str, message: str, author: Author) -> tuple[str, int]:
        """Merge ``head_sha`` into ``base_branch`` like the forge's merge button.

        ``merge``: a merge commit (two parents). ``squash``: one commit with the combined change.
        ``rebase``: the PR's commits replayed on the base (new SHAs, same messages and authors).
        Returns the new base head and the number of PR commits. Raises on conflicts.
        """
        base = self.branch_head(base_branch)
        if base is None:
            raise GitFailed(f"base branch {base_branch} does not exist")
        commits = self.rev_list([f"{base}..{head_sha}", "--no-merges"])
        with tempfile.TemporaryDirectory(prefix="forgesim-merge-") as tmp:
            work = Path(tmp) / "wt"
            self.git(["worktree", "add", "--quiet", "--detach", str(work), base])
            try:
                if method == "merge":
                    git(["merge", "--quiet", "--no-ff", "-m", message, head_sha], cwd=work, author=author)
                elif method == "squash":
                    git(["merge", "--quiet", "--squash", head_sha], cwd=work, author=author)
                    git(["commit", "--quiet", "--allow-empty", "-m", message], cwd=work, author=author)
                elif method == "rebase":
                    for sha in commits:
                        git(
                            ["cherry-pick", "--quiet", "--allow-empty", "--keep-redundant-commits", sha],
                            cwd=work,
                            author=author,
                        )
                else:
                    raise ValueError(f"unknown merge method {method!r}")
                new = git(["rev-parse", "HEAD"], cwd=work).strip()
            finally:
                self.git(["worktree", "remove", "--force", str(work)], check=False)
                self.git(["worktree", "prune"], check=False)
        self.update_ref(f"refs/heads/{base_branch}", new, base)
        return new, len(commits)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def run_http_backend(
    project_root: Path,
    path_info: str,
    method: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    remote_user: str,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run ``git http-backend`` for one request; returns (status, headers, body)."""
    env = _env(
        extra={
            "GIT_PROJECT_ROOT": str(project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path_info,
            "REQUEST_METHOD": method,
            "QUERY_STRING": query,
            "REMOTE_USER": remote_user,
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
    )
    if headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = headers["Content-Encoding"]
    if headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = headers["Git-Protocol"]
    proc = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env, timeout=300, check=False)
    raw = proc.stdout
    head, sep, payload = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, payload = raw.partition(b"\n\n")
    status = 200
    out_headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        if not line.strip():
            continue
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            out_headers.append((name.strip(), value.strip()))
    if proc.returncode != 0 and not raw:
        return 500, [("Content-Type", "text/plain")], proc.stderr
    return status, out_headers, payload
