"""Rewrite docs/tour.md from docs/tour.template.md by running every example in it.

    .venv/bin/python docs/regenerate_tour.py

The template holds ``pycon`` blocks of ``>>>`` examples without their output; this runs
them in one namespace, as doctest would, and writes each example's real output below it.
``tests/test_tour.py`` then checks, with doctest, that the written outputs still hold.
"""
from __future__ import annotations

import contextlib
import doctest
import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_example(source: str, namespace: dict) -> str:
    """What doctest would see: printed text plus the repr of an expression's value."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(source, "<tour>", "single"), namespace)  # the tour's own examples
    return buffer.getvalue()


def regenerate(template: str) -> str:
    parser = doctest.DocTestParser()
    namespace: dict = {"__name__": "__tour__"}
    out = []
    for piece in parser.parse(template):
        if isinstance(piece, str):
            out.append(piece)
            continue
        out.append(_prompted(piece.source, piece.indent))
        want = run_example(piece.source, namespace)
        out.append("".join(" " * piece.indent + (line if line.strip() else "<BLANKLINE>\n")
                           for line in want.splitlines(True)))
    return "".join(out)


def _prompted(source: str, indent: int) -> str:
    lines = source.splitlines(True)
    return "".join(" " * indent + (">>> " if k == 0 else "... ") + line for k, line in enumerate(lines))


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    (HERE / "tour.md").write_text(regenerate((HERE / "tour.template.md").read_text()))
    print("wrote", HERE / "tour.md")


if __name__ == "__main__":
    main()
