"""Shared test helpers: loading example scripts by path, and the relative-error measure."""
from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from graphc import runtime
from graphc.check import rel_err  # noqa: F401  (the contract's measure, for the tests)
from graphc.runtime_numpy import vpower

ROOT = Path(__file__).resolve().parent.parent


def run_in_threads(target, n: int) -> None:
    """``target()`` in ``n`` threads at once, joined."""
    threads = [threading.Thread(target=target) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def in_forked_child(check, seconds: float = 30) -> bool:
    """Fork, run ``check()`` in the child, and whether it returned True there within ``seconds``."""
    pid = os.fork()
    if pid == 0:
        try:
            ok = check()
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return False


def load_example(name: str):
    """Import ``examples/<name>.py`` as a module (examples are scripts, not a package)."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def moons():
    return load_example("moons")


@functools.cache
def numpy_pow_is_libm() -> bool:
    """Whether the NumPy backend's ``pow`` (graphc.runtime_numpy.vpower) gives C99 ``pow``'s
    bits on this machine.  On CPUs with AVX-512 NumPy computes it with its own SIMD (SVML)
    pow, within an ulp (the fuzz's NumPy budget), and tests of exact bits do not apply."""
    x = np.random.default_rng(0).uniform(0.0, 3.0, 20_000)
    return all(vpower(x, e).tolist() == [runtime.pow(v, e) for v in x.tolist()] for e in (2.0, -1.0, 0.5, 3.0))
