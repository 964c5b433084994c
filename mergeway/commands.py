"""Slash commands in pull/merge request comments, parsed the way Atlantis users expect.

Only the first non-blank line of a comment can carry a command, and it must *start* with the slash:
a reviewer who writes "we could /rollback this later" mid-sentence, or quotes a command further
down, must not trigger anything. Names are case-insensitive and surrounding whitespace is ignored,
because people type on phones. Unknown slash words (``/build``, ``/lgtm``) belong to other bots and
are not ours: they are "not a command", never an error.
"""

from __future__ import annotations

import re
from typing import Final

from mergeway.events import COMMAND_NAMES, Command

#: Arguments are environment names and similar short words. Bounding them keeps an event small and
#: keeps arbitrary comment text (which is untrusted) out of job payloads and logs.
MAX_ARGS: Final = 8
MAX_ARG_LENGTH: Final = 64
_ARG = re.compile(r"(--)?[A-Za-z0-9][A-Za-z0-9._/:=-]*")
#: A lock's reason is words people type ("incident 42, db failover"): any visible text, still bounded.
_REASON_WORD = re.compile(r"[^\s\x00-\x1f\x7f]{1,64}")
#: Commands whose words after the first are free text (each word bounded, at most MAX_ARGS of them).
_FREE_TEXT = {"lock"}
#: GitHub/GitLab comment bodies can be huge; only the head can matter.
_SCAN_LIMIT: Final = 4096


def parse_command(body: object) -> Command | None:
    """Return the command a comment body starts with, or ``None`` when it is not one of ours.

    ``body`` is typed loosely because it comes straight from a JSON payload, where it may be
    ``null`` or something stranger.
    """
    if not isinstance(body, str):
        return None
    text = body[:_SCAN_LIMIT].lstrip()
    if not text.startswith("/"):
        return None
    first_line = text.splitlines()[0].strip()
    words = first_line[1:].split()
    if not words or first_line[1].isspace():
        return None
    name = words[0].lower()
    if name not in COMMAND_NAMES:
        return None
    args = words[1:]
    if name in _FREE_TEXT and args and len(args[0]) <= MAX_ARG_LENGTH and _ARG.fullmatch(args[0]):
        reason = args[1:]
        if len(args) > MAX_ARGS or not all(_REASON_WORD.fullmatch(w) for w in reason):
            return None
        return Command(name=name, args=tuple(args))
    if len(args) > MAX_ARGS or any(len(a) > MAX_ARG_LENGTH or not _ARG.fullmatch(a) for a in args):
        return None
    return Command(name=name, args=tuple(args))
