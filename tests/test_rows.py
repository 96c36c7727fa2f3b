"""Batch recovery (graphc.passes.rows, graphc.rows_program): a full-batch loss written
micrograd style is found to be one per-row program over a table, and runs on the batched
backends bit for bit as the unrolled scalar program (the Python backend) computes it."""
from __future__ import annotations

import math
import random
import re
import time

import numpy as np
import pytest

import graphc
from graphc import Value, demo
from graphc.codegen.c import find_compiler
from graphc.graph import Builder
from graphc.nn import MLP
from graphc.passes.rows import ROWS_INPUT, recover_rows, row_value_name, rows_input_name
from graphc.backends import resolve
from graphc.rows_kernels import add_rows
from graphc.rows_program import rows_program
from test_guards import train as demo_train  # demo.ipynb's loop: loss and accuracy, zero_grad, backward, SGD at its rate

#: These losses read captured NumPy data, as micrograd's demo does: frozen, and said so
#: (tests/test_guards.py checks the warning).
pytestmark = pytest.mark.filterwarnings("ignore::graphc.FrozenDataWarning")

BACKENDS = ["numpy"] + (["c"] if find_compiler() else [])


def make_data(n=24, sizes=(6, 6, 1), seed=3):
    rng = np.random.default_rng(seed)
    random.seed(seed)
    X = rng.standard_normal((n, 2))
    y = np.where(rng.random(n) > 0.5, 1, -1)
    return X, y, MLP(2, list(sizes))


def demo_loss(X, y, model, l2=True, mean="mul", reg_first=False):
    """micrograd's demo loss on captured data (X, y, model are closed over by the lambda)."""
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses)) if mean == "mul" else sum(losses) / len(losses)
    if not l2:
        return data_loss
    reg_loss = 1e-4 * sum((p * p for p in model.parameters()))
    return reg_loss + data_loss if reg_first else data_loss + reg_loss


def test_the_demo_loss_is_one_row_program_over_a_table():
    X, y, model = make_data()
    split = recover_rows(graphc.trace(lambda: demo_loss(X, y, model)))
    assert split is not None and split.n_rows == len(X) and split.start == 0.0
    assert split.table.shape == (len(X), 3)  # x0, x1 and y: the captured data, with a batch axis
    assert np.array_equal(split.table[:, :2], X) and np.array_equal(split.table[:, 2], -y)
    assert split.input_index.shape == (len(X), 0)
    assert split.row.inputs and len(split.row.params) == len(model.parameters())
    assert split.outer.attrs[split.outer.inputs[-1]] == (ROWS_INPUT,)
    assert len(split.row) < len(graphc.trace(lambda: demo_loss(X, y, model))) / 10


def test_rows_passed_as_arguments_are_input_columns():
    X, y, model = make_data()

    def loss(X, y):
        scores = [model(x) for x in X]
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
        return sum(losses) * (1.0 / len(losses))
    graph = graphc.trace(loss, X, y.astype(float))
    split = recover_rows(graph)
    assert split is not None and split.table.shape == (len(X), 0)
    assert split.input_index.shape == (len(X), 3)
    inputs = np.arange(len(graph.inputs), dtype=float)
    cols = split.columns(inputs)
    assert cols.shape == (3, len(X)) and set(cols[:, 0]) == {0.0, 1.0, 2 * len(X)}


@pytest.mark.parametrize("kind", ["l2", "no-l2", "div", "reg-first"])
def test_recognized_with_and_without_l2_and_other_reductions(kind):
    X, y, model = make_data()
    options = {"l2": {}, "no-l2": {"l2": False}, "div": {"mean": "div"}, "reg-first": {"reg_first": True}}[kind]
    split = recover_rows(graphc.trace(lambda: demo_loss(X, y, model, **options)))
    assert split is not None and split.n_rows == len(X)


def test_rows_that_differ_in_structure_or_params_are_not_rows():
    X, y, model = make_data()
    other = MLP(2, [6, 6, 1])

    def mixed():
        return sum((model if k % 2 else other)(list(map(Value, x))) for k, x in enumerate(X))

    def shaped():
        return sum(model(list(map(Value, x))).relu() if k % 2 else model(list(map(Value, x))).tanh()
                   for k, x in enumerate(X))
    assert recover_rows(graphc.trace(mixed)) is None
    assert recover_rows(graphc.trace(shaped)) is None


def test_a_model_trace_has_no_rows():
    """(How fast the answer comes is bench/rows_compile.py's business, not a timed test's.)"""
    random.seed(0)
    model = MLP(8, [16, 16, 1])
    assert recover_rows(graphc.trace(model, [0.5] * 8)) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_rows_and_a_node_computed_twice_run_as_rows_with_the_scalar_programs_bits(backend):
    """Repeated data, and ``(s - y) * (s - y)``: reverse mode differentiates the scalar
    program before CSE merges anything, so these run as rows too.  (Refused while CSE ran
    before reverse mode: the demo's loss with its data passed as arguments, which makes
    every ``x * 1.0`` one shape, fell to the scalar program, 700x slower a step.)"""
    def repeated(X, y, model):
        X = X.copy()
        X[5], X[7, 0] = X[2], X[3, 0]
        return demo_loss(X, y, model)

    def twice(X, y, model):
        scores = [model([Value(a) for a in row]) for row in X]
        return sum((s - yi) * (s - yi) for yi, s in zip(y, scores)) * (1.0 / len(scores))

    for loss in (repeated, twice):
        compiled, got = _run(backend, loss)
        assert compiled._latest.rows is not None, loss.__name__
        assert got == _run("python", loss)[1], loss.__name__


