"""``-m 'not redis and not cluster'`` (``make test-quick``) selects only tests that need neither.

The ``redis`` and ``cluster`` markers are implied by the fixtures a test uses (tests/conftest.py),
so a module that forgets ``pytestmark`` cannot leak a Redis- or cluster-starting test into the
quick run. Checked on the real suite's collection, as ``make test-quick`` would collect it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import IMPLIED_MARKERS, ROOT


@pytest.mark.timeout(240)  # collects the whole suite in a subprocess (~30 s on a busy 2-core machine)
def test_the_quick_selection_starts_no_redis_and_no_cluster() -> None:
    quick = " and ".join(f"not {marker}" for marker in IMPLIED_MARKERS.values())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures-per-test", "-m", quick, "-q", "-p", "no:cacheprovider", "tests"],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    selected = re.findall(r"^-+ fixtures used by (\S+) -+$", result.stdout, flags=re.M)
    assert len(selected) > 100, "the quick selection still holds the unit tests"
    leaked = re.findall(rf"^({'|'.join(IMPLIED_MARKERS)})\b", result.stdout, flags=re.M)
    assert leaked == []
