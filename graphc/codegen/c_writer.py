"""The C backend's writer: a (re-rolled) per-sample graph as one C99 function with the batch loop inside.

The generated function has the NumPy backend's interface -- inputs are the rows of an
(n_inputs, N) array, params one array, gradients summed over rows -- and its shape::

    void loss(const double *inputs, const double *params, double seed, long n,
              double *per_row, double *sums)
    {
        const double w = params[0];            // params, and all that depends on them
        double v12[32]; GC_PACK(v12, ...);     // alone, computed once per call
        long r = 0;
        for (; r + GC_B <= n; r += GC_B) {     // whole blocks of rows (c_blocks.py):
            const double *x_0 = inputs + 0 * n + r;                    // each value for
            double v20[16 * GC_B]; gc_blin(v20, v13, 1, 0, v12, ...);  // GC_B rows at once
            ...
        }
        for (; r < n; r++) {                   // the rows left over, one at a time
            const double x_0 = inputs[0 * n + r];
            double v20[16]; gc_matvec(v20, v13, 1, v12, v19, 16, 2);   // a re-rolled layer
            ...
            per_row[0 * n + r] = v40;          // per-row outputs
            v55_sum[...] += ...;               // gradients, summed over the rows in order
        }
        sums[0] = ...;
    }

One statement per scalar node, one helper call (a short loop, defined in the prelude of
:mod:`graphc.codegen.c_runtime`) per tensor node: the code is readable and small, so gcc
compiles it in a fraction of a second at -O2 even for the digits MLP (a straight-line
10^5-statement function would take minutes: see :mod:`graphc.codegen.c_toolchain`).
Constants are exact hex floats (``INFINITY``, ``NAN``), dot products in their ops' order,
gradients summed over the rows in row order (:mod:`.c_sums`).  Both loops compute each row
with the same operations in the same order, so a row's results do not depend on which loop
took it.  A kernel with a training driver (:mod:`.c_train`) is the function ``gc_kernel``,
which can also take the step of a batch of one, and the entry point calling it.
"""
from __future__ import annotations

import re

import numpy as np

from .. import ops
from ..graph import Graph, node_names
from ..graph_arrays import CODES
from ..names import Namespace
from .c_blocks import BLOCK_LIMIT, Blocks
from .c_heap import HEAP_HELPER, HEAP_NAMES, on_the_heap, pooled
from .c_layout import ParamLayout
from .c_runtime import PRELUDE, SPELLINGS, Call, texts
from .c_sums import Sums, table
from .common import (batched_nodes, c_number, header, live_roots, outer_and_bias, positions_mask, reduced_tensors,
                     spell)

