"""Re-rolling: recover the tensor structure that tracing unrolled into scalars.

A traced neuron is ``sum(b, mul(w0, x0), mul(w1, x1), ...)``; a layer is many of them
reading the same inputs.  This pass rewrites, wherever the pattern holds (nothing here
knows about MLPs):

1. **dots** -- a sum whose operands include a run of two or more products (each used
   only by that sum) becomes ``dot(acc, pack(w...), pack(x...))``: ``acc`` is what the
   sum added before the run (``-0.0`` if nothing: ``-0.0 + t`` is ``t`` for every ``t``),
   operands after the run are added to the dot's result as before.  A zero constant
   anywhere in the sum counts as added first (the same bits: Python's ``sum(w * x ...)``
   starts from 0, micrograd's ``p0 + 0``);
2. **matvec** -- two or more such sums whose products share one operand vector (all
   neurons of a layer read the same ``x``) become one ``matvec(pack(acc...), W, x)``,
   with each sum replaced by ``index(matvec, row)``; a leaf each row adds after its
   products, or its one user adds to it (``sum(w * x ...) + b``, ``b + sum(...)``), is
   added as one vector.  Rows may not depend on each other;
3. **vectorization** (superword-level parallelism, seeded at packs) -- ``pack(f(a0, b0),
   f(a1, b1), ...)`` of one elementwise op, each lane used only by the pack, becomes
   ``f(pack(a...), pack(b...))`` (a constant shared by every lane stays a scalar);
   ``pack(index(v, 0), ..., index(v, n-1))`` becomes ``v`` and ``index(pack(...), k)``
   the k-th operand.  So ``pack(relu(index(h, 0)), relu(index(h, 1)), ...)``, the input
   of the next layer, becomes ``relu(h)``;
4. **gathered units** -- in a gradient graph, ``sum(unit(g0, v, i0), unit(g1, v, i1),
   ...)`` (the cotangents of ``index`` users of ``v``, one per part) becomes one ``pack``
   of each lane's ``g`` s added in order, ``0.0`` in the other lanes;
5. **accumulated gradients** -- in a gradient graph, a vector's gradient ``sum(p..., V,
   q...)`` whose part ``V = vecmat(-0.0, g, W)`` (what a layer reading the vector gives
   back) comes after others becomes ``sum(vecmat(sum(p...), g, W), q...)``; likewise lane
   by lane, ``sum(p_j..., index(V, j), q_j...)`` for each lane ``j``, with the
   accumulator ``pack(sum(p_j...)...)``; and where ``V`` 's lanes are ``unit`` s of a
   tensor's gradient (a tensor read whole too), the lanes they cover of what that sum adds
   before them (a neuron over every lane: a tensor over more lanes than ``V`` 's).
   Reverse mode adds the layer's rows to what came before one by one, and so does
   ``vecmat`` from its accumulator: ``p + (r2 + r1)`` would not be ``(p + r2) + r1`` (a
   residual connection, a hidden value that is also an output);
6. **outputs over a tensor** -- outputs ``f(..., index(T, k), ...)`` of one elementwise
   ``f``, read by no node, that take every lane ``k`` of ``T`` once at one operand
   position become ``index(f(..., T, ...), k)``, the other operands packed (rule 3 goes
   on from the packs).  A per-sample loss with an L2 term gives every weight the
   gradient ``add(index(l2, j), index(outer(g, x), k))``: one ``add`` of a layer's
   ``outer`` and a pack of the L2 term's lanes, which the C kernels sum over the rows
   without forming either (:func:`graphc.codegen.common.reduced_tensors`);
7. **lanes of a vector** (seeded at a vector whose every lane is read by one ``index``) --
   the same elementwise ops on every lane, their other operands one constant, a leaf per
   lane or lanes of another such group, become the ops on the vector: an activation
   written with several ops (``1 / (1 + (-n).exp())``, the lecture's tanh) acts on the
   layer's vector, and rule 3 goes on from the next layer's packs.

**Exactness.**  ``dot`` and ``matvec`` add in the order the sums did (each op's meaning
fixes its order: see :mod:`graphc.ops`), products are commutative bit for bit, and
elementwise ops act lane by lane, so a re-rolled graph computes the same bits as the
scalar one -- on every backend that keeps the op's order (Python, C; NumPy too, see
:mod:`graphc.codegen.numpy`).  The one difference is in rule 4: a lane that several
units would have added ``+0.0`` to keeps the sign of a ``-0.0`` cotangent, as the scalar
gradient graph does.  Gradients of re-rolled nodes come from their vjp rules
(``dW = outer(g, x)``, ``dx = vecmat(-0.0, g, W)``), which multiply in the scalar rules' order;
``vecmat`` adds rows last-first, the order reverse mode reaches a layer's neurons in.
That order holds for a lane only if no other reader of it comes between the layer's rows,
so rule 2 leaves rows as dots where one would (a neuron split in two sums around another
neuron, a lane read twice by one row) -- or, for lanes that are scalars of their own,
whose dots would share one pack, as the scalar sums they are -- and rule 5 puts the
gradient parts that came before the layer in front of its rows.

**Where it runs.**  Not in :data:`~graphc.passes.PIPELINE` (``optimize``): the Python
backend runs scalar code fastest, and ``compiled.graph`` stays the graph as traced and
simplified.  The batched backends (NumPy, C) run :data:`VECTOR_PIPELINE`, where one
tensor op replaces hundreds of per-node dispatches (NumPy) or statements (C), on the
forward graph, and :data:`JOINT_VECTOR_PIPELINE` (:func:`reroll_final`) on the joint
forward and gradient graph, which no gradient is taken of.

The rewritten nodes are put in a valid order by a stable topological sort (Kahn's
algorithm with a heap: no recursion); new nodes are placed as early as their operands
allow, the others keep their relative order.
"""
from __future__ import annotations

from ..graph import Graph
from .base import PassResult, PassStats, unchanged
from .reroll_check import could_change
from .reroll_gradients import accumulate_vecmats, gather_units
from .reroll_sums import roll_sums
from .reroll_vectors import vectorize, vectorize_lanes, vectorize_outputs
from .reroll_work import EditableGraph, emit


def reroll(graph: Graph, *, to_differentiate: bool = True) -> PassResult:
    """Rules 1-7 of the module docstring, then a topological re-sort; ``to_differentiate``
    False for a graph no gradient is taken of (:func:`reroll_final`)."""
    if not could_change(graph):  # the cheap answer where no rule can fire
        return unchanged("reroll", graph)
    return rerolled(graph, to_differentiate)


def reroll_final(graph: Graph) -> PassResult:
    """:func:`reroll` for a graph that is not differentiated again (a joint forward and
    gradient graph): rows whose lanes are scalars of their own are rolled even where
    another reader comes between them, which changes no value (only the order in which
    a gradient of this graph would add its parts)."""
    return reroll(graph, to_differentiate=False)


def rerolled(graph: Graph, to_differentiate: bool = True) -> PassResult:
    """:func:`reroll` without the quick check: every rule tried."""
    shapes = graph.shapes
    work = EditableGraph(graph)
    accumulate_vecmats(work, shapes)
    roll_sums(work, shapes, to_differentiate)
    vectorize_outputs(work)
    vectorize(work, to_differentiate)
    vectorize_lanes(work)
    gather_units(work)
    if not any(work.hits.values()):
        return unchanged("reroll", graph)
    result = emit(work)
    return PassResult(result, PassStats("reroll", len(graph), len(result),
                                        {k: v for k, v in work.hits.items() if v}))

