# `make demo` and `make test` work on a fresh clone: the first run creates .venv and
# installs graphc with its dev extras; later runs reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test fuzz bench bench-eager bench-compile bench-peers clean

demo: $(STAMP)
	$(PY) examples/moons.py

test: $(STAMP)
	$(PY) -m pytest

# The differential fuzz (tests/fuzz) with GRAPHC_FUZZ times the examples `make test` runs
# (40: about 14 minutes on 2 cores), new random examples each run.
GRAPHC_FUZZ ?= 40
fuzz: $(STAMP)
	GRAPHC_FUZZ=$(GRAPHC_FUZZ) $(PY) -m pytest tests/fuzz

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
