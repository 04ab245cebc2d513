"""The ``igkit`` command: core subcommands plus whatever loaded plugins add.

Every command ends in one of the documented exit codes (README, "Run contract"):
0 all done, 1 some items skipped, 2 bad usage or input (one ``igkit: error:`` line),
130 interrupted. ``--debug`` shows the traceback of an error instead.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
import warnings
from typing import Sequence

from igkit.errors import EXIT_INTERRUPTED, IgkitError, IgkitWarning
from igkit.outputs.printable import printable

#: the most characters of an error or warning printed (user values inside are escaped and cut)
MESSAGE_LIMIT = 2000


def build_parser() -> argparse.ArgumentParser:
    from igkit.cli.commands import add_domain_group, add_run_arguments
    from igkit.plugin_manager import domains, get_plugin_manager

    parser = argparse.ArgumentParser(prog="igkit", description="Integrated Gradients for PyTorch models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list loaded plugins, their versions and domains")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("methods", help="list attribution methods")
    p.set_defaults(func=_cmd_methods)

    p = sub.add_parser("explain", help="explain items with any installed domain "
                                       "(the same command as `igkit DOMAIN explain`)", add_help=False)
    p.add_argument("--domain", required=True, help="domain name (see `igkit plugins`)")
    p.set_defaults(func=None)

    from igkit.app.command import add_app_command  # `igkit app` (Gradio is imported only when it runs)
    add_app_command(sub)

    get_plugin_manager().hook.igkit_add_commands(subparsers=sub)
    for name, domain in sorted(domains().items()):
        if name not in sub.choices:  # a domain without commands of its own still gets `explain`
            add_domain_group(sub, domain, help=domain.description)
    for leaf in _leaf_parsers(parser):
        if leaf is not p:
            _normalise(leaf, add_run_arguments)
    return parser


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every command parser that runs something (has no subcommands of its own)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        return [parser]
    found = []
    for group in groups:
        for child in dict.fromkeys(group.choices.values()):
            found += _leaf_parsers(child)
    return found


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help, once: a help text that already explains its default
    ("default: its own", "None: the top prediction") is left as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if re.search(r"\bdefault\b|\bNone:", text) or action.default is argparse.SUPPRESS:
            return text
        if action.default in ("", None):
            return text + " (default: none)" if action.option_strings and action.nargs != 0 else text
        return super()._get_help_string(action)


def _normalise(parser: argparse.ArgumentParser, add_run_arguments) -> None:
    """Defaults shown in every help text, and --threads/--quiet/--debug on every command."""
    parser.formatter_class = DefaultsHelpFormatter
    have = {s for a in parser._actions for s in a.option_strings}
    if "--threads" not in have:
        if "--quiet" in have or "--debug" in have:
            raise RuntimeError(f"{parser.prog} defines --quiet/--debug itself; use add_run_arguments")
        add_run_arguments(parser)


def _cmd_plugins(args: argparse.Namespace) -> int:
    from igkit.plugin_manager import domains, list_plugins

    by_plugin = domains()
    for info in list_plugins():
        print(f"{info.name:<12} {info.version:<10} {info.source}")
    if by_plugin:
        print("\ndomains:")
        for name, domain in sorted(by_plugin.items()):
            print(f"  {name:<12} {domain.description}")
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from igkit.methods.registry import METHODS, refresh_plugin_methods

    refresh_plugin_methods()
    for name, fn in sorted(METHODS.items()):
        doc = (fn.__doc__ or "").strip().splitlines()
        print(f"{name:<22} {doc[0] if doc else ''}")
    return 0


def _explain_argv(argv: list[str]) -> list[str] | None:
    """``igkit explain --domain D REST`` is ``igkit D explain REST``: one command, one code path."""
    if not argv or argv[0] != "explain":
        return None
    rest = argv[1:]
    for k, arg in enumerate(rest):
        if arg == "--domain" and k + 1 < len(rest):
            return [rest[k + 1], "explain", *rest[:k], *rest[k + 2:]]
        if arg.startswith("--domain="):
            return [arg.split("=", 1)[1], "explain", *rest[:k], *rest[k + 1:]]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    with warnings.catch_warnings():
        warnings.simplefilter("always", IgkitWarning)
        warnings.showwarning = _show_warning
        return _run(argv, debug)


def _run(argv: list[str], debug: bool) -> int:
    try:
        parser = build_parser()
        from igkit.plugin_manager import domains

        routed = _explain_argv(argv)
        if routed is not None and routed[0] not in domains():
            from igkit.plugin_manager import get_domain
            get_domain(routed[0])  # raises the error that lists installed domains
        args = _parse(parser, routed or argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if not argv else 2
        if hasattr(args, "threads"):
            from igkit.cli.commands import set_threads
            set_threads(args.threads)
        return int(args.func(args) or 0)
    except IgkitError as exc:
        if debug:
            raise
        print(f"igkit: error: {printable(exc, MESSAGE_LIMIT)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        print("igkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse; an unknown option is reported by the command it was given to, with its usage and
    the closest option of that command ("did you mean --methods?")."""
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    leaf = _chosen_parser(parser, args)
    known = [s for a in leaf._actions for s in a.option_strings if s.startswith("--")]
    unknown = [e.split("=", 1)[0] for e in extra if e.startswith("-")]
    hints = []
    for option in unknown:
        close = difflib.get_close_matches(option, known, n=1, cutoff=0.6)
        if close:
            hints.append(f"{option}: did you mean {close[0]}?")
    message = f"unrecognized arguments: {' '.join(extra)}"
    leaf.error(message + (f" ({'; '.join(hints)})" if hints else f"; see {leaf.prog} --help"))
    raise AssertionError("unreachable: argparse's error exits")


def _chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser the parsed arguments reached: igkit → molecules → explain."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _chosen_parser(action.choices[chosen], args)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    prefix = "igkit: warning: " if issubclass(category, IgkitWarning) else f"{category.__name__}: "
    print(f"{prefix}{printable(message, MESSAGE_LIMIT)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
