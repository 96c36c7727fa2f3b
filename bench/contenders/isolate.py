"""Each contender in a fresh process, one thread, float64: what bench/peers.py runs and how.

The parent (bench/peers.py) runs ``peers.py --worker FAMILY WORKLOAD LABEL`` per contender
with :func:`single_thread_env`; the worker prints one ``RESULT {json}`` line.  A family
whose package is not installed is skipped with a note, never a failure."""
from __future__ import annotations

import ctypes.util
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType

from .workloads import Result

#: Family name: module in this package, in the order the tables list them.
FAMILIES = {"graphc": "graphc_", "graphc-fast": "graphc_fast", "micrograd": "micrograd_", "torch": "torch_",
            "jax": "jax_", "pytensor": "pytensor_"}
PEERS = Path(__file__).resolve().parent.parent / "peers.py"
MARK = "RESULT "
TIMEOUT = 900  # seconds for one contender (PyTensor's cold compile takes tens of seconds)


def family(name: str) -> ModuleType:
    return importlib.import_module(f"contenders.{FAMILIES[name]}")


def installed(name: str) -> bool:
    return importlib.util.find_spec(family(name).PACKAGE) is not None


def versions(names: list[str]) -> str:
    """The installed versions of the families' packages, read without importing them."""
    out = []
    for package in dict.fromkeys(family(name).PACKAGE for name in names):  # graphc-fast is graphc too
        try:
            out.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            out.append(f"{package} not installed")
    return ", ".join(out)


def single_thread_env() -> dict[str, str]:
    """The environment of every worker: one thread in every library, float64 in JAX and PyTensor,
    and PyTensor linked to the system's OpenBLAS when there is one (its pip install finds none:
    Debian's libopenblas-dev provides it)."""
    env = dict(os.environ)
    blas = ",blas__ldflags=-lopenblas" if ctypes.util.find_library("openblas") else ""
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMEXPR_NUM_THREADS="1",
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
               JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu",
               PYTENSOR_FLAGS=f"floatX=float64,openmp=False{blas}")
    return env


def run(name: str, workload: str, label: str, quick: bool) -> Result | str:
    """One contender in a fresh process: its Result, or why it failed (a line of text)."""
    command = [sys.executable, str(PEERS), "--worker", name, workload, label] + (["--quick"] if quick else [])
    try:
        done = subprocess.run(command, env=single_thread_env(), capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"timed out after {TIMEOUT} s"
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
            return Result(data["seconds"], data["losses"])
    lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
    return f"failed: {lines[-1][:200]}"


def fastest(name: str, workload: str, label: str, quick: bool, processes: int) -> Result | str:
    """One contender in ``processes`` fresh processes, one after another: the fastest Result,
    or the first failure.  A shared machine's timings can be bimodal from one process to the
    next (the same code 1.5x slower in some processes, kernels included), so the fastest of a
    few is the contender's speed, and every contender gets the same number of tries."""
    best: Result | None = None
    for _ in range(processes):
        result = run(name, workload, label, quick)
        if isinstance(result, str):
            return result
        if best is None or result.seconds < best.seconds:
            best = result
    return best


def worker(name: str, workload: str, label: str, quick: bool) -> None:
    """Run one contender here and print its result for the parent."""
    result = family(name).CONTENDERS[workload][label](quick)
    print(MARK + json.dumps({"seconds": result.seconds, "losses": [float(v) for v in result.losses]}), flush=True)
