"""One runner for every tool: timeouts, process-group kill, the environment allow-list, bounded output.

Tools are small shell scripts standing in for git, kubectl and helm (the runner treats every
program alike); git's own wrapper is exercised through a fake ``git`` first on PATH.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mergeway import proc
from mergeway.git import GitError, GitTimeoutError, run_git
from mergeway.git.run import base_env
from tests.fixtures.waiting import wait_for


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped by init does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def fake_git_env(tmp_path: Path, body: str) -> dict[str, str]:
    """git's environment with a ``git`` script first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script(bin_dir, "git", body)
    return {**base_env(tmp_path), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}


def started_pid(pid_file: Path) -> int:
    return int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), message="the grandchild"))


#: A tool that starts a grandchild (its output elsewhere, as a daemonising helper would) and lingers.
LINGER = 'sleep 300 >/dev/null 2>&1 </dev/null & echo $! > "{pid}"; sleep 300'
#: A tool that starts a grandchild and exits at once, successfully.
LEAVE_BEHIND = 'sleep 300 >/dev/null 2>&1 </dev/null & echo $! > "{pid}"; echo done'


def test_a_timeout_kills_the_tool_and_everything_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    tool = script(tmp_path, "kubectl", LINGER.format(pid=pid_file))
    with pytest.raises(proc.ToolError) as err:
        proc.run([str(tool)], timeout=1)
    assert str(err.value) == "kubectl: timed out after 1s"
    grandchild = started_pid(pid_file)
    wait_for(lambda: not alive(grandchild), timeout=10, message="the grandchild to be killed")


def test_a_git_timeout_kills_git_and_everything_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    env = fake_git_env(tmp_path, LINGER.format(pid=pid_file))
    with pytest.raises(GitTimeoutError) as err:
        run_git(["fetch", "origin"], env=env, timeout=1)
    assert str(err.value) == "git fetch origin failed (timed out after 1s)"
    grandchild = started_pid(pid_file)
    wait_for(lambda: not alive(grandchild), timeout=10, message="git's grandchild to be killed")


def test_nothing_a_successful_git_started_outlives_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    result = run_git(["gc"], env=fake_git_env(tmp_path, LEAVE_BEHIND.format(pid=pid_file)), timeout=30)
    assert (result.returncode, result.stdout) == (0, "done\n")
    grandchild = started_pid(pid_file)
    wait_for(lambda: not alive(grandchild), timeout=10, message="git's leftover child to be killed")


def test_children_inherit_only_the_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "inherited-token")
    monkeypatch.setenv("GIT_DIR", "/somewhere/else")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    env_dump = script(tmp_path, "helm", "env")
    tool_env = dict(line.split("=", 1) for line in proc.run([str(env_dump)], timeout=30).stdout.splitlines())
    assert set(tool_env) <= {*proc.INHERITED_ENV, "LC_ALL", "PWD", "SHLVL", "_"}
    assert tool_env["HTTPS_PROXY"] == "http://proxy.example:3128" and tool_env["LC_ALL"] == "C"
    git_dump = run_git(["version"], env=fake_git_env(tmp_path, "env"), timeout=30).stdout
    git_env = dict(line.split("=", 1) for line in git_dump.splitlines())
    assert "GITHUB_TOKEN" not in git_env and "GIT_DIR" not in git_env
    assert git_env["HTTPS_PROXY"] == "http://proxy.example:3128" and git_env["GIT_TERMINAL_PROMPT"] == "0"


def test_a_sandboxed_renderer_inherits_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    env_dump = script(tmp_path, "kubectl", "/usr/bin/env")
    with proc.sandbox() as box:
        printed = proc.run([str(env_dump)], env=box.env, timeout=30).stdout
        env = dict(line.split("=", 1) for line in printed.splitlines())
        assert env["HOME"] == str(box.home) and env["PATH"] != os.environ.get("PATH")
    assert env["HTTPS_PROXY"] == proc.NOWHERE and env["KUBECONFIG"] == "/dev/null"


def test_output_past_the_bound_is_refused(tmp_path: Path) -> None:
    chatty = script(tmp_path, "helm", "yes | head -c 200000")
    with pytest.raises(proc.ToolError) as err:
        proc.run([str(chatty)], timeout=30, max_output=1000, output_setting="MERGEWAY_MAX_RENDERED_BYTES")
    assert err.value.message == "refused: the output is larger than 1000 bytes (MERGEWAY_MAX_RENDERED_BYTES)"


def test_gits_last_words_survive_a_long_stderr(tmp_path: Path) -> None:
    noisy = "yes 'warning: odd' | head -c 300000 >&2; echo \"fatal: couldn't find remote ref x\" >&2; exit 128"
    with pytest.raises(GitError) as err:
        run_git(["fetch", "origin"], env=fake_git_env(tmp_path, noisy), timeout=30)
    assert err.value.stderr.rstrip().endswith("fatal: couldn't find remote ref x")
    assert str(err.value).endswith("fatal: couldn't find remote ref x")
    assert len(err.value.stderr) <= 2 * proc.STDERR_KEEP + 10


def test_a_tool_that_fails_says_why(tmp_path: Path) -> None:
    failing = script(tmp_path, "kubectl", "echo 'error: accumulating resources' >&2; exit 1")
    with pytest.raises(proc.ToolError) as err:
        proc.run([str(failing)], timeout=30)
    assert str(err.value) == "kubectl: error: accumulating resources"
    with pytest.raises(proc.ToolError) as missing:
        proc.run([str(tmp_path / "helm")], timeout=30)
    assert str(missing.value) == "helm: cannot run: No such file or directory"
