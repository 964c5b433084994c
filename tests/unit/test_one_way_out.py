"""One way out: jobs compose no pull-request text, one module talks to the forge's comments and statuses,
and what jobs hand it are plain immutable reports.

The rules are read from the source (the AST), so they hold for code paths no other test reaches.
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
        "create_deployment",
        "update_deployment",
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


REPORTS = ROOT / "mergeway" / "report"
#: Engine types a report may hold: plain immutable values (an object's identity is four strings).
ENGINE_VALUES = frozenset({"ObjectRef"})


def _is_dataclass(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
    return name == "dataclass"


def _frozen(decorator: ast.expr) -> bool:
    if not isinstance(decorator, ast.Call):
        return False
    return any(
        k.arg == "frozen" and isinstance(k.value, ast.Constant) and k.value.value is True for k in decorator.keywords
    )


def _names(annotation: ast.expr) -> set[str]:
    """Every name an annotation mentions, quoted annotations included."""
    found = set()
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= _names(ast.parse(node.value, mode="eval").body)
    return found


def record_problems(path: Path) -> Iterator[str]:
    """Why the dataclasses of ``path`` are not plain immutable records (nothing when they are).

    A dataclass must be frozen; its fields (``InitVar`` and ``ClassVar`` aside: not kept, not per
    record) must not hold anything imported from the engine (``mergeway.kube``) but plain values;
    and a module that defines a ``*Report`` must not import the engine's plan (``mergeway.kube.changeset``).
    """
    tree = ast.parse(path.read_text(), str(path))
    engine: set[str] = set()
    changeset = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mergeway.kube"):
            engine |= {alias.asname or alias.name for alias in node.names}
            changeset |= node.module == "mergeway.kube.changeset"
        elif isinstance(node, ast.Import):
            changeset |= any(alias.name.startswith("mergeway.kube.changeset") for alias in node.names)
    engine -= ENGINE_VALUES
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        decorators = [d for d in node.decorator_list if _is_dataclass(d)]
        if node.name.endswith("Report") and changeset:
            yield f"{path.name}: {node.name} is defined next to an import of mergeway.kube.changeset"
        if not decorators:
            continue
        if not any(_frozen(d) for d in decorators):
            yield f"{path.name}:{node.lineno}: dataclass {node.name} is not frozen"
        for item in node.body:
            if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
                continue
            names = _names(item.annotation)
            if names & {"InitVar", "ClassVar"}:
                continue
            held = sorted(names & (engine | {"Plan", "ObjectDiff", "DeployResult"}))
            if held:
                yield f"{path.name}:{item.lineno}: {node.name}.{item.target.id} holds the engine's {', '.join(held)}"


def test_reports_are_plain_immutable_records() -> None:
    """Every dataclass in ``mergeway/report/`` is frozen and holds no engine object (see :func:`record_problems`).

    A report is what a job decided, handed to the publisher and the deployment record: if it could
    change after it was published, or kept the engine's plan (desired objects, raw Secret data,
    entries the apply mutates), what the forge shows could differ from what was decided.
    """
    found = [problem for path in sorted(REPORTS.glob("*.py")) for problem in record_problems(path)]
    assert not found, "reports that are not plain immutable records:\n" + "\n".join(found)
