"""SECURITY.md, checked: no user text reaches generated code, only generated code runs, no eval.

Every backend's source is walked: Python and NumPy source with ``ast`` against an
allowlist (names, numeric literals, arithmetic, tuples, subscripts of graphc's own lists,
calls of the backend's helpers), C source line by line against the shapes the C backend
writes.  Labels, argument names (a hostile ``__signature__`` included) and function names
come from hypothesis plus a list of known-dangerous spellings: quotes, newlines, comment
delimiters, ``__import__``, non-ASCII, 10,000 characters, and every name the generated code
itself uses (helpers, C macros, derived names such as ``v8_sum``).
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import graphc
from graphc import Value
from graphc.codegen import c as c_backend
from graphc.codegen import loader
from graphc.codegen import numpy as numpy_backend
from graphc.codegen import python as python_backend
from graphc.compile import BACKENDS

ROOT = Path(__file__).resolve().parent.parent
NASTY = ['a"b', "x'); __import__('os').system('echo pwned'); ('", "line\nbreak", "*/ int main(){} /*",
         "// x\n#include <stdio.h>", "\\", "π", "日本語", "", "1st", "_private", "__import__", "class", "lambda",
         "None", "print", "inf", "nan", "e", "n", "r", "k", "lane", "seed", "inputs", "params", "sums", "per_row",
         "summed", "np", "math", "gc_relu", "gc_dot", "GC_PACK", "log1p", "exp", "HUGE_VAL", "NULL", "FP_NAN",
         "math_errhandling", "isnan", "main", "v3", "v8_sum", "v5_t", "v3_from", "v4_slot", "x" * 10_000]
MARKERS = ("__import__(", "system(", "('os')", "#include <stdio", "main(){", "*/ int", "line\nbreak", 'a"b')
labels = st.one_of(st.sampled_from(NASTY), st.text(max_size=30))

# -- what generated source may contain ----------------------------------------------------------

_PY_NODES = (ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Assign, ast.Return, ast.Expr, ast.Yield,
             ast.Name, ast.Load, ast.Store, ast.Tuple, ast.List, ast.BinOp, ast.UnaryOp, ast.USub, ast.Add,
             ast.Sub, ast.Mult, ast.Call, ast.keyword, ast.Subscript, ast.Slice, ast.Constant, ast.Attribute,
             ast.ListComp, ast.comprehension, ast.AugAssign)
_NUMPY_ATTRIBUTES = {"np": {"maximum", "tanh", "exp", "log", "log1p", "sin", "cos", "full", "stack", "empty", "array"}}
_METHODS = {"sum", "tolist", "reshape"}  # np.stack(sums).sum(axis=1), v.sum(axis=1), params[0:6].reshape(2, 3)


def assert_only_generated_python(source: str, namespace: dict) -> None:
    """Names, numbers, arithmetic, tuples, subscripts of graphc's lists and calls of the
    backend's helpers (or of the source's own part functions) -- nothing else."""
    tree = ast.parse(source)
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    for node in ast.walk(tree):
        assert isinstance(node, _PY_NODES), ast.dump(node)[:200]
        if isinstance(node, ast.Constant):
            assert node.value is None or type(node.value) in (int, float), node.value
        elif isinstance(node, ast.Attribute):
            base = node.value
            if isinstance(base, ast.Name):
                assert node.attr in _NUMPY_ATTRIBUTES.get(base.id, set()) | _METHODS, ast.dump(node)
            else:
                assert isinstance(base, (ast.Call, ast.Subscript)) and node.attr in _METHODS, ast.dump(node)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id in namespace or func.id in defined or func.id == "float", func.id
            else:
                assert isinstance(func, ast.Attribute), ast.dump(func)
            assert all(k.arg == "axis" for k in node.keywords)
        elif isinstance(node, ast.Subscript):  # of a name, or of a reshaped view of one
            assert isinstance(node.value, ast.Name) or (
                isinstance(node.value, ast.Call) and node.value.func.attr == "reshape"), ast.dump(node)
        elif isinstance(node, ast.Name) and node.id not in namespace:
            assert node.id.isascii() and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node.id), node.id


_C_LINE = re.compile(r"[A-Za-z0-9_ ()\[\]{}+\-*/=;,.<>?:!&|]*")


def assert_only_generated_c(source: str) -> None:
    """After graphc's header comment and fixed prelude: identifiers, numbers, operators and
    graphc's own one-line comments -- no quotes, backslashes, directives or user text."""
    body = source[source.index(c_backend.PRELUDE) + len(c_backend.PRELUDE):]
    header = source[:source.index(c_backend.PRELUDE)]
    assert re.fullmatch(r"/\*[A-Za-z0-9_ ().,:\-+'\n*]*\*/\n", header), header
    for line in body.splitlines():
        comment = re.fullmatch(r"\s*/\* ([A-Za-z0-9_ ,().:+\-]*) \*/", line)
        assert comment or _C_LINE.fullmatch(line), line


