"""The command line: ``graphc demo | show EXPR | check EXPR [--at x=1.5 ...] | bench [NAME ...]``.

``show`` and ``check`` read a formula with :func:`graphc.formula.parse` (numbers, names,
``+ - * / **`` and the op table's functions only, checked on Python's syntax tree) and
trace it as written, so what graphc's passes do to it is what the passes table shows;
SymPy only computes the derivative column.  ``demo`` runs :mod:`graphc.demo`, which ships
in the package; ``bench`` runs the scripts in ``bench/`` of the source checkout.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from ._version import __version__

#: The source checkout graphc runs from, if any (``bench/`` lives there).
CHECKOUT = Path(__file__).resolve().parent.parent
#: Where formula variables are evaluated unless ``--at`` says otherwise: distinct, away from
#: 0 and from each other, so kinks (relu, max) and symmetric cancellations are unlikely.
DEFAULT_POINT = (0.7, -0.4, 1.3, 0.25, -1.1, 0.9, 1.7, -0.6)
#: What the benchmarks compare graphc against (the ``bench`` extra).
BENCH_PEERS = ("micrograd", "torch")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    argv, passed_on = _split(list(sys.argv[1:] if argv is None else argv), parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error argparse has already printed
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    args.passed_on = passed_on
    if sys.stdout is None:  # started with stdout closed (`graphc show x >&-`): Python made it None
        print(f"graphc {args.command}: error: standard output is closed", file=sys.stderr)
        return 1
    from .errors import GraphcError
    try:
        status = args.run(args)
        sys.stdout.flush()  # here, not at exit, so a reader that went away is handled below
        return status
    except GraphcError as error:
        print(f"graphc {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`graphc show ... | head -1`): stop quietly
        _silence_stdout()
        return 1
    except OSError as error:  # the output cannot be written (`graphc show x >/dev/full`)
        _silence_stdout()
        print(f"graphc {args.command}: error: {error}", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a captured or replaced stdout
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _split(argv: list[str], parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """Prepare ``argv`` for argparse: (its arguments, options passed on to benchmarks).

    A formula that starts with ``-`` (``"-(-x)"``) would look like an option to argparse:
    it is moved behind ``--`` (unless a formula came before it: then it is an unknown
    option).  ``bench``'s arguments from the first option it does not know (or from ``--``)
    on are for the benchmark scripts.
    """
    if not argv or argv[0] not in ("show", "check", "bench"):
        return argv, []
    own = parser.own_options[argv[0]]
    rest, k, formula_seen = argv[1:], 0, False
    while k < len(rest):
        token = rest[k]
        if token == "--" or token.startswith("-") and token.split("=")[0] not in own:
            break
        formula_seen = formula_seen or not token.startswith("-")
        k += 2 if own.get(token) else 1  # skip an option's value
    if argv[0] == "bench":
        return argv[:1 + k], rest[k + 1:] if rest[k:k + 1] == ["--"] else rest[k:]
    if k < len(rest) and rest[k] != "--" and not formula_seen:
        return argv[:1 + k] + rest[k + 1:] + ["--", rest[k]], []
    return argv, []  # after the formula, an option the command does not know is argparse's to report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphc", description="micrograd grown into a graph compiler: "
                                     "see what it does to a formula, check its gradients, run the demo.",
                                     epilog=f"EXPR is {_formula_help()}.")
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="train micrograd's moons MLP with compiled code",
                               description="Run graphc's moons demo (graphc/demo.py).", allow_abbrev=False)
    loop = demo.add_mutually_exclusive_group()
    loop.add_argument("--python", action="store_true", help="compile the full-batch loss to straight-line Python")
    loop.add_argument("--eager", action="store_true", help="run micrograd's eager loop instead")
    demo.set_defaults(run=_demo)
    show = commands.add_parser("show", help="show the graph, passes, generated code and derivatives of EXPR",
                               description="Trace EXPR as written, optimize its graph, and print the graph "
                                           "listing, what each optimization pass did, the generated forward "
                                           "and gradient Python code, and SymPy's derivatives.",
                               allow_abbrev=False)
    show.add_argument("expr", metavar="EXPR", help=_formula_help())
    show.set_defaults(run=_show)
    check = commands.add_parser("check", help="compare EXPR's gradients four ways (graphc.check_grad)",
                                description="Compare eager, compiled, SymPy and finite-difference gradients "
                                            "of EXPR at a point; exit status 1 unless they agree.",
                                allow_abbrev=False)
    check.add_argument("expr", metavar="EXPR", help=_formula_help())
    at = check.add_argument("--at", action="append", default=[], metavar="NAME=VALUE",
                       help="a variable's value (repeat, or separate with commas); others get defaults")
    no_fd = check.add_argument("--no-fd", dest="fd", action="store_false", help="skip finite differences")
    check.set_defaults(run=_check)
    bench = commands.add_parser("bench", help="run the benchmarks in bench/",
                                usage="graphc bench [-h] [--list] [NAME ...] [--] [OPTION ...]",
                                description="Run the scripts in bench/ of the source checkout, one process "
                                            "each. Options after the names (or after --) are passed to every "
                                            "script run, e.g. `graphc bench compile --steps 5`. The comparisons "
                                            "need micrograd and torch: `make bench` installs them.",
                                allow_abbrev=False)
    bench.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    listing = bench.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    bench.set_defaults(run=_bench)
    parser.own_options = {command: _takes_value(*actions) for command, actions in
                          [("show", ()), ("check", (at, no_fd)), ("bench", (listing,))]}
    return parser


def _takes_value(*actions: argparse.Action) -> dict[str, bool]:
    """Each option string of ``actions`` (and of help), with whether a value follows it."""
    return {"-h": False, "--help": False} | {s: a.nargs != 0 for a in actions for s in a.option_strings}


def _formula_help() -> str:
    from .formula import FUNCTIONS
    calls = ", ".join(f"{name}({', '.join('xyzuvw'[:arity])})" for name, arity in FUNCTIONS.items())
    return f"a formula of numbers, names, + - * / ** and the op table's functions {calls}: e.g. 'tanh(x*w + b)'"


# -- demo and bench -----------------------------------------------------------------------

def _demo(args: argparse.Namespace) -> int:
    from . import demo
    return demo.main(["--eager"] if args.eager else ["--python"] if args.python else [])


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
    missing = [m for m in BENCH_PEERS if importlib.util.find_spec(m) is None]
    hint = (f"{' and '.join(missing)} not installed: run `make bench` in the source checkout, which "
            f"installs the bench extra (or pip install 'graphc[bench]')") if missing else ""
    if missing:
        print(f"graphc bench: note: {hint}; benchmarks that compare with them will fail", file=sys.stderr)
    failed = []
    for name in args.names or list(scripts):
        print(f"== bench/{name}.py {' '.join(args.passed_on)}".rstrip(), flush=True)
        command = [sys.executable, str(scripts[name]), *args.passed_on]
        if subprocess.run(command, cwd=CHECKOUT).returncode != 0:
            failed.append(name)
    if failed:
        print(f"graphc bench: failed: {', '.join(failed)}" + (f" ({hint})" if hint else ""), file=sys.stderr)
    return 1 if failed else 0


# -- show and check: formulas ----------------------------------------------------------------

def _formula(text: str):
    """(the formula's function, its names) for ``text``."""
    from .formula import parse

    formula = parse(text)
    return formula.function(), formula.names


def default_point(n: int) -> list[float]:
    """``n`` numbers for ``n`` formula names: :data:`DEFAULT_POINT`, then more of its kind --
    signs alternating, magnitudes 0.2 to 1.8 spread by the golden ratio, each at least
    ``0.5 / max(n, 50)`` from the others (``0.1 * k`` steps met zeros and near-ties)."""
    values = list(DEFAULT_POINT[:n])
    gap, digits, k = 0.5 / max(n, 50), 3 if n < 1000 else 6, 0  # enough digits for n distinct
    while len(values) < n:
        k += 1
        v = round((-1) ** len(values) * (0.2 + 1.6 * (k * 0.6180339887498949 % 1.0)), digits)
        if all(abs(v - u) >= gap for u in values):
            values.append(v)
    return values


def _point(names: Sequence[str], given: list[str]) -> list[float]:
    from .errors import GraphcError

    values = dict(zip(names, default_point(len(names))))
    seen: set[str] = set()
    for item in (part for text in given for part in text.split(",") if part.strip()):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in values:
            raise GraphcError(f"--at expects NAME=VALUE with NAME one of {', '.join(values) or '(none)'}; "
                              f"got {item!r}")
        if name in seen:
            raise GraphcError(f"--at gives {name} twice; give each name once")
        seen.add(name)
        try:
            values[name] = float(value)
        except ValueError:
            raise GraphcError(f"--at {name}: {value.strip()!r} is not a number") from None
    return [values[name] for name in names]


def _show(args: argparse.Namespace) -> int:
    import graphc
    from graphc.codegen import python as python_codegen

    function, names = _formula(args.expr)
    point = _point(names, [])
    compiled = graphc.compile(function)
    compiled(*[graphc.Value(v) for v in point])  # Values: the code has their gradients
    stages = compiled.stages(0, wrt_inputs=True)
    print(f"expression: {args.expr.strip()}")
    print(f"inputs: {', '.join(names) or '(none)'}")
    code_names = python_codegen.names_in_code(stages.joint, compiled.name)
    print(_renamed(names, [code_names[i] for i in stages.joint.inputs]))
    print("graph:")
    print(graphc.trace(function, *point))  # as written: the passes' starting point
    print(f"\npasses:\n{stages.report}\n")
    print("generated code (forward, then gradient):")
    print(stages.program.source)
    print("derivatives (SymPy):")
    print(_derivatives(stages.graph))
    return 0


def _renamed(names: list[str], code_names: list[str]) -> str:
    """A line saying which names the generated code spells otherwise (``if_`` as ``if_1``: code
    names are ASCII and never keywords), for the tables and code that follow; else empty."""
    pairs = [f"{name} as {code}" for name, code in zip(names, code_names) if name != code]
    return f"named in the code: {', '.join(pairs)}\n" if pairs else ""


def _derivatives(graph) -> str:
    """SymPy's derivative of the graph's output in each input, one line each (or why not)."""
    import sympy as sp

    from .check import SYMPY_REFUSALS
    from .errors import GraphcError
    from .symbolic import symbols_of, to_sympy

    try:
        (expr,) = to_sympy(graph)
        return "\n".join(f"  d/d{s.name} = {sp.factor_terms(sp.diff(expr, s))}" for s in symbols_of(graph))
    except GraphcError as error:
        return f"  skipped: {error}"
    except SYMPY_REFUSALS as error:
        return f"  skipped: SymPy cannot differentiate it ({type(error).__name__}: {error})"


def _check(args: argparse.Namespace) -> int:
    import graphc

    function, names = _formula(args.expr)
    point = _point(names, args.at)
    report = graphc.check_grad(graphc.compile(function), *point, fd=args.fd)
    print(f"expression: {args.expr.strip()}")
    print("at " + (", ".join(f"{name}={v:g}" for name, v in zip(names, point)) or "(no variables)"))
    print(_renamed(names, [row.name for row in report.rows[:len(names)]]), end="")
    print(report)
    return 0 if report.verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
