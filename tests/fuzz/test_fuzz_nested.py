"""graphc.grad inside a trace (JAX's jit(grad(f)), vmap(grad(f))) on random programs: the
gradient traced into the outer program must be eager's at every point the program is
called at, not the point it was traced at."""
from __future__ import annotations

from hypothesis import given, strategies as st

import graphc
from graphc import Value
from graphc.engine import topological_order
from fuzzing import abs_gradient, agree, examples, programs, reassociation_slack, replay, scalars


@examples(60)
@given(spec=programs(n_inputs=2, n_params=1, max_ops=10), data=st.data())
def test_a_compiled_grad_is_eagers_gradient_at_every_point(spec, data):
    # Regression: grad inside a trace froze its argument as a guarded constant, so the
    # compiled gradient was the traced point's (or 0 for grad(grad(f))) and each new point
    # retraced.  Optimizing the outer program may reassociate the gradient's sums (CSE):
    # within the budget the other fuzz tests allow it.
    param = Value(0.75)

    def f(x, y):
        return replay(spec, [x, y], [param])[0]
    compiled = graphc.compile(graphc.grad(f, argnums=(0, 1)))
    for _ in range(3):
        point = [data.draw(scalars(), label="x"), data.draw(scalars(), label="y")]
        got = [g.data for g in compiled(*point)]
        xs = [Value(v) for v in point]
        out = f(*xs)
        out.backward()
        absolute, nodes = abs_gradient(out), len(topological_order((out,)))
        for v, a in zip(xs, got):
            g = absolute.get(id(v))
            if g is None:
                assert a == 0.0 and v.grad == 0, (a, v.grad)
            else:
                assert agree(a, v.grad, reassociation_slack(g, nodes), 1e-12), (point, a, v.grad)
    assert compiled.trace_count == 1
