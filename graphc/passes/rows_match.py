"""Finding rows fast: sum chains and row-by-row matching, with NumPy over the whole graph.

Helpers of :mod:`graphc.passes.rows`.  A million-node graph must be searched in well under
a second, so the per-node work is done by NumPy: the graph's operands as one flat array
(:class:`Arrays`), chain lengths by pointer jumping (:func:`chains`), and the match of every
row against the template one template node at a time, all rows at once
(:meth:`Template.match`).  Python loops run over chains tried and template nodes only.
"""
from __future__ import annotations

import numpy as np

from ..graph import Graph
from ..graph_arrays import CODES

_SUMS = ("add", "sum")


class Arrays:
    """A graph's ops (as small ints), operands (one flat array, with offsets and arities)
    and use counts, as NumPy arrays."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        arrays = graph.arrays  # the graph's own (graphc.graph_arrays), shared with the passes after
        self.code: dict[str, int] = CODES
        self.op, self.arity, self.flat, self.offset = arrays.codes, arrays.lengths, arrays.indices, arrays.indptr
        self.uses = arrays.uses

    def is_op(self, names: tuple[str, ...]) -> np.ndarray:
        codes = [self.code[name] for name in names if name in self.code]
        return np.isin(self.op, codes)

    def operand(self, nodes: np.ndarray, j: int) -> np.ndarray:
        """Operand ``j`` of each node (an arbitrary valid id where a node has fewer operands)."""
        return self.flat[np.minimum(self.offset[nodes] + j, len(self.flat) - 1)]


def chains(arrays: Arrays, min_terms: int) -> list[tuple[int, int]]:
    """The last links of the left-nested addition chains ``((a + b) + c) + ...`` that add at
    least ``min_terms`` terms, with their numbers of terms, longest first.  A link's first
    operand continues the chain when it is an addition used only there (as
    :mod:`~graphc.passes.flatten` absorbs) -- unless the link adds a constant to it:
    Python's ``sum`` starts ``l0 + 0``, so that is a chain's first link, even where its
    first term ``l0`` is a sum itself (a row's loss summed over a model's outputs, which
    continuing down would split)."""
    n = len(arrays.op)
    is_sum = arrays.is_op(_SUMS)
    sums = np.flatnonzero(is_sum)
    if not len(sums) or not len(arrays.flat):
        return []
    first = arrays.flat[arrays.offset[sums]]
    inner = is_sum[first] & (arrays.uses[first] == 1) & ~_adds_a_constant(arrays, sums)
    nxt = np.full(n + 1, n, dtype=np.intp)      # the previous link, n where the chain starts
    nxt[sums[inner]] = first[inner]
    count = np.zeros(n + 1, dtype=np.intp)
    count[sums] = arrays.arity[sums] - 1 + ~inner  # the first link counts its first operand
    absorbed = np.zeros(n + 1, dtype=bool)
    absorbed[first[inner]] = True
    while (nxt[sums] != n).any():                 # pointer jumping: log2(longest chain) rounds
        count[sums] += count[nxt[sums]]
        nxt[sums] = nxt[nxt[sums]]
    tops = sums[~absorbed[sums] & (count[sums] >= min_terms)]
    tops = tops[np.argsort(-count[tops], kind="stable")]
    return list(zip(tops.tolist(), count[tops].tolist()))


def _adds_a_constant(arrays: Arrays, sums: np.ndarray) -> np.ndarray:
    """For each of the ``sums``, whether it adds a constant to its first operand (``x + c``)."""
    return (arrays.arity[sums] == 2) & (arrays.op[arrays.operand(sums, 1)] == arrays.code["const"])


def links_and_terms(graph: Graph, arrays: Arrays, top: int) -> tuple[list[int], list[int]]:
    """The chain ending at ``top``: its links first to last, and its terms in order."""
    links = [top]
    while True:
        operands = graph.args[links[-1]]
        first = operands[0]
        if graph.ops[first] in _SUMS and arrays.uses[first] == 1 and \
                not (len(operands) == 2 and graph.ops[operands[1]] == "const"):  # as chains() decides
            links.append(first)
        else:
            break
    links.reverse()
    return links, [graph.args[links[0]][0]] + [a for j in links for a in graph.args[j][1:]]


def alike(graph: Graph, a: int, b: int) -> bool:
    """Whether the cones of ``a`` and ``b`` match node for node as rows must: a quick test of
    two rows before the whole template is built (it fails at once where the params differ).
    Use counts are :meth:`Template.match`'s to check: one row's score may be read outside."""
    ops, args, attrs = graph.ops, graph.args, graph.attrs
    image, stack = {a: b}, [a]
    while stack:
        x = stack.pop()
        y = image[x]
        if ops[x] != ops[y] or attrs[x] != attrs[y] or len(args[x]) != len(args[y]):
            return False
        for p, q in zip(args[x], args[y]):
            if not args[p]:
                if ops[p] != ops[q] or ops[p] == "param" and p != q:
                    return False
                continue
            seen = image.get(p)
            if seen is None:
                image[p] = q
                stack.append(p)
            elif seen != q:
                return False
    return True


class Template:
    """The first row's non-leaf nodes in id order -- the union of the cones of its ``roots``,
    one per sum chain -- with each operand encoded as a template position (``>= 0``) or a
    leaf *slot* (``-1 - s``): one slot per leaf operand.  ``root_positions``: each root's
    position."""

    def __init__(self, arrays: Arrays, roots: list[int]) -> None:
        graph = self.graph = arrays.graph
        self.arrays = arrays
        ops, args = graph.ops, graph.args
        cone, stack = set(roots), list(roots)
        while stack:
            for a in args[stack.pop()]:
                if a not in cone and args[a]:
                    cone.add(a)
                    stack.append(a)
        self.nodes = sorted(cone)
        position = {node: k for k, node in enumerate(self.nodes)}
        self.root_positions = [position[r] for r in roots]
        self.slot_kind: list[str] = []
        self.slot_leaf: list[int] = []
        self.enc: list[tuple[int, ...]] = []
        self.tuses = [0] * len(self.nodes)
        for k in self.root_positions:
            self.tuses[k] += 1  # a root: used by its chain
        for node in self.nodes:
            codes = []
            for a in args[node]:
                if a in position:
                    codes.append(position[a])
                    self.tuses[position[a]] += 1
                else:
                    codes.append(-1 - len(self.slot_kind))
                    self.slot_kind.append(ops[a])
                    self.slot_leaf.append(a)
            self.enc.append(tuple(codes))
        self.ok = len(set(roots)) == len(roots)
        self.ops = [ops[node] for node in self.nodes]
        self.attrs = [graph.attrs[node] for node in self.nodes]

    def match(self, roots: list[list[int]]) -> tuple[np.ndarray, list[int], np.ndarray]:
        """For the longest run of rows from the first that match the template: each slot's
        node in each row, an (n_matched, n_slots) array of node ids; the *value positions*,
        the template nodes some row's copy of is also used outside the row (a score
        returned, ``scores[-1]`` or all of them, or compared in a guard), whose every row's
        value the rest of the graph may read; and their nodes, an (n_values, n_matched)
        array.  ``roots[j]``: the rows of chain ``j`` (all of one length), whose first row is
        the template's root ``j``.

        Each row's nodes must be its own: used at least as often as the template's are in
        their row and, where some are used more, no node in two rows (a node every row
        reads, or a row reading the one before, is no row)."""
        arrays, attrs = self.arrays, self.graph.attrs
        n_rows = len(roots[0])
        k_nodes = len(self.nodes)
        image = np.full((k_nodes, n_rows), -1, dtype=np.intp)
        filled = [False] * k_nodes
        for k, chain in zip(self.root_positions, roots):
            image[k], filled[k] = np.asarray(chain, dtype=np.intp), True
        ok = np.ones(n_rows, dtype=bool)
        leaves = np.empty((n_rows, len(self.slot_kind)), dtype=np.intp)
        code = arrays.code
        for k in range(k_nodes - 1, -1, -1):
            nodes = image[k]
            codes = self.enc[k]
            ok &= (arrays.op[nodes] == code[self.ops[k]]) & (arrays.arity[nodes] == len(codes)) \
                & (arrays.uses[nodes] >= self.tuses[k])
            if self.attrs[k]:
                ok &= np.array([attrs[x] == self.attrs[k] for x in nodes.tolist()])
            for j, c in enumerate(codes):
                operand = arrays.operand(nodes, j)
                if c >= 0:
                    if filled[c]:
                        ok &= image[c] == operand
                    else:
                        image[c], filled[c] = operand, True
                    continue
                s = -1 - c
                ok &= arrays.op[operand] == code[self.slot_kind[s]]
                if self.slot_kind[s] == "param":
                    ok &= operand == self.slot_leaf[s]
                leaves[:, s] = operand
        matched = n_rows if ok.all() else int(np.argmin(ok))
        image = image[:, :matched]
        outside = arrays.uses[image] > np.array(self.tuses, dtype=np.intp)[:, None]
        positions = np.flatnonzero(outside.any(axis=1)).tolist()
        if positions and np.bincount(image.ravel(), minlength=len(arrays.op)).max() > 1:
            return leaves[:0], [], image[:0, :0]
        return leaves[:matched], positions, image[positions]
