"""Write docs/api.md, the API reference, from the docstrings of graphc's public names.

    .venv/bin/python docs/regenerate_api.py

``tests/test_api_docs.py`` checks that every public name has a docstring and that
docs/api.md matches what this script writes, so the reference cannot drift from the code.
"""
from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Module -> its public names, in reading order.  Methods of classes are listed below them.
PUBLIC = {
    "graphc": ["Value", "apply", "trace", "Graph", "optimize", "compile", "Compiled", "check_grad",
               "GradReport", "to_sympy", "from_sympy", "as_function", "export",
               "grad", "value_and_grad", "make_graph", "stop_gradient", "set_logs"],
    "graphc.functional": ["GradFunction"],
    "graphc.signature": ["Stages"],
    "graphc.nn": ["Module", "Neuron", "Layer", "MLP", "LoadResult"],
    "graphc.saving": ["save", "load"],
    "graphc.autodiff": ["grad"],
    "graphc.passes": ["fold", "simplify", "flatten", "cse", "dce", "reroll", "stabilize", "PassStats", "OptimizeReport"],
    "graphc.viz": ["to_dot", "draw_value", "render", "pipe"],
    "graphc.losses": None,
    "graphc.optim": None,
    "graphc.sklearn": ["MLPClassifier", "MLPRegressor"],
    "graphc.errors": None,
    "graphc.__main__": ["main"],
}


def public_names() -> list[tuple[str, str, object]]:
    """(module, qualified name, object) for every documented public name, methods included."""
    found = []
    for module_name, names in PUBLIC.items():
        module = importlib.import_module(module_name)
        if names is None:
            names = [n for n, obj in vars(module).items() if not n.startswith("_")
                     and (inspect.isclass(obj) or inspect.isfunction(obj))
                     and getattr(obj, "__module__", "") == module_name]
        for name in names:
            obj = getattr(module, name)
            found.append((module_name, name, obj))
            if inspect.isclass(obj):
                for attr, member in _members(obj):
                    found.append((module_name, f"{name}.{attr}", member))
    return found


def _members(cls: type):
    for attr, member in vars(cls).items():
        if attr.startswith("_") and attr not in ("__call__",):
            continue
        member = getattr(member, "fn", member)  # a method behind scikit-learn's available_if
        if isinstance(member, classmethod):  # Graph.from_nx
            member = member.__func__
        if inspect.isfunction(member) or isinstance(member, property):
            yield attr, member


def _signature(obj: object) -> str:
    target = obj.fget if isinstance(obj, property) else obj
    try:
        return str(inspect.signature(target))
    except (TypeError, ValueError):
        return ""


def render() -> str:
    out = ["# graphc API reference", "",
           "Generated from the docstrings by `docs/regenerate_api.py`; `help(graphc.<name>)` shows the same text.",
           ""]
    current = None
    for module_name, name, obj in public_names():
        if module_name != current:
            current = module_name
            module = importlib.import_module(module_name)
            out += [f"## `{module_name}`", "", inspect.cleandoc(module.__doc__ or ""), ""]
        kind = "property" if isinstance(obj, property) else "class" if inspect.isclass(obj) else "def"
        level = "####" if "." in name else "###"
        signature = "" if kind == "property" else _signature(obj)
        out += [f"{level} `{name}{signature}`" + (" (property)" if kind == "property" else ""), "",
                inspect.cleandoc(obj.__doc__ or ""), ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    (HERE / "api.md").write_text(render())
    print("wrote", HERE / "api.md")


if __name__ == "__main__":
    main()
