"""The command line, through `python -m graphc` (subprocess) and main(argv) (in process)."""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from graphc import __main__ as cli
from conftest import ROOT


def graphc_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphc", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120)


def test_show_prints_graph_passes_code_and_derivatives():
    result = graphc_cli("show", "tanh(x*w + b)")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "inputs: x, w, b" in out
    assert "{ lambda x w b ; .\n  let v3 = mul w x\n      v4 = add b v3\n      v5 = tanh v4\n  in ( v5 ) }" in out
    assert "round 1  fold" in out and "round 1  cse" in out
    assert "def formula(inputs, params):" in out and "seed = yield (v5,)" in out
    assert "d/dx = w*(1 - tanh(b + w*x)**2)" in out and "d/db = 1 - tanh(b + w*x)**2" in out
    readme = (ROOT / "README.md").read_text()
    assert f'$ graphc show "tanh(x*w + b)"\n{out.rstrip()}\n```' in readme  # the README shows this run


def test_check_prints_the_table_and_exits_by_the_verdict():
    ok = graphc_cli("check", "tanh(x*w + b)", "--at", "x=2,w=-3", "--at", "b=0.5")
    assert ok.returncode == 0, ok.stderr
    assert "at x=2, w=-3, b=0.5" in ok.stdout and "name  kind" in ok.stdout and "\nok:" in ok.stdout
    kink = graphc_cli("check", "relu(x)", "--at", "x=0")  # finite differences straddle the kink
    assert kink.returncode == 1 and "FAILED" in kink.stdout


def test_a_malicious_formula_is_refused_and_runs_nothing(tmp_path):
    result = graphc_cli("check", "__import__('os').system('touch pwned')", cwd=tmp_path)
    assert result.returncode == 2
    assert "graphc check: error:" in result.stderr and "not allowed" in result.stderr
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("text", ["open('pwned', 'w').write('x')", "exec('import os')", "x.__class__",
                                  "globals()", "tanh(x)[0]", "lambda: 0"])
def test_other_malicious_formulas_are_refused_in_process(text, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["show", text]) == 2
    assert "error:" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_at_values_are_explained(capsys):
    assert cli.main(["check", "x*y", "--at", "z=1"]) == 2
    assert "NAME one of x, y; got 'z=1'" in capsys.readouterr().err
    assert cli.main(["check", "x*y", "--at", "x=abc"]) == 2
    assert "'abc' is not a number" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["demo"], ["show"], ["check"], ["bench"]])
def test_help_everywhere(command, capsys):
    assert cli.main(command + ["--help"]) == 0
    assert "usage: graphc" in capsys.readouterr().out


def test_no_command_prints_help_and_a_bad_one_is_a_usage_error(capsys):
    assert cli.main([]) == 2 and "COMMAND" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2 and "invalid choice" in capsys.readouterr().err


def test_demo_runs_the_checkouts_moons_script(tmp_path, monkeypatch, capsys):
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "moons.py").write_text(
        "import sys\nprint('moons ran with', sys.argv[1:])\nsys.exit(0)\n")
    monkeypatch.setattr(cli, "CHECKOUT", tmp_path)
    assert cli.main(["demo", "--eager"]) == 0
    assert "moons ran with ['--eager']" in capsys.readouterr().out


def test_demo_outside_a_checkout_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "CHECKOUT", tmp_path)
    assert cli.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert "moons.py not found" in err and "clone the repository" in err


def test_bench_lists_and_runs_the_checkouts_scripts(tmp_path, monkeypatch, capsys):
    assert cli.main(["bench", "--list"]) == 0
    assert capsys.readouterr().out.split() == sorted(p.stem for p in (ROOT / "bench").glob("*.py"))
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "fast.py").write_text("open('fast.ran', 'w').close()\n")
    (tmp_path / "bench" / "broken.py").write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(cli, "CHECKOUT", tmp_path)
    assert cli.main(["bench", "fast"]) == 0 and (tmp_path / "fast.ran").exists()
    assert cli.main(["bench"]) == 1 and "failed: broken" in capsys.readouterr().err
    assert cli.main(["bench", "slow"]) == 2 and "no benchmark slow; there are broken, fast" in capsys.readouterr().err


def test_the_console_script_is_declared_and_installed():
    assert '[project.scripts]\ngraphc = "graphc.__main__:main"' in (ROOT / "pyproject.toml").read_text()
    installed = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    if "graphc" not in installed:
        pytest.skip("graphc was installed before the console script existed; `make test` reinstalls it")
    assert installed["graphc"] == "graphc.__main__:main"
