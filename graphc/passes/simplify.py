"""Algebraic simplification: rewrite rules kept as data.

Every rule is an identity that holds bit for bit for *every* IEEE 754 input (inf, nan
and signed zeros included) -- or, for ``x + 0 -> x``, is applied only where a small
sign analysis proves the difference cannot occur (``-0.0 + 0.0`` is ``+0.0``, so the
rule is wrong exactly when ``x`` can be ``-0.0``).  ``compile`` differentiates before
simplifying (a rewrite moves gradient parts in reverse mode's order: see
:data:`graphc.passes.DIFFERENTIABLE_PIPELINE`), but :func:`graphc.autodiff.grad` may be
handed an optimized graph, so each rule must also keep the chain rule's *derivative*
values, at singular points too: that rules out ``max(x, x) -> x`` (with an infinite
upstream gradient eager computes ``inf + 0*inf = nan``) and ``x ** Value(0) -> 1``
(eager's ``0 * x**-1`` is nan at x = 0).  Identities that look harmless but are not, and
are therefore absent: ``x * 0 -> 0`` (inf * 0 is nan), ``x - x -> 0`` (inf - inf is nan),
``x ** 2 -> x * x`` (glibc's pow differs from x*x in the last bit on ~0.1% of inputs),
reassociation of sums or products (changes rounding).

A pattern is ``P(op, *operands, attr=...)`` over variables (``X``, ``Y``), exact
constants (``C(1.0)``), any-constant captures (``K``) and, last, the rest of a sum's
operands (``Rest``); a replacement is a variable, a pattern to build, or a function of
the bindings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import ops
from ..graph import Builder, Graph, const_key, first_repeated_const
from ..graph_arrays import CODES, CONST
from .base import PassResult, PassStats, rebuild


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class C:
    """Matches a constant equal to ``value`` bit for bit (so C(0.0) does not match -0.0)."""
    value: float


@dataclass(frozen=True)
class K:
    """Matches any constant, binding its value."""
    name: str


@dataclass(frozen=True)
class Rest:
    """Last in a pattern's operands: matches the operands left (none or more), binding them
    as a tuple -- an n-ary ``sum`` of any length."""
    name: str


class P:
    """An op pattern: ``P("mul", X, C(1.0))``; ``attr`` restricts the op's parameters."""

    def __init__(self, op: str, *operands: Any, attr: tuple | None = None) -> None:
        self.op, self.operands, self.attr = op, operands, attr


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: P
    replacement: Any  # Var | P | float | Callable[[dict, Builder], int]
    when: Callable[[dict, "Analysis"], bool] | None = None


X, Y, REST = Var("x"), Var("y"), Rest("rest")


def _never_negative_zero(bindings: dict, analysis: "Analysis") -> bool:
    return not analysis.may_be_negative_zero(bindings["x"])


def _nonzero_exponent(bindings: dict, analysis: "Analysis") -> bool:
    return bindings["c"] != 0


def _pow_with_exponent(bindings: dict, b: Builder) -> int:
    return b.add("pow", (bindings["x"],), (bindings["c"],))


def _sum_of_x_and_rest(bindings: dict, b: Builder) -> int:
    operands = (bindings["x"], *bindings["rest"])
    return b.add(ops.sum_op(len(operands)), operands) if len(operands) > 1 else operands[0]


