"""The `mergeway` command imports only what the command it runs uses (start-up is most of a small run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Modules a plain-YAML preview or apply never needs: the official client and its HTTP stack, the
#: settings, subprocess machinery, what dataclasses and ThreadPoolExecutor would pull in, and
#: shutil (with bz2 and lzma), which argparse imports to measure the terminal unless told the width.
UNUSED = (
    "kubernetes",
    "urllib3",
    "http",
    "email",
    "mergeway.config",
    "subprocess",
    "tempfile",
    "dataclasses",
    "inspect",
    "logging",
    "concurrent",
    "shutil",
    "bz2",
    "lzma",
)


@pytest.mark.parametrize("command", ["preview", "apply"])
def test_a_plain_yaml_run_imports_nothing_it_does_not_use(command: str, tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n")
    probe = (
        "import sys\n"
        "from mergeway.cli import main\n"
        # Rendered, then stopped at the cluster: no kubeconfig there.
        f"rc = main([{command!r}, {str(tmp_path)!r}, '--kubeconfig', {str(tmp_path / 'none')!r}])\n"
        f"unused = {UNUSED!r}\n"
        "loaded = sorted(m for m in sys.modules if m in unused or m.startswith(tuple(u + '.' for u in unused)))\n"
        "print(rc, ' '.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out[0] == "2", "the run should stop at the missing kubeconfig"
    assert out[1:] == []


def test_status_reads_records_without_the_web_stack_or_the_engine() -> None:
    """``mergeway status`` prints the page's rows (mergeway.page.model/text), not its HTML or access check."""
    unused = ("flask", "jinja2", "werkzeug", "markupsafe", "kubernetes", "mergeway.page.html", "mergeway.page.access")
    probe = (
        "import sys\n"
        "from mergeway.cli import main\n"
        # Nothing answers on port 1: the command stops at its first Redis request.
        "rc = main(['status', '--redis-url', 'redis://127.0.0.1:1/0'])\n"
        f"unused = {unused!r}\n"
        "loaded = sorted(m for m in sys.modules if m in unused or m.startswith(tuple(u + '.' for u in unused)))\n"
        "print(rc, 'mergeway.page.model' in sys.modules, ' '.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out[:2] == ["2", "True"], out
    assert out[2:] == []
