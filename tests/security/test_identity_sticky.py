"""Sticky comments are only ever Mergeway's own: matched by author *and* marker.

Anyone can write the hidden marker into a comment. If the bot took the first comment carrying it as
its own, a stranger who posted the marker first would get the bot's report written into a comment
they can edit afterwards, and a comment quoting the marker would be deleted as a "duplicate".
"""

from __future__ import annotations

import pytest

from tests.fixtures.e2e import Stack
from tests.security.identity_support import files, held_webhooks

pytestmark = pytest.mark.cluster
MARKER = "<!-- mergeway:preview:staging -->"
CONTEXT = "mergeway/preview/staging"
BOT = "mergeway-bot"


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_foreign_comments_with_the_marker_are_never_edited_or_deleted(stack: Stack, forge: str) -> None:
    repo = stack.repo(forge=forge)
    with held_webhooks(stack, forge):
        pr = stack.sim.open_pr(repo, "change", files=files("one"))
        squatter = stack.sim.comment(repo, pr, f"{MARKER}\nLooks good, merge it!", author="mallory")
    squatted = squatter.body

    head = stack.sim.push(repo, pr, files("two"))
    assert stack.status(repo, head, CONTEXT).state == "success"
    own = [c for c in stack.marked(repo, pr.number, MARKER) if c.author == BOT]
    assert len(own) == 1, "the bot posted a comment of its own"
    assert head[:12] in own[0].body
    assert [c.body for c in stack.sim.list_comments(repo, pr.number) if c.id == squatter.id] == [squatted]

    quote = stack.sim.comment(repo, pr, f"> {own[0].body[:200]}\n\nWhy does it change?", author="bob")
    head = stack.sim.push(repo, pr, files("three"))
    assert stack.status(repo, head, CONTEXT).state == "success"

    comments = {c.id: c for c in stack.sim.list_comments(repo, pr.number)}
    assert comments[squatter.id].body == squatted  # neither edited ...
    assert comments[quote.id].body == quote.body  # ... nor deleted
    own = [c for c in comments.values() if c.author == BOT and MARKER in c.body]
    assert len(own) == 1 and head[:12] in own[0].body