RULES: list[Rule] = [
    Rule("x*1", P("mul", X, C(1.0)), X),                          # x * 1 -> x
    Rule("1*x", P("mul", C(1.0), X), X),                          # 1 * x -> x
    Rule("x*-1", P("mul", X, C(-1.0)), P("neg", X)),              # x * -1 -> -x
    Rule("-1*x", P("mul", C(-1.0), X), P("neg", X)),              # -1 * x -> -x
    Rule("(-x)*(-y)", P("mul", P("neg", X), P("neg", Y)), P("mul", X, Y)),  # (-x) * (-y) -> x * y
    Rule("x+(-0)", P("add", X, C(-0.0)), X),                      # x + (-0.0) -> x
    Rule("(-0)+x", P("add", C(-0.0), X), X),                      # (-0.0) + x -> x
    Rule("x+0", P("add", X, C(0.0)), X, when=_never_negative_zero),  # x + 0 -> x, x never -0.0
    Rule("0+x", P("add", C(0.0), X), X, when=_never_negative_zero),  # 0 + x -> x, x never -0.0
    # the same at the head of a sum flatten made (Python's ``sum()`` over Values: ``x + 0``)
    Rule("sum(x,-0,...)", P("sum", X, C(-0.0), REST), _sum_of_x_and_rest),
    Rule("sum(-0,x,...)", P("sum", C(-0.0), X, REST), _sum_of_x_and_rest),
    Rule("sum(x,0,...)", P("sum", X, C(0.0), REST), _sum_of_x_and_rest, when=_never_negative_zero),
    Rule("sum(0,x,...)", P("sum", C(0.0), X, REST), _sum_of_x_and_rest, when=_never_negative_zero),
    Rule("x-0", P("sub", X, C(0.0)), X),                          # x - 0 -> x
    Rule("(-0)-x", P("sub", C(-0.0), X), P("neg", X)),            # (-0.0) - x -> -x
    Rule("x+(-y)", P("add", X, P("neg", Y)), P("sub", X, Y)),     # x + (-y) -> x - y
    Rule("(-x)+y", P("add", P("neg", X), Y), P("sub", Y, X)),     # (-x) + y -> y - x
    Rule("x-(-y)", P("sub", X, P("neg", Y)), P("add", X, Y)),     # x - (-y) -> x + y
    Rule("-(-x)", P("neg", P("neg", X)), X),                      # -(-x) -> x
    Rule("x**1", P("pow", X, attr=(1,)), X),                      # x ** 1 -> x
    Rule("x**0", P("pow", X, attr=(0,)), 1.0),                    # x ** 0 -> 1 (C99: even for nan)
    Rule("x**c", P("vpow", X, K("c")), _pow_with_exponent,        # x ** Value(c) -> x ** c, c != 0
         when=_nonzero_exponent),
    Rule("relu(relu(x))", P("relu", P("relu", X)), P("relu", X)),  # relu(relu(x)) -> relu(x)
    Rule("step(relu(x))", P("step", P("relu", X)), P("step", X)),  # step(relu(x)) -> step(x)
]


class Analysis:
    """Facts about the nodes of a graph (or one under construction), computed on demand:
    for a node, from the nodes below it that decide it (a walk down its operands that stops
    where a fact needs none: most nodes of a big graph are never looked at)."""

    def __init__(self, b: Builder | Graph, known: dict[int, bool] | None = None) -> None:
        """``known``: facts of the first nodes, if another Analysis has them."""
        self.b = b
        self._negative_zero: dict[int, bool] = dict(known or {})

    def known(self, stop: int) -> dict[int, bool]:
        """The facts computed so far of the nodes below ``stop``."""
        return {i: fact for i, fact in self._negative_zero.items() if i < stop}

    def may_be_negative_zero(self, i: int) -> bool:
        """Whether node ``i`` can be -0.0 (by each op's ``negative_zero`` rule: "all" and
        "any" ones decided by their operands, as soon as one settles it)."""
        known = self._negative_zero
        b = self.b
        node_ops, node_args, node_attrs = b.ops, b.args, b.attrs
        stack, progress = [i], {}
        while stack:
            j = stack[-1]
            if j in known:
                stack.pop()
                continue
            op = node_ops[j]
            rule = "const" if op == "const" else "maybe" if op in ("input", "param") else _NEGATIVE_ZERO[op]
            if rule == "const":
                v = node_attrs[j][0]
                known[j] = v == 0.0 and const_key(v) == const_key(-0.0)
            elif rule == "all" or rule == "any":
                fact = self._settled(j, rule, node_args[j], progress)
                if fact is None:  # the next operand still to decide comes first
                    stack.append(node_args[j][progress[j]])
                    continue
                known[j] = fact
            else:
                known[j] = rule == "maybe"
            stack.pop()
        return known[i]

    def _settled(self, j: int, rule: str, operands: tuple, progress: dict[int, int]) -> bool | None:
        """The fact of "all"/"any" node ``j`` if its operands known so far settle it, else None."""
        known, k = self._negative_zero, progress.get(j, 0)
        while k < len(operands) and operands[k] in known:
            if known[operands[k]] != (rule == "all"):  # one False settles "all", one True "any"
                return rule == "any"
            k += 1
        progress[j] = k
        return rule == "all" if k == len(operands) else None


