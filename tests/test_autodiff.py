"""Graph autodiff against eager backward(), SymPy-free: the rules are the same, the order too."""
from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings

import graphc
import graphc.codegen.c as c_backend
from graphc import GraphcError, Value, trace
from graphc.autodiff import grad
from graphc.codegen import python as python_backend
from graphc.graph import Builder
from graphc.nn import MLP
from strategies import SPECIAL_CONSTANTS, programs, replay


def joint_values(joint, inputs, params, seed=1.0):
    fn, _ = python_backend.compile_graph(joint, "j")
    return list(fn(list(inputs) + [seed], params))


def test_tanh_neuron_joint_graph():
    w, b = Value(0.5, label="w"), Value(-1.0, label="b")
    g = trace(lambda x: (x * w + b).tanh(), 1.0)
    joint = grad(g)
    assert str(joint) == (
        "{ lambda x seed ; w b .\n"
        "  let v3 = mul x w\n"
        "      v4 = add v3 b\n"
        "      v5 = tanh v4\n"
        "      v7 = mul v5 v5\n"
        "      v9 = sub 1.0 v7\n"
        "      v10 = mul v9 seed\n"
        "      v11 = mul w v10\n"
        "      v12 = mul x v10\n"
        "  in ( v5 v11 v12 v10 ) }")
    joint.verify()


def test_unoptimized_joint_matches_eager_bit_for_bit():
    a, b = Value(1.3), Value(-0.7)

    def f(x, y):
        h = (x * a + y * b).tanh()
        return (h * h + h.exp() * x + (y ** 2).relu() - h.sigmoid()).log() + (a ** b).sin()
    xs = [0.4, 1.7]
    g = trace(f, *xs)
    values = joint_values(grad(g), xs, [a.data, b.data], seed=1.0)
    x, y = Value(xs[0]), Value(xs[1])
    out = f(x, y)
    out.backward()
    assert values == [out.data, x.grad, y.grad, a.grad, b.grad]


def test_seed_scales_and_unused_nodes_get_zero():
    p, unused = Value(2.0), Value(5.0)
    g = trace(lambda x, z: x * p, 3.0, 4.0, params=[p, unused])
    assert joint_values(grad(g), [3.0, 4.0], [2.0, 5.0], seed=0.5) == [6.0, 1.0, 0.0, 1.5, 0.0]


def test_gradients_of_one_output_ignore_the_others():
    g = trace(lambda x: [x * 2.0, (x * 0.0).log() * x], 1.0)  # the second has d/dx = -inf
    values = joint_values(grad(g, output=0), [1.0], [])
    assert values[2] == 2.0 and not math.isnan(values[2])


def test_wrt_flags_and_bad_output_index():
    p = Value(1.0)
    g = trace(lambda x: x * p, 2.0)
    assert len(grad(g, wrt_inputs=False).outputs) == 2
    assert len(grad(g, wrt_params=False).outputs) == 2
    with pytest.raises(GraphcError, match="output 3 does not exist"):
        grad(g, output=3)


def test_gradients_of_a_later_output_add_in_eagers_order():
    # Regression: nodes were visited in reverse id order, which is eager's order from output
    # 0 only; here d(second)/dp gathered (c10 + c10) + c16 where eager adds (c16 + c10) + c10.
    def outputs(q):
        c = q.cos()  # output 0, and used by output 1 after the (q + q) branch
        twice = (q + q).cos().cos()
        return [c, twice + twice + c]
    for point in (1.55, 0.07, 1.7, -0.14, 2.39):  # where the two orders round differently
        p = Value(point)
        graph = trace(lambda x: outputs(p), 1.0)
        eager_p = Value(point)
        outputs(eager_p)[1].backward()
        values = joint_values(grad(graph, 1, wrt_inputs=False), [1.0], [point])
        assert values[-1] == eager_p.grad, (point, values[-1], eager_p.grad)


