"""The C backend's blocked row body (graphc/codegen/c_blocks.py): GC_B rows at a time in
vector lanes, the last rows one at a time, bit for bit the Python backend's row loop.

Odd layer sizes and row counts on both sides of a block (GC_B is 16 with AVX-512, else 8)
exercise the kernels' remainder loops; the portable build (no GNU vector extensions) and
the 8-row blocks are built with GRAPHC_CFLAGS and must give the same bits.
"""
from __future__ import annotations

import random
import re

import numpy as np
import pytest

import graphc
from graphc import Value, trace
from graphc.codegen import c as c_backend, c_toolchain, c_writer
from graphc.nn import MLP

pytestmark = pytest.mark.skipif(c_backend.find_compiler() is None, reason="no C compiler")

ROWS = (0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33)
SHAPES = [(1, [1, 1]), (3, [5, 7]), (17, [3, 1]), (7, [17, 5]), (5, [9, 4, 3])]
#: Layers around the blocked kernels' passes (c_layers.py): gc_blin's four outputs and chunks
#: of GC_CHUNK = 128 terms (150 inputs; the vecmat through 130 outputs); gc_bouter_add's rows
#: four at a time and the rest (150, 21, 9 inputs), its columns two vectors at a time, the last
#: few (13, 6, 5 outputs), fewer than a vector (3, 2), and panels of GC_PANEL = 256 (301).
WIDE = [(150, [13, 6]), (9, [6, 130, 5]), (11, [21, 130, 3]), (3, [301, 2])]


def pair(nin: int, layers: list[int], loss):
    """The same model compiled for C and for the Python backend, and its params."""
    random.seed(nin * 100 + sum(layers))
    model = MLP(nin, layers)
    fn = loss(model)
    return graphc.compile(fn, backend="c"), graphc.compile(fn, backend="python"), model


def squared(model):
    def loss(x, y):
        out = model(x)
        outs = out if isinstance(out, list) else [out]
        return sum((o - y) ** 2 for o in outs).tanh() + outs[0].exp() * 1e-3
    return loss


def with_l2(model):
    """The squared loss with an L2 term inside: each weight gradient is the layer's plus the
    L2 term's, which the kernels sum as one biased outer product (c_layers.py)."""
    params, loss = model.parameters(), squared(model)
    return lambda x, y: loss(x, y) + 1e-3 * sum(p * p for p in params)


def data(rows: int, nin: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, nin)), rng.normal(size=rows)


