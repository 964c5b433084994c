"""One way out: jobs compose no pull-request text, and one module talks to the forge's comments and statuses.

Both rules are read from the source (the AST), so they hold for code paths no other test reaches.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "mergeway" / "jobs"
PUBLISHER = ROOT / "mergeway" / "report" / "publish.py"
#: The forge's methods that write what people see on a pull request or a commit.
FORGE_OUTPUTS = frozenset(
    {
        "upsert_comment",
        "create_comment",
        "edit_comment",
        "delete_comment",
        "set_status",
        "add_reaction",
        # the drift issue
        "open_issue",
        "edit_issue",
        "close_issue",
        "comment_on_issue",
    }
)
#: Calls whose text is for developers and operators, never shown on a pull request.
LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})
DEVELOPER_ERRORS = frozenset({"TypeError", "ValueError", "RuntimeError", "KeyError", "AssertionError"})
#: Two words with a space between them: a phrase, not a name, key, flag or format.
PHRASE = re.compile(r"[A-Za-z][a-z']*[,.:;]? +[A-Za-z`@#(]")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _exempt(tree: ast.AST) -> set[int]:
    """Ids of string nodes inside log calls, developer exceptions and docstrings."""
    exempt = _docstrings(tree)
    for node in ast.walk(tree):
        inner: list[ast.AST] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS:
            inner = [*node.args, *(k.value for k in node.keywords)]
        call = node.exc if isinstance(node, ast.Raise) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in DEVELOPER_ERRORS:
            inner = list(call.args)
        for sub in inner:
            exempt |= {id(n) for n in ast.walk(sub)}
    return exempt


def phrases(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of each string literal in ``path`` that reads as words for a person."""
    tree = ast.parse(path.read_text(), str(path))
    exempt = _exempt(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in exempt:
            continue
        if PHRASE.search(node.value) or any(ord(c) > 0x2000 for c in node.value):
            yield node.lineno, node.value


def test_jobs_write_no_pull_request_text() -> None:
    """No string in ``mergeway/jobs/*.py`` is wording a pull request, a commit status or a reply could show.

    The rule: a string literal (an f-string's constant parts included) is *wording* when it holds a
    phrase (two words with a space between them) or a typographic or emoji character. It is allowed
    only as a docstring, an argument of a log call (``log.info(...)``: read by operators) or the
    message of a developer's exception (``TypeError``, ``ValueError``, ``RuntimeError``, ``KeyError``:
    a bug, reported as "unfinished" in Mergeway's own words). Everything a person reads on the forge
    (replies, notes, refusals, the reasons of :class:`~mergeway.jobs.environment.Refused`) is built by
    functions in ``mergeway/report/``, so the wording lives in one place and reads alike everywhere.
    """
    found = [f"{path.name}:{line}: {text!r}" for path in sorted(JOBS.glob("*.py")) for line, text in phrases(path)]
    assert not found, "pull-request wording in mergeway/jobs/ (move it to mergeway/report/):\n" + "\n".join(found)


def forge_output_calls(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, method)`` of each call of a forge output method (by name, on any object) in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FORGE_OUTPUTS:
            yield node.lineno, node.func.attr


def test_only_the_publisher_writes_comments_statuses_and_reactions() -> None:
    """Outside the forge clients themselves, only ``mergeway/report/publish.py`` calls their output methods.

    So retries, logging of a failure to publish, the record of pending statuses and, later, forge
    Deployments are added in one place and apply to every job. Walked: every module of the product
    (``mergeway/``, ``workers/``, ``webhook_service/``); the forge package implements the methods and
    ``upsert_comment`` calls the others, so it is the one place besides the publisher that may.
    """
    sources = [p for d in ("mergeway", "workers", "webhook_service") for p in sorted((ROOT / d).rglob("*.py"))]
    forge_pkg = ROOT / "mergeway" / "forge"
    found = [
        f"{path.relative_to(ROOT)}:{line}: {method}"
        for path in sources
        if path != PUBLISHER and forge_pkg not in path.parents
        for line, method in forge_output_calls(path)
    ]
    assert PUBLISHER.exists()
    assert not found, "forge output calls outside the publisher:\n" + "\n".join(found)
