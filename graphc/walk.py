"""The one depth-first walk over a DAG, for eager Values and graph nodes alike.

micrograd orders a graph by a recursive depth-first post-order, children left to right;
``backward()`` runs it reversed, and graph autodiff follows the same order so that its
gradients are added up as eager ones are.  This is that order, computed with an explicit
stack, so graph depth is not limited by Python's recursion.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable, Sequence, TypeVar

Node = TypeVar("Node", bound=Hashable)


def depth_first(roots: Iterable[Node], operands: Callable[[Node], Sequence[Node]], *,
                leaves: bool = True) -> list[Node]:
    """Every node reachable from ``roots``, each after its operands: a depth-first
    post-order visiting ``operands(node)`` left to right, as micrograd's ``build_topo``.

    ``leaves=False`` leaves out the nodes without operands (the order of the others is
    unchanged): what ``backward()`` needs, since leaves receive gradients but pass none on.
    A node popped a second time is finished: its operands are done (in a DAG, no other copy
    of it can be above it on the stack).
    """
    order: list[Node] = []
    append = order.append
    entered: set = set()
    enter = entered.add
    finished: set = set()
    finish = finished.add
    for root in roots:
        if root in finished or not (leaves or operands(root)):
            continue
        stack = [root]
        push, pop = stack.append, stack.pop
        while stack:
            node = pop()
            if node in finished:
                continue
            if node in entered:
                finish(node)
                append(node)
                continue
            children = operands(node)
            if not children:
                finish(node)
                append(node)
                continue
            enter(node)
            push(node)
            if len(children) == 2 and leaves:  # the common case, unrolled (binary ops)
                first, second = children
                if second not in finished:
                    push(second)
                if first not in finished:
                    push(first)
                continue
            for child in children[::-1]:
                if child not in finished and (leaves or operands(child)):
                    push(child)
    return order


#: Pushed above a node whose operands are pushed: once popped, the node under it is finished.
_FINISH = object()


def depth_first_through(roots: Iterable[Any], own: type) -> tuple[dict[Any, None], list[Any]]:
    """:func:`depth_first` over Values, through the operands (``_prev``) of those of class
    ``own`` only (a trace's own Values: the walk stops at the Values made before it), and
    the stops met (the Values of other classes), in order.

    The order is a dict's keys (values None), so that a trace fills in each Value's node
    in place; no ``operands`` function is called and no set of entered nodes is kept, a
    third of the time of :func:`depth_first` on the trace of an MLP.
    """
    order: dict[Any, None] = {}
    stops: list[Any] = []
    stop = stops.append
    for root in roots:
        if root in order:
            continue
        stack = [root]
        push, pop = stack.append, stack.pop
        while stack:
            node = pop()
            if node is _FINISH:
                order[pop()] = None
                continue
            if node in order:
                continue
            if type(node) is not own:
                order[node] = None
                stop(node)
                continue
            children = node._prev
            if not children:
                order[node] = None
                continue
            push(node)
            push(_FINISH)
            if len(children) == 2:  # the common case, unrolled (binary ops)
                first, second = children
                if second not in order:
                    push(second)
                if first not in order:
                    push(first)
                continue
            for child in children[::-1]:
                if child not in order:
                    push(child)
    return order, stops


def depth_first_ids(roots: Iterable[int], args: Sequence[Sequence[int]]) -> list[int]:
    """:func:`depth_first` over graph node ids (``args[i]``: node ``i``'s operands), the same
    order, with the walk's state in arrays instead of sets."""
    order: list[int] = []
    append = order.append
    state = bytearray(len(args))  # 0 new, 1 entered, 2 finished
    for root in roots:
        if state[root] == 2:
            continue
        stack = [root]
        push, pop = stack.append, stack.pop
        while stack:
            node = pop()
            seen = state[node]
            if seen == 2:
                continue
            children = args[node]
            if seen == 1 or not children:
                state[node] = 2
                append(node)
                continue
            state[node] = 1
            push(node)
            for child in reversed(children):
                if state[child] != 2:
                    push(child)
    return order
