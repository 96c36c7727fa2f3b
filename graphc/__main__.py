"""The command line: ``graphc demo | show EXPR | check EXPR [--at x=1.5 ...] | bench [NAME ...]``.

``show`` and ``check`` read a formula with :func:`graphc.formula.parse` (numbers, names,
``+ - * / **`` and the op table's functions only, checked before SymPy sees the text),
turn it into a graph with :func:`graphc.from_sympy` and compile it.  ``demo`` and
``bench`` run scripts of the source checkout this graphc was imported from.
"""
from __future__ import annotations

import argparse
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Sequence

#: The source checkout graphc runs from, if any (``examples/`` and ``bench/`` live there).
CHECKOUT = Path(__file__).resolve().parent.parent
#: Where formula variables are evaluated unless ``--at`` says otherwise: distinct, away from
#: 0 and from each other, so kinks (relu, max) and symmetric cancellations are unlikely.
DEFAULT_POINT = (0.7, -0.4, 1.3, 0.25, -1.1, 0.9, 1.7, -0.6)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse has already printed
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    from .errors import GraphcError
    try:
        return args.run(args)
    except GraphcError as error:
        print(f"graphc {args.command}: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphc", description="micrograd grown into a graph compiler: "
                                     "see what it does to a formula, check its gradients, run the demo.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="train micrograd's moons MLP with compiled code",
                               description="Run examples/moons.py of the source checkout.")
    demo.add_argument("--eager", action="store_true", help="run micrograd's eager loop instead")
    demo.set_defaults(run=_demo)
    formula_help = ("a formula of numbers, names, + - * / ** and the functions relu tanh exp log "
                    "sigmoid sin cos step max, e.g. 'tanh(x*w + b)'")
    show = commands.add_parser("show", help="show the graph, passes, generated code and derivatives of EXPR",
                               description="Parse EXPR, build and optimize its graph, and print the graph "
                                           "listing, what each optimization pass did, the generated forward "
                                           "and gradient Python code, and SymPy's derivatives.")
    show.add_argument("expr", metavar="EXPR", help=formula_help)
    show.set_defaults(run=_show)
    check = commands.add_parser("check", help="compare EXPR's gradients four ways (graphc.check_grad)",
                                description="Compare eager, compiled, SymPy and finite-difference gradients "
                                            "of EXPR at a point; exit status 1 if they disagree.")
    check.add_argument("expr", metavar="EXPR", help=formula_help)
    check.add_argument("--at", action="append", default=[], metavar="NAME=VALUE",
                       help="a variable's value (repeat, or separate with commas); others get defaults")
    check.add_argument("--no-fd", dest="fd", action="store_false", help="skip finite differences")
    check.set_defaults(run=_check)
    bench = commands.add_parser("bench", help="run the benchmarks in bench/",
                                description="Run the scripts in bench/ of the source checkout, one process each.")
    bench.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    bench.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    bench.set_defaults(run=_bench)
    return parser


# -- demo and bench: scripts of the checkout -----------------------------------------------

def _demo(args: argparse.Namespace) -> int:
    script = CHECKOUT / "examples" / "moons.py"
    if not script.is_file():
        print(f"graphc demo: {script} not found. The demo is part of graphc's source checkout, not of "
              f"the installed package: clone the repository and run `make demo` there.", file=sys.stderr)
        return 1
    saved = sys.argv
    sys.argv = [str(script)] + (["--eager"] if args.eager else [])
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    finally:
        sys.argv = saved
    return 0


def _bench(args: argparse.Namespace) -> int:
    folder = CHECKOUT / "bench"
    scripts = {p.stem: p for p in sorted(folder.glob("*.py"))} if folder.is_dir() else {}
    if not scripts:
        print(f"graphc bench: no benchmarks in {folder}. They are part of graphc's source checkout: "
              f"clone the repository and run `make bench` there.", file=sys.stderr)
        return 1
    if args.list:
        print("\n".join(scripts))
        return 0
    unknown = [n for n in args.names if n not in scripts]
    if unknown:
        print(f"graphc bench: no benchmark {', '.join(unknown)}; there are {', '.join(scripts)}", file=sys.stderr)
        return 2
    failed = []
    for name in args.names or list(scripts):
        print(f"== bench/{name}.py", flush=True)
        if subprocess.run([sys.executable, str(scripts[name])], cwd=CHECKOUT).returncode != 0:
            failed.append(name)
    if failed:
        print(f"graphc bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


# -- show and check: formulas ----------------------------------------------------------------

def _formula(text: str):
    """(compiled function, its graph as parsed, symbols in text order) of a formula."""
    import graphc
    from .formula import parse
    from .interpret import as_function
    from .symbolic import from_sympy

    expr, symbols = parse(text)
    graph = from_sympy(expr, symbols)
    return graphc.compile(as_function(graph)), graph, symbols


def _point(symbols: list, given: list[str]) -> list[float]:
    from .errors import GraphcError

    values = {s.name: DEFAULT_POINT[k % len(DEFAULT_POINT)] + 0.1 * (k // len(DEFAULT_POINT))
              for k, s in enumerate(symbols)}
    for item in (part for text in given for part in text.split(",") if part.strip()):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in values:
            raise GraphcError(f"--at expects NAME=VALUE with NAME one of {', '.join(values) or '(none)'}; "
                              f"got {item!r}")
        try:
            values[name] = float(value)
        except ValueError:
            raise GraphcError(f"--at {name}: {value.strip()!r} is not a number") from None
    return [values[s.name] for s in symbols]


def _show(args: argparse.Namespace) -> int:
    import sympy as sp

    import graphc
    from .symbolic import symbols_of, to_sympy

    compiled, graph, symbols = _formula(args.expr)
    compiled(*[graphc.Value(v) for v in _point(symbols, [])])  # Values: the code has their gradients
    optimized, report = graphc.optimize(graph, report=True)
    print(f"expression: {args.expr.strip()}")
    print(f"inputs: {', '.join(s.name for s in symbols) or '(none)'}\n")
    print("graph:")
    print(graph)
    print(f"\npasses:\n{report}\n")
    print("generated code (forward, then gradient):")
    print(compiled.source)
    print("derivatives (SymPy):")
    (expr,) = to_sympy(optimized)
    for s in symbols_of(optimized):
        print(f"  d/d{s.name} = {sp.factor_terms(sp.diff(expr, s))}")
    return 0


def _check(args: argparse.Namespace) -> int:
    import graphc

    compiled, graph, symbols = _formula(args.expr)
    point = _point(symbols, args.at)
    print(f"expression: {args.expr.strip()}")
    print("at " + (", ".join(f"{s.name}={v:g}" for s, v in zip(symbols, point)) or "(no variables)"))
    report = graphc.check_grad(compiled, *point, fd=args.fd)
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