def assert_bits(got, want) -> None:
    """The same bits (signs of zero included); any nan equals any nan, as between the C and
    the Python backend before blocks (x86 and CPython give nan different sign bits)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    both = np.isnan(got) & np.isnan(want)
    assert np.where(both, 0.0, got).tobytes() == np.where(both, 0.0, want).tobytes()


def assert_the_row_loops_bits(nin: int, layers: list[int], row_counts, loss=squared) -> graphc.Compiled:
    """``map`` and ``mean_and_grad`` of ``loss`` on C give the Python backend's bits for each
    row count (``mean_and_grad`` from one row); returns the C compiled function."""
    fast, slow, model = pair(nin, layers, loss)
    params = np.array([p.data for p in model.parameters()])
    for rows in row_counts:
        X, y = data(rows, nin, rows)
        assert_bits(fast.map(X, y, params=params), slow.map(X, y, params=params))
        if rows:
            (a, ga), (b, gb) = fast.mean_and_grad(X, y, params=params), slow.mean_and_grad(X, y, params=params)
            assert_bits(a, b)
            assert_bits(ga, gb)
    return fast


@pytest.mark.parametrize("nin, layers", SHAPES)
def test_map_and_mean_and_grad_are_the_row_loops_bits_on_every_row_count(nin, layers):
    fast = assert_the_row_loops_bits(nin, layers, ROWS)
    assert "GC_B rows at a time" in fast.source and "gc_blin(" in fast.source and "gc_bouter_add(" in fast.source


@pytest.mark.parametrize("nin, layers", WIDE)
def test_wide_layers_take_every_pass_of_the_blocked_kernels_with_the_row_loops_bits(nin, layers):
    assert_the_row_loops_bits(nin, layers, (16, 17, 40))


BIASED = re.compile(r"gc_bouter_add_biased\(v\d+_sum, ")


@pytest.mark.parametrize("nin, layers", [(3, [5, 7]), (7, [17, 5]), (3, [301, 2]), (17, [16, 5])])
def test_weight_gradients_plus_an_l2_terms_are_the_row_loops_bits(nin, layers):
    fast = assert_the_row_loops_bits(nin, layers, (1, 7, 8, 9, 17, 33), with_l2)
    assert BIASED.search(fast.source)


@pytest.mark.parametrize("loss, batch_size", [(squared, 13), (with_l2, 13), (with_l2, 1)])
def test_train_in_minibatches_is_the_row_loops_bits(loss, batch_size):
    """Batches of 13 (blocks and the row loop), and of one row, where the row loop writes a
    large gradient as its first row (or the kernel takes the step itself: c_sums.py)."""
    fast, slow, model = pair(17, [16, 5], loss)
    X, y = data(41, 17, 1)
    order = np.random.default_rng(2).permutation(41)
    results = []
    for compiled in (fast, slow):
        start = [p.data for p in model.parameters()]
        losses = compiled.train(X, y, lr=0.05, batch_size=batch_size, order=order)
        results.append((losses, [p.data for p in model.parameters()]))
        for p, v in zip(model.parameters(), start):
            p.data = v
    assert_bits(results[0][0], results[1][0])
    assert_bits(results[0][1], results[1][1])


def test_layers_whose_weights_vary_across_rows_take_the_general_loops():
    """Weights read from the data: matvec, vecmat and the gradient's outer products of
    row-varying matrices, written as plain loops over the block's rows."""
    def layer(x, w):
        hidden = [sum((wj * xi for wj, xi in zip(w[3 * j:3 * j + 3], x)), 0.5 * j).relu() for j in range(4)]
        return sum(h * h for h in hidden)
    fast, slow = graphc.compile(layer, backend="c"), graphc.compile(layer, backend="python")
    rng = np.random.default_rng(3)
    for rows in (0, 1, 9, 19):
        X, W = rng.normal(size=(rows, 3)), rng.normal(size=(rows, 12))
        assert_bits(fast.map(X, W), slow.map(X, W))


def test_gradients_through_row_varying_weights_and_row_constant_vectors(monkeypatch):
    """Params multiplied by weights from the data (a vecmat of a row-varying matrix) and a
    matrix of params times params plus a row-varying bias (outer products of a
    row-constant vector): the general loops of the gradient's side.  The oracle is the C
    row loop alone (no blocked body): on this graph the C backend's param gradients already
    differed from the Python backend's in the last bit before blocks."""
    random.seed(7)
    p = [Value(random.uniform(-1, 1)) for _ in range(3)]
    V = [[Value(random.uniform(-1, 1)) for _ in range(3)] for _ in range(4)]

    def loss(w, y):
        hidden = [sum((wj * pk for wj, pk in zip(w[3 * j:3 * j + 3], p)), 0.5 * j).relu() for j in range(4)]
        outs = [sum((vjk * pk for vjk, pk in zip(V[j], p)), y).tanh() for j in range(4)]
        return sum(h * o for h, o in zip(hidden, outs))
    fast, slow = graphc.compile(loss, backend="c"), graphc.compile(loss, backend="c")
    rng = np.random.default_rng(6)
    with monkeypatch.context() as patch:
        patch.setattr(c_writer, "BLOCK_LIMIT", -1)
        slow.mean_and_grad(rng.normal(size=(1, 12)), rng.normal(size=1))
    fast.mean_and_grad(rng.normal(size=(1, 12)), rng.normal(size=1))
    assert "GC_B rows at a time" in fast.source and "GC_B rows at a time" not in slow.source
    for rows in (1, 5, 8, 19):
        W, y = rng.normal(size=(rows, 12)), rng.normal(size=rows)
        (a, ga), (b, gb) = fast.mean_and_grad(W, y), slow.mean_and_grad(W, y)
        assert_bits([a], [b])
        assert_bits(ga, gb)