C_WORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union
unsigned void volatile while _Bool _Complex _Imaginary exp log tanh sin cos pow memcpy INFINITY NAN
inputs params n r per_row sums lane""".split())
#: Names <math.h> and <string.h> may define as macros (C99 7.12, 7.21; POSIX's M_ constants
#: and GNU's unix/linux where a compiler defines them): an identifier spelled like one
#: would be macro-expanded and break the build, so user labels never become one.
HEADER_NAMES = frozenset("""HUGE_VAL HUGE_VALF HUGE_VALL INFINITY NAN FP_INFINITE FP_NAN FP_NORMAL
FP_SUBNORMAL FP_ZERO FP_FAST_FMA FP_FAST_FMAF FP_FAST_FMAL FP_ILOGB0 FP_ILOGBNAN MATH_ERRNO
MATH_ERREXCEPT math_errhandling fpclassify isfinite isinf isnan isnormal signbit isgreater
isgreaterequal isless islessequal islessgreater isunordered float_t double_t NULL size_t M_E M_LOG2E
M_LOG10E M_LN2 M_LN10 M_PI M_PI_2 M_PI_4 M_1_PI M_2_PI M_2_SQRTPI M_SQRT2 M_SQRT1_2 unix linux i386
errno""".split())

#: The identifiers the writer itself emits around the nodes' own names: the entry point's
#: arguments (and the training kernel's, :mod:`.c_sums`, and its name), loop counters, the accumulator of a
#: gradient that is the same in every row, and the flag of a call whose rows all go through
#: the one-row loop.
WRITER_NAMES = frozenset("inputs params seed_unused n r rb per_row sums lane k acc fresh next_params step lr gc_kernel"
                         .split())
#: Every name an identifier of the generated code must not take, derived from all the text
#: the generator emits besides node names: C's keywords and the headers' macros (above),
#: every identifier of the prelude (helpers, macros, their parameters) and of the heap block
#: (:mod:`.c_heap`), every function an
#: op's C spelling calls (``log1p`` for a label "log1p" would shadow the function it calls)
#: and the writer's own names.
RESERVED = C_WORDS | HEADER_NAMES | WRITER_NAMES | HEAP_NAMES | \
    frozenset(re.findall(r"\b[A-Za-z_]\w*", PRELUDE + HEAP_HELPER)) | \
    frozenset(name for text in texts() for name in re.findall(r"(\w+)\(", text))


def generate(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset()
             ) -> tuple[str, str, int, int]:
    """Source text, function name, and the numbers of per-row and summed outputs."""
    return _Writer(graph, name, seed, reduced).source()


def generate_kernel(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset(),
                    free_layout: bool = False, resuming: bool = False) -> tuple[tuple[str, str, int, int], ParamLayout, str]:
    """:func:`generate`'s results, the kernel layout of params and gradients (with
    ``free_layout``, one of the writer's choosing: see :mod:`.c_layout`; else
    ``graph.params`` order) and the name of one more function of the library: with
    ``free_layout``, the entry that can also take a step, which the training driver calls
    (:mod:`.c_train`); else a name free for the caller's own.  ``resuming``: the sums start
    from the numbers the caller put in ``sums`` (:mod:`.c_sums`)."""
    writer = _Writer(graph, name, seed, reduced, free_layout, resuming)
    source = writer.source()
    return source, writer.layout, writer.step_entry or writer.namespace.create(f"{writer.entry}_add")


#: The ops whose helper reads its matrix operand transposed (:class:`.c_runtime.Call`).
TRANSPOSING = tuple(op for op, spelling in SPELLINGS.items() if isinstance(spelling, Call) and spelling.transposed)

#: The fewest lanes of one tensor written to per_row by a loop over a table rather than one
#: statement each.
LANE_TABLE = 4


def lane_outputs(graph: Graph, reduced: frozenset[int], per_row: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Per-row outputs (``per_row``: the outputs not in ``reduced``) that are lanes of a
    tensor, read by no node (the per-row gradients of a layer's params, or of an L2 term's):
    ``{tensor: [(row of per_row, lane), ...]}``.  The kernel writes them from the tensor
    through a table, not as one statement (and one copy of the lane) each, which made gcc
    take seconds on micrograd's demo loss."""
    arrays, nodes = graph.arrays, np.array(per_row, np.int64)
    summed = arrays.outputs[positions_mask(graph, reduced)]
    unread_lanes = (arrays.codes[nodes] == CODES["index"]) & (arrays.reads[nodes] == 0) & ~np.isin(nodes, summed)
    found: dict[int, list[tuple[int, int]]] = {}
    for row in np.flatnonzero(unread_lanes).tolist():
        o = per_row[row]
        found.setdefault(graph.args[o][0], []).append((row, graph.attrs[o][0]))
    return {t: pairs for t, pairs in found.items() if len(pairs) >= LANE_TABLE}


