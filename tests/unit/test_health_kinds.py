"""Health, kind by kind: what a deploy waits for, calls done or calls failed, for each row of README's
"What healthy means" table, from object documents as the API server returns them
(``tests/data/health/kinds.yaml``). Each case also records what kstatus says; where the two differ,
the README row must say so, so the table cannot drift from the rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mergeway.kube.health import assess

ROOT = Path(__file__).resolve().parents[2]
CASES: list[dict[str, Any]] = yaml.safe_load((ROOT / "tests" / "data" / "health" / "kinds.yaml").read_text())
#: kstatus's own word for an object being deleted; ours is "in progress" (the deploy keeps waiting).
KSTATUS = {"current": "current", "in_progress": "in_progress", "failed": "failed", "terminating": "in_progress"}


def _id(case: dict[str, Any]) -> str:
    return f"{case['row']}: {case['case']}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_each_kind_is_current_in_progress_or_failed_as_its_controller_reports(case: dict[str, Any]) -> None:
    health = assess(case["object"])
    assert health.state == case["expect"], health
    assert case.get("says", "") in health.message, health


def readme_rows() -> dict[str, str]:
    """README's "What healthy means" table: the first cell of each row (kind) -> its last (vs kstatus)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### What healthy means", 1)[1].split("\n#", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    return {re.sub(r"[`*]", "", cells[0]).strip(): cells[-1].strip() for cells in rows[1:]}


def test_the_readme_table_has_a_row_for_every_kind_and_names_every_difference_from_kstatus() -> None:
    rows = readme_rows()
    for case in CASES:
        assert case["row"] in rows, f"README has no row for {case['row']}"
    differing = {c["row"] for c in CASES if KSTATUS[c["kstatus"]] != c["expect"]}
    for row, versus in rows.items():
        if row in differing:
            assert not versus.lower().startswith("same"), f"{row} differs from kstatus: README must say how"
        else:
            assert versus.lower().startswith("same"), f"{row}: no case differs from kstatus, README says {versus!r}"
