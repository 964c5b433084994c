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
_ARG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:=-]*")
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
    if len(args) > MAX_ARGS or any(len(a) > MAX_ARG_LENGTH or not _ARG.fullmatch(a) for a in args):
        return None
    return Command(name=name, args=tuple(args))
