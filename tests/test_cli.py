"""The command line, through `python -m graphc` (subprocess) and main(argv) (in process)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata

import pytest

import graphc
from graphc import __main__ as cli
from graphc.formula import FUNCTIONS
from conftest import ROOT


def graphc_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphc", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120)


def test_show_prints_graph_passes_code_and_derivatives():
    result = graphc_cli("show", "tanh(x*w + b)")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "inputs: x, w, b" in out
    assert "{ lambda x w b ; .\n  let v3 = mul x w\n      v4 = add v3 b\n      v5 = tanh v4\n  in ( v5 ) }" in out
    assert "round 1  fold" in out and "round 1  cse" in out
    assert "def formula(inputs, params):" in out and "seed = yield (v5,)" in out
    assert "d/dx = w*(1 - tanh(b + w*x)**2)" in out and "d/db = 1 - tanh(b + w*x)**2" in out
    readme = (ROOT / "README.md").read_text()
    assert f'$ graphc show "tanh(x*w + b)"\n{out.rstrip()}\n```' in readme  # the README shows this run


def test_show_traces_the_formula_as_written_and_the_passes_merge(capsys):
    """SymPy's parser used to turn x*y + x*y into 2*x*y before graphc saw it (every pass row
    read '-'), and exp(x)*exp(x) into exp(2*x)."""
    assert cli.main(["show", "x*y + x*y"]) == 0
    out = capsys.readouterr().out
    assert "let v2 = mul x y\n      v3 = mul x y\n      v4 = add v2 v3" in out
    assert "round 1  cse               5 ->         4 nodes   merged x1" in out
    assert "d/dx = 2*y" in out and "d/dy = 2*x" in out  # SymPy still gives the derivatives
    assert cli.main(["show", "exp(x)*exp(x)"]) == 0
    out = capsys.readouterr().out
    assert "let v1 = exp x\n      v2 = exp x\n      v3 = mul v1 v2" in out and "merged x1" in out


def test_a_formula_sympy_cannot_differentiate_is_said_not_a_traceback(capsys):
    """SymPy turns ``y - y`` into 0, so ``max`` compares ``x`` with nan and SymPy raises
    TypeError: the derivatives and the sympy column are skipped with a note (outside hunt)."""
    assert cli.main(["show", "max(x, 0*(1/(y-y)))"]) == 0
    assert "  skipped: SymPy cannot differentiate it (TypeError: Invalid NaN comparison)" in capsys.readouterr().out
    assert cli.main(["check", "max(x, 0*(1/(y-y)))"]) == 1  # nan at the point: nothing compared, inconclusive
    assert "note: sympy column skipped: SymPy cannot differentiate it" in capsys.readouterr().out


def test_names_the_code_spells_otherwise_are_said(capsys):
    """``if_`` (``if`` once its underscore goes) and ``é`` (not ASCII) have other names in the
    graph, code and tables; a line pairs them with the names ``--at`` takes (outside hunt)."""
    assert cli.main(["check", "if_ * x + é", "--at", "if_=2,é=1"]) == 0
    out = capsys.readouterr().out
    assert "at if_=2, x=-0.4, é=1\nnamed in the code: if_ as if_1, é as x_1\ncheck_grad" in out
    assert "\nif_1  input  2 " in out
    assert cli.main(["show", "if_ * x + é"]) == 0
    assert "inputs: if_, x, é\nnamed in the code: if_ as if_1, é as x_1\n\ngraph:" in capsys.readouterr().out
    assert cli.main(["check", "x * y"]) == 0
    assert "named in the code" not in capsys.readouterr().out
    # names the generated code holds for itself: the graph keeps them, the code does not (outside hunt)
    assert cli.main(["show", "inputs * params"]) == 0
    out = capsys.readouterr().out
    assert "\nnamed in the code: inputs as inputs_1, params as params_1\n" in out
    assert "(inputs_1, params_1) = inputs" in out


def test_a_formula_may_start_with_a_minus(capsys):
    assert cli.main(["show", "-(-x)"]) == 0
    assert "let v1 = neg x\n      v2 = neg v1" in capsys.readouterr().out
    assert cli.main(["check", "-x*2", "--at", "x=1"]) == 0
    assert cli.main(["check", "--at", "x=1", "-x*2", "--no-fd"]) == 0
    assert cli.main(["check", "--", "-x", "--at", "x=1"]) == 2  # after --, --at is not an option
    assert "unrecognized arguments" in capsys.readouterr().err
    assert cli.main(["show", "-x", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_an_option_the_command_lacks_after_the_formula_is_reported_as_typed(capsys):
    """``show`` has no ``--at``: the error names it and its value in order (it once said
    ``x=1 -- --at``, taking ``--at`` for a second formula starting with a minus)."""
    assert cli.main(["show", "x*y", "--at", "x=1"]) == 2
    assert "unrecognized arguments: --at x=1\n" in capsys.readouterr().err


def test_a_syntax_error_points_at_the_column_typed(capsys):
    assert cli.main(["show", "  x + * y"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["graphc show: error: not a formula: invalid syntax at column 7:", "    x + * y", "        ^"]


def test_an_error_after_a_carriage_return_points_at_its_line(capsys):
    """A lone \\r ends a line for Python's tokenizer; the error used to be an IndexError traceback."""
    assert cli.main(["show", "(x +\rfoo(y))"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("graphc show: error: calling foo is not allowed")
    assert err[0].endswith(" at line 2, column 1:") and err[1:] == ["  foo(y))", "  ^^^"]


def test_huge_integer_exponents_are_a_clear_error(capsys):
    assert cli.main(["check", "x**1" + "0" * 400]) == 2  # was an OverflowError traceback
    err = capsys.readouterr().err
    assert "error: the number 100000000000...(401 characters) does not fit in a float" in err


def test_check_of_a_nan_or_inf_constant_leaves_sympy_out_instead_of_failing(capsys):
    """SymPy's x + nan (log(-1) folded) and x + oo (exp(1000)) have derivative 0 in x: the
    sympy column read 0 and the verdict was FAILED (an outside hunt)."""
    assert cli.main(["check", "x + exp(1000)"]) == 0
    assert cli.main(["check", "x + log(-1)"]) == 1  # the output is nan: nothing compared
    out = capsys.readouterr().out
    assert "FAILED" not in out and "sympy column left out for x: SymPy's form holds a nan or an infinity" in out


def test_show_and_check_keep_named_functions_real(capsys):
    """relu was not declared real: |exp(relu(x))|' read exp(re(relu(x)))*re(step(x)), and
    check left out SymPy's derivative of |relu(x)| at x = -1 as undefined (an outside hunt)."""
    assert cli.main(["show", "abs(exp(relu(x)))"]) == 0
    assert "d/dx = exp(relu(x))*step(x)" in capsys.readouterr().out
    assert cli.main(["check", "abs(relu(x))", "--at", "x=-1"]) == 0
    out = capsys.readouterr().out
    assert "\nx     input  -1     0      0         0      0 " in out and "not proved" not in out


def test_check_prints_the_table_and_exits_by_the_verdict():
    ok = graphc_cli("check", "tanh(x*w + b)", "--at", "x=2,w=-3", "--at", "b=0.5")
    assert ok.returncode == 0, ok.stderr
    assert "at x=2, w=-3, b=0.5" in ok.stdout and "name  kind" in ok.stdout and "\nok:" in ok.stdout


def test_check_explains_a_kink_instead_of_failing_bare(capsys):
    assert cli.main(["check", "relu(x)", "--at", "x=0"]) == 1  # finite differences straddle the kink
    out = capsys.readouterr().out
    assert "FAILED" not in out and "\ninconclusive: max rel error 0 between exact methods" in out
    assert "straddle a kink or jump within h=6.1e-06 of x=0: the slope is 0 on the left and 1 on the right" in out
    assert cli.main(["check", "relu(x)", "--at", "x=0", "--no-fd"]) == 0


def test_check_says_the_values_are_nan_instead_of_ok(capsys):
    assert cli.main(["check", "x**y", "--at", "x=-2"]) == 1
    out = capsys.readouterr().out
    assert "\nnan: max rel error" in out and "\nok" not in out
    assert "nan at this point: output, d/dx, d/dy; every method agrees on nan, so nothing was compared" in out


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
    for at in (["x=1,x=2"], ["x=1", "x=2"]):  # the last one once won, silently
        assert cli.main(["check", "x*y", *(a for v in at for a in ("--at", v))]) == 2
        assert "--at gives x twice; give each name once" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["demo"], ["show"], ["check"], ["bench"]])
