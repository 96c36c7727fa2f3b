"""graphc against its peers, all in one run on this machine: per-step times and ratios.

    make bench-peers      # or: .venv/bin/python bench/peers.py [--quick] [--only GROUP] [--contenders LIST]

Peer tables (issues 15 and 16), each contender in its own fresh process (the fastest of
three, one after another: see ``contenders.isolate.fastest``), one thread
(OMP/MKL/OpenBLAS threads 1, XLA without its thread pool, PyTensor without OpenMP), float64,
starting from the same weights; each table prints every contender's time per step, sample,
compile or row, its ratio to graphc's best, and the largest relative difference of its
losses from graphc's (contenders: bench/contenders/, one module per family; a family whose
package is not installed is skipped with a note):

- step: micrograd's moons network MLP(2, [16, 16, 1]) on the demo's 100 rows, SVM loss + L2,
  100 SGD steps: graphc C and NumPy (100 steps in one ``train`` call, or one
  ``mean_and_grad`` call per step), PyTorch eager, JAX (``jit`` per step, ``lax.scan`` over
  the 100 steps), PyTensor (a compiled function with the SGD updates, per step).
- mnist: MLP(784, [50, 10]) softmax cross-entropy, SGD at batch 32 (64 batches) and at
  batch 1 (128 samples), per sample; the same contenders.
- compile: from the model (made before the timer, for every contender) to the first loss
  and gradient of MLP(784, [50, 10]) and MLP(784, [100, 10]), cold: graphc (empty C
  cache), JAX's first ``jit`` call, PyTensor (empty compile directory).
- rows: forward + gradient of the moons MLP's mean loss over 10,000 rows, rows per second.
- demo: micrograd's demo.ipynb loop -- its ``loss()`` (full batch, L2, accuracy), zero_grad,
  backward, its SGD loop -- with micrograd eager, with ``graphc.compile`` around the loss
  and nothing else changed, and in PyTorch eager.

In-process tables (one process, graphc with its peers side by side):

1. micrograd's moons demo step (full batch of 100, MLP(2, [16, 16, 1]), SVM loss + L2,
   forward + backward + SGD): micrograd eager, graphc eager, graphc compiled (Python),
   graphc batched on the re-rolled graph (NumPy and C, the demo's own loop:
   ``step.mean(X, y) + reg`` with the L2 term ``reg`` built eagerly, then ``backward()``
   and the Python SGD loop), graphc C with the L2 term inside the compiled loss (the same
   function, so no eager graph but the mean node), PyTorch CPU eager (the same MLP with
   ``torch.nn.Linear``, float64, one thread) and scikit-learn's ``MLPClassifier`` (one SGD
   iteration over the same 100 rows; log-loss, so comparable in cost only).  Then where
   the C step's time goes.
2. digits: seconds per epoch of MLP(64, [32, 10]) with softmax cross-entropy, minibatch
   32 (examples/digits.py: 43 calls of ``step.mean`` plus the Python SGD loop over 2,410
   params per epoch), for graphc NumPy and C, PyTorch and scikit-learn.
3. throughput of the moons MLP (forward + gradient of the mean loss) at N = 100, 1,000
   and 10,000 rows: graphc NumPy and C vs PyTorch.
4. fit time of the scikit-learn estimators: ``graphc.sklearn.MLPClassifier`` (NumPy and C
   backends) against scikit-learn's ``MLPClassifier`` with the same settings
   (architecture, solver, batch size, epochs, seed) on moons (1000 rows) and digits, with
   held-out accuracies: graphc's first fit of an architecture (compiling, cold C cache)
   and later fits (which share the compiled code); then the first fit of a 784-100-10
   network, where compiling dominates.
5. C build time of the moons and digits gradient programs (cold cache: from trace to
   loaded library).

Times drift between runs on a shared machine; ratios from the same run are what to read.
"""

from __future__ import annotations

import argparse
import sys
from importlib.util import find_spec

import numpy as np

import graphc
from contenders import isolate
from contenders.report import print_table
from contenders.workloads import WORKLOADS


SECTIONS = {"moons": ("torch",), "digits": ("torch",), "throughput": ("torch",), "estimators": (), "build": ()}
ISOLATED = list(dict.fromkeys(w.group for w in WORKLOADS))


def peer_tables(groups: list[str], names: list[str], quick: bool, processes: int = 1) -> None:
    """Every contender of every workload in ``groups``, each in its own fresh process (the
    fastest of ``processes`` of them)."""
    names = [n for n in names if n in isolate.FAMILIES]
    print(f"peers: {isolate.versions(names)}; {'quick' if quick else 'full'} run")
    present = [n for n in names if isolate.installed(n)]
    for name in sorted(set(names) - set(present), key=names.index):
        print(f"note: {isolate.family(name).PACKAGE} is not installed: its contenders are skipped "
              f"(pip install 'graphc[bench]')")
    for workload in WORKLOADS:
        if workload.group in groups and not (quick and workload.full_only):
            rows = [(name, label, isolate.fastest(name, workload.key, label, quick, processes))
                    for name in present for label in isolate.family(name).CONTENDERS.get(workload.key, {})]
            print_table(workload, rows)


def in_process_tables(sections: list[str], quick: bool, with_micrograd: bool) -> None:
    """The one-process tables, each skipped with a note when a package it needs is missing."""
    from contenders import demo_step, sections as other
    runs = {"moons": lambda: demo_step.moons_table(quick, with_micrograd and find_spec("micrograd") is not None),
            "digits": lambda: other.digits_table(quick), "throughput": lambda: other.throughput_table(quick),
            "estimators": lambda: other.estimator_table(quick), "build": other.build_table}
    for name in sections:
        missing = [m for m in SECTIONS[name] if find_spec(m) is None]
        if missing:
            print(f"\nnote: {name} skipped: {', '.join(missing)} not installed (pip install 'graphc[bench]')")
        else:
            runs[name]()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (the whole run in about 3 minutes)")
    parser.add_argument("--no-micrograd", action="store_true", help="skip micrograd in the moons table")
    parser.add_argument("--only", choices=ISOLATED + list(SECTIONS), help="run one group or section")
    parser.add_argument("--contenders", default=",".join(isolate.FAMILIES),
                        help=f"families in the peer tables, comma-separated (default: {','.join(isolate.FAMILIES)})")
    parser.add_argument("--processes", type=int, default=None,
                        help="fresh processes per contender in the peer tables, the fastest kept "
                             "(default: 3, or 1 with --quick)")
    parser.add_argument("--worker", nargs=3, metavar=("FAMILY", "WORKLOAD", "LABEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return isolate.worker(*args.worker, args.quick)
    names = args.contenders.split(",")
    unknown = set(names) - set(isolate.FAMILIES)
    if unknown:
        parser.error(f"unknown contenders {', '.join(sorted(unknown))}; there are {', '.join(isolate.FAMILIES)}")
    print(f"graphc {graphc.__version__}, NumPy {np.__version__}, Python {sys.version.split()[0]}")
    processes = args.processes if args.processes is not None else 1 if args.quick else 3
    if processes < 1:
        parser.error(f"--processes must be at least 1; got {processes}")
    peer_tables([g for g in ISOLATED if args.only in (None, g)], names, args.quick, processes)
    in_process_tables([s for s in SECTIONS if args.only in (None, s)], args.quick, not args.no_micrograd)


if __name__ == "__main__":
    main()
