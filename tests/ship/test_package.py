"""``pip install .`` into a fresh virtualenv gives working commands, without the checkout.

The checkout is never on ``sys.path`` of the installed commands: they run from a temporary
directory with a sanitised environment (no PYTHONPATH), so a module that only works from the
source tree (a path-relative gunicorn config, an import of tests/ or tools/) fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import mergeway
from tests.conftest import ROOT
from tests.fixtures.redis_server import free_port
from tests.fixtures.services import TEST_GITHUB_SECRET, TEST_GITLAB_SECRET, WebProcess
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.redis


class InstalledWeb(WebProcess):
    """The web process started from its own directory: gunicorn puts its working directory on
    ``sys.path``, so starting it from the checkout (as the Procfile fixtures do) would hide a
    package that only works from the source tree."""

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.log_path.parent,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{argv[:3]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _clean_env(home: Path) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv of the test run; pip's own settings (cache, index, CA) kept."""
    keep = ("PATH", "LANG", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "PIP_INDEX_URL")
    env = {k: v for k, v in os.environ.items() if k in keep or (k.startswith("PIP_") and k != "PIP_FIND_LINKS")}
    env["HOME"] = str(home)
    # pip's cache is the user's (makes the install quick); HOME is private for everything else.
    env["PIP_CACHE_DIR"] = str(Path.home() / ".cache" / "pip")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """(virtualenv bin dir, the wheel, env): the package built as a wheel and installed from it."""
    base = tmp_path_factory.mktemp("package")
    env = _clean_env(base / "home")
    (base / "home").mkdir()
    src = base / "src"
    # Build from a copy: a build must not depend on (or write into) the working tree.
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build", ".*_cache"),
    )
    venv.create(base / "venv", with_pip=True)
    bin_dir = base / "venv" / "bin"
    _run([str(bin_dir / "pip"), "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(src)], cwd=base, env=env)
    wheel = next((base / "dist").glob("mergeway-*.whl"))
    _run([str(bin_dir / "pip"), "install", "-q", "--no-compile", str(wheel)], cwd=base, env=env)
    yield bin_dir, wheel, env


def test_wheel_holds_the_packages_and_no_test_tooling(installed):
    _, wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("mergeway-")}
    assert tops == {"mergeway", "webhook_service", "workers"}, tops
    assert not [n for n in names if n.startswith(("tests/", "tools/", "bench/"))]
    assert f"mergeway-{mergeway.__version__}.dist-info/METADATA" in names


def test_installed_cli_runs_outside_the_checkout(installed, tmp_path):
    bin_dir, _, env = installed
    assert _run([str(bin_dir / "mergeway"), "--version"], cwd=tmp_path, env=env).strip() == (
        f"mergeway {mergeway.__version__}"
    )
    where = _run([str(bin_dir / "python"), "-c", "import mergeway; print(mergeway.__file__)"], cwd=tmp_path, env=env)
    assert where.startswith(str(bin_dir.parent)), f"mergeway imported from {where}, not the virtualenv"
    assert str(ROOT) not in _run([str(bin_dir / "python"), "-c", "import sys; print(sys.path)"], cwd=tmp_path, env=env)


def test_installed_web_and_worker_start_against_redis(installed, tmp_path, redis_server):
    bin_dir, _, env = installed
    # A database of its own: other tests of the session share this Redis server.
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/9"
    policy = tmp_path / "policy.yaml"
    policy.write_text('rules:\n  - repositories: ["github:acme/*"]\n    clusters: [local]\n    namespaces: [shop]\n')
    settings = {
        **env,
        "PATH": f"{bin_dir}:{env['PATH']}",
        "REDIS_URL": redis_url,
        "MERGEWAY_POLICY_FILE": str(policy),
        "GITHUB_WEBHOOK_SECRET": TEST_GITHUB_SECRET,
        "GITLAB_WEBHOOK_SECRET": TEST_GITLAB_SECRET,
        "GITHUB_TOKEN": "ghp_testtoken0000000000000000000000000000",
        "GITLAB_TOKEN": "glpat-testtoken000000000000",
        "MERGEWAY_CACHE_DIR": str(tmp_path / "cache"),
        "WEB_CONCURRENCY": "1",
    }
    port = free_port()
    web_env = {**settings, "PORT": str(port)}
    web = InstalledWeb("installed-web", [str(bin_dir / "mergeway-web")], web_env, tmp_path, port)
    web.start()
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [str(bin_dir / "mergeway-worker"), "--concurrency", "1"],
        cwd=tmp_path,
        env=settings,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(web.ready, timeout=60, message="the installed web /healthz") == "ready", web.logs()[-3000:]
        assert web.request("GET", "/healthz") == (200, {"status": "ok", "version": mergeway.__version__})
        # Gunicorn ran with the packaged settings (JSON logs with redaction), not its bare defaults.
        assert any(r.get("logger") == "gunicorn.error" for r in web.log_records()), web.logs()[-2000:]
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        client.flushdb()
        # Celery binds each queue it consumes in Redis: the worker is connected and consuming.
        wait_for(
            lambda: worker.poll() is None and client.keys("_kombu.binding.*"),
            timeout=90,
            interval=0.2,
            message="the installed worker's queues in Redis",
        )
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        web.stop()
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        worker_log.close()


def test_sys_executable_is_not_the_fresh_venv():
    # Guard against the test itself running inside the venv it builds (it would prove nothing).
    assert "package" not in sys.prefix
