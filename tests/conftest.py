"""Test configuration: each real component comes from a plugin in ``tests/fixtures``."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Read-only material beside the checkout (the manifests the engine tests render and apply).
SHARED = ROOT.parent / "shared"
#: The real webhook bodies, kept in the repository byte for byte (see SOURCES.md there).
WEBHOOKS = ROOT / "tests" / "data" / "webhooks"
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
