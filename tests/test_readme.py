"""Every block of output README.md shows is what its code prints now.

docs/regenerate_readme.py finds the blocks -- output after a ``python`` block, the output of
a ``python examples/...`` script shown above it, a ``graphc`` command's run -- and rewrites
them; this checks that it would change nothing.  Exempt, by design: the benchmark tables
(timings of one run on one machine; bench/ prints them) and the "How it works" diagram,
which are markdown tables or a drawing, not printed output.
"""
from __future__ import annotations

import difflib
import importlib.util
import re

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("regenerate_readme", ROOT / "docs" / "regenerate_readme.py")
regenerate_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate_readme)

STALE = "README.md is stale: run `python docs/regenerate_readme.py` and review the diff"


def test_every_block_of_output_is_what_its_code_prints():
    readme = (ROOT / "README.md").read_text()
    regenerated = regenerate_readme.regenerate(readme)
    diff = "".join(difflib.unified_diff(readme.splitlines(True), regenerated.splitlines(True), "README.md", "now"))
    assert diff == "", f"{STALE}\n{diff}"


def test_the_blocks_of_output_are_found():
    readme = (ROOT / "README.md").read_text()
    firsts = [block.group(2).splitlines()[0] for block, _ in regenerate_readme.output_blocks(readme)]
    assert firsts == ["{ lambda x1 x2 ; w b .",          # Five minutes: examples/gradient_code.py
                      "6.0 1.0 10.0 2",  # Compiling micrograd code as you wrote it
                      "[-1.39511148 -2.79022295 -0.69755574]",  # For JAX users
                      '$ graphc show "tanh(x*w + b)"',
                      "check_grad(lambda): output 0.7071067812"]


def test_no_other_block_looks_like_output():
    """A block of output the regenerator does not recognize would go unchecked."""
    readme = (ROOT / "README.md").read_text()
    checked = {block.start() for block, _ in regenerate_readme.output_blocks(readme)}
    code = {"python", "sh"}
    unchecked = [block.group(2).splitlines()[0] for block in regenerate_readme.FENCE.finditer(readme)
                 if block.group(1) not in code and block.start() not in checked]
    assert unchecked == ["fn / Module --trace--> Graph --optimize--> Graph --autodiff--> joint Graph --optimize-->"]


def test_a_stale_block_is_rewritten():
    readme = (ROOT / "README.md").read_text()
    stale = readme.replace("yield (v14, v13)", "yield (v15, v14, v16, v13)", 1)
    assert stale != readme and regenerate_readme.regenerate(stale) == readme


def test_the_shown_script_is_the_script():
    readme = (ROOT / "README.md").read_text()
    edited = readme.replace("out = compiled(2.0, 0.0)  ", "out = compiled(3.0, 0.0)  ", 1)
    assert edited != readme
    with pytest.raises(ValueError, match="examples/gradient_code.py"):
        regenerate_readme.output_blocks(edited)


def test_the_sympy_example_shows_what_sympy_gives():
    """The SymPy block shows its results in comments rather than a block of output."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### SymPy: `to_sympy` and `from_sympy`"):readme.index("### `export`")]
    code = regenerate_readme.FENCE.search(section).group(2)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102  (the README's own example)
    shown = dict(re.findall(r"^(\S.*?)\s+# (.*)$", code, re.M))
    assert str(namespace["expr"]) == shown["(expr,) = graphc.to_sympy(g)"].split(",")[0]
    assert str(namespace["sp"].diff(namespace["expr"], namespace["x"])) == shown["sp.diff(expr, x)"]
