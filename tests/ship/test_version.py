"""One version, in mergeway/__init__.py; everything that shows a version shows that one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

import mergeway
from tests.conftest import ROOT


def test_chart_changelog_and_cli_follow_the_package_version():
    chart = yaml.safe_load((ROOT / "charts" / "mergeway" / "Chart.yaml").read_text())
    assert chart["appVersion"] == mergeway.__version__
    assert chart["version"] == mergeway.__version__
    first = re.search(r"^## \[?([0-9][^\] ]*)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert first is not None and first.group(1) == mergeway.__version__, "CHANGELOG.md's newest entry"
    out = subprocess.run(
        [str(Path(sys.executable).parent / "mergeway"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == f"mergeway {mergeway.__version__}"


def test_pyproject_has_no_second_version():
    text = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r"^version\s*=\s*\"", text, re.MULTILINE), "a literal version in pyproject.toml"
    assert 'version = {attr = "mergeway.__version__"}' in text