def sources(compiled: graphc.Compiled, *args, batched) -> dict[str, str]:
    """The source of every program of ``compiled``: scalar call (forward + gradients), map, mean."""
    out = {}
    result = compiled(*[Value(a) for a in args])
    (result[0] if isinstance(result, list) else result).backward()
    if compiled.backend == "c":  # scalar calls run in C, the gradient a program of its own
        for key, program in compiled._latest._one_row.items():
            out[f"c scalar {key}"] = program.source
    else:
        out["python"] = compiled.source
    compiled.map(*batched)
    out[f"{compiled.backend} map"] = compiled.source
    compiled.mean(*batched).backward()
    out[f"{compiled.backend} mean"] = compiled.source
    return out


def check(kind: str, source: str) -> None:
    assert not any(marker in source for marker in MARKERS), (kind, source[:500])
    if kind.startswith("c "):
        assert_only_generated_c(source)
    elif kind.startswith("numpy"):
        assert_only_generated_python(source, numpy_backend.NAMESPACE)
    else:
        assert_only_generated_python(source, python_backend.NAMESPACE)


def with_names(fn, name: str, arg_names: list[str]):
    """``fn`` renamed, with a ``__signature__`` whose parameters carry any text as names (a
    hostile object could; inspect.Parameter would refuse most of them)."""
    parameters = [inspect.Parameter(f"a{k}", inspect.Parameter.POSITIONAL_OR_KEYWORD) for k in range(len(arg_names))]
    for p, text in zip(parameters, arg_names):
        object.__setattr__(p, "_name", text)
    fn.__signature__ = inspect.Signature(parameters, __validate_parameters__=False)
    fn.__name__ = fn.__qualname__ = name
    return fn


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("label", NASTY, ids=lambda s: repr(s[:12]))
def test_dangerous_labels_are_sanitized_on_every_backend(backend, label):
    # Regression: C builds failed for labels spelled like a prelude helper or a math.h macro
    # (gc_relu, log1p, HUGE_VAL, NULL, ...) or like a derived name (v8_sum): they shadowed
    # the helper, were macro-expanded, or were declared twice.
    p, q = Value(0.5, label=label), Value(-1.5, label=label)

    def fn(x, y):
        return ((x * p).relu() + y * q).sigmoid().softplus() + (x * p).log1p().exp()
    compiled = graphc.compile(fn, backend=backend)
    X, Y = np.array([1.0, 2.0]), np.array([3.0, -4.0])
    for kind, source in sources(compiled, 1.0, 3.0, batched=(X, Y)).items():
        check(kind, source)
    want = [fn(Value(a), Value(b)).data for a, b in zip(X, Y)]
    assert np.allclose(compiled.map(X, Y), want, rtol=1e-12, atol=0)


@settings(max_examples=25, deadline=None)
@given(st.lists(labels, min_size=2, max_size=2), labels, st.lists(labels, min_size=2, max_size=2),
       st.sampled_from(BACKENDS))
def test_no_user_text_reaches_any_backends_source(param_labels, fn_name, arg_names, backend):
    p, q = (Value(v, label=text) for v, text in zip((0.5, -1.5), param_labels))
    fn = with_names(lambda a, b: (a * p + b * q).tanh() + (a - q) * b, fn_name, arg_names)
    compiled = graphc.compile(fn, backend=backend)
    for kind, source in sources(compiled, 0.25, -2.0, batched=(np.array([0.25, 1.0]), np.array([-2.0, 3.0]))).items():
        check(kind, source)
    assert compiled(0.25, -2.0).data == fn(Value(0.25), Value(-2.0)).data


