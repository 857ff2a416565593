# Warden: `make demo` runs the main job on the embedded default, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench golden reliability lock clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/warden demo

test: $(STAMP) lint
	$(BIN)/python -m pytest -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests bench chaos
	$(BIN)/ruff format --check src tests bench chaos
	$(BIN)/mypy
	$(BIN)/lint-imports

# Re-record tests/golden/*.jsonl when a change of decisions is intended; review their diff.
golden: $(STAMP)
	$(BIN)/python -m tests.golden.record

# Every bench/*.py writes its figures to bench/results/NAME.json through bench/report.py;
# the summary (bench/results/README.md) is rebuilt after each. See docs/benchmarks.md.
BENCHES := scenarios policy audit ingest loop startup tamper eda fleet
bench: $(STAMP)
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done
	$(BIN)/python bench/report.py

# The full reliability campaign (about an hour on two cores): kills, fuzzing, overload,
# slow clients, a full and a read-only disk, tampering. `make test` runs its short form.
reliability: $(STAMP)
	$(BIN)/python -m tests.reliability

# Regenerate the lock from pyproject.toml (needs network access to the package index).
lock:
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev --strip-extras -o requirements.lock pyproject.toml

# Forgets the demo log's trusted checkpoint too: its removal here is on purpose.
clean:
	-test -x $(BIN)/warden && $(BIN)/warden audit trust --forget >/dev/null
	rm -rf $(VENV) .warden .warden-keys .warden-drill .warden-drill-keys .artifacts .pytest_cache .mypy_cache .ruff_cache