class _Writer:
    def __init__(self, graph: Graph, name: str, seed: int | None, reduced: frozenset[int],
                 free_layout: bool = False, resuming: bool = False) -> None:
        self.graph, self.seed, self.reduced, self.free_layout = graph, seed, reduced, free_layout
        self.resuming = resuming
        self.namespace = namespace = Namespace(RESERVED)
        self.entry = namespace.create(name, "fn")
        self.names = node_names(graph, namespace)
        self.step_entry = namespace.create(f"{self.entry}_step") if free_layout else None
        self._derived: dict[tuple[int, str], str] = {}
        arrays = graph.arrays
        for i in np.flatnonzero(arrays.of(("const",))).tolist():
            self.names[i] = c_number(graph.attrs[i][0])
        self.shapes = graph.shapes
        self.batched = batched_nodes(graph, {seed} if seed is not None else set())
        self.inputs = [i for i in graph.inputs if i != seed]
        self.transposed = {graph.args[i][1] for i in np.flatnonzero(arrays.of(TRANSPOSING)).tolist()
                           if not self.batched[graph.args[i][1]]}  # matrices read transposed
        self.tensors = reduced_tensors(graph, reduced, self.batched, biased=True)
        self.per_row = arrays.outputs[~positions_mask(graph, reduced)].tolist()
        self.lane_outputs = lane_outputs(graph, reduced, self.per_row)
        in_tables = {k: t for t, pairs in self.lane_outputs.items() for k, _ in pairs}
        #: (row, node) of the per-row outputs written one statement each
        self.lone_outputs = [(k, o) for k, o in enumerate(self.per_row) if k not in in_tables]
        read_in_place = {self.per_row[k]: t for k, t in in_tables.items()}
        roots = [read_in_place.get(o, o) for o in live_roots(graph, reduced, self.tensors)]
        self.live = graph.live(roots)
        #: the live operations (not leaves; a mean program's nodes are mostly params), in id order
        self.computed = [i for i in np.flatnonzero(~arrays.of(ops.LEAVES)).tolist() if self.live[i]]
        self.gathered = self._gathers()
        self.layout = ParamLayout(graph, [i for i, kind in self.gathered.items() if kind == "params"],
                                  self._read_transposed_only(), free_layout)
        for i in list(self.gathered):  # a pack of fewer than 4 params read in place, else spelled out
            if self.gathered[i] == "params" and i not in self.layout.blocks and len(graph.args[i]) < 4:
                del self.gathered[i]
        # a matrix also read untransposed (by vecmat) is still transposed once per call for matvec_t:
        # measured faster than gc_matvec on the moons MLP
        self.used = [False] * len(graph)  # leaves read by name (not only through a gathered pack)
        for i in self.computed:
            if i not in self.gathered:
                for a in graph.args[i]:
                    self.used[a] = True
        for r in roots:
            self.used[r] = True
        self.statements = 0

    def source(self) -> tuple[str, str, int, int]:
        g, names = self.graph, self.names
        per_row = self.per_row
        summed = g.arrays.outputs[positions_mask(g, self.reduced)].tolist()
        head, entry = self.heads()
        body = ["{", "    /* params, and everything that depends on them alone: once per call */"]
        body += [f"    const double {names[p]} = params[{self.layout.position[p]}];" for p in g.params if self.used[p]]
        body += self.lane_tables()
        body += self.nodes(batched=False, indent="    ")
        sums = Sums(self, summed, self.free_layout, self.resuming)
        self.in_place, accumulators = sums.in_place, sums.accumulators
        body += sums.declare(self._blocked(accumulators))
        body += self.blocks(accumulators)
        body.append("    for (; r < n; r++) {")
        body += [f"        const double {names[i]} = inputs[{k} * n + r];"
                 for k, i in enumerate(self.inputs) if self.used[i]]
        body += self.nodes(batched=True, indent="        ")
        body += [f"        per_row[{row} * n + r] = {names[o]};" for row, o in self.lone_outputs]
        body += [f"        {line}" for t in self.lane_outputs for line in self.lanes_out(t, "per_row[{row} * n + r]")]
        body += sums.accumulate()
        body.append("    }")
        body += sums.write()
        body.append("}")
        body, heap = on_the_heap(body)
        body = pooled(body)
        what = (f"{self.entry}: for each of n rows of inputs, {len(per_row)} per-row output(s)"
                f"{f' and {len(summed)} gradient(s) summed over the rows' if summed else ''}.")
        top = header("C", [what, f"{self.statements:,} statements from a graph of "
                                 f"{g.op_mix() or 'no operations'}."], language="c")
        source = top + PRELUDE + heap + "\n" + head + "\n" + "\n".join(body) + "\n" + entry
        return source, self.entry, len(per_row), len(summed)

    def lane_tables(self) -> list[str]:
        """For each tensor whose lanes are per-row outputs (:func:`lane_outputs`), the table of
        their rows of ``per_row`` and, unless they are its lanes in order, of its lanes."""
        lines = []
        for t, pairs in self.lane_outputs.items():
            lines.append(f"    static const int {self.derived(t, 'rows')}[{len(pairs)}] = {table(k for k, _ in pairs)};")
            lanes = self._lanes_table(t)
            if lanes:
                lines.append(f"    static const int {lanes}[{len(pairs)}] = {table(lane for _, lane in pairs)};")
        return lines

    def _lanes_table(self, t: int) -> str | None:
        """The name of tensor ``t``'s table of lanes, None when its lanes are 0, 1, 2, ... in order."""
        lanes = [lane for _, lane in self.lane_outputs[t]]
        return None if lanes == list(range(len(lanes))) else self.derived(t, "lanes")

    def lanes_out(self, t: int, target: str, block: bool = False) -> list[str]:
        """The loop writing tensor ``t``'s lanes into their rows of ``per_row``: ``target``
        formats the row ``{row}`` of iteration ``k`` (``block``: in the blocked row body)."""
        lanes = self._lanes_table(t)
        lane = f"{lanes}[k]" if lanes else "k"
        if block and self.batched[t]:
            lane = f"{lane} * GC_B + rb"
        row = f"{self.derived(t, 'rows')}[k]"
        return [f"for (int k = 0; k < {len(self.lane_outputs[t])}; k++) {target.format(row=row)} = "
                f"{self.names[t]}[{lane}];"]

    def biased_lane(self, m: int) -> str:
        """Lane ``lane`` of the ``"biased outer"`` tensor ``m`` in the row loop, from its bias
        and the outer's operands (the tensor is not formed)."""
        outer, bias = outer_and_bias(self.graph, m)
        a, b = self.graph.args[outer]
        n, names = self.shapes[b][0], self.names
        return f"({names[bias]}[lane] + {names[b]}[lane % {n}] * {names[a]}[lane / {n}])"

    def heads(self) -> tuple[str, str]:
        """The body's function head, and the entry points (empty when the body is the one).  A
        kernel for a training driver takes the step of a batch of one too (:mod:`.c_sums`): its
        body is ``gc_kernel``, which the entry point calls without ``step``, and the step entry
        (the driver's, through a pointer) with it."""
        seed = self.names[self.seed] if self.seed is not None else "seed_unused"
        head = (f"void {self.entry}(const double *restrict inputs, const double *restrict params, "
                f"double {seed}, long n, double *restrict per_row, double *restrict sums)")
        if not self.free_layout:
            return head, ""
        stepping = (f"const double *restrict inputs, const double *restrict params, double {seed}, long n, "
                    f"double *restrict per_row, double *restrict sums, double *restrict next_params, long step, "
                    f"double lr)")
        return (f"static GC_NOINLINE void gc_kernel({stepping}",
                f"\n{head}\n{{\n    gc_kernel(inputs, params, {seed}, n, per_row, sums, 0, 0, 0.0);\n}}\n"
                f"\nvoid {self.step_entry}({stepping}\n{{\n"
                f"    gc_kernel(inputs, params, {seed}, n, per_row, sums, next_params, step, lr);\n}}\n")

    def blocks(self, accumulators: dict[int, str]) -> list[str]:
        """The loop over whole blocks of rows (:mod:`graphc.codegen.c_blocks`), which leaves
        ``r`` at the first row the one-row loop takes; none for a long row body."""
        if not self._blocked(accumulators):
            return ["    long r = 0;"]
        rows = [i for i in self.computed if self.batched[i]]
        blocks, indent = Blocks(self), "        "
        lines = ["    long r = 0;", "    for (; r + GC_B <= n; r += GC_B) {  /* GC_B rows at a time */"]
        lines += [indent + s for s in blocks.inputs()]
        lines += [indent + s for s in blocks.body(rows)]
        lines += [indent + s for s in blocks.per_row() + blocks.accumulate(accumulators)]
        return lines + ["    }"]

    def _blocked(self, accumulators: dict[int, str]) -> bool:
        """Whether the kernel has the loop over blocks of rows: not when the blocked copy of
        the row body would tip the file over OPT_LIMIT (-O0)."""
        rows = sum(self.batched[i] for i in self.computed)
        return rows + len(accumulators) <= BLOCK_LIMIT

    def nodes(self, batched: bool, indent: str) -> list[str]:
        """The statements of the live nodes that vary across rows (``batched``) or do not."""
        lines = []
        for i in self.computed:
            if self.batched[i] == batched:
                lines += [indent + s for s in self._compute(i) + self._transposed_copy(i)]
                self.statements += 1
        return lines

    def derived(self, i: int, suffix: str) -> str:
        """The name of a helper variable of node ``i`` (``v8_sum``), from the same namespace as
        every other name, so a user label spelled ``v8_sum`` cannot collide with it."""
        key = (i, suffix)
        if key not in self._derived:
            self._derived[key] = self.namespace.create(f"{self.names[i]}_{suffix}")
        return self._derived[key]

    def _gathers(self) -> dict[int, str]:
        """Packs of params (or of inputs) read straight from the argument arrays through a
        table of positions, instead of one named scalar per lane."""
        g = self.graph
        params = set(g.params)
        row = self._input_row = {i: k for k, i in enumerate(self.inputs)}  # an input's row of ``inputs``
        found = {}
        for i in np.flatnonzero(g.arrays.of(("pack",))).tolist():
            if self.live[i]:
                if params.issuperset(g.args[i]):
                    found[i] = "params"
                elif len(g.args[i]) >= 4 and row.keys() >= set(g.args[i]):
                    found[i] = "inputs"
        return found

    def _read_transposed_only(self) -> set[int]:
        """The matrices read transposed (by matrix-vector products) and in no other way: the
        kernel layout stores them transposed."""
        g = self.graph
        others = set(g.outputs) | set(self.lane_outputs)  # a tensor whose lanes are outputs is read by name
        for i in self.computed:
            readers = g.args[i]
            if g.ops[i] in TRANSPOSING:
                readers = readers[:1] + readers[2:]
            others.update(readers)
        return {m for m in self.transposed if m not in others}

    def _compute(self, i: int) -> list[str]:
        """Node ``i``'s lines: a gathered pack, an elementwise op (lane by lane on tensors) or a helper call."""
        g, names, shapes = self.graph, self.names, self.shapes
        if i in self.gathered:
            return self._gather(i)
        shape = shapes[i]
        if ops.TABLE[g.ops[i]].elementwise:
            if not shape:
                value = spell(SPELLINGS, g.ops[i], [names[a] for a in g.args[i]], g.attrs[i], c_number)
                return [f"const double {names[i]} = {value};"]
            lanes = [f"{names[a]}[lane]" if shapes[a] else names[a] for a in g.args[i]]
            size = ops.size_of(shape)
            return [f"double {names[i]}[{size}];",
                    f"for (int lane = 0; lane < {size}; lane++) {names[i]}[lane] = "
                    f"{spell(SPELLINGS, g.ops[i], lanes, g.attrs[i], c_number)};"]
        text = self._call(i)
        if not shape:
            return [f"const double {names[i]} = {text};"]
        return [f"double {names[i]}[{ops.size_of(shape)}];", text]

    def _gather(self, i: int) -> list[str]:
        name = self.names[i]
        block = self.layout.blocks.get(i)
        if block is not None:  # read in place
            target = self.derived(i, "t") if block.transposed else name
            return [f"const double *{target} = params + {block.offset};"]
        size = ops.size_of(self.shapes[i])
        source, tables = self.gather_source(i)
        read = f"params[{source}]" if self.gathered[i] == "params" else f"inputs[{source} * n + r]"
        return [f"double {name}[{size}];", *tables, f"for (int lane = 0; lane < {size}; lane++) {name}[lane] = {read};"]

    def gather_source(self, i: int) -> tuple[str, list[str]]:
        """Where lane ``lane`` of gathered pack ``i`` is read from: its position among the
        params or its row of ``inputs``, as a C expression, and the table of positions that
        expression reads (none when the positions run on one by one from the first)."""
        positions = [(self.layout.position if self.gathered[i] == "params" else self._input_row)[a]
                     for a in self.graph.args[i]]
        if positions == list(range(positions[0], positions[0] + len(positions))):
            return ("lane" if positions[0] == 0 else f"({positions[0]} + lane)"), []
        name = self.derived(i, "from")
        return f"{name}[lane]", [f"static const int {name}[{len(positions)}] = {table(positions)};"]

    def _call(self, i: int) -> str:
        """Tensor node ``i`` as its :class:`~graphc.codegen.c_runtime.Call`, formatted."""
        g, shapes = self.graph, self.shapes
        call: Call = SPELLINGS[g.ops[i]]
        operands = [self.names[a] for a in g.args[i]]
        operand_shapes = [shapes[a] for a in g.args[i]]
        dims = {"out": self.names[i], "size": ops.size_of(shapes[i]) if shapes[i] else 1}
        dims.update(call.dims(operand_shapes))
        text = call.text(operands, g.attrs[i]) if callable(call.text) else call.text
        if call.transposed and g.args[i][1] in self.transposed:
            # the matrix is the same for every row: read the copy transposed once per call
            text, operands[1] = call.transposed, self.derived(g.args[i][1], "t")
        if call.scalar_first:
            dims["s0"] = 1 if operand_shapes[0] else 0
            if not operand_shapes[0]:
                operands[0] = f"(const double[]){{{operands[0]}}}"  # a scalar broadcast: stride 0
        if callable(call.text):
            return text.format(**dims)
        return text.format(*operands, **{p: str(v) for p, v in zip(ops.TABLE[g.ops[i]].attr_names, g.attrs[i])}, **dims)

    def _transposed_copy(self, i: int) -> list[str]:
        if i not in self.transposed or (i in self.layout.blocks and self.layout.blocks[i].transposed):
            return []
        m, n = self.shapes[i]
        copy = self.derived(i, "t")
        return [f"double {copy}[{m * n}];", f"gc_transpose({copy}, {self.names[i]}, {m}, {n});"]
