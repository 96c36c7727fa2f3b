"""The C backend's blocked row body: the batch loop's nodes for ``GC_B`` rows at a time.

A value that varies across rows is held for the block's rows side by side: a scalar as
``v[rb]``, a tensor lane by lane as ``v[lane * GC_B + rb]`` (``rb`` the row in the block).
Every statement then works on ``GC_B`` rows with the same operations, in the same order, as
the one-row body (:mod:`graphc.codegen.c_writer`) does on one row, so each row's result is
bit for bit the one the row loop gives; only independent rows share a vector instruction.
The layer ops read each weight once per block (the prelude's ``gc_blin`` and
``gc_bouter_add``), which is where the speed comes from; the row loop still takes the last
``n % GC_B`` rows.  Sums over rows add the block's rows in row order.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import ops
from .c_runtime import LIBM_OPS, SPELLINGS
from .common import c_number, outer_and_bias, spell

if TYPE_CHECKING:
    from .c_writer import _Writer

#: The most row-loop statements a blocked body is written for: the body is written twice,
#: and a longer function builds at -O0 (see :data:`graphc.codegen.c_toolchain.OPT_LIMIT`).
BLOCK_LIMIT = 1000
ROWS = "for (int rb = 0; rb < GC_B; rb++)"


class Blocks:
    """The statements of a block of rows, from the writer's analyses of the graph."""

    def __init__(self, writer: _Writer) -> None:
        self.w = writer
        self.g = writer.graph

    def at(self, a: int, lane: str = "lane") -> str:
        """Operand ``a`` in row ``rb`` (and lane ``lane`` of a tensor)."""
        name, batched = self.w.names[a], self.w.batched[a]
        if self.w.shapes[a]:
            at = lane if lane.isidentifier() else f"({lane})"
            return f"{name}[{at} * GC_B + rb]" if batched else f"{name}[{lane}]"
        return f"{name}[rb]" if batched else name

    def inputs(self) -> list[str]:
        """Each input read by name: a pointer to the block's rows of its column."""
        return [f"const double *{self.w.names[i]} = inputs + {k} * n + r;"
                for k, i in enumerate(self.w.inputs) if self.w.used[i]]

    def body(self, rows: list[int]) -> list[str]:
        """The statements of nodes ``rows``, in order.  A run of scalars computed lane by lane
        (and the lanes of tensors they read) shares one loop over the block's rows: each row's
        statements are the same and in the same order, and gcc builds one loop, not one per
        node (the MNIST gradient: 129 loops -> 51, about 0.07 s of its 0.9 s build)."""
        lines: list[str] = []
        run: list[tuple[str, str]] = []  # (declaration, statement or "") of the run so far
        for i in rows:
            if self._row_scalar(i) or (self.g.ops[i] == "index" and run):
                run.append(self._row_parts(i))
            else:
                lines += self._loop(run) + self.node(i)
                run = []
        return lines + self._loop(run)

    def _row_scalar(self, i: int) -> bool:
        """A scalar the run's loop takes: arithmetic gcc vectorizes, not a libm call (``exp``
        in the loop kept the softmax's subtractions and maxima from vectors: 7.30 against
        7.19 us per sample at 784-50-10, batch 32)."""
        op = self.g.ops[i]
        return ops.TABLE[op].elementwise and not self.w.shapes[i] and i not in self.w.gathered and op not in LIBM_OPS

    def _row_parts(self, i: int) -> tuple[str, str]:
        """Node ``i`` of a run: its declaration, and its statement for row ``rb`` (none for a lane)."""
        lines = self.node(i)
        if len(lines) == 1:  # a lane of a tensor: a pointer, read where it is
            return lines[0], ""
        decl, loop = lines
        return decl, loop.removeprefix(f"{ROWS} ")

    @staticmethod
    def _loop(run: list[tuple[str, str]]) -> list[str]:
        statements = [s for _, s in run if s]
        if len(statements) < 2:
            return [line for decl, s in run for line in (decl, f"{ROWS} {s}" if s else "") if line]
        return [decl for decl, _ in run] + [f"{ROWS} {{", *(f"    {s}" for s in statements), "}"]

    def node(self, i: int) -> list[str]:
        """Node ``i``'s statements for the block's rows."""
        g, w = self.g, self.w
        op, name, shape = g.ops[i], w.names[i], w.shapes[i]
        size = ops.size_of(shape) if shape else 1
        decl = f"double {name}[{size} * GC_B];" if shape else f"double {name}[GC_B];"
        if i in w.gathered:
            source, tables = w.gather_source(i)
            return [decl, *tables, f"for (int lane = 0; lane < {size}; lane++) "
                                   f"memcpy({name} + lane * GC_B, inputs + {source} * n + r, sizeof(double) * GC_B);"]
        if ops.TABLE[op].elementwise:
            value = spell(SPELLINGS, op, [self.at(a) for a in g.args[i]], g.attrs[i], c_number)
            if not shape:
                return [decl, f"{ROWS} {name}[rb] = {value};"]
            return [decl, f"for (int lane = 0; lane < {size}; lane++) {ROWS} {name}[lane * GC_B + rb] = {value};"]
        if op == "index":  # a lane of a tensor held for the block: read where it is
            (t,), (lane,) = g.args[i], g.attrs[i]
            return [f"const double *{name} = {w.names[t]} + {lane} * GC_B;"]
        return [decl] + getattr(self, "_" + op)(i, name, size)

    def _pack(self, i: int, name: str, size: int) -> list[str]:
        lanes = " ".join(f"{name}[{k} * GC_B + rb] = {self.at(a)};" for k, a in enumerate(self.g.args[i]))
        return [f"{ROWS} {{ {lanes} }}"]

    def _unit(self, i: int, name: str, size: int) -> list[str]:
        (lane,) = self.g.attrs[i]
        return [f"for (int lane = 0; lane < {size} * GC_B; lane++) {name}[lane] = 0.0;",
                f"{ROWS} {name}[{lane} * GC_B + rb] = {self.at(self.g.args[i][0])};"]

    def _dot(self, i: int, name: str, size: int) -> list[str]:
        acc, u, v = self.g.args[i]
        return [f"{ROWS} {name}[rb] = {self.at(acc)};",
                f"for (int lane = 0; lane < {self.w.shapes[u][0]}; lane++) "
                f"{ROWS} {name}[rb] = {name}[rb] + {self.at(u)} * {self.at(v)};"]

    def _matvec(self, i: int, name: str, size: int) -> list[str]:
        b, W, x = self.g.args[i]
        m, n = self.w.shapes[W]
        if W in self.w.transposed:  # its transposed copy (or a transposed block of params) exists,
            transposed = self.w.derived(W, "t")  # perhaps alone: the layout may keep W only so
            fast = (transposed, f"1, {m}")

            def element(out: str, k: str) -> str:
                return f"{transposed}[{k} * {m} + {out}]"
        else:
            fast = (self.w.names[W], f"{n}, 1")

            def element(out: str, k: str) -> str:
                return self.at(W, f"{out} * {n} + {k}")
        return self._linear(name, b, W, x, (m, n), fast, element, down=False)

    def _vecmat(self, i: int, name: str, size: int) -> list[str]:
        acc, gv, W = self.g.args[i]
        m, n = self.w.shapes[W]
        return self._linear(name, acc, W, gv, (n, m), (self.w.names[W], f"1, {n}"),
                            lambda out, k: self.at(W, f"{k} * {n} + {out}"), down=True)

    def _linear(self, name: str, start: int, W: int, x: int, sizes: tuple[int, int], fast: tuple[str, str],
                element, down: bool) -> list[str]:
        """``y[o] = start[o] + W(o, k)*x[k] + ...`` over ``sizes`` = (outputs, inputs), k
        upwards (matvec: W's rows) or downwards (vecmat: its columns, last row first).
        ``fast``: the matrix and strides ``gc_blin`` reads; ``element(o, k)``: W's number at
        (o, k) for the row-by-row loops."""
        outputs, inputs = sizes
        if self._fast(W, x):
            first, bj, bb = self._start(start)
            matrix, strides = fast
            return [f"gc_blin({name}, {first}, {bj}, {bb}, {matrix}, {strides}, {self.w.names[x]}, "
                    f"{outputs}, {inputs}, {int(down)});"]
        out = f"{name}[lane * GC_B + rb]"
        steps = f"int k = {inputs - 1}; k >= 0; k--" if down else f"int k = 0; k < {inputs}; k++"
        return [f"for (int lane = 0; lane < {outputs}; lane++) {ROWS} {out} = {self.at(start)};",
                f"for ({steps}) for (int lane = 0; lane < {outputs}; lane++) "
                f"{ROWS} {out} = {out} + {element('lane', 'k')} * {self.at(x, 'k')};"]

    def _outer(self, i: int, name: str, size: int) -> list[str]:
        a, b = self.g.args[i]
        n = self.w.shapes[b][0]
        return [f"for (int lane = 0; lane < {size}; lane++) "
                f"{ROWS} {name}[lane * GC_B + rb] = {self.at(b, f'lane % {n}')} * {self.at(a, f'lane / {n}')};"]

    def _fast(self, matrix: int, vector: int) -> bool:
        """Whether a layer op can run as ``gc_blin``: a matrix the same in every row and a
        vector that varies across them."""
        return not self.w.batched[matrix] and self.w.batched[vector]

    def _start(self, b: int) -> tuple[str, int, int]:
        """``gc_blin``'s first terms: pointer, stride between outputs, whether it varies across rows."""
        name, batched, tensor = self.w.names[b], self.w.batched[b], bool(self.w.shapes[b])
        if not tensor and not batched:
            return f"(const double[]){{{name}}}", 0, 0
        return name, ("GC_B" if batched else 1) if tensor else 0, int(batched)

    def accumulate(self, accumulators: dict[int, str]) -> list[str]:
        """Each accumulator adds the block's rows, row 0 first."""
        g, w = self.g, self.w
        lines = []
        for key, acc in accumulators.items():
            kind = w.tensors.get(key)
            if kind in ("outer", "biased outer"):
                outer, bias = (key, None) if kind == "outer" else outer_and_bias(g, key)
                a, b = g.args[outer]
                if w.in_place.get(key, (0, False))[1]:  # into a transposed block: y[k, j] += b[k] * a[j]
                    a, b = b, a
                lines.append(self._outer_sum(acc, a, b, bias))
            elif key in w.tensors:
                lines.append(f"for (int lane = 0; lane < {ops.size_of(w.shapes[key])}; lane++) "
                             f"{ROWS} {acc}[lane] = {acc}[lane] + {self.at(key)};")
            else:
                lines.append(f"{ROWS} {acc} = {acc} + {self.at(key)};")
        return lines

    def _outer_sum(self, acc: str, a: int, b: int, bias: int | None) -> str:
        """``acc`` plus the block's rows of ``outer(a, b)`` (each plus ``bias``, the same in
        every row, if there is one), row 0 first."""
        w = self.w
        m, n = w.shapes[a][0], w.shapes[b][0]
        if w.batched[a] and w.batched[b]:
            if bias is None:
                return f"gc_bouter_add({acc}, {w.names[a]}, {w.names[b]}, {m}, {n});"
            return f"gc_bouter_add_biased({acc}, {w.names[a]}, {w.names[b]}, {m}, {n}, {w.names[bias]});"
        product = f"{self.at(b, f'lane % {n}')} * {self.at(a, f'lane / {n}')}"
        value = product if bias is None else f"({self.at(bias)} + {product})"
        return f"for (int lane = 0; lane < {m * n}; lane++) {ROWS} {acc}[lane] = {acc}[lane] + {value};"

    def per_row(self) -> list[str]:
        """The per-row outputs of the block's rows; a tensor's lanes through its table."""
        lines = [f"{ROWS} per_row[{k} * n + r + rb] = {self.at(o)};" for k, o in self.w.lone_outputs]
        return lines + [line for t in self.w.lane_outputs
                        for line in self.w.lanes_out(t, f"{ROWS} per_row[{{row}} * n + r + rb]", block=True)]
