"""The ``igkit`` command: core subcommands plus whatever loaded plugins add."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from .errors import IGInputError, NonFiniteError
from .quadrature import RULES


#: what the command line integrates to unless told otherwise: completeness within 1%
DEFAULT_TOLERANCE = 0.01


def add_ig_arguments(parser: argparse.ArgumentParser, default_tolerance: float = DEFAULT_TOLERANCE) -> None:
    """The integration options every ``explain`` command shares.

    Unless ``--steps`` is given, commands integrate adaptively until the
    completeness error is within ``--tolerance`` (``default_tolerance``), so nobody
    has to guess a step count; ``--steps N`` asks for the fixed ``--method`` rule instead.
    """
    group = parser.add_argument_group("integration")
    group.add_argument("--steps", type=int, default=None,
                       help="path points of a fixed --method rule (default: adaptive, see --tolerance)")
    group.add_argument("--method", choices=RULES, default="gausslegendre",
                       help="quadrature rule used with --steps")
    group.add_argument("--tolerance", type=float, default=None,
                       help=f"refine the path until the relative completeness error is at most this "
                            f"(default {default_tolerance} unless --steps is given)")
    group.add_argument("--max-steps", type=int, default=1024, help="cap on adaptive path points")
    group.add_argument("--batch-size", type=int, default=None,
                       help="path points per forward/backward pass (bounds memory)")
    parser.set_defaults(default_tolerance=default_tolerance)


def ig_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :func:`igkit.integrated_gradients` from parsed CLI options."""
    tolerance = args.tolerance
    if args.steps is None and tolerance is None:
        tolerance = args.default_tolerance
    return {"steps": args.steps if args.steps is not None else 50, "method": args.method,
            "tolerance": tolerance, "max_steps": args.max_steps, "batch_size": args.batch_size}


def build_parser() -> argparse.ArgumentParser:
    from .plugin_manager import get_plugin_manager

    parser = argparse.ArgumentParser(prog="igkit", description="Integrated Gradients for PyTorch models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list loaded plugins and their versions")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("methods", help="list attribution methods")
    p.set_defaults(func=_cmd_methods)

    p = sub.add_parser("explain", help="explain items with any installed domain")
    p.add_argument("--domain", required=True, help="domain name (see `igkit plugins`)")
    p.add_argument("items", nargs="+", help="items the domain understands (files, strings)")
    p.add_argument("--model", default=None, help="model the domain loads (default: its own)")
    p.add_argument("--out", required=True, help="output folder")
    add_ig_arguments(p)
    p.set_defaults(func=_cmd_explain)

    get_plugin_manager().hook.igkit_add_commands(subparsers=sub)
    return parser


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .plugin_manager import domains, list_plugins

    by_plugin = domains()
    for info in list_plugins():
        print(f"{info.name:<12} {info.version:<10} {info.source}")
    if by_plugin:
        print("\ndomains:")
        for name, domain in sorted(by_plugin.items()):
            print(f"  {name:<12} {domain.description}")
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from .methods import METHODS, refresh_plugin_methods

    refresh_plugin_methods()
    for name, fn in sorted(METHODS.items()):
        doc = (fn.__doc__ or "").strip().splitlines()
        print(f"{name:<22} {doc[0] if doc else ''}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain_items
    from .plugin_manager import get_domain

    domain = get_domain(args.domain)
    model = domain.load_model(args.model)
    report = explain_items(domain, model, args.items, args.out, **ig_options(args))
    for item, reason in report.failed.items():
        print(f"skipped {item}: {reason}", file=sys.stderr)
    print(f"wrote {len(report.written)} item(s) to {args.out}")
    return 0 if report.written or not report.failed else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (IGInputError, NonFiniteError, FileNotFoundError) as exc:
        print(f"igkit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
