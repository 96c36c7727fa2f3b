"""micrograd's moons demo on graphc: what ``make demo`` runs.

    python examples/moons.py [--python | --eager]

The code is :mod:`graphc.demo` (graphc/demo.py), inside the package so that ``graphc demo``
runs it from an installed wheel too; this script only starts it, and re-exports its
pieces for the tests and notebooks that load ``examples/moons.py``.
"""
from __future__ import annotations

import sys

from graphc.demo import (batch_loss, loss, main, make_data, make_moons, plot_decision_boundary,  # noqa: F401
                         train, train_batched, train_compiled)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
