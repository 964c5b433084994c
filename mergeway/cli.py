"""The ``mergeway`` command: the engine from a terminal, for local use and break-glass operations.

``mergeway preview PATH`` prints what merging would change, with ``kubectl diff``'s exit codes
(0 no changes, 1 changes, 2 error) so it drops into scripts that already use kubectl.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mergeway.kube.client import KubeClient, KubeError
from mergeway.kube.diff import Differ
from mergeway.render import RenderError, render
from mergeway.report.terminal import print_plan


def _preview(args: argparse.Namespace) -> int:
    target = Path(args.path).resolve()
    root = target if target.is_dir() else target.parent
    try:
        rendered = (
            render(root, ".", namespace=args.namespace)
            if target.is_dir()
            else render(root, target.name, namespace=args.namespace)
        )
        client = KubeClient.from_kubeconfig(args.kubeconfig, args.context, pool_size=args.concurrency)
        differ = Differ(client, concurrency=args.concurrency)
        plan = differ.plan(rendered.manifests, default_namespace=args.namespace)
    except (RenderError, KubeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    color = sys.stdout.isatty() if args.color == "auto" else args.color == "always"
    print_plan(plan, sys.stdout, color=color, warnings=rendered.warnings)
    if plan.errors:
        return 2
    return 1 if plan.has_changes else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mergeway", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="command", required=True)
    preview = sub.add_parser("preview", help="show what applying PATH would change (server-side dry run)")
    preview.add_argument("path", help="a directory of manifests, a kustomization or a Helm chart")
    preview.add_argument("--context", default="", help="kubeconfig context (default: current)")
    preview.add_argument("--kubeconfig", default="", help="kubeconfig file (default: $KUBECONFIG)")
    preview.add_argument("-n", "--namespace", default="", help="namespace for objects without one")
    preview.add_argument("--concurrency", type=int, default=16, help="parallel dry-run requests")
    preview.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    preview.set_defaults(func=_preview)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
