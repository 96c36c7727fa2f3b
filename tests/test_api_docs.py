"""Every public name has a docstring, and docs/api.md is the reference those docstrings make."""
from __future__ import annotations

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "docs"))
import regenerate_api  # noqa: E402


def test_every_public_name_has_a_docstring():
    names = regenerate_api.public_names()
    assert len(names) > 80
    undocumented = [f"{module}.{name}" for module, name, obj in names if not (obj.__doc__ or "").strip()]
    assert undocumented == []


def test_every_name_graphc_exports_is_in_the_reference():
    import graphc
    documented = {name for _, name, _ in regenerate_api.public_names()} | {"__version__"}
    assert [name for name in graphc.__all__ if name not in documented] == []


def test_the_api_reference_is_current():
    assert (ROOT / "docs" / "api.md").read_text() == regenerate_api.render(), \
        "docs/api.md is stale: run `python docs/regenerate_api.py`"


def test_the_readme_lists_every_op_and_pass():
    from graphc import ops
    from graphc.passes import PIPELINE
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Ops"):readme.index("### Passes")]
    assert [name for name in ops.TABLE if f"`{name}`" not in section] == []
    passes = readme[readme.index("### Passes"):]
    assert [p.__name__ for p in PIPELINE if f"`{p.__name__}`" not in passes] == []
