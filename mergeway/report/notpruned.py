"""How a comment and a status say which deletions the policy held (see :mod:`mergeway.jobs.prunes`).

Preview and deploy say it in the same words, so a reviewer who saw "not pruned" on the preview
recognises it on the deploy: the objects, the rule's reason for each, and what happens to them.
"""

from __future__ import annotations

from mergeway.report.markdown import cell


def not_pruned(lines: list[str]) -> str:
    """The status's words for deletions the policy held: how many, and the first one."""
    if not lines:
        return ""
    return f"; {len(lines)} not pruned (policy): {lines[0].split(': ', 1)[0]}"


def not_pruned_block(lines: list[str], left: str) -> list[str]:
    """Which objects the policy does not let this repository prune, and why (deploy and preview alike)."""
    if not lines:
        return []
    out = [f"#### 🛑 Not pruned: {len(lines)} object(s) outside this repository's policy", ""]
    for line in lines:
        ref, _, why = line.partition(": ")
        out.append(f"- `{cell(ref)}`: {cell(why)}")
    out += [
        "",
        f"They are no longer in Git, but the operator's policy no longer lets this repository change them. "
        f"{left} in the cluster and in this environment's ApplySet: once the policy allows them again, the "
        "next deploy prunes them; or the operator deletes them by hand.",
        "",
    ]
    return out
