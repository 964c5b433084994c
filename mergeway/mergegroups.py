"""Which pull requests a GitHub merge queue group holds, read from the group's own commits.

The queue puts one commit per pull request on its temporary branch, with the subject GitHub writes
for the merge method: a merge commit "Merge pull request #N from owner/branch", or a squash
"Title (#N)". The branch name ``gh-readonly-queue/<base>/pr-<N>-<sha>`` names the pull request that
created the group. These are claims: the job checks every number with the forge.
"""

from __future__ import annotations

import re

#: A queue commit's subject names its pull request: a squash "Title (#12)" or a merge commit.
_SQUASH = re.compile(r"\(#(\d{1,9})\)\s*$")
_MERGE = re.compile(r"^Merge pull request #(\d{1,9}) ")
#: The pull request that created the group: ``gh-readonly-queue/<base>/pr-<n>-<sha>``.
_HEAD_REF = re.compile(r"/pr-(\d{1,9})-[0-9a-f]{40}$")


def queued_numbers(subjects: list[str], head_ref: str) -> tuple[list[int], bool]:
    """The pull request numbers the queue's commit subjects name, oldest first, and whether each commit named one.

    No commits at all proves nothing: ``False``.
    """
    numbers: list[int] = []
    every = True
    for subject in subjects:
        found = _SQUASH.search(subject) or _MERGE.match(subject)
        if found is None:
            every = False
            continue
        if int(found.group(1)) not in numbers:
            numbers.append(int(found.group(1)))
    last = _HEAD_REF.search(head_ref)
    if last is not None and int(last.group(1)) not in numbers:
        numbers.append(int(last.group(1)))
    return numbers, every and bool(subjects)
