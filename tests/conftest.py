"""Test configuration: each real component comes from a plugin in ``tests/fixtures``."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = [
    "tests.fixtures.forgesim",
    "tests.fixtures.redis_server",
    "tests.fixtures.services",
    "tests.fixtures.cluster",
    "tests.fixtures.e2e",
    "tests.fixtures.secrets",
]