def test_help_everywhere(command, capsys):
    assert cli.main(command + ["--help"]) == 0
    assert "usage: graphc" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["show"], ["check"]])
def test_help_lists_the_op_tables_functions(command, capsys):
    assert cli.main(command + ["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert {"log1p", "softplus", "relu", "max"} <= set(FUNCTIONS)  # from graphc.ops.TABLE
    assert all(f"{name}(" in text for name in FUNCTIONS) and "max(x, y)" in text


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"graphc {graphc.__version__}\n"
    assert graphc_cli("--version").stdout == f"graphc {graphc.__version__}\n"


def test_a_reader_that_goes_away_is_no_traceback(tmp_path):
    """`graphc show ... | head -1`: the reader closes the pipe before graphc writes."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "graphc", "show", "tanh(x)"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=120) == 1 and err == ""


def test_an_output_that_cannot_be_written_is_said_not_a_traceback(tmp_path):
    """Regression (an outside tester): with stdout closed (``>&-``) Python's sys.stdout is None,
    and flushing it was an AttributeError traceback; a full disk was an OSError one."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "graphc", "show", "tanh(x)"]
    closed = subprocess.run(command, stderr=subprocess.PIPE, text=True, timeout=120, cwd=tmp_path, env=env,
                            preexec_fn=lambda: os.close(1))  # graphc starts with no stdout
    assert (closed.returncode, closed.stderr) == (1, "graphc show: error: standard output is closed\n")
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            result = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                                    cwd=tmp_path, env=env)
        assert (result.returncode, result.stderr) == (1, "graphc show: error: [Errno 28] No space left on device\n")


def test_no_command_prints_help_and_a_bad_one_is_a_usage_error(capsys):
    assert cli.main([]) == 2 and "COMMAND" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("options, argv", [([], []), (["--eager"], ["--eager"]), (["--python"], ["--python"])])
def test_demo_runs_the_packaged_demo(options, argv, monkeypatch):
    from graphc import demo
    calls = []
    monkeypatch.setattr(demo, "main", lambda args: calls.append(args) or 0)
    assert cli.main(["demo", *options]) == 0 and calls == [argv]


def test_demo_runs_from_the_package_alone(tmp_path):
    """Only graphc/ on the path, run elsewhere: what an installed wheel has (make dist-check
    runs the wheel itself)."""
    shutil.copytree(ROOT / "graphc", tmp_path / "site" / "graphc", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    result = subprocess.run([sys.executable, "-m", "graphc", "demo"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "final loss 0.010978, accuracy 100.0%" in result.stdout


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


def test_bench_passes_options_on_to_the_scripts(tmp_path, monkeypatch, capsys):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "echo.py").write_text(
        "import sys\nwith open('echo.args', 'a') as f:\n    f.write(repr(sys.argv[1:]) + '\\n')\n")
    monkeypatch.setattr(cli, "CHECKOUT", tmp_path)
    monkeypatch.setattr(cli, "BENCH_PEERS", ("json",))  # present: no note
    assert cli.main(["bench", "echo", "--steps", "5", "--no-micrograd"]) == 0
    assert cli.main(["bench", "--quick"]) == 0
    assert cli.main(["bench", "echo", "--", "--list", "x"]) == 0
    assert (tmp_path / "echo.args").read_text().splitlines() == [
        "['--steps', '5', '--no-micrograd']", "['--quick']", "['--list', 'x']"]
    assert "== bench/echo.py --steps 5 --no-micrograd" in capsys.readouterr().out


def test_bench_says_to_run_make_bench_when_a_peer_is_missing(tmp_path, monkeypatch, capsys):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "peer.py").write_text("import graphc_missing_peer\n")
    monkeypatch.setattr(cli, "CHECKOUT", tmp_path)
    monkeypatch.setattr(cli, "BENCH_PEERS", ("json", "graphc_missing_peer"))
    assert cli.main(["bench"]) == 1
    err = capsys.readouterr().err
    assert "note: graphc_missing_peer not installed: run `make bench`" in err
    assert "failed: peer (graphc_missing_peer not installed: run `make bench`" in err


def test_the_console_script_is_declared_and_installed():
    assert '[project.scripts]\ngraphc = "graphc.__main__:main"' in (ROOT / "pyproject.toml").read_text()
    installed = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    if "graphc" not in installed:
        pytest.skip("graphc was installed before the console script existed; `make test` reinstalls it")
    assert installed["graphc"] == "graphc.__main__:main"


def test_the_default_point_stays_distinct_and_away_from_zero_past_eight_names(capsys):
    """Past DEFAULT_POINT's eight numbers, ``+ 0.1 * k`` steps gave name 33 exactly 0.0 and
    near-ties (-0.4 and -0.39999999999999997): a relu there was at its kink (outside hunt)."""
    values = cli.default_point(40)
    assert values[:8] == list(cli.DEFAULT_POINT) and min(map(abs, values)) >= 0.2
    assert min(abs(a - b) for k, a in enumerate(values) for b in values[:k]) >= 0.01
    formula = " + ".join(f"a{k}" for k in range(33)) + " + relu(a33)"
    assert cli.main(["check", formula]) == 0, capsys.readouterr().out
