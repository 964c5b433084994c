"""The ``mergeway`` command: the engine from a terminal, for local use and break-glass operations.

``mergeway preview PATH`` prints what merging would change, with ``kubectl diff``'s exit codes
(0 no changes, 1 changes, 2 error) so it drops into scripts that already use kubectl.
``mergeway apply PATH`` runs a deploy's engine (staged apply, prune by ApplySet, health wait):
0 applied and healthy, 1 applied but failed or unhealthy, 2 error before applying.

With ``--policy FILE --repository forge:owner/name --cluster NAME`` both check the rendered objects
against the operator's policy first, exactly as the service does, and send nothing when it refuses.

``mergeway status [--repository R] [--environment E]`` prints the environments page's rows
(:mod:`mergeway.page`: the deployed commit, PR, phase and reason, drift, deploys in flight; with
``--history N`` the last N records and their phases), read from the service's Redis
(``REDIS_URL``): 0 when every one shown is healthy, 1 otherwise, 2 when none is found.
``mergeway page-hash [USER]`` prints a password hash for ``MERGEWAY_PAGE_USERS``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mergeway import __version__
from mergeway.cachedir import user_cache
from mergeway.kube.client import KubeClient, KubeError
from mergeway.manifest import effective_namespace
from mergeway.render import RenderError, render

if TYPE_CHECKING:
    from mergeway.jobs.prunes import PruneCheck
    from mergeway.kube.applyset import ApplySet
    from mergeway.manifest import Manifest

# The engine's modules are imported by the command that uses them: start-up is most of a small
# preview's time, and ``preview`` needs neither the applier nor the health rules.


def _applyset(args: argparse.Namespace, target: Path) -> ApplySet:
    """The same ApplySet for ``preview`` and ``apply`` of one path, so a preview shows what apply does."""
    from mergeway.kube.applyset import ApplySet  # pulls in the thread pool (concurrent): only once a cluster answers

    return ApplySet(args.applyset or f"mergeway-cli.{target.name}", effective_namespace("", args.namespace))


class Refused(Exception):
    """The policy refuses the target; the message says which objects and why."""


def _check_policy(args: argparse.Namespace, manifests: Sequence[Manifest], client: KubeClient) -> PruneCheck | None:
    """With ``--policy``, refuse (before any request about an object) what the service would refuse.

    Returns the check that holds the deletions the policy refuses, as the service's deploys do.
    """
    if not args.policy:
        return None
    # Only with --policy: the policy parser, the prune check and discovery are not a plain run's cost.
    from mergeway import policy
    from mergeway.jobs.prunes import PruneCheck
    from mergeway.kube.discovery import Discovery
    from mergeway.repoconfig import Environment

    forge, sep, repo = args.repository.partition(":")
    if not sep or not repo or not args.cluster:
        raise Refused("--policy needs --repository forge:owner/name and --cluster NAME")
    try:
        rules = policy.load(args.policy)
    except policy.PolicyError as exc:
        raise Refused(str(exc)) from None
    env = Environment("cli", args.path, args.cluster, args.namespace)
    decision = rules.check(forge, repo, env, {args.cluster})
    if not decision.allowed:
        raise Refused(f"not allowed by the policy: {decision.reason}")
    kinds = {(m.api_version, m.kind) for m in manifests}
    refusal = rules.admit(forge, repo, env, manifests, Discovery(client).scopes(kinds))
    if refusal:
        raise Refused(f"not allowed by the policy: {refusal}")
    return PruneCheck(rules, forge, repo, env)


def _print_not_pruned(prunes: PruneCheck | None) -> None:
    """The deletions ``--policy`` held: left in the cluster, as the service leaves them."""
    for line in prunes.lines() if prunes is not None else []:
        print(f"not pruned (outside the policy): {line}")


def _client(args: argparse.Namespace) -> KubeClient:
    """A client whose discovery is cached on disk between runs (revalidated by ETag), as kubectl's is."""
    cache = user_cache() / "discovery"
    return KubeClient.from_kubeconfig(args.kubeconfig, args.context, pool_size=args.concurrency, cache_dir=cache)