#: Each op's ``negative_zero`` rule (see :mod:`graphc.ops`), looked up once per node.
_NEGATIVE_ZERO = {name: op.negative_zero for name, op in ops.TABLE.items()}


def simplify(graph: Graph) -> PassResult:
    """Apply the first matching rule to each node (the driver repeats to a fixed point)."""
    return rewrite(graph, RULES, "simplify")


def rewrite(graph: Graph, rules: list[Rule], name: str, kept: list[bool] | None = None) -> PassResult:
    """One pass of ``rules`` (the first match wins at each node), reported as pass ``name``;
    the nodes ``kept`` marks stay as they are."""
    by_op, triggers = _index(rules)
    facts = Analysis(graph)
    ops_, args_, attrs_ = graph.ops, graph.args, graph.attrs
    near = _near_matches(graph, by_op)
    if kept is not None:
        near = [i for i in near if not kept[i]]
    first = next((i for i in near if _first_match(by_op, graph, i, args_[i], facts)), None)
    if first is None:
        return PassResult(graph, PassStats(name, len(graph), len(graph)))
    hits = dict.fromkeys((r.name for r in rules), 0)
    analysis: list[Analysis] = []  # of the builder, created on the first visit
    shared = first_repeated_const(graph, first)  # no rule matches before the first match

    def visit(b: Builder, i: int, remap: list[int]) -> int:
        operands = tuple([remap[a] for a in args_[i]])
        op = ops_[i]
        trigger = triggers[op]  # an op with rules: rebuild copies the others
        if trigger is not None:
            node_ops = b.ops
            for a in operands:
                if node_ops[a] in trigger:
                    break
            else:
                return b.add(op, operands, attrs_[i])
        if not analysis:  # the nodes below `shared` are the graph's: so are their facts
            analysis.append(Analysis(b, facts.known(shared)))
        found = _first_match(by_op, b, i, operands, analysis[0], graph)
        if found is None:
            return b.add(op, operands, attrs_[i])
        rule, bindings = found
        hits[rule.name] += 1
        return _build(rule.replacement, bindings, b)

    # no rule matches a node that is not near a match, nor before the first match, unless a
    # rewrite changed its operands; ops without rules are copied
    result = rebuild(graph, visit, start=shared, copied=frozenset(ops.TABLE).difference(by_op), visit_only=set(near))
    return PassResult(result, PassStats(name, len(graph), len(result),
                                        {k: v for k, v in hits.items() if v}))


def _index(rules: list[Rule]) -> tuple[dict[str, list[Rule]], dict[str, frozenset | None]]:
    """Rules by root op, and per root op the operand ops that can trigger one of them
    (None: any node of that op may match, e.g. ``max(x, x)``), for a cheap pre-check."""
    by_op: dict[str, list[Rule]] = {}
    triggers: dict[str, set | None] = {}
    for rule in rules:
        op = rule.pattern.op
        by_op.setdefault(op, []).append(rule)
        needs = [("const" if isinstance(p, (C, K)) else p.op) for p in rule.pattern.operands
                 if not isinstance(p, (Var, Rest))]
        if not needs:
            triggers[op] = None
        elif triggers.get(op, set()) is not None:
            triggers[op] = triggers.get(op, set()) | set(needs)
    return by_op, {op: (None if t is None else frozenset(t)) for op, t in triggers.items()}


