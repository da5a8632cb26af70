# fairpriv developer commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Ray (the 'ray' extra) is installed for the sweep backend's tests; the core needs none of it.
# torch is pinned to the CPU wheel this machine has on disk; anything 2.13.0 does not
# satisfy would pull a multi-GB CUDA build. pyproject.toml keeps the looser torch>=2.6.
TORCH_PIN := torch==2.13.0
PYTEST_WORKERS ?= 2

.PHONY: install demo test test-ci test-all lint app bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet '$(TORCH_PIN)' -e '.[test,ray]'
	touch $(STAMP)

demo: install
	$(BIN)/fairpriv run --dataset synthetic \
		--arms baseline,uniform_dropout,group_dropout,dp_sgd \
		--dropout 0.5 --seeds 3 --epsilon 3 --out demo_out

test: install
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS) --dist worksteal -q

# Slow tests that guard what no faster test does (marked `ci`); .ci/run runs them after `test`.
test-ci: install
	$(BIN)/python -m pytest -m "slow and ci" -q tests

test-all: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal -q

lint: install
	$(BIN)/ruff check audit reports app cli tests bench
	$(BIN)/mypy audit reports cli

app: install
	$(BIN)/fairpriv app

bench: install
	$(BIN)/fairpriv bench --models 8 --device cpu --json
	$(BIN)/python bench/bench_bootstrap.py
	$(BIN)/python bench/bench_audit_bound.py
	$(BIN)/python bench/bench_watch.py
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_adult_extras.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache *.egg-info
