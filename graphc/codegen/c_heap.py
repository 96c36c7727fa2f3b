"""Where a generated C function's arrays live: the largest on the heap, and, in a function of
very many, the rest slices of one array on the stack.

A block of rows holds a value's lanes for GC_B rows side by side, so a layer of 10^5 lanes
declares arrays of megabytes: beyond Python's 8 MB stack, the interpreter died of SIGSEGV (an
outside hunt).  :func:`on_the_heap` rewrites the declarations of one function's largest
arrays into pointers into one block from ``malloc``, taken at its entry and freed at its end.

A network of a thousand layers declares thousands of small arrays, and gcc's time grows with
their square even at -O0 (laying out the stack frame: 9.7 s for the 6,000 arrays of
``MLP(2, [4] * 1000 + [1])``'s gradient, 3.3 s with one): :func:`pooled` makes a function's
arrays, past :data:`MAX_ARRAYS`, slices of one.
"""
from __future__ import annotations

import re

#: The bytes of arrays a generated function keeps on the stack, at most: larger ones, largest
#: first, live in one block from the heap (an outside hunt: a dot of 80,000 lanes declared
#: more than the 8 MB of Python's stack, and the interpreter died of SIGSEGV).  The programs
#: of the benchmarks (MLP(784, [100, 10]): 198 KB) keep every array on the stack.
STACK_BYTES = 1 << 20
#: The most rows a block takes (GC_B: 16 with AVX-512), for the sizes of its arrays.
_MOST_ROWS = 16
_DECLARATION = re.compile(r"^(\s*)double (\w+)\[(\d+)( \* GC_B)?\];$")
#: malloc, free and abort declared, not included: <stdlib.h> would bring macros a user's label
#: could be spelled like (EXIT_SUCCESS, RAND_MAX, ...), where the writer's names are reserved.
HEAP_HELPER = """
void *malloc(size_t size);
void free(void *block);
void abort(void);

static double *gc_heap_block(size_t count)  /* arrays too large for the stack; no memory: abort, as Python would */
{
    double *block = malloc(count * sizeof(double));
    if (!block) abort();
    return block;
}
"""
#: The names the function's body gets for its blocks.
HEAP_NAMES = frozenset({"gc_heap", "free", "gc_arrays"})
#: The most arrays a generated function declares one by one; more are slices of one array.  The
#: programs of the benchmarks declare a few hundred at most, and keep them.
MAX_ARRAYS = 1000
_ANY_DECLARATION = re.compile(r"^(\s*)double (\w+)\[(?:(\d+)|(\d+) \* GC_B|GC_B)\];$")


def on_the_heap(body: list[str]) -> tuple[list[str], str]:
    """``body`` (one function, ``{`` to ``}``) with its largest arrays moved to the heap until
    the rest fit in :data:`STACK_BYTES`, and the helper that takes the heap block ("" if none)."""
    found = {k: m for k, m in enumerate(map(_DECLARATION.match, body)) if m}
    doubles = {k: int(m[3]) * (_MOST_ROWS if m[4] else 1) for k, m in found.items()}
    total = sum(doubles.values())
    moved = []
    for k in sorted(doubles, key=lambda k: -doubles[k]):
        if total * 8 <= STACK_BYTES:
            break
        moved.append(k)
        total -= doubles[k]
    if not moved:
        return body, ""
    plain = blocked = 0
    out = list(body)
    for k in sorted(moved):
        indent, name, size, rows = found[k].groups()
        at = f"{plain} + {blocked} * GC_B" if blocked else f"{plain}"
        out[k] = f"{indent}double *{name} = gc_heap + {at};  /* on the heap: too large for the stack */"
        plain, blocked = (plain, blocked + int(size)) if rows else (plain + int(size), blocked)
    size = f"{plain} + {blocked} * GC_B" if blocked else f"{plain}"
    return [out[0], f"    double *gc_heap = gc_heap_block({size});", *out[1:-1], "    free(gc_heap);", out[-1]], \
        HEAP_HELPER


def pooled(body: list[str]) -> list[str]:
    """``body`` (one function, ``{`` to ``}``) with its arrays declared as slices of one, where
    it declares more than :data:`MAX_ARRAYS` (an array inside a loop keeps its slice from one
    iteration to the next, where C gives it no value: each is written before it is read)."""
    found = {k: m for k, m in enumerate(map(_ANY_DECLARATION.match, body)) if m}
    if len(found) <= MAX_ARRAYS:
        return body
    plain = blocked = 0
    out = list(body)
    for k, m in found.items():
        indent, name, size, rows = m.groups()
        out[k] = f"{indent}double *const {name} = gc_arrays + {plain} + {blocked} * GC_B;"
        if size is not None:
            plain += int(size)
        else:
            blocked += int(rows) if rows is not None else 1
    return [out[0], f"    double gc_arrays[{plain} + {blocked} * GC_B];  /* {len(found):,} arrays: one for gcc */",
            *out[1:]]