@settings(max_examples=200, deadline=None)
@given(programs(constants=SPECIAL_CONSTANTS, max_ops=16))
def test_replayed_rules_add_the_nodes_the_rules_add(spec):
    """grad replays an op kind's vjp rule from a record after its second use: the joint graph
    is the one running every rule as written gives (the same nodes, ids and constants)."""
    from graphc import autodiff
    g = trace(lambda *xs: replay(spec, list(xs[:3]), list(xs[3:])), *[0.5] * (3 + spec["n_params"]))
    replayed = autodiff.grad(g)
    real = autodiff._Rules.cotangents

    def as_written(self, op, g_, i, operands, attrs):
        self.seen.clear()  # every kind met for the first time: its rule runs as written
        return real(self, op, g_, i, operands, attrs)
    autodiff._Rules.cotangents = as_written
    try:
        written = autodiff.grad(g)
    finally:
        autodiff._Rules.cotangents = real
    assert (replayed.ops, replayed.args, [repr(a) for a in replayed.attrs], replayed.outputs) == \
        (written.ops, written.args, [repr(a) for a in written.attrs], written.outputs)


def test_a_lane_read_alone_takes_no_derivative_from_the_other_lanes():
    """exp(pack(a, b)) read at lane 0 only: lane 1 overflowing to inf must not make the
    gradient nan (0 * inf), as the scalar graph never differentiates lane 1."""
    b = Builder()
    a, c = b.add("input", (), ("a",)), b.add("input", (), ("c",))
    e = b.add("exp", (b.add("pack", (a, c), ((2,),)),))
    forward = b.finish([a, c], [], [b.add("index", (e,), (0,))])
    joint = grad(forward)
    assert "unit" in joint.counts()
    out, da, dc = joint_values(joint, [0.5, 1000.0], [])
    assert (out, da) == (math.exp(0.5), math.exp(0.5)) and dc == 0.0


def test_a_tensor_whose_lanes_are_read_apart_gets_each_lanes_own_total():
    """pack(a, c) read as ``index(v, 0) * -0.0 + index(v, 1)``: lane 0's cotangent is -0.0.
    Reverse mode packs each lane's total, as the scalar graph has them; adding the lanes'
    ``unit`` tensors would give lane 0 -0.0 + 0.0 = 0.0, and a the wrong sign."""
    b = Builder()
    a, c = b.add("input", (), ("a",)), b.add("input", (), ("c",))
    v = b.add("pack", (a, c), ((2,),))
    first = b.add("mul", (b.add("index", (v,), (0,)), b.const(-0.0)))
    forward = b.finish([a, c], [], [b.add("add", (first, b.add("index", (v,), (1,))))])
    joint = grad(forward)
    _, da, dc = joint_values(joint, [0.5, 2.0], [])
    assert math.copysign(1.0, da) == -1.0 and da == 0.0 and dc == 1.0
    live = [joint.ops[i] for i, alive in enumerate(joint.live()) if alive]
    assert "unit" not in live and live.count("pack") == 2


def test_max_differentiates_its_comparison_once():
    joint = grad(trace(lambda x, y: x.max(y), 1.0, 2.0))
    assert joint.counts()["step"] == 1
    assert joint_values(joint, [1.0, 2.0], [])[1:] == [0.0, 1.0]
    assert joint_values(joint, [3.0, 3.0], [])[1:] == [1.0, 0.0]  # ties: the first operand's


def _read_products(read, vector: bool):
    """``x_k * p`` for lanes ``read`` of four, added in that order: as one ``mul`` of a pack
    and a scalar read apart (``vector``), or as the scalar products the pack stands for."""
    b = Builder()
    xs = [b.add("input", (), (f"x{k}",)) for k in range(4)]
    p = b.add("input", (), ("p",))
    if vector:
        m = b.add("mul", (b.add("pack", tuple(xs), ((4,),)), p))
        lanes = {k: b.add("index", (m,), (k,)) for k in range(4)}
    else:
        lanes = {k: b.add("mul", (xs[k], p)) for k in sorted(read)}
    out = lanes[read[0]]
    for k in read[1:]:
        out = b.add("add", (out, lanes[k]))
    return b.finish(xs + [p], [], [out])