def _preview(args: argparse.Namespace) -> int:
    # The differ and the terminal report are preview's own (tests/unit/test_cli_startup.py guards the rest).
    from mergeway.kube.diff import Differ
    from mergeway.report.terminal import print_plan

    target = Path(args.path).resolve()
    root = target if target.is_dir() else target.parent
    try:
        rendered = (
            render(root, ".", namespace=args.namespace)
            if target.is_dir()
            else render(root, target.name, namespace=args.namespace)
        )
        client = _client(args)
        prunes = _check_policy(args, rendered.manifests, client)
        differ = Differ(client, concurrency=args.concurrency)
        plan = differ.plan_for(rendered.manifests, _applyset(args, target), default_namespace=args.namespace)
        if prunes is not None:
            plan = prunes.split(plan)
    except (RenderError, KubeError, Refused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    color = sys.stdout.isatty() if args.color == "auto" else args.color == "always"
    print_plan(plan, sys.stdout, color=color, warnings=rendered.warnings)
    _print_not_pruned(prunes)
    if plan.errors:
        return 2
    return 1 if plan.has_changes else 0


def _apply(args: argparse.Namespace) -> int:
    from mergeway.kube.apply import Applier  # the applier and the health rules: apply's own, not preview's

    target = Path(args.path).resolve()
    root = target if target.is_dir() else target.parent
    try:
        rendered = render(root, "." if target.is_dir() else target.name, namespace=args.namespace)
        client = _client(args)
        prunes = _check_policy(args, rendered.manifests, client)
        applyset = _applyset(args, target)
        result = Applier(client, concurrency=args.concurrency).deploy(
            rendered.manifests,
            applyset=applyset,
            default_namespace=args.namespace,
            health_timeout=args.timeout,
            wait=args.wait,
            progress=lambda line: print(line, file=sys.stderr),
            hold=prunes.holding(lambda plan: ()) if prunes is not None else None,
        )
    except (RenderError, KubeError, Refused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for item in result.applied:
        print(f"{item.ref} {'created' if item.action == 'create' else 'configured'}")
    for item in result.pruned:
        print(f"{item.ref} pruned")
    for run in result.hooks:
        print(f"{run.ref} {run.phase} hook {run.state}")
    _print_not_pruned(prunes)
    if result.plan.errors or result.failed or result.unhealthy or result.hook_failed:
        from mergeway.report.deploy import failures_of  # the report module is imported only to report

        for line in failures_of(result):
            print(f"failed: {line}", file=sys.stderr)
    counts = ", ".join(f"{v} {k}" for k, v in result.counts().items())
    print(f"{counts}; applied in {result.apply_seconds:.2f}s, rollout {result.rollout_seconds:.2f}s")
    if result.plan.errors and not (result.applied or result.pruned):
        return 2  # the dry run rejected the change, so nothing was applied: an error, like a render failure
    return 0 if result.ok else 1


def _status(args: argparse.Namespace) -> int:
    """Print the environments page's rows that match ``--repository``/``--environment`` (and ``--history``)."""
    # Redis and the settings are for `status` alone: a preview or apply never loads them (measured start-up).
    import redis

    from mergeway.config import ConfigError, Settings
    from mergeway.deployments import describe
    from mergeway.gates import describe_gates
    from mergeway.page.model import Board
    from mergeway.page.text import lines

    try:
        url = args.redis_url or Settings.from_env(role="cli").redis_url
        client = redis.Redis.from_url(url)
        board = Board(client)
        rows = board.rows(args.repository, args.environment)
        history = {
            (r.repository, r.environment): board.store.history(r.repository, r.environment, limit=args.history)
            for r in rows
            if args.history > 0
        }
        gates = {(r.repository, r.environment): describe_gates(client, r.repository, r.environment) for r in rows}
    except (ConfigError, redis.RedisError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print("no deployment recorded", file=sys.stderr)
        return 2
    for row in rows:
        print("\n".join(lines(row)))
        for record in history.get((row.repository, row.environment), []):
            print("\n".join("  " + line for line in describe(record)))
        for line in gates.get((row.repository, row.environment), []):
            print(line)
    return 0 if all(row.phase == "healthy" for row in rows) else 1


def _page_hash(args: argparse.Namespace) -> int:
    """Print a password hash for ``MERGEWAY_PAGE_USERS`` (the password is read, never an argument)."""
    import getpass

    from mergeway.page.access import make_hash

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("error: empty password", file=sys.stderr)
        return 2
    print(f"{args.user}:{make_hash(password)}" if args.user else make_hash(password))
    return 0


def _target_options(parser: argparse.ArgumentParser) -> None:
    """What ``preview`` and ``apply`` share: the same arguments name the same target and ApplySet."""
    parser.add_argument("path", help="a directory of manifests, a kustomization or a Helm chart")
    parser.add_argument("--context", default="", help="kubeconfig context (default: current)")
    parser.add_argument("--kubeconfig", default="", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("-n", "--namespace", default="", help="namespace for objects without one")
    parser.add_argument("--applyset", default="", help="ApplySet parent ConfigMap name (default: from PATH)")
    parser.add_argument("--concurrency", type=int, default=16, help="parallel API requests")
    parser.add_argument("--policy", default="", help="check objects against this policy file first")
    parser.add_argument("--repository", default="", help="with --policy: the repository, as forge:owner/name")
    parser.add_argument("--cluster", default="", help="with --policy: the cluster name the policy uses")


def _columns() -> int:
    """The terminal's width as :func:`shutil.get_terminal_size` finds it: ``$COLUMNS``, the terminal, 80."""
    with contextlib.suppress(ValueError):
        if int(os.environ.get("COLUMNS", "0")) > 0:
            return int(os.environ["COLUMNS"])
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's own formatter, given the width so that building the parser does not import shutil.

    argparse creates a formatter for every argument it adds (to check it), and each one measures the
    terminal with :mod:`shutil`, whose import (with bz2 and lzma) costs more than building the parser.
    """

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or max(_columns() - 2, 11))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mergeway", description=__doc__.splitlines()[0] if __doc__ else "", formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mergeway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    preview = sub.add_parser(
        "preview", help="show what applying PATH would change (server-side dry run)", formatter_class=_HelpFormatter
    )
    _target_options(preview)
    preview.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    preview.set_defaults(func=_preview)

    apply = sub.add_parser(
        "apply", help="apply PATH like a deploy: staged server-side apply, prune, wait", formatter_class=_HelpFormatter
    )
    _target_options(apply)
    apply.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for a healthy rollout")
    apply.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait for the rollout to become healthy (default: yes)",
    )
    apply.set_defaults(func=_apply)

    status = sub.add_parser(
        "status", help="show the deployment records: phases and when each began", formatter_class=_HelpFormatter
    )
    status.add_argument("--repository", default="", help="only this repository (forge:owner/name or owner/name)")
    status.add_argument("--environment", default="", help="only this environment")
    status.add_argument(
        "--history", type=int, default=0, help="also list this many records per environment, with their phases"
    )
    status.add_argument("--redis-url", default="", help="the service's Redis (default: $REDIS_URL)")
    status.set_defaults(func=_status)

    page_hash = sub.add_parser(
        "page-hash",
        help="hash a password for MERGEWAY_PAGE_USERS (read from the terminal or stdin)",
        formatter_class=_HelpFormatter,
    )
    page_hash.add_argument("user", nargs="?", default="", help="print user:hash, ready for MERGEWAY_PAGE_USERS")
    page_hash.set_defaults(func=_page_hash)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


#: The exit status of a process killed by SIGPIPE (128 + 13), what a shell reports for kubectl.
PIPE_CLOSED = 141


def run() -> NoReturn:
    """The ``mergeway`` command: :func:`main`, then an exit without tearing the interpreter down.

    Once the output is written the run is over, and finalising (freeing every module and object,
    closing idle connections one by one) took about 20 ms of a 0.25 s preview. Nothing in the CLI
    needs ``atexit``: the discovery cache is written when it is fetched. Output is flushed first.
    """
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped reading (``mergeway preview DIR | head``): end quietly, with the status
        # of a process killed by SIGPIPE, as kubectl does, instead of a traceback about the pipe.
        code = PIPE_CLOSED
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (| head) must not change the code
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
