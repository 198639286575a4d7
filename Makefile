# The habits in one place. Everything installs from uv.lock; nothing else is downloaded.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: env demo test lint fmt dev bench reliability clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --compile-bytecode: uv, unlike pip, leaves modules to be compiled on first import, and
# where PYTHONDONTWRITEBYTECODE is set (as on our CI machines) every process compiled
# them again: importing Dagster and our definitions took 2.1-2.3 s against 1.0-1.2 s.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

env: $(VENV)/.synced

demo: env
	$(VENV)/bin/itwin-runs demo

# Four workers on two cores: most tests wait on loopback servers and subprocesses, not CPU.
test: env
	$(VENV)/bin/pytest -q -m "not slow" -n 4 --maxschedchunk 1

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy pipeline
	$(VENV)/bin/sqlfluff lint sql

fmt: env
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/sqlfluff fix sql

# The Dagster UI against the built-in simulator (see README).
dev: env
	$(VENV)/bin/itwin-runs dev

bench: env
	$(VENV)/bin/python -m benchmarks.run_all $(BENCH_ARGS)

# The long trials: everything in tests/reliability, and the slow-marked tests elsewhere.
reliability: env
	$(VENV)/bin/pytest -q tests/reliability
	$(VENV)/bin/pytest -q -m slow --ignore=tests/reliability tests

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
