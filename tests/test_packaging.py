"""Packaging: the license, its SPDX declaration, and what the first `make demo` shows.

`make dist-check` is the real check of the distributions (it builds the sdist and the
wheel, runs this suite from the unpacked sdist and the demo from the wheel); CI runs it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")


def test_the_license_is_mit_declared_as_an_spdx_string():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "graphc developers" in text
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"  # a table is deprecated in setuptools >= 77
    assert pyproject["project"]["license-files"] == ["LICENSE"]
    assert pyproject["build-system"]["requires"] == ["setuptools>=77"]
    assert any(r.startswith("build") for r in pyproject["project"]["optional-dependencies"]["dev"])


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_first_make_demo_says_it_is_installing_and_shows_pips_progress(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    plan = subprocess.run(["make", "-n", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60).stdout.splitlines()  # a fresh make, also under `make dist-check`
    assert plan[0].startswith("echo \"Installing graphc and its dev extras into .venv")
    (install,) = [line for line in plan if "pip install" in line and "-e '.[dev]'" in line]
    assert "--quiet" not in install and "--progress-bar on" in install
    assert plan[-1] == ".venv/bin/python examples/moons.py"
