"""Moving params into the kernel layout and gradients out of it, a block at a time.

A kernel that reads its params in a layout of its own (:mod:`.c_layout`) gets them through
a permutation on every ``mean_and_grad`` call, and gives its gradients back through the
inverse.  For a layer's params the permutation is a few strided blocks (its weights, stored
transposed or not, and its biases, which ``compiled.params`` interleaves with the weights),
so :class:`Moves` copies those as 2-D strided views: at MLP(784, [50, 10]) 16 us each way,
where ``np.take`` through the index table takes 34.  A permutation without that shape, or
one too small for a handful of NumPy calls to pay, goes through the table as before.
"""
from __future__ import annotations

import numpy as np

#: The fewest positions per block copy for which copying by blocks beats ``np.take``
#: (a block costs about a microsecond of NumPy's own work; ``take`` about 1 ns a number).
MIN_PER_BLOCK = 1024


class Moves:
    """``perm`` (kernel position -> public slot) as block copies where it has their shape;
    ``blocks``: (kernel start, rows, columns, public start, row step, column step), or None
    to use the index table."""

    def __init__(self, perm: np.ndarray) -> None:
        self.perm = perm
        blocks = _blocks(perm)
        self.blocks = blocks if blocks and len(perm) >= MIN_PER_BLOCK * len(blocks) else None
        if self.blocks is not None:  # checked once: the blocks must give exactly perm
            check = np.empty(len(perm), dtype=perm.dtype)
            self.gather(np.arange(len(perm), dtype=perm.dtype), check)
            if not np.array_equal(check, perm):
                self.blocks = None

    def gather(self, public: np.ndarray, out: np.ndarray) -> None:
        """``out[k] = public[perm[k]]`` (``out`` C-contiguous; ``public`` any 1-D float64 view)."""
        if self.blocks is None or not public.flags.c_contiguous:
            public.take(self.perm, None, out, "clip")
            return
        for k, rows, cols, first, row_step, col_step in self.blocks:
            out[k:k + rows * cols].reshape(rows, cols)[...] = _view(public, rows, cols, first, row_step, col_step)

    def scatter(self, kernel: np.ndarray, public: np.ndarray) -> None:
        """``public[perm[k]] = kernel[k]`` (``kernel`` C-contiguous; ``public`` any writable 1-D float64 view)."""
        if self.blocks is None or not public.flags.c_contiguous:
            public[self.perm] = kernel
            return
        for k, rows, cols, first, row_step, col_step in self.blocks:
            target = _view(public, rows, cols, first, row_step, col_step)
            target[...] = kernel[k:k + rows * cols].reshape(rows, cols)


def _view(array: np.ndarray, rows: int, cols: int, first: int, row_step: int, col_step: int) -> np.ndarray:
    """The C-contiguous ``array`` at ``first + r * row_step + c * col_step``, as a (rows, cols)
    view; NumPy checks that it stays within the array (an eighth of ``as_strided``'s time)."""
    size = array.itemsize
    return np.ndarray((rows, cols), array.dtype, array, first * size, (row_step * size, col_step * size))


def _blocks(perm: np.ndarray) -> list[tuple[int, int, int, int, int, int]] | None:
    """``perm`` cut into 2-D blocks: runs of public slots equally spaced (a row), consecutive
    rows of one length and spacing starting equally spaced (a block), all steps positive;
    None if some step is not."""
    n = len(perm)
    if n < 2:
        return None
    steps = np.diff(perm)
    changes = np.flatnonzero(steps[1:] != steps[:-1])
    ends = np.append(changes, n - 2)  # the last step of each run of equal steps
    run_end = np.repeat(ends, np.diff(np.append(-1, ends)))  # run_end[j]: the end of step j's run
    rows: list[tuple[int, int, int, int]] = []  # (kernel start, length, public start, step)
    k = 0
    while k < n:
        if k == n - 1:
            rows.append((k, 1, int(perm[k]), 1))
            break
        step = int(steps[k])
        if step <= 0:
            return None
        end = int(run_end[k]) + 1  # the row's last position
        rows.append((k, end - k + 1, int(perm[k]), step))
        k = end + 1
    blocks = []
    for k, length, first, step in rows:
        if blocks:
            k0, count, cols, first0, row_step, col_step = blocks[-1]
            gap = first - first0
            if cols == length and col_step == step and gap > 0 and (count == 1 or gap == row_step * count):
                blocks[-1] = (k0, count + 1, cols, first0, row_step if count > 1 else gap, col_step)
                continue
        blocks.append((k, 1, length, first, 1, step))
    return blocks
