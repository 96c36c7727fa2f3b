"""bench/peers.py: graphc's own contenders run in fresh processes without any peer installed,
missing peers are skipped with a note, and the tables compare losses and times with graphc's."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.fixture
def bench(monkeypatch):
    """bench/peers.py and its contenders package, imported as the script imports them."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import peers
    from contenders import isolate, report, workloads
    return peers, isolate, report, workloads


def test_graphc_contenders_run_quick_in_their_own_processes():
    """The moons step table with graphc's contenders only: no JAX, PyTensor or PyTorch needed."""
    done = subprocess.run([sys.executable, "bench/peers.py", "--quick", "--only", "step", "--contenders", "graphc"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.lstrip().startswith("step: moons step") for line in lines)
    rows = [line for line in lines if line.startswith("   graphc ")]
    assert len(rows) == 4 and "reference" in rows[0] and all("failed" not in r for r in rows)
    assert min(float(r.split("x ")[0].split()[-1]) for r in rows) == 1.0  # the best is graphc's best
    assert "JAX" not in done.stdout and "PyTorch" not in done.stdout


def test_a_missing_peer_is_skipped_with_a_note(bench, monkeypatch, capsys):
    peers, isolate, _, workloads = bench
    monkeypatch.setattr(isolate, "installed", lambda name: name == "graphc")
    monkeypatch.setattr(isolate, "run", lambda name, key, label, quick: workloads.Result(1e-3, [1.0, 0.5]))
    peers.peer_tables(["step"], ["graphc", "jax"], quick=True)
    out = capsys.readouterr().out
    assert "note: jax is not installed: its contenders are skipped" in out
    assert "graphc C, `mean_and_grad` per step" in out and "JAX" not in out


def test_the_fastest_of_several_processes_is_kept_and_a_failure_shown(bench, monkeypatch):
    _, isolate, _, workloads = bench
    times = iter([3e-3, 1e-3, 2e-3])
    monkeypatch.setattr(isolate, "run", lambda name, key, label, quick: workloads.Result(next(times), [1.0]))
    assert isolate.fastest("graphc", "step", "x", True, 3).seconds == 1e-3
    outcomes = iter([workloads.Result(1e-3, [1.0]), "failed: boom"])
    monkeypatch.setattr(isolate, "run", lambda name, key, label, quick: next(outcomes))
    assert isolate.fastest("graphc", "step", "x", True, 2) == "failed: boom"


def test_a_table_gives_ratios_to_graphcs_best_and_loss_differences(bench, capsys):
    _, _, report, workloads = bench
    Result = workloads.Result
    report.print_table(workloads.BY_KEY["step"], [
        ("graphc", "graphc fast", Result(2e-5, [1.0, 0.5])),
        ("graphc", "graphc slow", Result(4e-5, [1.0, 0.5])),
        ("jax", "JAX jit", Result(1e-5, [1.0, 0.5 * (1 + 1e-15)])),
        ("pytensor", "PyTensor", "failed: ImportError: no BLAS")])
    out = capsys.readouterr().out
    assert "20.0 us" in out and "1.00x" in out and "2.00x" in out and "0.50x" in out
    assert "reference" in out and "1.1e-15" in out and "failed: ImportError: no BLAS" in out


def test_loss_difference_is_relative_over_the_steps_both_ran(bench):
    _, _, report, _ = bench
    assert report.loss_difference([1.0, 2.0, 3.0], [1.0, 2.0 * (1 + 1e-12)]) == pytest.approx(1e-12, rel=1e-3)
    assert report.loss_difference([0.0], [0.0]) == 0.0


def test_workers_run_one_thread_in_float64(bench):
    _, isolate, _, _ = bench
    env = isolate.single_thread_env()
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"] and env["JAX_ENABLE_X64"] == "1"
    assert "floatX=float64" in env["PYTENSOR_FLAGS"] and "openmp=False" in env["PYTENSOR_FLAGS"]