def test_a_module_class_with_any_name_and_exports_are_safe(tmp_path):
    from graphc.nn import MLP
    Evil = type('Evil"\nimport os\n', (MLP,), {})
    model = Evil(2, [3, 1])
    for p in model.parameters():
        p.label = "x'); __import__('os').system('echo pwned'); ('"
    compiled = graphc.compile(model)
    compiled([0.5, -0.5])
    check("python", compiled.source)
    path = graphc.export(compiled, tmp_path / "exported.py")
    text = path.read_text()
    assert not any(marker in text for marker in MARKERS)
    spec = importlib.util.spec_from_file_location("exported", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.forward([0.5, -0.5]) == model([0.5, -0.5]).data


def test_constants_are_emitted_as_literals_only():
    specials = [float("inf"), float("-inf"), float("nan"), -0.0, 5e-324, 1.7976931348623157e308, 0.1]
    compiled = graphc.compile(lambda x: [x * c for c in specials] + [Value(c) * 1.0 for c in specials])
    compiled(1.0)
    tree = ast.parse(compiled.source)
    literals = {type(n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert literals <= {int, float}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert {"inf", "nan"} <= names and python_backend.NAMESPACE["inf"] == float("inf")


def test_the_loader_runs_code_in_a_fresh_namespace_holding_only_the_helpers():
    source = "def f(x):\n    return _exp(x)\n\ndef g():\n    return sorted(globals())\n"
    namespace = {"_exp": python_backend.NAMESPACE["_exp"]}
    f = loader.load(source, "f", namespace, "test")
    g = loader.load(source, "g", namespace, "test")
    assert f(0.0) == 1.0
    assert g() == ["__builtins__", "__name__", "_exp", "f", "g"]
    assert f.__globals__ is not g.__globals__ and namespace == {"_exp": python_backend.NAMESPACE["_exp"]}


#: Calls that evaluate text, and the only modules allowed to make them.
FORBIDDEN_CALLS = {"eval": set(), "exec": {"graphc/codegen/loader.py"}, "compile": {"graphc/codegen/loader.py"},
                   "__import__": set(), "sympify": set(),
                   "parse_expr": {"graphc/formula.py"},  # behind formula.parse's syntax-tree allowlist
                   "import_module": {"graphc/__init__.py"}}  # lazy imports of graphc's own modules
BUILTINS = {"eval", "exec", "compile", "__import__"}  # called bare or as builtins.<name>; op.eval is fine
FORBIDDEN_MODULES = {"pickle", "marshal", "shelve", "dill", "joblib", "cloudpickle"}


def forbidden_uses(tree: ast.AST, rel: str) -> list[str]:
    """Calls of text evaluators (``eval(...)``, ``sp.sympify(...)``) and imports of
    unpickling modules in a module's syntax tree, except where ``FORBIDDEN_CALLS`` allows."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func, name = node.func, None
            if isinstance(func, ast.Name):
                name = func.id
            elif isinstance(func, ast.Attribute) and (func.attr not in BUILTINS or
                                                      isinstance(func.value, ast.Name) and func.value.id == "builtins"):
                name = func.attr
            if name in FORBIDDEN_CALLS and rel not in FORBIDDEN_CALLS[name]:
                found.append(f"{rel}:{node.lineno}: calls {name}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] + [a.name for a in node.names]
            for module in modules:
                if module.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{rel}:{node.lineno}: imports {module}")
    return found


def test_graphc_never_evaluates_text_or_unpickles():
    """No eval/exec/compile (but the loader's, of generated code), no sympify, parse_expr only
    behind the formula allowlist, no pickle-like module, anywhere in graphc."""
    found = []
    for path in sorted((ROOT / "graphc").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        found += forbidden_uses(ast.parse(path.read_text()), rel)
    assert found == []


@pytest.mark.parametrize("code", ["x = eval(text)", "exec(code, {})", "import builtins; builtins.eval(t)",
                                  "sp.sympify(s)", "from sympy import sympify; sympify(t)", "import pickle",
                                  "from pickle import loads", "import shelve", "parse_expr(t)", "__import__('os')",
                                  "importlib.import_module(name)", "compile(text, 'f', 'exec')"])
def test_the_check_finds_what_it_forbids(code):
    """The checker above flags each forbidden use (a test that cannot fail is a defect)."""
    assert forbidden_uses(ast.parse(code), "graphc/somewhere.py")
    assert not forbidden_uses(ast.parse("op.eval(x)\n'eval(text)'  # exec(x)"), "graphc/somewhere.py")