@pytest.mark.parametrize("seed", range(40))
def test_a_scalar_broadcast_over_lanes_read_apart_gets_their_parts_as_reverse_mode_reached_them(seed):
    rng = random.Random(seed)
    read = rng.sample(range(4), 3)
    values = [rng.uniform(-3, 3) for _ in range(5)]
    vector, scalar = (joint_values(grad(_read_products(read, v)), values, []) for v in (True, False))
    assert [v.hex() for v in vector] == [v.hex() for v in scalar], read


def _two_dots_over_one_pack(vector: bool, first_parts: bool):
    """``dot(P, c) + dot(P, d)`` with P = pack(p, p), or the scalar sums it stands for
    (``(p*c0 + p*c1) + (p*d0 + p*d1)``); with ``first_parts``, ``p * e`` is added after
    them, so p has a part of its own before the pack's."""
    b = Builder()
    p, e = b.add("input", (), ("p",)), b.add("input", (), ("e",))
    cs = [b.add("input", (), (f"c{k}",)) for k in range(4)]
    if vector:
        packed = b.add("pack", (p, p), ((2,),))
        sums = [b.add("dot", (b.const(-0.0), packed, b.add("pack", tuple(cs[k:k + 2]), ((2,),))))
                for k in (0, 2)]
    else:
        sums = [b.add("add", (b.add("add", (b.const(-0.0), b.add("mul", (p, cs[k])))), b.add("mul", (p, cs[k + 1]))))
                for k in (0, 2)]
    out = b.add("add", tuple(sums))
    if first_parts:
        out = b.add("add", (out, b.add("mul", (p, e))))
    return b.finish([p, e] + cs, [], [out])


@pytest.mark.parametrize("first_parts", [False, True])
@pytest.mark.parametrize("seed", range(20))
def test_a_pack_hands_its_parts_on_one_by_one_where_the_scalar_program_adds_them_so(seed, first_parts):
    """A pack with several parts (read by two dots) that holds one scalar in two lanes, or
    whose scalar has a part already: the scalar program adds each lane's part on its own,
    ``((d1 + d0) + c1) + c0``, not the lanes' sums ``(d1 + c1) + (d0 + c0)``."""
    rng = random.Random(seed)
    values = [rng.uniform(-3, 3) * 10.0 ** rng.randint(-8, 8) for _ in range(6)]  # wide: sums round
    vector, scalar = (joint_values(grad(_two_dots_over_one_pack(v, first_parts)), values, []) for v in (True, False))
    assert [v.hex() for v in vector] == [v.hex() for v in scalar]


_SHIFTS = {".data": lambda o: o[-1].data, "detach()": lambda o: o[-1].detach(),
           "a comparison": lambda o: (o[-1] > 0) * 1.5}


@pytest.mark.parametrize("backend", ["python"] + (["c"] if c_backend.find_compiler() else []))
@pytest.mark.parametrize("shift", _SHIFTS)
def test_a_number_made_from_a_later_output_is_not_walked_through(shift, backend):
    """An outside hunt: a softmax shifted by the last logit's ``.data`` (micrograd's stable
    softmax) gave a hidden layer's gradients an ulp off eager's on every backend: reverse mode
    walked from the first ``v - m`` through ``m`` into the last logit, which eager (holding a
    float there) reaches last.  So did ``detach()`` and a comparison."""
    random.seed(0)
    model = MLP(1, [3, 4], activation="tanh")

    def loss(x):
        o = model(x)
        m = _SHIFTS[shift](o)
        es = [(v - m).exp() for v in o]
        return -(es[0] / sum(es)).log()

    compiled = graphc.compile(loss, backend=backend)
    off = []
    for x in (0.3771906632801799, -1.25, 0.8):
        model.zero_grad()
        loss([Value(x)]).backward()
        eager = [p.grad for p in model.parameters()]
        model.zero_grad()
        compiled([Value(x)]).backward()
        off += [(x, p.label) for p, e in zip(model.parameters(), eager) if p.grad != e]
    assert not off