def _near_matches(graph: Graph, by_op: dict[str, list[Rule]]) -> list[int]:
    """The nodes where some rule matches one level deep (the node's op and number of
    operands, each operand's op, each exact constant), in id order: every node a rule
    matches is one, and few others are.  The cheap pre-check, in arrays."""
    arrays = graph.arrays
    found = []
    for op, rules in by_op.items():
        nodes = np.flatnonzero(arrays.codes == CODES[op]) if op in CODES else ()
        for rule in rules if len(nodes) else ():
            patterns = rule.pattern.operands
            lengths = arrays.lengths[nodes]
            near = nodes[lengths >= len(patterns) - 1 if _has_rest(rule.pattern) else lengths == len(patterns)]
            for k, pattern in enumerate(patterns):
                if isinstance(pattern, (Var, Rest)) or not len(near):
                    continue
                operand = arrays.operand(near, k)
                if isinstance(pattern, P):
                    near = near[arrays.codes[operand] == CODES.get(pattern.op, -1)]
                    continue
                is_const = arrays.codes[operand] == CONST
                if isinstance(pattern, C):
                    equal = [j for j in np.unique(operand[is_const]).tolist()
                             if const_key(graph.attrs[j][0]) == const_key(pattern.value)]
                    is_const &= np.isin(operand, equal)
                near = near[is_const]
            found.append(near)
    return np.unique(np.concatenate(found)).tolist() if found else []


def _first_match(by_op: dict, nodes: Any, i: int, operands: tuple, analysis: Analysis,
                 source: Graph | None = None) -> tuple[Rule, dict] | None:
    """The first rule matching node ``i`` of ``source`` (default ``nodes``) with these operands.

    ``nodes`` (a Graph or a Builder) holds the operands; ``source`` holds node ``i`` itself.
    """
    source = source if source is not None else nodes
    op = source.ops[i]
    for rule in by_op.get(op, ()):
        bindings: dict = {}
        if not _match_operands(rule.pattern, operands, source.attrs[i], nodes, bindings):
            continue
        if rule.when is None or rule.when(bindings, analysis):
            return rule, bindings
    return None


def _has_rest(pattern: P) -> bool:
    return bool(pattern.operands) and isinstance(pattern.operands[-1], Rest)


def _match_operands(pattern: P, operands: tuple, attr: tuple, nodes: Any, bindings: dict) -> bool:
    if pattern.attr is not None and tuple(attr) != pattern.attr:
        return False
    patterns = pattern.operands
    if _has_rest(pattern):
        if len(operands) < len(patterns) - 1:
            return False
        patterns = patterns[:-1]
        bindings[pattern.operands[-1].name] = tuple(operands[len(patterns):])
        operands = operands[:len(patterns)]
    elif len(patterns) != len(operands):
        return False
    return all(_match(sub, node, nodes, bindings) for sub, node in zip(patterns, operands))


def _match(pattern: Any, node: int, nodes: Any, bindings: dict) -> bool:
    if isinstance(pattern, Var):
        if pattern.name in bindings:
            return bindings[pattern.name] == node
        bindings[pattern.name] = node
        return True
    if isinstance(pattern, C):
        return nodes.ops[node] == "const" and const_key(nodes.attrs[node][0]) == const_key(pattern.value)
    if isinstance(pattern, K):
        if nodes.ops[node] != "const":
            return False
        bindings[pattern.name] = nodes.attrs[node][0]
        return True
    return nodes.ops[node] == pattern.op and \
        _match_operands(pattern, nodes.args[node], nodes.attrs[node], nodes, bindings)


def _build(replacement: Any, bindings: dict, b: Builder) -> int:
    if isinstance(replacement, Var):
        return bindings[replacement.name]
    if isinstance(replacement, float):
        return b.const(replacement)
    if isinstance(replacement, P):
        operands = tuple(_build(sub, bindings, b) for sub in replacement.operands)
        return b.add(replacement.op, operands, replacement.attr or ())
    return replacement(bindings, b)