def test_the_demo_loss_with_its_data_passed_in_runs_as_rows():
    X, y, model = make_data(n=40)

    def loss(X, y):
        scores = [model(list(map(Value, row))) for row in X]
        return sum((1 + -yi * s).relu() for yi, s in zip(y, scores)) * (1.0 / len(scores))
    compiled = graphc.compile(loss, backend=BACKENDS[-1])
    got = compiled(X, y)
    assert compiled._latest.rows is not None
    model.zero_grad()
    got.backward()
    grads = [p.grad for p in model.parameters()]
    model.zero_grad()
    want = loss(X, y)
    want.backward()
    assert got.data == want.data and grads == [p.grad for p in model.parameters()]


def test_a_param_read_twice_per_row_is_left_to_the_scalar_program():
    X, y, _ = make_data()
    w = Value(0.5)

    def loss():
        return sum((w * Value(x[0]) + w).relu() for x in X)
    graph = graphc.trace(loss)
    assert recover_rows(graph) is not None
    assert rows_program(graph, resolve("numpy"), min_nodes=0) is None


def _steps(compiled, model, steps=3):
    history = []
    for k in range(steps):
        out = compiled()
        model.zero_grad()
        out.backward()
        history.append((out.data.hex(), [p.grad.hex() for p in model.parameters()]))
        for p in model.parameters():
            p.data -= (1.0 - 0.3 * k) * p.grad
    return history


def _run(backend, loss_of, sizes=(6, 6, 1), n=40):
    X, y, model = make_data(n=n, sizes=sizes)
    compiled = graphc.compile(lambda: loss_of(X, y, model), backend=backend)
    history = _steps(compiled, model)
    return compiled, history


@pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler")
def test_the_outer_kernel_is_built_apart_where_joining_the_rows_library_would_change_its_optimization(
        monkeypatch):
    """Where adding the outer kernel would tip the rows' library to -O0 it is its own build,
    its source shown after the rows', with the same bits as the one library's."""
    from graphc import rows_kernels
    level = rows_kernels.optimization_level
    monkeypatch.setattr(rows_kernels, "optimization_level",
                        lambda source: "-O0" if "lambda_outer(" in source and "lambda_rows(" in source else level(source))
    compiled, got = _run("c", demo_loss, n=43)
    program = compiled._latest.rows
    library, apart = program._rows_of(program.forward_chain)[1], program._outer_of(0)[1]
    assert "lambda_outer(" not in library and "void lambda_outer(" in apart and program.source == library + "\n" + apart
    monkeypatch.undo()
    assert got == _run("c", demo_loss, n=43)[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["l2", "no-l2", "div", "reg-first"])
def test_value_and_every_gradient_equal_the_scalar_program_bit_for_bit(backend, kind):
    options = {"l2": {}, "no-l2": {"l2": False}, "div": {"mean": "div"}, "reg-first": {"reg_first": True}}[kind]
    compiled, got = _run(backend, lambda X, y, m: demo_loss(X, y, m, **options))
    # the rows path ran -- where the L2 term comes first too: its two contributions to each
    # param (p * p) are added after the rows', one at a time, by the outer graph's gradient
    # program from starts (the rows' totals); until a hunt, the scalar program ran instead
    assert compiled._latest.rows is not None
    assert compiled._latest.rows.plans[0].several_after == (kind == "reg-first")
    _, expected = _run("python", lambda X, y, m: demo_loss(X, y, m, **options))
    assert got == expected


@pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler")
def test_tanh_rows_on_c_equal_the_scalar_program():
    def loss(X, y, model):
        return sum((yi - model(list(map(Value, x))).tanh()) ** 2 for x, yi in zip(X, y)) * (1.0 / len(X))
    compiled, got = _run("c", loss)
    assert compiled._latest.rows is not None
    assert got == _run("python", loss)[1]


@pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler")
def test_c_rows_sum_their_gradients_and_the_outer_graph_writes_its_lanes_through_tables():
    """The rows' param gradients are summed by their kernel (per row it writes only the
    chains' values); the L2 term's gradient lanes, outputs of the outer graph's kernel, are
    written by a loop over a table of their rows (in blocks of rows and in the one-row
    loop); 43 rows take both loops; bit for bit the scalar program's numbers.  The outer
    kernel is built into the rows' library: one source, one prelude."""
    compiled, got = _run("c", demo_loss, n=43)
    program = compiled._latest.rows
    library, apart = program._rows_of(program.forward_chain)[1], program._outer_of(0)[1]
    assert apart == "" and library == program.source and library.count("Generated by graphc") == 1
    split = re.search(r"^void \w+_outer\(", library, re.MULTILINE).start()
    rows, outer = library[:split], library[split:]
    assert "_rows[k] * n + r" not in rows and "from the numbers in sums" in rows
    assert "_rows[k] * n + r + rb]" in outer and "_rows[k] * n + r]" in outer
    assert got == _run("python", demo_loss, n=43)[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_param_the_rows_never_read_gets_the_outer_graphs_gradient(backend):
    """A Value only the L2 term reads: its gradient comes from the outer graph alone (the
    rows' kernel sums nothing for it), the scalar program's bits."""
    grads = {}
    for name in (backend, "python"):
        X, y, model = make_data(n=40)
        scale = Value(0.7)
        compiled = graphc.compile(lambda: demo_loss(X, y, model) + 1e-2 * scale * scale, backend=name)
        history = []
        for k in range(2):
            out = compiled()
            model.zero_grad()
            scale.grad = 0
            out.backward()
            history.append((out.data.hex(), scale.grad.hex(), [p.grad.hex() for p in model.parameters()]))
            scale.data -= 0.5 * scale.grad
        grads[name] = history
        if name == backend:
            assert compiled._latest.rows is not None and scale in compiled._latest.params
    assert grads[backend] == grads["python"]


def test_compiled_graph_is_still_there_when_rows_ran():
    X, y, model = make_data(n=40)
    compiled = graphc.compile(lambda: demo_loss(X, y, model))
    compiled()
    assert compiled._latest.rows is not None and compiled.stats.optimized_nodes == 0
    assert len(compiled.graph) < compiled.stats.traced_nodes  # optimized on demand


def test_backward_with_another_seed_and_twice():
    X, y, model = make_data(n=40)
    rows = graphc.compile(lambda: demo_loss(X, y, model))
    scalar = graphc.compile(lambda: demo_loss(X, y, model), backend="python")
    once, twice = [], []
    for compiled in (rows, scalar):
        model.zero_grad()
        out = compiled() * 3.0
        out.backward()
        once.append([p.grad.hex() for p in model.parameters()])
        out.backward()
        twice.append([p.grad for p in model.parameters()])
    assert once[0] == once[1]
    # the second into .grads holding the first: the scalar program adds each part in turn, as
    # eager does, the rows program one total per param (README "Exactness")
    assert all(abs(a - b) <= 4 * math.ulp(b) for a, b in zip(*twice))


@pytest.mark.parametrize("n_params", [1, 2, 5, 300])
def test_rows_are_added_in_order_one_at_a_time(n_params):
    rng = np.random.default_rng(n_params)
    rows = rng.standard_normal((n_params, 500)) * 10.0 ** rng.integers(-8, 8, (n_params, 500))
    first = rng.standard_normal(n_params)
    expected = first.copy()
    for r in range(rows.shape[1] - 1, -1, -1):
        expected += rows[:, r]
    assert add_rows(rows, first).tobytes() == expected.tobytes()


def _chain_of_rows(n_rows: int, row_size: int):
    """A graph of n_rows rows (a chain of row_size ops on a param and a constant each)
    added up by a left-nested chain: n_rows * (row_size + 2) nodes, built directly."""
    b = Builder()
    p = b.add("param", (), ("w",))
    total = b.const(0.0)
    for r in range(n_rows):
        v = b.add("mul", (p, b.add("const", (), (float(r),))))
        for _ in range(row_size - 1):
            v = b.add("relu", (v,))
        total = b.add("add", (total, v))
    return b.finish([], [p], [total])


def test_recover_rows_is_linear_and_has_no_recursion():
    small, big = _chain_of_rows(10_000, 8), _chain_of_rows(100_000, 8)
    assert len(big) >= 1_000_000
    timings = []
    for graph in (small, big):
        start = time.perf_counter()
        split = recover_rows(graph)
        timings.append(time.perf_counter() - start)
        assert split is not None and split.n_rows == len(graph) // 10
    assert timings[1] < 25 * timings[0]  # 10x the nodes: about 10x the time, never 100x


# -- several outputs: micrograd's demo loss returns (total_loss, accuracy) -----------------

def test_the_demo_loss_and_accuracy_are_two_chains_of_one_row_program():
    X, y, model = make_data()
    split = recover_rows(graphc.trace(lambda: demo.loss(model, X, y)))
    assert split is not None and split.n_chains == 2 and split.starts == (0.0, 0.0)
    assert len(split.row.outputs) == 2 and split.n_rows == len(X)
    assert [split.outer.attrs[i] for i in split.outer.inputs[-2:]] == [(ROWS_INPUT,), (rows_input_name(1),)]
    assert split.table.shape == (len(X), 4)  # x0, x1, -y for the loss, y > 0 for the accuracy


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_demo_loss_compiled_unchanged_runs_rows_and_equals_eager(backend):
    """demo.loss returns (total_loss, accuracy): both from one per-row program, the accuracy
    a Python float computed live, every step's numbers eager's bit for bit."""
    X, y, model = demo.make_data()
    compiled = graphc.compile(lambda: demo.loss(model, X, y), backend=backend)
    got = demo_train(compiled, model, 20)
    assert compiled._latest.rows is not None and compiled.trace_count == 1
    X, y, eager_model = demo.make_data()
    assert got == demo_train(lambda: demo.loss(eager_model, X, y), eager_model, 20)
    assert all(type(acc) is float for _, acc in got) and len({acc for _, acc in got}) > 1
    assert [p.data for p in model.parameters()] == [p.data for p in eager_model.parameters()]


def _two_values(X, y, model):
    """Two Value outputs from two chains over the same scores: the data loss (+ L2) and the
    mean squared score, each with its own gradient."""
    scores = [model(list(map(Value, x))) for x in X]
    data_loss = sum((1 + -yi * s).relu() for yi, s in zip(y, scores)) * (1.0 / len(X))
    reg = 1e-4 * sum(p * p for p in model.parameters())
    return data_loss + reg, sum(s * s for s in scores) * (1.0 / len(X))


def _mixed(X, y, model):
    """One output from both chains: left to the scalar program."""
    loss, squares = _two_values(X, y, model)
    return loss + squares


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("output", [0, 1])
def test_each_output_has_its_own_gradient_bit_for_bit(backend, output):
    results = []
    for b in (backend, "python"):
        X, y, model = make_data(n=40)
        compiled = graphc.compile(lambda: _two_values(X, y, model), backend=b)
        history = []
        for k in range(3):
            outs = compiled()
            model.zero_grad()
            (outs[output] * 2.0).backward()  # a seed other than 1
            history.append(([o.data.hex() for o in outs], [p.grad.hex() for p in model.parameters()]))
            for p in model.parameters():
                p.data -= 0.1 * p.grad
        results.append(history)
        if b == backend:
            assert compiled._latest.rows is not None
    assert results[0] == results[1]


def test_an_output_fed_by_two_chains_is_left_to_the_scalar_program():
    X, y, model = make_data(n=40)
    graph = graphc.trace(lambda: _mixed(X, y, model))
    split = recover_rows(graph)
    assert split is not None and split.n_chains == 2
    assert rows_program(graph, resolve("numpy"), min_nodes=0) is None
    assert rows_program(graphc.trace(lambda: _two_values(X, y, model)), resolve("numpy"), min_nodes=0) is not None


def _guarded(X, y, model, threshold):
    """A branch on the data loss: a guard over the rows' sum, checked in the outer graph."""
    loss = demo_loss(X, y, model, l2=False)
    return loss * 2.0 if loss.data > threshold else loss


@pytest.mark.parametrize("backend", BACKENDS)
def test_guards_on_a_row_sum_are_checked_on_the_rows_path(backend):
    X, y, model = make_data(n=40)
    compiled = graphc.compile(lambda threshold: _guarded(X, y, model, threshold), backend=backend)
    first = compiled(-1.0)
    assert compiled._latest.rows is not None and compiled._latest.guards.expected == (1.0,)
    second = compiled(1e9)  # the branch flips: a retrace, with the reason
    assert compiled.trace_count == 2 and compiled.retraces and compiled._latest.rows is not None
    assert second.data * 2.0 == first.data
    assert compiled(-2.0).data == first.data and compiled.trace_count == 2  # both branches cached
    eager = _guarded(X, y, model, 1e9)
    model.zero_grad()
    second.backward()
    grads = [p.grad for p in model.parameters()]
    model.zero_grad()
    eager.backward()
    assert eager.data == second.data and grads == [p.grad for p in model.parameters()]


@pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler")
@pytest.mark.parametrize("sizes", [(6, 6, 1), (16, 16, 1), (1, 3, 1)])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 21, 100])
def test_c_rows_summed_by_the_kernel_equal_every_row_written_and_added(sizes, n):
    """The gradient kernel that sums its rows itself, resuming from ``first`` (in place,
    through lane tables, scalars; -0.0 starts), against the kernel writing every row's
    gradients and the loop adding them last row first: the same bits, for any row count
    (whole blocks of GC_B rows and the rows left over)."""
    from graphc import autodiff
    from graphc.passes import VECTOR_PIPELINE, optimize
    from graphc.rows_kernels import NativeRows, NativeRowsWritten
    X, y, model = make_data(n=24, sizes=sizes)
    program = rows_program(graphc.trace(lambda: demo_loss(X, y, model)), resolve("c"), min_nodes=0)
    forward = program._row_vector
    joint = optimize(autodiff.grad(forward, 0, wrt_inputs=False), passes=VECTOR_PIPELINE)
    chains = program.n_chains
    summing, writing = NativeRows(forward, joint, "t", chains, chains), NativeRowsWritten(joint, "t", chains)
    rng = np.random.default_rng(n)
    cols = rng.standard_normal((len(forward.inputs), n))
    cols[:, ::5] = -0.0
    params = rng.standard_normal(len(joint.params))
    for seed in (1.0 / 24, -0.0, 3.5):
        first = np.where(rng.random(len(params)) > 0.5, rng.standard_normal(len(params)), -0.0)
        want = writing.gradients(cols, params, seed, first, None)
        assert summing.gradients(cols, params, seed, first, None).tobytes() == want.tobytes()
    per_row = writing.values(cols, params, 0.5)[:chains]
    for starts in [(None,) * chains, (0.0,) * chains, (-0.0, 2.5)[:chains]]:
        want = [_added_in_order(line, start) for line, start in zip(per_row, starts)]
        got, values, computed = summing.row_sums(cols, params, 0.5, starts)
        assert np.array(got).tobytes() == np.array(want).tobytes() and computed is None and values.shape == (0, n)
    assert summing.source.count("from the numbers in sums") == 2  # each kernel sums its rows itself
    _assert_lanes_are_read_without_waste(summing.source)


