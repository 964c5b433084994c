"""Fetch GitHub's official API descriptions (pinned npm packages) into ~/.cache/mergeway/openapi.

The conformance tests (tests/conformance) use them as the oracle nobody on this project wrote:

- ``@octokit/openapi``: GitHub's REST OpenAPI description (``generated/api.github.com.json``);
- ``@octokit/openapi-webhooks``: one schema per webhook event and action.

Nothing of them is committed. ``npm pack`` downloads each tarball from the npm registry, its sha256
is checked against the pin below (a changed upstream tarball fails loudly instead of silently
changing what the tests check), and only the files the tests read are kept, like the cluster
binaries, in a directory per version. Re-running is a no-op once the cache is complete.

    python tools/conformance/fetch.py          # fetch what is missing; prints the cache directory
    python tools/conformance/fetch.py --check  # exit 1 if something is missing, fetch nothing
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Where the cluster binaries live too; outside the checkout so a fresh clone reuses it.
CACHE = Path(os.environ.get("MERGEWAY_CACHE_HOME", Path.home() / ".cache" / "mergeway")) / "openapi"
NPM_TIMEOUT = 600


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: str  # of the tarball npm pack writes
    files: tuple[str, ...]  # inside the tarball's package/ directory

    @property
    def directory(self) -> Path:
        return CACHE / f"{self.name.replace('@', '').replace('/', '-')}-{self.version}"

    def path(self, file: str) -> Path:
        return self.directory / file

    def complete(self) -> bool:
        return all(self.path(f).is_file() for f in self.files)


REST = Package(
    "@octokit/openapi",
    "23.0.2",
    "71a18407dd5e8464f4e0525daf03deabbe65abd9287d6adc7b5d98f516cd0d0c",
    ("generated/api.github.com.json", "package.json"),
)
WEBHOOKS = Package(
    "@octokit/openapi-webhooks",
    "12.1.0",
    "112b87c7dcda464640248dcf5965bcd69027c65bb45c26ae78fbf3f0d1eaa740",
    ("generated/api.github.com.json", "package.json"),
)
PACKAGES = (REST, WEBHOOKS)


class FetchError(RuntimeError):
    """npm failed, or the tarball is not the pinned one."""


def _npm_env(workdir: Path) -> dict[str, str]:
    """Only what npm needs: no tokens or proxies from the caller's shell leak into its config."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env["npm_config_cache"] = str(workdir / "npm-cache")
    env["npm_config_update_notifier"] = "false"
    env["npm_config_fund"] = "false"
    env["npm_config_audit"] = "false"
    return env


def fetch(package: Package) -> Path:
    """Make ``package``'s files present in the cache; returns its directory."""
    if package.complete():
        return package.directory
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError("npm is not installed (Debian: apt-get install npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=".fetch-") as tmp:
        work = Path(tmp)
        spec = f"{package.name}@{package.version}"
        result = subprocess.run(
            [npm, "pack", "--silent", "--pack-destination", str(work), spec],
            cwd=work,
            env=_npm_env(work),
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        tarballs = list(work.glob("*.tgz"))
        if result.returncode != 0 or len(tarballs) != 1:
            raise FetchError(f"npm pack {spec} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
        digest = hashlib.sha256(tarballs[0].read_bytes()).hexdigest()
        if digest != package.sha256:
            raise FetchError(f"{spec}: tarball sha256 {digest} is not the pinned {package.sha256}")
        staging = work / "out"
        with tarfile.open(tarballs[0]) as tar:
            for file in package.files:
                member = tar.getmember(f"package/{file}")
                target = staging / file
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise FetchError(f"{spec}: {file} is not a regular file")
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
        if package.directory.exists():
            shutil.rmtree(package.directory)
        staging.rename(package.directory)  # atomic: a half-fetched directory is never "complete"
    return package.directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only report whether the cache is complete")
    args = parser.parse_args(argv)
    missing = [p for p in PACKAGES if not p.complete()]
    if args.check:
        for p in missing:
            print(f"missing: {p.name}@{p.version} ({p.directory})", file=sys.stderr)
        return 1 if missing else 0
    try:
        for package in PACKAGES:
            print(fetch(package))
    except (FetchError, subprocess.TimeoutExpired, OSError, KeyError, tarfile.TarError) as exc:
        print(f"fetch.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