def test_nonfinite_and_signed_zero_rows_keep_their_bits():
    fast, slow, model = pair(3, [4, 2], squared)
    X, y = data(19, 3, 4)
    X[2, 0], X[5, 1], X[9, 2], y[11], X[12] = np.inf, np.nan, -np.inf, np.nan, -0.0
    params = np.array([p.data for p in model.parameters()])
    assert_bits(fast.map(X, y, params=params, allow_nonfinite=True),
                slow.map(X, y, params=params, allow_nonfinite=True))
    (a, ga), (b, gb) = (c.mean_and_grad(X, y, params=params, allow_nonfinite=True) for c in (fast, slow))
    assert_bits([a], [b])
    assert_bits(ga, gb)


@pytest.mark.parametrize("cflags", ["-DGC_PORTABLE", "-mno-avx512f"])
def test_the_portable_kernels_and_eight_row_blocks_give_the_same_bits(cflags, tmp_path, monkeypatch):
    """Without GNU vector extensions (a struct of lanes) and without AVX-512 (GC_B = 8)."""
    fast, slow, model = pair(7, [17, 5], with_l2)
    X, y = data(21, 7, 5)
    params = np.array([p.data for p in model.parameters()])
    want = slow.mean_and_grad(X, y, params=params)
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_CFLAGS", cflags)
    got = fast.mean_and_grad(X, y, params=params)
    assert_bits([got[0]], [want[0]])
    assert_bits(got[1], want[1])


def test_a_compiler_rejecting_the_machine_flags_builds_portable_code(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(c_toolchain, "MACHINE_FLAGS", ("-mno-such-instruction-set-graphc",))
    source, entry, _, _ = c_backend.generate(trace(lambda x: x * 3.0, 1.0), "thrice")
    function = c_backend.load(source, entry)
    inputs, out = np.array([[2.0, -1.5]]), np.empty((1, 2))
    function(inputs.ctypes.data, None, 0.0, 2, out.ctypes.data, None)
    assert out.tolist() == [[6.0, -4.5]]


def test_a_compiler_rejecting_the_gcc_flags_builds_without_them(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(c_toolchain, "GCC_FLAGS", ("-fno-such-gcc-pass-graphc",))
    source, entry, _, _ = c_backend.generate(trace(lambda x: x * 7.0, 1.0), "seven")
    function = c_backend.load(source, entry)
    inputs, out = np.array([[2.0]]), np.empty((1, 1))
    function(inputs.ctypes.data, None, 0.0, 1, out.ctypes.data, None)
    assert out.tolist() == [[14.0]]


def test_the_cpu_is_part_of_the_cache_key(tmp_path, monkeypatch):
    """A library built for one instruction set is never loaded on another CPU."""
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    source = c_backend.generate(trace(lambda x: x * 5.0, 1.0), "five")[0]
    assert "-march=native" in c_toolchain.MACHINE_FLAGS and c_toolchain.cpu()
    here = c_backend.build(source)
    monkeypatch.setattr(c_toolchain, "cpu", lambda: "another CPU")
    assert c_backend.build(source) != here


def test_a_long_row_body_is_not_blocked_so_the_file_still_builds_optimized():
    """Regression (bench/peers.py, moons step with L2 inside the per-sample loss): 337
    per-param sums plus the row body, written twice for the blocked loop, tipped the file
    over OPT_LIMIT and it built at -O0 (200 us per call instead of 39)."""
    from graphc.codegen.c_toolchain import optimization_level
    random.seed(1)
    model = MLP(2, [16, 16, 1])
    params = model.parameters()
    step = graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu() + 1e-4 * sum(p * p for p in params),
                          backend="c")
    step.mean_and_grad(np.ones((9, 2)), np.ones(9))
    assert optimization_level(step.source) != "-O0"


def test_a_gradients_layer_over_a_row_constant_vector_reads_a_matrix_kept_only_transposed(monkeypatch):
    """Found by ``make fuzz`` (test_fuzz_layers): re-rolling the gradient built ``matvec(g, W,
    pack(seed, seed))``, W a pack of params that the layout keeps transposed alone (every
    reader takes it transposed); the blocks' loop for a row-constant vector read W by its
    own name, which was never declared, and the build failed.  The oracle is the C row loop
    alone (p0 is read in several places: the Python backend adds its parts in another order)."""
    p = [Value(0.0) for _ in range(4)]

    def loss(row):
        x = row[0]
        h0 = (p[0] * x + p[0] * x) + (p[0] * x + p[0] * x)
        h1 = p[0] * x + p[0] * x
        outs = [(h0 * p[0]) + (h1 * p[1] + p[0]), (h0 * p[2]) + (h1 * p[3] + p[0]),
                h0 * p[0] + h1 * x, h0 * p[0] + h1 * p[0]]
        return sum(outs[1:], outs[0])
    fast, slow = graphc.compile(loss, backend="c"), graphc.compile(loss, backend="c")
    with monkeypatch.context() as patch:
        patch.setattr(c_writer, "BLOCK_LIMIT", -1)
        slow.mean_and_grad(np.zeros((1, 1)))
    fast.mean_and_grad(np.zeros((1, 1)))
    assert "GC_B rows at a time" in fast.source and "GC_B rows at a time" not in slow.source
    for rows in (1, 9, 17):
        X = np.random.default_rng(rows).normal(size=(rows, 1))
        for values in ([0.0] * 4, [0.3, -1.2, 0.7, 2.0]):
            params = np.array(values)
            (a, ga), (b, gb) = fast.mean_and_grad(X, params=params), slow.mean_and_grad(X, params=params)
            assert_bits([a], [b])
            assert_bits(ga, gb)


def test_lanes_of_block_tensors_are_read_in_place_and_inputs_in_order_need_no_table():
    """A tensor's lane in the block (``index``, the logits of a softmax) is a pointer into the
    tensor, not a copy; a pack of inputs in their own order is read without a table of
    positions, and one in another order through its table; the bits stay the row loop's."""
    from graphc.losses import softmax_cross_entropy
    random.seed(3)
    model = MLP(6, [5, 4])

    def in_order(x, t):
        return softmax_cross_entropy(model(x), t)

    def reversed_inputs(x, t):
        return softmax_cross_entropy(model(x[::-1]), t)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(37, 6)), np.eye(4)[rng.integers(0, 4, 37)]
    params = np.array([p.data for p in model.parameters()])
    for loss, table in ((in_order, False), (reversed_inputs, True)):
        fast, slow = graphc.compile(loss, backend="c"), graphc.compile(loss, backend="python")
        (a, ga), (b, gb) = fast.mean_and_grad(X, T, params=params), slow.mean_and_grad(X, T, params=params)
        assert_bits(a, b)
        assert_bits(ga, gb)
        assert re.search(r"const double \*v\d+ = v\d+ \+ 3 \* GC_B;", fast.source)
        assert ("_from[6] = {5, 4, 3, 2, 1, 0}" in fast.source) == table
        assert ("inputs + lane * n + r" in fast.source) != table


