# `make demo` and `make test` work on a fresh clone: the first run creates .venv and
# installs graphc with its dev extras; later runs reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test bench bench-eager bench-compile bench-peers clean

demo: $(STAMP)
	$(PY) examples/moons.py

test: $(STAMP)
	$(PY) -m pytest

bench: bench-eager bench-compile bench-peers

bench-eager: $(BENCH_STAMP)
	$(PY) bench/eager.py

bench-compile: $(BENCH_STAMP)
	$(PY) bench/compile.py

bench-peers: $(BENCH_STAMP)
	$(PY) bench/peers.py

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
