"""The C kernel's sums over rows (:mod:`graphc.codegen.c_writer`): the accumulators, what the
row loop adds into them, and how they reach ``sums``.

A summed tensor is accumulated as a whole, from +0.0, in row order -- in place in ``sums``
where its lanes are a block of the kernel layout (:mod:`.c_layout`), else in a local
array scattered into ``sums`` after the loop; a summed scalar in a local variable.

**First-row writes.**  A tensor of :data:`FIRST_WRITES` lanes or more (a layer's weight
gradient) is not zeroed when the one-row loop takes every row of the call (``fresh``: a
batch of one, or of fewer rows than a block): its first row writes ``0.0 + value``, as
adding to the zeros would, which saves a pass over its memory.

**The step of a batch of one.**  A kernel with a training driver (:mod:`.c_train`) also
takes ``next_params``, ``step`` and ``lr``: the driver passes ``step`` = 1
(``train(lr=...)``: ``p - lr * g``) or 2 (plain SGD: ``p + (-(lr * g))``) for a step of
one row without an L2 term, and the kernel writes the stepped params into
``next_params`` itself -- those of a first-written block instead of its gradient
(``gc_outer_step``: one pass over the weights, not three), the others from ``sums``
after the loop -- with the operations the driver's loop would apply to the gradient it
would have read, so the same bits.  ``params`` itself is never written (it stays ``const
restrict``, which the kernel's other loops are compiled for), so every statement reads
the params of before the step.

**Resuming.**  A ``resuming`` kernel (:mod:`graphc.rows_kernels`: the gradient of a
full-batch loss's rows, added last row first onto what the outer graph gave first) starts
each sum from the number in its slot of ``sums`` instead of +0.0, and has no first-row
writes: every row is added onto what is there, one addition at a time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import ops
from ..errors import GraphcError
from .common import tensor_lanes

if TYPE_CHECKING:
    from .c_writer import _Writer

#: A summed tensor of at least this many lanes is written by the first row of a ``fresh``
#: call instead of zeroed first; a smaller one is zeroed, which costs less than the test
#: in the loop.
FIRST_WRITES = 256


class Sums:
    """The sums of a kernel's ``summed`` outputs (see the module docstring)."""

    def __init__(self, writer: _Writer, summed: list[int], stepping: bool, resuming: bool = False) -> None:
        self.w, self.g, self.summed, self.resuming = writer, writer.graph, summed, resuming
        tensors, batched, g = writer.tensors, writer.batched, writer.graph
        #: each summed output's slot of ``sums``: its param's kernel position (or its output's place)
        self.sum_at = writer.layout.slot_position if len(summed) == len(g.params) else list(range(len(summed)))
        slot_of, lone = np.asarray(self.sum_at, np.int64), np.ones(len(summed), bool)
        lane_slots: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # tensor -> its summed lanes' slots, lanes
        for m, (places, lanes) in tensor_lanes(g, writer.reduced, tensors).items():
            lane_slots[m] = slot_of[places], lanes
            lone[places] = False
        #: the summed outputs that are sums of their own, not lanes of a summed tensor
        self.own = np.flatnonzero(lone).tolist()
        self.in_place = self._in_place(lane_slots)
        #: the lanes of tensors not summed in place, copied between sums and local accumulators
        self.scattered = {m: list(zip(slots.tolist(), lanes.tolist()))
                          for m, (slots, lanes) in lane_slots.items() if m not in self.in_place}
        self.accumulators = {m: writer.derived(m, "sum") for m in tensors}
        for s in self.own:
            o = summed[s]
            if batched[o] and o not in self.accumulators:
                self.accumulators[o] = writer.derived(o, "sum")
        self.first = set() if resuming else {m for m in tensors if ops.size_of(writer.shapes[m]) >= FIRST_WRITES}
        if stepping and resuming:
            raise GraphcError("a training kernel starts its sums from +0.0 (a graphc bug)")
        resumed = [o for o in summed if batched[o]]
        if resuming and len(set(resumed)) < len(resumed):
            raise GraphcError("a resuming kernel starts each sum from its own slot; two of them are one node "
                              "(a graphc bug: graphc.rows_kernels writes the rows then)")
        if stepping and len(summed) != len(self.g.params):
            raise GraphcError(f"a training kernel sums the gradients of its {len(self.g.params)} params; "
                              f"this one sums {len(summed)} outputs (a graphc bug)")
        self.stepping = stepping
        self.stepped = {m for m in self.first if m in self.in_place} if stepping else set()

    def _in_place(self, lane_slots: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[int, tuple[int, bool]]:
        """Summed tensors accumulated in place in ``sums`` (``lane_slots``: each tensor's
        summed lanes' slots and lanes): (kernel offset, whether the block is a transposed
        outer product's)."""
        g, layout, w = self.g, self.w.layout, self.w
        found = {}
        for m, lanes in lane_slots.items():
            base = layout.sum_run(*lanes, ops.size_of(w.shapes[m]))
            if base is not None:
                found[m] = (base, False)
            elif w.tensors[m] == "outer":
                a, b = g.args[m]
                base = layout.transposed_run(*lanes, w.shapes[a][0], w.shapes[b][0])
                if base is not None:
                    found[m] = (base, True)
        return found

    def declare(self, blocked: bool) -> list[str]:
        """The lines declaring the accumulators (``blocked``: the kernel has a loop over
        blocks of rows, which the one-row loop follows)."""
        if self.resuming:
            return self._declare_resumed()
        lines = ["    /* sums over the rows, in row order, from +0.0 (as .grad adds the gradients of the rows) */"]
        if self.first:
            rows = " && n < GC_B" if blocked else ""
            lines.append(f"    const int fresh = n > 0{rows};  /* the row loop takes every row: row 0 writes the large sums */")
        for m in self.w.tensors:
            size, acc = ops.size_of(self.w.shapes[m]), self.accumulators[m]
            if m in self.in_place:
                lines.append(f"    double *{acc} = sums + {self.in_place[m][0]};")
            else:
                lines.append(f"    double {acc}[{size}];")
            zero = f"for (int lane = 0; lane < {size}; lane++) {acc}[lane] = 0.0;"
            lines.append(f"    if (!fresh) {zero}" if m in self.first else f"    {zero}")
        return lines + [f"    double {acc} = 0.0;" for o, acc in self.accumulators.items() if o not in self.w.tensors]

    def _declare_resumed(self) -> list[str]:
        """The accumulators of a resuming kernel, each from its slot of ``sums``."""
        lines = ["    /* sums over the rows, in row order, from the numbers in sums (the kernel resumes them) */"]
        for m in self.w.tensors:
            size, acc = ops.size_of(self.w.shapes[m]), self.accumulators[m]
            if m in self.in_place:
                lines.append(f"    double *{acc} = sums + {self.in_place[m][0]};")
                continue
            pairs = sorted(self.scattered.get(m, []), key=lambda pair: pair[1])
            lines.append(f"    double {acc}[{size}];")
            if len({lane for _, lane in pairs}) < size:  # lanes no slot starts are summed from +0.0
                lines.append(f"    for (int lane = 0; lane < {size}; lane++) {acc}[lane] = 0.0;")
            lines += self._move(m, pairs, into_sums=False)
        at = {o: self.sum_at[s] for s, o in enumerate(self.summed)}
        return lines + [f"    double {acc} = sums[{at[o]}];" for o, acc in self.accumulators.items() if o not in self.w.tensors]

    def accumulate(self) -> list[str]:
        """In the row loop: each accumulator adds this row's value (a large one is written by
        the first row of a ``fresh`` call, as ``0.0 + value``, or stepped: see the module)."""
        g, names, shapes = self.g, self.w.names, self.w.shapes
        lines = []
        for key, acc in self.accumulators.items():
            if self.w.tensors.get(key) == "outer":
                a, b = g.args[key]
                if self.in_place.get(key, (0, False))[1]:  # into a transposed block: y[k, j] += b[k] * a[j]
                    a, b = b, a
                operands = f"{names[a]}, {names[b]}, {shapes[a][0]}, {shapes[b][0]}"
                add, first = f"gc_outer_add({acc}, {operands});", f"gc_outer_first({acc}, {operands});"
                at = self.in_place.get(key, (0,))[0]
                step = f"gc_outer_step(next_params + {at}, params + {at}, {operands}, lr, step);"
            elif key in self.w.tensors:
                lanes, value = f"for (int lane = 0; lane < {ops.size_of(shapes[key])}; lane++) ", f"{names[key]}[lane]"
                if self.w.tensors[key] == "biased outer":  # the lane's bias plus its product, neither stored
                    value = self.w.biased_lane(key)
                add, first = f"{lanes}{acc}[lane] = {acc}[lane] + {value};", f"{lanes}{acc}[lane] = 0.0 + {value};"
                at = f"{self.in_place.get(key, (0,))[0]} + lane]"
                step = f"{lanes}next_params[{at} = gc_sgd(params[{at}, 0.0 + {value}, lr, step);"
            else:
                add = f"{acc} = {acc} + {names[key]};"
            if key in self.stepped:
                first = f"{{ if (step) {step} else {first} }}"
            lines.append(f"        if (fresh && r == 0) {first} else {add}" if key in self.first else f"        {add}")
        return lines

    def write(self) -> list[str]:
        """After the row loop: each summed output into its slot of ``sums`` (its param's
        kernel position), but for the tensors summed in place; then a step's other params."""
        names, w = self.w.names, self.w
        lines = []
        for s in self.own:
            o, at = self.summed[s], self.sum_at[s]
            if not w.batched[o]:  # the same value in every row, added n times (n * value rounds otherwise)
                start = f"sums[{at}]" if self.resuming else "0.0"
                lines.append(f"    {{ double acc = {start}; for (long r = 0; r < n; r++) acc = acc + {names[o]}; "
                             f"sums[{at}] = acc; }}")
            else:
                lines.append(f"    sums[{at}] = {w.derived(o, 'sum')};")
        for m, pairs in self.scattered.items():
            lines += self._move(m, sorted(pairs, key=lambda pair: pair[1]), into_sums=True)
        return lines + self._step_the_rest()

    def _move(self, m: int, pairs: list[tuple[int, int]], into_sums: bool) -> list[str]:
        """Summed tensor ``m``'s lanes into ``sums`` (or, ``into_sums`` False, from it):
        ``pairs`` of (slot, lane)."""
        if not pairs:
            return []
        (slot, lane), count = pairs[0], len(pairs)
        total = self.w.derived(m, "sum")
        if pairs == [(slot + j, lane + j) for j in range(count)]:  # a run of lanes to a run of slots
            ends = (f"sums + {slot}", f"{total} + {lane}")
            target, source = ends if into_sums else ends[::-1]
            return [f"    memcpy({target}, {source}, {count} * sizeof(double));"]
        slots, lanes = self.w.derived(m, "slot"), self.w.derived(m, "lane")
        in_order = [q for _, q in pairs] == list(range(count))  # lanes 0, 1, ...: no table of them
        lane_k = "k" if in_order else f"{lanes}[k]"
        ends = (f"sums[{slots}[k]]", f"{total}[{lane_k}]")
        target, source = ends if into_sums else ends[::-1]
        tables = [f"    static const int {slots}[{count}] = {table(p for p, _ in pairs)};"]
        if not in_order:
            tables.append(f"    static const int {lanes}[{count}] = {table(q for _, q in pairs)};")
        declared_at_start = into_sums and self.resuming  # a resuming kernel read them into the accumulator
        return (tables if not declared_at_start else []) + [f"    for (int k = 0; k < {count}; k++) {target} = {source};"]

    def _step_the_rest(self) -> list[str]:
        """A step's params not stepped in the row: each from its gradient in ``sums``, in runs
        of kernel positions between the stepped blocks."""
        if not self.stepping:
            return []
        stepped = sorted((self.in_place[m][0], self.in_place[m][0] + ops.size_of(self.w.shapes[m]))
                         for m in self.stepped)
        runs, start = [], 0
        for begin, end in stepped + [(len(self.g.params), len(self.g.params))]:
            if begin > start:
                runs.append((start, begin))
            start = end
        lines = ["    if (step) {  /* the step of train on the params the row did not step (c_sums.py) */"]
        lines += [f"        for (long k = {a}; k < {b}; k++) next_params[k] = gc_sgd(params[k], sums[k], lr, step);"
                  for a, b in runs]
        return lines + ["    }"]


def table(values) -> str:
    """A C initializer list of ints, wrapped every 20 entries."""
    items = [str(v) for v in values]
    rows = [", ".join(items[k:k + 20]) for k in range(0, len(items), 20)]
    return "{" + ",\n        ".join(rows) + "}"
