"""graphc with ``numerics="fast"`` (fused multiply-adds and reassociation in C): issue 15's
target is at most JAX's time on each workload.  A family of its own, so "graphc best" in
the tables stays the exact mode's."""
from __future__ import annotations

from .graphc_ import mnist_train, rows, step_per_call, step_train, version  # noqa: F401  (version: the family's)

PACKAGE = "graphc"

CONTENDERS = {
    "step": {"graphc C fast, 100 steps in one `train` call": lambda q: step_train("c", q, "fast"),
             "graphc C fast, `mean_and_grad` per step": lambda q: step_per_call("c", q, "fast")},
    "mnist32": {"graphc C fast, one `train` call per epoch": lambda q: mnist_train("c", 32, q, "fast")},
    "mnist1": {"graphc C fast, one `train` call per epoch": lambda q: mnist_train("c", 1, q, "fast")},
    "rows": {"graphc C fast, `mean_and_grad`": lambda q: rows("c", q, "fast")},
}