def test_a_run_of_scalar_statements_shares_one_loop_over_the_blocks_rows():
    """The softmax of a cross-entropy loss is a run of scalar statements between two layer
    ops; its arithmetic is written as one loop over the block's rows (one statement per node
    inside it), not one loop per node, and each libm call (exp) as a loop of its own, which
    keeps the arithmetic vectorized.  The bits stay the row loop's, on both sides of a block
    and with nonfinite logits."""
    from graphc.losses import softmax_cross_entropy
    random.seed(4)
    model = MLP(5, [4, 6])
    fast = graphc.compile(lambda x, t: softmax_cross_entropy(model(x), t), backend="c")
    slow = graphc.compile(lambda x, t: softmax_cross_entropy(model(x), t), backend="python")
    rng = np.random.default_rng(1)
    X, T = rng.normal(size=(35, 5)) * 30, np.eye(6)[rng.integers(0, 6, 35)]
    X[3, 0], X[20, 1], X[21] = np.inf, -np.inf, np.nan
    params = np.array([p.data for p in model.parameters()])
    (a, ga), (b, gb) = (c.mean_and_grad(X, T, params=params, allow_nonfinite=True) for c in (fast, slow))
    assert_bits([a], [b])
    assert_bits(ga, gb)
    assert_bits(fast.map(X, T, params=params, allow_nonfinite=True),
                slow.map(X, T, params=params, allow_nonfinite=True))
    loops = re.findall(r"for \(int rb = 0; rb < GC_B; rb\+\+\) \{\n((?:\s+v\d+\[rb\] = .*;\n)+)", fast.source)
    assert max(len(body.splitlines()) for body in loops) >= 4 and not any("exp(" in body for body in loops)
