"""Comment commands: first line, leading slash, case- and whitespace-tolerant, never mid-text."""

from __future__ import annotations

import pytest

from mergeway.commands import parse_command
from mergeway.events import Command


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/rollback", Command("rollback")),
        ("  /Rollback  ", Command("rollback")),
        ("\n\n/ROLLBACK\r\nbecause prod is on fire", Command("rollback")),
        ("/preview", Command("preview")),
        ("/preview staging production", Command("preview", ("staging", "production"))),
        ("/preview\tstaging", Command("preview", ("staging",))),
        ("/help", Command("help")),
        ("/help me please", Command("help", ("me", "please"))),
    ],
)
def test_commands(body: str, expected: Command) -> None:
    assert parse_command(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        "/",
        "/ rollback",
        "/build",
        "/rollbackplease",
        "please /rollback",
        "LGTM\n/rollback",
        "> /rollback",
        "`/rollback`",
        "rollback",
        "/preview <script>",
        "/preview " + "a" * 65,
        "/preview " + " ".join(["env"] * 9),
        None,
        42,
        ["/rollback"],
    ],
)
def test_not_commands(body: object) -> None:
    assert parse_command(body) is None
