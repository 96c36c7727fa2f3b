# `make demo` and `make test` work on a fresh clone: the first run creates .venv and
# installs graphc with its dev extras; later runs reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test fuzz asan bench bench-eager bench-compile bench-peers dist-check clean

demo: $(STAMP)
	$(PY) examples/moons.py

# The tests in one worker per core (pytest-xdist): 2,640 tests took 11 minutes in one
# process here, 5 on 2 cores.  TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS)

# The differential fuzz (tests/fuzz) with GRAPHC_FUZZ times the examples `make test` runs
# (20: 43 minutes on one core here, so 40 about 85), new random examples each run.
GRAPHC_FUZZ ?= 40
fuzz: $(STAMP)
	GRAPHC_FUZZ=$(GRAPHC_FUZZ) $(PY) -m pytest tests/fuzz

# Memory safety of the generated C: the C tests and the C backend's fuzz with every library
# built with AddressSanitizer and UBSan (GRAPHC_CFLAGS), in a fresh cache.  The libraries
# are loaded into CPython by ctypes, so the sanitizers' runtimes are preloaded; CPython
# leaks by design, so leak checking is off.  Any report stops the run with a failure;
# --capture=sys leaves fd 2 alone, so the report (written by C, not Python) is seen.
ASAN_CC ?= gcc
ASAN_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_TESTS ?= tests/test_codegen_c.py tests/test_c_blocks.py tests/test_c_heap.py tests/test_c_runtime.py tests/test_train_native.py tests/test_rows.py \
	'tests/fuzz/test_fuzz_layers.py::test_built_layer_programs_in_blocks_of_rows_like_the_c_row_loop' \
	'tests/fuzz/test_fuzz_layers.py::test_built_layer_programs_map_like_the_python_backend[c]' \
	'tests/fuzz/test_fuzz_layers.py::test_built_layer_programs_gradients_and_training_like_the_python_backend[c]' \
	'tests/fuzz/test_fuzz_layers.py::test_built_mlps_like_the_python_backend[c]' \
	'tests/fuzz/test_fuzz_layers.py::test_layers_over_scalars_with_products_turned_either_way_like_the_python_backend[c]' \
	'tests/fuzz/test_fuzz_hand_written.py::test_hand_written_layers_on_c_are_eagers_bits' \
	'tests/fuzz/test_fuzz_backends.py::test_map_matches_eager_row_by_row[c]' \
	'tests/fuzz/test_fuzz_backends.py::test_mean_and_its_gradient_match_eager[c]' \
	'tests/fuzz/test_fuzz_rows.py::test_full_batch_losses_on_the_rows_path_equal_the_scalar_program[c]' \
	'tests/test_compile.py::test_backward_into_grads_holding_numbers_adds_each_part_as_eager_does[c]' \
	'tests/test_signature.py::test_a_compiled_backward_into_a_nonzero_grad_adds_each_part_as_eager_does[c]' \
	'tests/fuzz/test_fuzz_exact.py::test_gradients_through_the_shapes_passes_rewrite_are_eagers_bits[c]'
asan: $(STAMP)
	@for lib in libasan.so libubsan.so; do test -f "$$($(ASAN_CC) -print-file-name=$$lib)" || \
	    { echo "make asan: $(ASAN_CC) has no $$lib (install its sanitizer runtimes)"; exit 1; }; done
	cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && \
	CC=$(ASAN_CC) GRAPHC_CACHE_DIR="$$cache" GRAPHC_CFLAGS="$(ASAN_CFLAGS)" \
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LD_PRELOAD="$$($(ASAN_CC) -print-file-name=libasan.so) $$($(ASAN_CC) -print-file-name=libubsan.so)" \
	$(PY) -m pytest -p no:cacheprovider --capture=sys $(ASAN_TESTS)

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
