"""Shared test helpers: loading example scripts by path, and the relative-error measure."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from graphc.check import rel_err  # noqa: F401  (the contract's measure, for the tests)

ROOT = Path(__file__).resolve().parent.parent


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