def _assert_lanes_are_read_without_waste(source):
    """No table of lanes 0, 1, ..., k-1 (the loop's own k), and no accumulator zeroed whose
    every lane is then read from sums."""
    for name, size, numbers in re.findall(r"static const int (\w+_lane)\[(\d+)\] = \{([^}]*)\}", source):
        assert [int(x) for x in numbers.split(",")] != list(range(int(size))), name
    for acc, size in re.findall(r"double (\w+_sum)\[(\d+)\];", source):
        if re.search(rf"for \(int k = 0; k < {size}; k\+\+\) {acc}\[k\] = sums\[", source):
            assert f"{acc}[lane] = 0.0;" not in source, acc


def _added_in_order(line, start):
    """``line`` added first to last onto ``start`` in Python floats (None: onto nothing; no
    rows then leave the kernel's -0.0, a case batch recovery never meets)."""
    values = line.tolist()
    if start is None and not values:
        return -0.0
    total = values[0] if start is None else start
    for value in values[start is None:]:
        total = total + value
    return total


@pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler")
def test_c_rows_kernels_share_a_library_only_where_each_keeps_its_optimization(monkeypatch):
    """The values and gradient kernels are one build unless together they would cross the
    size from which gcc builds at -O0; built apart, the same bits.  A resuming kernel
    refuses a call without the numbers it starts from."""
    from graphc import rows_kernels
    from graphc.errors import GraphcError
    from graphc.rows_kernels import NativeRows, NativeRowsWritten
    X, y, model = make_data(n=24)
    program = rows_program(graphc.trace(lambda: demo_loss(X, y, model)), resolve("c"), min_nodes=0)
    kernel = program._rows_of(0)[0]
    assert isinstance(kernel, NativeRows) and kernel._values.source is kernel._gradients.source
    level = rows_kernels.optimization_level
    monkeypatch.setattr(rows_kernels, "optimization_level",
                        lambda source: "-O0" if "_values(" in source and "_rows(" in source else level(source))
    from graphc import autodiff
    from graphc.passes import VECTOR_PIPELINE, optimize
    joint = optimize(autodiff.grad(program._row_vector, 0, wrt_inputs=False), passes=VECTOR_PIPELINE)
    apart = NativeRows(program._row_vector, joint, "lambda_rows", program.n_chains, program.n_chains)
    assert apart._values.source != apart._gradients.source
    cols = program._table_cols
    params = np.array([p.data for p in model.parameters()])
    first = np.full(len(params), -0.0)
    want = NativeRowsWritten(joint, "w", program.n_chains).gradients(cols, params, 0.5, first, None)
    assert apart.gradients(cols, params, 0.5, first, None).tobytes() == want.tobytes()
    with pytest.raises(GraphcError, match="it starts from"):
        apart._gradients.run(cols, params, 0.5)


@pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler")
def test_params_sharing_a_gradient_node_get_a_sum_each():
    """Two params whose per-row gradients are one node (``(a + b) * x``) start from different
    numbers: one accumulator cannot serve both, so the rows are written and added per param."""
    from graphc.rows_kernels import NativeRowsWritten, row_kernel
    b = Builder()
    x, seed = b.add("input", (), ("x",)), b.add("input", (), ("seed",))
    p, q = b.add("param", (), ("a",)), b.add("param", (), ("b",))
    value = b.add("mul", (b.add("add", (p, q)), x))
    grad = b.add("mul", (x, seed))
    joint = b.finish([x, seed], [p, q], [value, grad, grad])
    forward = Builder()
    fx, fp, fq = forward.add("input", (), ("x",)), forward.add("param", (), ("a",)), forward.add("param", (), ("b",))
    forward_graph = forward.finish([fx], [fp, fq], [forward.add("mul", (forward.add("add", (fp, fq)), fx))])
    kernel = row_kernel(resolve("c"), forward_graph, joint, "t", 1, 1)
    assert isinstance(kernel, NativeRowsWritten)
    same_in_every_row = b.finish([x, seed], [p, q], [value, seed, seed])  # d(p + q)/dp: the seed, a loop per param
    assert not isinstance(row_kernel(resolve("c"), forward_graph, same_in_every_row, "s", 1, 1), NativeRowsWritten)
    cols = np.random.default_rng(0).standard_normal((1, 19))
    first = np.array([0.25, -0.0])
    expected = first.copy()
    for r in range(18, -1, -1):
        expected += cols[0, r] * 0.5
    assert kernel.gradients(cols, np.array([0.5, 2.0]), 0.5, first, None).tobytes() == expected.tobytes()


@pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler")
@pytest.mark.parametrize("n_params", [1, 7, 8, 9, 300])
def test_rows_added_in_c_equal_a_loop(n_params):
    """The C additions of the rows written (eight params at a time, then one by one) against
    a loop, -0.0 included."""
    from graphc.rows_kernels import NativeRowsWritten
    b = Builder()
    seed = b.add("input", (), ("seed",))
    params = [b.add("param", (), (f"w{k}",)) for k in range(n_params)]
    joint = b.finish([seed], params, [b.add("mul", (params[0], seed))] + params)
    kernel = NativeRowsWritten(joint, "t", 1)
    rng = np.random.default_rng(n_params)
    per_row = rng.standard_normal((1 + n_params, 50)) * 10.0 ** rng.integers(-8, 8, (1 + n_params, 50))
    per_row[1:, 7] = -0.0
    first = np.where(rng.random(n_params) > 0.5, rng.standard_normal(n_params), -0.0)
    expected = first.copy()
    for r in range(per_row.shape[1] - 1, -1, -1):
        expected += per_row[1:, r]
    assert kernel.add(per_row, first).tobytes() == add_rows(per_row[1:], first).tobytes() == expected.tobytes()
    zeros = np.full((1 + n_params, 3), -0.0)
    assert kernel.add(zeros, np.full(n_params, -0.0)).tobytes() == np.full(n_params, -0.0).tobytes()


@pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler")
def test_c_rows_kernels_are_built_outlined_with_the_inlined_builds_bits(monkeypatch, tmp_path):
    """A full-batch loss's C kernels are built outlined (one copy of each layer kernel, which
    gcc builds sooner: a Python loop calls them once a step); built inlined, the same
    programs give the same bits, loss and every gradient."""
    import shutil
    import subprocess
    from graphc.codegen import c_toolchain
    X, y, model = make_data(n=21, sizes=(16, 16, 1))
    builds = []
    build = c_toolchain.build

    def recording(source, fast=False, outlined=False, vectorized=False):
        library = build(source, fast, outlined, vectorized)
        builds.append((outlined, library, source))
        return library

    def loss_and_grads():
        model.zero_grad()
        loss = graphc.compile(lambda: demo_loss(X, y, model), backend="c")()
        loss.backward()
        return [loss.data] + [p.grad for p in model.parameters()]

    monkeypatch.setattr(c_toolchain, "build", recording)
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "outlined"))
    outlined = loss_and_grads()
    rows = [(library, source) for was_outlined, library, source in builds if was_outlined]
    assert rows and any("gc_bouter_add(" in source for _, source in rows)

    def symbols(libraries):
        return "".join(subprocess.run(["nm", str(library)], capture_output=True, text=True).stdout
                       for library, _ in libraries)
    monkeypatch.setattr(c_toolchain, "OUTLINED_FLAGS", ())
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "inlined"))
    builds.clear()
    inlined = loss_and_grads()
    assert np.array(outlined).tobytes() == np.array(inlined).tobytes()
    if shutil.which("nm"):  # outlined, the layer kernel is a function of its own; inlined, it is not
        assert re.search(r"\bgc_bouter_add\b", symbols(rows))
        assert not re.search(r"\bgc_bouter_add\b", symbols([(library, None) for _, library, _ in builds]))


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_second_row_sum_differentiated_on_the_rows_adds_its_parts_in_eagers_order(backend):
    """Flatten keeps output 0's order of gradient parts: re-rolled with the first chain
    first, ``(b + q*x2) + b*b`` was flattened, so the second chain's ``backward()`` reached
    ``b``'s parts in another order, 1 ulp off eager (a review).  Each chain's gradient now
    comes from the row graph re-rolled with that chain first."""
    if backend == "c" and find_compiler() is None:
        pytest.skip("no C compiler")

    def fn_of(p, q):
        def fn(X1, X2):
            r0, r1 = [], []
            for x1, x2 in zip(X1, X2):
                b = p * x1
                bb = b * b
                u = (b + q * x2) + bb
                r0.append(bb * u)
                r1.append(u * 3.0)
            return [sum(r0), sum(r1)]
        return fn

    X1, X2 = np.zeros(400), np.full(400, -0.8772520228845555)  # the other rows add exact zeros
    X1[0] = -0.0016714370728371985
    p, q = Value(0.6653218406628096), Value(2.4780663194273895)
    fn_of(p, q)(X1.tolist(), X2.tolist())[1].backward()
    eager = (p.grad, q.grad)
    p, q = Value(p.data), Value(q.data)
    compiled = graphc.compile(fn_of(p, q), backend=backend)
    compiled(X1, X2)[1].backward()
    assert compiled._latest.rows is not None
    assert (p.grad, q.grad) == eager == (-0.005003158953215457, eager[1])


