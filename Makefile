# `make demo` and `make test` work on a fresh clone: the first run creates .venv and
# installs graphc with its dev extras; later runs reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test fuzz bench bench-eager bench-compile bench-peers dist-check clean

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
	@echo "Installing graphc and its dev extras into $(VENV) (first run, or pyproject.toml changed; about a minute)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[dev]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

# Build the sdist and the wheel and check them as a user gets them: the build prints no
# deprecation warning; the sdist holds every tracked file but CI's own (.ci/, .gitignore)
# and the tests pass unpacked from it, away from this checkout (DIST_TESTS: which tests,
# default all); the wheel, installed on its own, runs `graphc --version` and `graphc demo`.
DIST := build/dist-check
DIST_TESTS ?=
dist-check: $(STAMP)
	rm -rf $(DIST) && mkdir -p $(DIST)
	$(PY) -m build --outdir $(DIST) . > $(DIST)/build.log 2>&1 || { cat $(DIST)/build.log; exit 1; }
	! grep -i deprecat $(DIST)/build.log
	tar -tzf $(DIST)/graphc-*.tar.gz | sed 's|^[^/]*/||' | grep -v '/$$' | sort > $(DIST)/sdist.txt
	! git rev-parse --git-dir >/dev/null 2>&1 || { git ls-files | grep -v '^\.ci/\|^\.gitignore$$' | sort \
	    | comm -23 - $(DIST)/sdist.txt | sed 's/^/the sdist lacks /' | grep . && exit 1 || true; }
	tar -xzf $(DIST)/graphc-*.tar.gz -C $(DIST)
	cd $(DIST)/graphc-*/ && $(abspath $(PY)) -c 'import graphc, os; assert graphc.__file__.startswith(os.getcwd())'
	cd $(DIST)/graphc-*/ && $(abspath $(PY)) -m pytest -x -p no:cacheprovider $(DIST_TESTS)
	$(PY) -m pip install --quiet --no-deps --target $(DIST)/site $(DIST)/graphc-*.whl
	cd $(DIST) && PYTHONPATH=site $(abspath $(PY)) -c 'import graphc; assert "/site/graphc/" in graphc.__file__'
	cd $(DIST) && PYTHONPATH=site site/bin/graphc --version
	cd $(DIST) && PYTHONPATH=site site/bin/graphc demo > demo.log && grep "final loss" demo.log

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
