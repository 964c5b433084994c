"""The webhook bodies in tests/data/webhooks are the published ones, byte for byte.

Signature tests sign the exact bytes of each file: a copy whose line endings or whitespace changed
would still parse, and still verify against its own signature, while no longer being what a forge
sends. SOURCES.md records each file's size and sha256 at the source; this holds the copies to it.
"""

from __future__ import annotations

import hashlib
import re

from tests.conftest import WEBHOOKS

#: A table row of SOURCES.md: | `forge/file.json` | bytes | ... | `sha256` | notes |
ROW = re.compile(r"^\| `(?P<file>(?:github|gitlab)/[^`]+\.json)` \| (?P<size>\d+) \|.*\| `(?P<sha>[0-9a-f]{64})` \|")


def _recorded() -> dict[str, tuple[int, str]]:
    text = (WEBHOOKS / "SOURCES.md").read_text(encoding="utf-8")
    rows = (ROW.match(line) for line in text.splitlines())
    return {m["file"]: (int(m["size"]), m["sha"]) for m in rows if m}


def test_every_body_is_recorded_and_unchanged() -> None:
    recorded = _recorded()
    present = {str(p.relative_to(WEBHOOKS)) for p in WEBHOOKS.glob("*/*.json")}
    assert present == set(recorded), "tests/data/webhooks and its SOURCES.md list different files"
    for name, (size, sha) in sorted(recorded.items()):
        body = (WEBHOOKS / name).read_bytes()
        assert (len(body), hashlib.sha256(body).hexdigest()) == (size, sha), f"{name} differs from its source"