@pytest.mark.parametrize("numerics", ["fast", "stable"])
def test_fast_numerics_run_rows_exactly_and_stable_numerics_the_rewritten_scalar_program(numerics):
    """``numerics="fast"`` keeps scalar calls exact, and so its full-batch loss runs as rows
    with exact mode's bits (it ran the scalar program, 60x slower a step: a hunt);
    ``"stable"`` rewrites the scalar program (``log(1 + exp(x))`` is ``softplus``), which
    per-row evaluation of the traced rows would not: it keeps the scalar program."""
    X, y, model = make_data(n=40)

    def loss():
        scores = [model(list(map(Value, row))) for row in X]
        return sum((1 + (-yi * s).exp()).log() for yi, s in zip(y, scores)) * (1.0 / len(scores))
    compiled = graphc.compile(loss, backend=BACKENDS[-1], numerics=numerics)
    history = _steps(compiled, model)
    assert (compiled._latest.rows is not None) == (numerics == "fast")
    X, y, model = make_data(n=40)
    reference = graphc.compile(loss, backend="python", numerics=numerics if numerics == "stable" else "exact")
    assert history == _steps(reference, model)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_row_loss_summed_over_a_models_outputs_runs_as_rows(backend):
    """``sum(sum((v - t) ** 2 for v, t in zip(o, target)) for ...)``: Python's outer ``sum``
    starts ``s0 + 0`` with ``s0`` a sum itself, which the chain search walked into, so the
    first row looked unlike the others and the scalar program ran, 25x slower a step (a
    hunt).  A link adding a constant is now where a chain starts."""
    targets = np.random.default_rng(2).standard_normal((40, 3))

    def loss(X, y, model):
        outputs = [model(list(map(Value, row))) for row in X]
        return sum(sum((v - t) * (v - t) for v, t in zip(o, row)) for o, row in zip(outputs, targets)) * 0.01

    compiled, got = _run(backend, loss, sizes=(6, 3))
    assert compiled._latest.rows is not None
    assert got == _run("python", loss, sizes=(6, 3))[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reg_first", [False, True])
def test_gradients_accumulated_without_zero_grad_add_each_part_as_eager_does(backend, reg_first):
    """Two calls and backward() each, no zero_grad() between: the rows path added each
    param's total into its .grad, 1 ulp off eager on 196 of 337 params (a review).  Each sum
    now starts from the .grad: the outer graph's parts by its gradient program from starts,
    then the rows' onto them (or onto the .grad)."""
    X, y, model = make_data(n=40)
    compiled = graphc.compile(lambda: demo_loss(X, y, model, reg_first=reg_first), backend=backend)
    for _ in range(2):
        compiled().backward()
    assert compiled._latest.rows is not None
    got = [p.grad for p in model.parameters()]
    model.zero_grad()
    for _ in range(2):
        demo_loss(X, y, model, reg_first=reg_first).backward()
    assert got == [p.grad for p in model.parameters()]


# -- a row's values read outside it: scores returned with the loss, guards on them ----------

def _with_scores(X, y, model):
    """The demo's loss returning every row's score too, as PyTorch code returns its logits."""
    scores = [model(list(map(Value, x))) for x in X]
    data_loss = sum((1 + -yi * s).relu() for yi, s in zip(y, scores)) * (1.0 / len(X))
    return data_loss + 1e-4 * sum(p * p for p in model.parameters()), scores


def _against_python(backend, compile_loss, step, steps=3, lr=0.1):
    """``steps`` SGD steps of ``compile_loss(X, y, model, backend)`` on ``backend`` and on the
    Python backend's scalar program; ``step(compiled, X, y, k)`` runs one (its backward()s)
    and returns what to compare, to which every param's gradient is added.  The backend's
    compiled function, and whether the two histories are the same bits."""
    histories, compiled = [], {}
    for b in (backend, "python"):
        X, y, model = make_data(n=40)
        compiled[b] = compile_loss(X, y, model, b)
        history = []
        for k in range(steps):
            model.zero_grad()
            history.append((step(compiled[b], X, y, k), [p.grad.hex() for p in model.parameters()]))
            for p in model.parameters():
                p.data -= lr * p.grad
        histories.append(history)
    return compiled[backend], histories[0] == histories[1]


def test_scores_returned_with_the_loss_are_the_row_programs_second_output():
    X, y, model = make_data()
    split = recover_rows(graphc.trace(lambda: _with_scores(X, y, model)))
    assert split is not None and split.n_rows == len(X) and split.n_chains == 1 and split.n_values == 1
    assert len(split.row.outputs) == 2
    names = [split.outer.attrs[i][0] for i in split.outer.inputs]
    assert names[-1] == ROWS_INPUT and names[:-1] == [row_value_name(0, r) for r in range(len(X))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("differentiated", ["loss", "score", "loss, then a score", "a score, then the loss"])
@pytest.mark.parametrize("passed", [False, True])
def test_scores_returned_with_the_loss_run_as_rows_bit_for_bit(backend, differentiated, passed):
    """Returning each row's score made the rows path refuse (a row node used outside its row):
    micrograd's demo loss returning ``(loss, scores)`` with its data passed in compiled the
    scalar program on C for 25 s at 1,000 rows.  Now the scores come from the per-row
    program, and a score's gradient is that program's on its row (added onto the .grads
    the loss's backward() left, as eager adds)."""
    def compile_loss(X, y, model, b):
        return graphc.compile(lambda X, y: _with_scores(X, y, model), backend=b) if passed else \
            graphc.compile(lambda: _with_scores(X, y, model), backend=b)

    def step(compiled, X, y, k):
        loss, scores = compiled(X, y) if passed else compiled()
        for part in differentiated.split(", then "):
            (loss if part == "loss" else scores[7 * k + 3] * 2.0).backward()
        return loss.data.hex(), [s.data.hex() for s in scores]
    compiled, same = _against_python(backend, compile_loss, step)
    assert same and compiled._latest.rows is not None and compiled.trace_count == 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scores", [False, True])
def test_the_outer_program_has_no_line_per_row(backend, scores):
    """The outer program takes no gradient of the data (data passed in are inputs: the C
    outer kernel had a line per number, gcc's 16 s at 10,000 rows) and passes the returned
    scores through without a line each: its source is as long for 40 rows as for 200 (but
    for the Python outer function's one statement unpacking its inputs)."""
    lengths = []
    for n in (40, 200):
        X, y, model = make_data(n=n)
        compiled = graphc.compile(lambda X, y: _with_scores(X, y, model)[:1 + scores], backend=backend)
        compiled(X, y)[0].backward()
        assert compiled._latest.rows is not None
        lines = compiled.source.splitlines()
        if backend == "numpy":
            unpacking = [k for k, line in enumerate(lines) if line.endswith(" = inputs")]
            assert len(unpacking) == 1 and lines[unpacking[0]].endswith(
                f"row_value0_{n - 1}, rows) = inputs" if scores else f"y_{n - 1}, rows) = inputs")
            lines = [line for line in lines if not re.search(r"\b(X_\d+_\d|y_\d+,|row_value0_\d+,)", line)]
        lengths.append(len(lines))
    assert lengths[0] == lengths[1]


def test_a_rows_value_differentiated_through_the_rest_is_left_to_the_scalar_program():
    """``loss + scores[0]`` sends a gradient into one row's score through the outer graph."""
    X, y, model = make_data(n=40)

    def leaked():
        loss, scores = _with_scores(X, y, model)
        return loss + scores[0]
    assert recover_rows(graphc.trace(leaked)) is not None
    assert rows_program(graphc.trace(leaked), resolve("numpy"), min_nodes=0) is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("some", ["scores[0]", "scores[-1]", "scores[:20]", "scores[::2]"])
def test_some_rows_scores_returned_run_as_rows_bit_for_bit(backend, some):
    """Rows whose scores some are read outside and some not: ``scores[-1]`` made the last row
    unlike the others, so the rows stopped before it and the outer program held it whole;
    ``scores[:20]`` held half the rows, 110 s to build at 1,000 rows (an outside hunt), and
    ``scores[0]`` ran the scalar program.  Each row's score is now a value of the row
    program that the rest of the graph reads where it does."""
    pick = {"scores[0]": lambda s: s[0], "scores[-1]": lambda s: s[-1], "scores[:20]": lambda s: s[:20],
            "scores[::2]": lambda s: s[::2]}[some]

    def compile_loss(X, y, model, b):
        return graphc.compile(lambda: (lambda loss, scores: (loss, pick(scores)))(*_with_scores(X, y, model)),
                              backend=b)

    def step(compiled, X, y, k):
        loss, picked = compiled()
        picked = picked if isinstance(picked, list) else [picked]
        loss.backward()
        picked[-1].backward()
        return loss.data.hex(), [v.data.hex() for v in picked]
    compiled, same = _against_python(backend, compile_loss, step, steps=2)
    assert same and compiled._latest.rows is not None and compiled._latest.rows.split.n_rows == 40


def test_a_node_every_row_reads_is_no_row_value():
    """A param-only node every row reads (``w * 2`` computed once) is used outside the first
    row; each row's image of it is that one node, so the rows are not each other's copies."""
    b = Builder()
    w = b.add("param", (), ("w",))
    twice = b.add("mul", (w, b.const(2.0)))
    total = b.const(0.0)
    for r in range(8):
        total = b.add("add", (total, b.add("relu", (b.add("mul", (twice, b.const(float(r)))),))))
    assert recover_rows(b.finish([], [w], [total, twice])) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_guards_on_each_rows_score_run_on_the_rows_path(backend):
    """``if s.data > 0`` on every row's score: comparisons of the rows' values, checked in the
    outer graph; a flipped branch retraces, as it does in the scalar program."""
    def loss(X, y, model):
        scores = [model(list(map(Value, x))) for x in X]
        total = sum((1 + -yi * s).relu() for yi, s in zip(y, scores)) * (1.0 / len(X))
        positive = 0
        for s in scores:
            if s.data > 0:
                positive += 1
        return total, positive

    def step(compiled, X, y, k):
        total, positive = compiled()
        total.backward()
        return total.data.hex(), float(getattr(positive, "data", positive))
    def compile_loss(X, y, model, b):
        return graphc.compile(lambda: loss(X, y, model), backend=b)
    compiled, same = _against_python(backend, compile_loss, step, lr=0.3)
    assert same and compiled._latest.rows is not None and compiled.trace_count > 1  # the branches flipped


def _function_lines(source: str, name: str) -> list[str]:
    """The lines of the C or Python function ``name`` in ``source``."""
    lines = source.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith((f"void {name}(", f"def {name}(")))
    end = next((k for k in range(start + 1, len(lines)) if lines[k] == "}" or lines[k][:1].isalpha()), len(lines))
    return lines[start:end]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_outer_program_writes_no_gradient_that_is_a_constant(backend):
    """Without an L2 term no param's gradient comes from the outer graph: its C wrote 0.0 for
    every param, twice (the block of rows and the row loop), gcc's 7 of 8 s at 1,185 params
    (an outside hunt).  The program is as long for 97 params as for 337 (but for the Python
    function's one statement unpacking the params)."""
    lengths = []
    for sizes in ((6, 6, 1), (16, 16, 1)):
        X, y, model = make_data(n=40, sizes=sizes)
        compiled = graphc.compile(lambda: demo_loss(X, y, model, l2=False), backend=backend)
        compiled().backward()
        assert compiled._latest.rows is not None
        lines = _function_lines(compiled.source, "lambda_outer")
        if backend == "numpy":
            lines = [line for line in lines if not line.startswith(("    (", "     "))]
        lengths.append(len(lines))
    assert lengths[0] == lengths[1]
