"""export: a standalone module that runs where graphc cannot be imported, and computes what compile does."""
from __future__ import annotations

import ast
import collections
import importlib.util
import inspect
import json
import math
import pickle
import random
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc
from graphc import GraphcError, Value
from graphc.export import EXPORTERS, export
from graphc.nn import MLP

# Runs in a fresh interpreter: graphc (and NumPy, SymPy, networkx) cannot be imported there.
RUNNER = textwrap.dedent('''
    import importlib.abc, importlib.util, json, sys

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"graphc", "numpy", "sympy", "networkx"}:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocked())
    try:
        import graphc
        raise SystemExit("the import blocker does not work")
    except ImportError:
        pass
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location("exported", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    new = sorted(m for m in set(sys.modules) - before if m.split(".")[0] not in sys.stdlib_module_names)
    args = json.loads(sys.argv[2])
    print(json.dumps({"new_modules": new, "PARAMS": module.PARAMS, "forward": module.forward(*args),
                      "value_and_grad": module.value_and_grad(*args), "doc": module.__doc__}))
''')


def run_standalone(path, args) -> dict:
    result = subprocess.run([sys.executable, "-I", "-c", RUNNER, str(path), json.dumps(args)],
                            capture_output=True, text=True, cwd=path.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def to_lists(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return [to_lists(v) for v in x]
    return x


def same(a, b) -> bool:
    """Equal structure and equal floats, nan and the sign of zero included; tuples and lists
    alike (JSON)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(u, v) for u, v in zip(a, b))
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def compiled_reference(compiled, args, params):
    """What compile gives: output floats, and output 0's gradients for args (as Values) and params."""
    out = compiled(*args)
    values = graphc.tree.flatten_output(out)[0]
    floats = graphc.tree.unflatten(compiled.graph.out_tree, iter(v.data for v in values))
    leaves, tree, _ = graphc.tree.flatten_args(args, ["x"] * len(args))
    fresh = [Value(v.data if isinstance(v, Value) else float(v)) for v in leaves]
    for p in params:
        p.grad = 0.0
    first = graphc.tree.flatten_output(compiled(*graphc.tree.unflatten(tree, iter(fresh))))[0][0]
    first.backward()
    arg_grads = graphc.tree.unflatten(tree, iter(float(v.grad) for v in fresh))
    return floats, [first.data, to_lists(arg_grads), [float(p.grad) for p in params]]


def neuron_case():
    w, b = Value(-3.0, label="w"), Value(6.8813735870195432, label="b")

    def neuron(X, pair):
        return [(X[0][0] * w + X[1][1] * pair[0] + b).tanh(), ((pair[1] * w).exp(), pair[0] / b)]
    return neuron, (np.array([[2.0, 1.0], [0.5, -0.25]]), (2.0, 0.1)), [w, b]


def mlp_case():
    random.seed(5)
    model = MLP(3, [4, 4, 1])
    return model, ([0.5, -1.0, 2.0],), model.parameters()


def specials_case():
    p = Value(math.inf, label="p")
    q = Value(-0.0, label="q")

    def specials(x):
        return [x * q, p + x, x * math.nan, (x - 1.0).log(), x ** -1, graphc.apply("max", x, 0.5)]
    return specials, (0.0,), [p, q]


@pytest.mark.parametrize("case", [neuron_case, mlp_case, specials_case])
def test_exported_module_runs_without_graphc_and_matches_compile(tmp_path, case):
    fn, args, params = case()
    compiled = graphc.compile(fn)
    compiled(*args)
    path = export(compiled, tmp_path / "exported.py")
    got = run_standalone(path, to_lists(list(args)))
    assert got["new_modules"] == []
    assert same(got["PARAMS"], [p.data for p in compiled.graph.param_values])
    forward, value_and_grad = compiled_reference(compiled, args, compiled.graph.param_values)
    assert same(got["forward"], to_lists(forward))
    assert same(got["value_and_grad"][0], value_and_grad[0])
    assert same(got["value_and_grad"][1:], value_and_grad[1:])  # zeros added as .grad adds them
    assert f"graphc {graphc.__version__}" in got["doc"]


def test_the_module_imports_only_the_standard_library(tmp_path):
    fn, args, _ = neuron_case()
    compiled = graphc.compile(fn)
    compiled(*args)
    tree = ast.parse(export(compiled, tmp_path / "m.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and imported <= set(sys.stdlib_module_names)


def load(path):
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docstring_states_argument_order_and_structures_mirror_the_call(tmp_path):
    fn, args, params = neuron_case()
    compiled = graphc.compile(fn)
    compiled(*args)
    module = load(export(compiled, tmp_path / "neuron.py"))
    assert "forward(X, pair, params=PARAMS)" in module.__doc__
    assert "in order: X[0][0], X[0][1], X[1][0], X[1][1], pair[0], pair[1]." in module.__doc__
    assert "PARAMS in order:\n    w: -3.0\n    b: 6.881373587019543\n" in module.__doc__
    out = module.forward(*args)  # NumPy arrays are accepted where NumPy exists
    assert isinstance(out, list) and isinstance(out[1], tuple)
    value, arg_grads, param_grads = module.value_and_grad(*args)
    assert isinstance(arg_grads, tuple) and isinstance(arg_grads[1], tuple)
    assert np.array(arg_grads[0]).shape == (2, 2) and len(param_grads) == 2


def test_a_big_model_lists_its_params_one_per_line(tmp_path):
    """The docstring and PARAMS once held all 2,000 params on one 61 KB line each."""
    random.seed(3)
    model = MLP(10, [40, 40, 1])
    params = model.parameters()
    assert len(params) > 2000
    compiled = graphc.compile(model)
    compiled([0.5] * 10)
    path = export(compiled, tmp_path / "big.py")
    text = path.read_text()
    lines = text.splitlines()
    assert lines.count("PARAMS = [") == 1 and sum(line.startswith("    L") for line in lines) > 2000  # doc
    literal = lines[lines.index("PARAMS = ["):]
    literal = literal[:literal.index("]") + 1]
    assert len(literal) == len(params) + 2 and literal[1] == f"    {params[0].data!r},  # L0_N0_w0"
    assert ast.literal_eval("\n".join(literal)[len("PARAMS = "):]) == [p.data for p in params]
    # What may stay long: lines every export has (the copied runtime), generated code (a
    # 41-term sum, the yield of every gradient), the arguments, which grow with the inputs.
    small, args, _ = mlp_case()
    small_compiled = graphc.compile(small)
    small_compiled(*args)
    digits = re.compile(r"\d+")  # the same line with another count is the same line
    everywhere = {digits.sub("N", line) for line in export(small_compiled, tmp_path / "s.py").read_text().splitlines()}
    long = [line for line in lines if len(line) > 100 and digits.sub("N", line) not in everywhere]
    assert long and all(line.startswith(("    v", "    yield", "Arguments (", "_IN_TREE")) for line in long)
    assert load(path).PARAMS == [p.data for p in params]


def test_params_can_be_overridden(tmp_path):
    model, args, params = mlp_case()
    compiled = graphc.compile(model)
    compiled(*args)
    module = load(export(compiled, tmp_path / "mlp.py"))
    new = [v * 0.5 for v in module.PARAMS]
    for p, v in zip(params, new):
        p.data = v
    assert module.forward(*args, params=new) == compiled(*args).data
    assert module.forward(*args) != compiled(*args).data  # PARAMS keeps the values at export time


def test_bad_arguments_are_named(tmp_path):
    fn, args, _ = neuron_case()
    compiled = graphc.compile(fn)
    compiled(*args)
    module = load(export(compiled, tmp_path / "neuron.py"))
    with pytest.raises(TypeError, match=r"expected 2 argument\(s\) \(X, pair\); got 1"):
        module.forward([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"argument X\[1\]: expected an array of shape \(2,\)"):
        module.forward([[1, 2], [3]], (1, 2))
    with pytest.raises(TypeError, match=r"argument pair\[0\]: expected a number; got str"):
        module.forward([[1, 2], [3, 4]], ("1", 2))
    with pytest.raises(ValueError, match="expected 2 param value"):
        module.forward([[1, 2], [3, 4]], (1, 2), params=[1.0])
    for too_large in [10 ** 400, np.longdouble("1e400")]:  # no OverflowError, no silent inf
        with pytest.raises(ValueError, match=r"argument pair\[1\]: expected a number that fits in a float"):
            module.forward([[1, 2], [3, 4]], (1, too_large))


def test_user_labels_stay_out_of_the_module_text(tmp_path):
    evil = '"""\nimport os; os.system("touch pwned")\n"""'
    p = Value(2.0, label=evil)
    compiled = graphc.compile(lambda x: x * p)
    compiled(3.0)
    path = export(compiled, tmp_path / "evil.py")
    text = path.read_text()
    assert 'os.system("touch pwned")' not in text and '"""\nimport' not in text
    assert "import_os_os_system_touch_pwned" in text  # the label as an identifier, nothing more
    assert load(path).value_and_grad(3.0) == (6.0, (2.0,), [3.0])
    assert not (tmp_path / "pwned").exists()


def test_export_needs_a_called_compiled_function(tmp_path):
    compiled = graphc.compile(lambda x: x * 2.0)
    with pytest.raises(GraphcError, match="has not been called yet"):
        export(compiled, tmp_path / "m.py")
    with pytest.raises(TypeError, match="takes a graphc.compile"):
        export(lambda x: x, tmp_path / "m.py")
    compiled(1.0)
    with pytest.raises(GraphcError, match="no exporter for backend 'cuda'"):
        export(compiled, tmp_path / "m.py", backend="cuda")


def test_another_backend_plugs_in_its_own_exporter(tmp_path, monkeypatch):
    seen = []

    def fake(plan):
        seen.append(plan)
        return f"# {len(plan.joint.outputs)} joint outputs for {plan.input_names}\n"
    monkeypatch.setitem(EXPORTERS, "fake", fake)
    compiled = graphc.compile(lambda x, y: x * y)
    compiled(1.0, 2.0)
    path = export(compiled, tmp_path / "fake.py", backend="fake")
    assert path.read_text() == "# 3 joint outputs for ['x', 'y']\n"
    assert seen[0].graph is compiled.graph and seen[0].arg_names == ["x", "y"]


def test_helpers_outside_the_runtime_are_copied_when_self_contained(tmp_path):
    from graphc.export import _helpers
    text = _helpers("v = _sum(a, b, c)\nw = _tanh(v)\n")
    assert "_tanh = tanh" in text and "def _sum_eval(" in text and "_sum = _sum_eval" in text
    path = tmp_path / "helpers.py"
    path.write_text("from math import tanh\n" + text + "RESULT = _sum(0.1, 0.2, 0.3)\n")
    assert load(path).RESULT == (0.1 + 0.2) + 0.3


def test_a_helper_that_needs_more_than_builtins_is_refused(monkeypatch):
    from graphc.codegen import python as python_backend
    from graphc.export import _helpers
    monkeypatch.setitem(python_backend.NAMESPACE, "_frob", lambda x: np.sqrt(x))
    with pytest.raises(GraphcError, match="_frob .* cannot be exported"):
        _helpers("v = _frob(a)\n")


def test_wide_sums_and_other_backends_export_as_plain_python(tmp_path):
    from graphc.compile import BACKENDS
    p = Value(0.5, label="p")

    def wide(xs):  # a 100-operand sum: the Python backend may spell it as a helper call
        return sum((x * p for x in xs), Value(0.0))
    xs = [0.01 * k for k in range(100)]
    for backend in [b for b in ("python", "numpy") if b in BACKENDS]:
        compiled = graphc.compile(wide, backend=backend)
        compiled(xs)
        got = run_standalone(export(compiled, tmp_path / f"wide_{backend}.py"), [xs])
        forward, value_and_grad = compiled_reference(compiled, (xs,), [p])
        assert got["new_modules"] == [] and same(got["forward"], forward)
        assert same(got["value_and_grad"], value_and_grad)


def test_an_export_computes_the_gradients_compile_does_with_its_numerics(tmp_path):
    """Regression: export rebuilt the gradient graph with default numerics, so a
    ``numerics="stable"`` export differed from the compiled gradients (at 364 of 400 points)."""
    compiled = graphc.compile(lambda x: x.sigmoid() + (1 + x).log(), numerics="stable")
    compiled(Value(0.5))
    module = load(export(compiled, tmp_path / "stable.py"))
    rng = random.Random(0)
    for _ in range(400):
        x = rng.uniform(-0.99, 5.0)
        xv = Value(x)
        out = compiled(xv)
        out.backward()
        value, grad, _ = module.value_and_grad(x)
        assert (value, grad) == (out.data, (xv.grad,)), x
    assert compiled.stages().joint is compiled.stages(0, wrt_inputs=True).joint  # one pipeline, cached


def test_traced_comparisons_export_and_run_standalone(tmp_path):
    """Regression (a review's probes): the comparison ops' helpers were closures, so a
    function returning the demo's accuracy could not be exported."""
    w = Value(0.5)
    compiled = graphc.compile(lambda xs: (sum(x * w for x in xs), sum(x.data > 0 for x in xs) / len(xs)))
    compiled([1.0, -2.0])
    path = export(compiled, tmp_path / "accuracy.py")
    assert run_standalone(path, [[1.0, 2.0]])["forward"] == [1.5, 1.0]
    assert run_standalone(path, [[-1.0, 2.0]])["forward"] == [0.5, 0.5]


def test_a_module_exported_from_one_branch_refuses_arguments_taking_another(tmp_path):
    """The exported code is the branch the trace took: arguments that take another (a guard
    comes out otherwise) raise a ValueError, not that branch's numbers."""
    compiled = graphc.compile(lambda x: x * 2.0 if x.data > 0 else -x)
    compiled(1.0)
    module = load(export(compiled, tmp_path / "branch.py"))
    assert module.forward(3.0) == 6.0 and module.value_and_grad(2.0) == (4.0, (2.0,), [])
    for call in (module.forward, module.value_and_grad):
        with pytest.raises(ValueError, match=r"another branch .* \(guard 1 of 1\)"):
            call(-1.0)


def test_a_module_refuses_a_number_of_another_kind_than_its_trace_relied_on(tmp_path):
    """An outside hunt: exported after an int call, ``k * -1`` is int 0 at k = 0 and the
    module gave inf for a float 0.0, whose product is -0.0 (compiled and eager: -inf); an
    int used as an index became a float's slice.  The compiled call traces again; the module
    raises a ValueError naming the argument."""
    compiled = graphc.compile(lambda x, k: 1 / (x * (k * -1)))
    assert compiled(2.0, 0).data == math.inf and compiled(2.0, 0.0).data == -math.inf
    compiled(2.0, 0)  # the int case, exported
    module = load(export(compiled, tmp_path / "kinds.py"))
    assert module.forward(2.0, 0) == math.inf and module.forward(3.0, 2) == 1 / (3.0 * -2)
    for call in (module.forward, module.value_and_grad):
        with pytest.raises(ValueError, match="argument k is a float where the trace relied on its being an int"):
            call(2.0, 0.0)
    sliced = graphc.compile(lambda xs, n: sum(xs[:n], Value(0.0)))
    sliced([1.0, 2.0, 3.0], 2)
    module = load(export(sliced, tmp_path / "slice.py"))
    assert module.forward([1.0, 2.0, 3.0], 2) == 3.0
    with pytest.raises(ValueError, match="argument n is a float"):
        module.forward([1.0, 2.0, 3.0], 2.0)


def test_dict_and_namedtuple_results_round_trip(tmp_path, monkeypatch):
    """A dict's keys are written as str literals (repr), whatever they hold."""
    key = "b\n'\"\"\" + __import__('os')"
    pair = collections.namedtuple("Pair", "a b")

    def f(p, x):
        s = p.a * x + p.b * x * x
        return {key: (s - 1.0).tanh() ** 2, "s": [s]}
    compiled = graphc.compile(f)
    out = compiled(pair(0.5, -0.25), 2.0)
    module = load(export(compiled, tmp_path / "dicts.py"))
    assert module.forward((0.5, -0.25), 2.0) == {key: out[key].data, "s": [out["s"][0].data]}
    value, (grad_p, grad_x), _ = module.value_and_grad(pair(0.5, -0.25), 2.0)
    assert value == out[key].data
    assert grad_p == tuple(graphc.grad(lambda p, x: f(p, x)[key])(pair(0.5, -0.25), 2.0))
    assert type(grad_p).__name__ == "Pair" and grad_p._fields == ("a", "b")  # mirrors the argument
    nothing = graphc.compile(lambda x: (x * 2.0, None, {"k": None}))
    nothing(1.0)
    module = load(export(nothing, tmp_path / "nothing.py"))
    assert module.forward(3.0) == (6.0, None, {"k": None}) and "shaped (scalar, None, {'k': None})" in module.__doc__
    named = graphc.compile(lambda x: pair(x, x * 2.0))
    named(1.0)
    module = load(export(named, tmp_path / "named.py"))
    result = module.forward(1.0)  # an outside hunt: a plain tuple, where DESIGN says the same structure
    assert result == (1.0, 2.0) and (result.a, result.b) == (1.0, 2.0) and repr(result) == "Pair(a=1.0, b=2.0)"
    assert "shaped Pair(scalar, scalar)" in module.__doc__
    monkeypatch.setitem(sys.modules, module.__name__, module)  # as an import would
    assert pickle.loads(pickle.dumps(result)) == result  # a review: its class is found in the module
    odd = collections.namedtuple("Odd", ["class", "b"], rename=True)  # fields ("_0", "b"): no namedtuple() takes "_0"
    renamed = graphc.compile(lambda x: odd(x, x))
    renamed(1.0)
    module = load(export(renamed, tmp_path / "odd.py"))
    assert type(module.forward(1.0)) is tuple and module.forward(1.0) == (1.0, 1.0)
    assert "shaped (scalar, scalar)" in module.__doc__
    unicode = graphc.compile(lambda x: {"caf\u00e9 \u2603": x * 2.0})
    unicode(1.0)
    path = export(unicode, tmp_path / "unicode.py")
    assert path.read_bytes().isascii() and load(path).forward(1.0) == {"caf\u00e9 \u2603": 2.0}


def test_a_graph_in_part_functions_exports_as_pieces_compiled_one_at_a_time(tmp_path, monkeypatch):
    """Past STRAIGHT_LIMIT ops the code is part functions, which the module compiles a piece at
    a time as graphc's loader does (an outside hunt: CPython compiling a whole 20 MB module
    held 3.2 GB to import the export of a 3x10^5-op chain), at their own lines of the file:
    inspect and tracebacks show the generated lines."""
    from graphc.codegen import python as python_backend
    monkeypatch.setitem(python_backend.generate.__kwdefaults__, "part_size", 50)
    monkeypatch.setitem(python_backend.generate.__kwdefaults__, "straight_limit", 300)
    w = Value(0.5, label="w")

    def chain(x):
        for k in range(200):
            x = (x * w).sin() if k % 2 else (x + w).tanh()
        return x
    compiled = graphc.compile(chain, backend="python")
    out = compiled(0.7)
    out.backward()
    path = export(compiled, tmp_path / "exported.py")
    assert "_PIECES = (" in path.read_text()
    got = run_standalone(path, [0.7])
    assert got["new_modules"] == []
    assert same(got["forward"], out.data) and same(got["value_and_grad"][2], [w.grad])
    spec = importlib.util.spec_from_file_location("pieces", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    part = module._forward_and_gradient_part1
    lines = path.read_text().splitlines()
    assert lines[part.__code__.co_firstlineno - 1].startswith("def _forward_and_gradient_part1(")
    assert inspect.getsource(part).startswith("def _forward_and_gradient_part1(")
    namespace: dict = {}
    exec(path.read_text(), namespace)  # without a __file__ too (a review: the pieces named it)
    assert same(namespace["forward"](0.7), out.data)


def test_a_signature_reading_two_arguments_as_one_is_refused_not_exported(tmp_path):
    """``f(a, a)`` and ``f(w, 5.0)`` with ``w`` a param are traced reading the slots as one
    input (or as the param); a module taking the arguments apart computed ``x * x + w`` for
    ``forward(3.0, 4.0)`` (an outside hunt).  A call with distinct arguments exports again."""
    w = Value(2.0)
    compiled = graphc.compile(lambda x, y: x * y + w)
    a = Value(3.0)
    compiled(a, a)
    with pytest.raises(GraphcError, match="one Value as two arguments, or a param as an argument"):
        export(compiled, tmp_path / "shared.py")
    compiled(w, 5.0)
    with pytest.raises(GraphcError, match="distinct arguments"):
        export(compiled, tmp_path / "param.py")
    compiled(Value(3.0), Value(4.0))
    spec = importlib.util.spec_from_file_location("distinct", export(compiled, tmp_path / "distinct.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.forward(3.0, 4.0) == 14.0
    assert module.value_and_grad(3.0, 4.0) == (14.0, (4.0, 3.0), [1.0])
