"""Rewrite README.md's blocks of output by running the code that produces them.

    .venv/bin/python docs/regenerate_readme.py

As docs/regenerate_tour.py does for the tour.  A block of output is a fenced ``text`` block
right after what produces it:

- a ``python`` block: the output is what running that block prints;
- the line "prints (`python examples/NAME.py`):" after a ``python`` block: that block is
  the script's code, and the output is what the script prints;
- or a ``console`` block whose first line is ``$ graphc ...``: the rest is what that
  command prints.

``tests/test_readme.py`` checks that README.md is what this writes.
"""
from __future__ import annotations

import contextlib
import io
import linecache
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
PRINTS = re.compile(r"prints \(`python (examples/\w+\.py)`\):\n\n$")


def printed(source: str, filename: str) -> str:
    """What running ``source`` as a script prints."""
    buffer = io.StringIO()
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # its lines, for messages
    with contextlib.redirect_stdout(buffer):
        exec(compile(source, filename, "exec"), {"__name__": "__main__"})  # the README's own code
    return buffer.getvalue()


def command_output(command: str) -> str:
    """What ``graphc ARGS`` prints, run in this process."""
    from graphc.__main__ import main
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main(shlex.split(command)[1:])
    return buffer.getvalue()


def script_body(path: Path) -> str:
    """The script without its docstring, as the README shows it."""
    source = path.read_text()
    return source[source.index('"""', 3) + 3:].lstrip("\n")


def same_code(shown: str, script: str) -> bool:
    """Equal but for blank lines (the README drops PEP 8's doubled ones)."""
    return [line for line in shown.splitlines() if line.strip()] == \
        [line for line in script.splitlines() if line.strip()]


def producer(text: str, block: re.Match, previous: re.Match | None):
    """What makes ``block``'s output, as a function of no arguments; None when it shows none."""
    lang, body = block.group(1), block.group(2)
    if lang == "console" and body.startswith("$ graphc "):
        command = body.splitlines()[0]
        return lambda: f"{command}\n{command_output(command[2:])}"
    if lang != "text" or previous is None or previous.group(1) != "python":
        return None
    between = text[previous.end():block.start()]
    script = PRINTS.fullmatch(between.lstrip("\n"))
    if script:
        path = ROOT / script.group(1)
        if not same_code(previous.group(2), script_body(path)):
            raise ValueError(f"README.md: the code above {script.group(1)}'s output is not that script's")
        return lambda: printed(path.read_text(), str(path))
    if between.strip():
        return None
    return lambda: printed(previous.group(2), "README.md")


def output_blocks(text: str) -> list[tuple[re.Match, object]]:
    """Every block of output in ``text``, with its producer."""
    found, previous = [], None
    for block in FENCE.finditer(text):
        make = producer(text, block, previous)
        if make is not None:
            found.append((block, make))
        previous = block
    return found


def regenerate(text: str) -> str:
    """``text`` (README.md) with every block of output as its code prints it now."""
    out, start = [], 0
    for block, make in output_blocks(text):
        out.append(text[start:block.start()] + f"```{block.group(1)}\n{make()}```\n")
        start = block.end()
    return "".join(out) + text[start:]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    readme = ROOT / "README.md"
    readme.write_text(regenerate(readme.read_text()))
    print("wrote", readme)


if __name__ == "__main__":
    main()
