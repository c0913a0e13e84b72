# The two commands: `make run` (the service on the embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench migrate

# PYTHONWARNINGS: setuptools' build-time notices (editable installs) are not the user's business.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	PYTHONWARNINGS=ignore $(BIN)/pip install -q --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/pip install -q -e '.[test,demo]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/calbook serve

migrate: install
	$(BIN)/calbook migrate

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The suite runs on TEST_PROCESSES pytest-xdist workers: most of its time is spent waiting on real
# servers (CalDAV, Celery workers, Chromium), so three processes on two cores finish in half the time.
TEST_PROCESSES ?= 3

test: install lint
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_PROCESSES) --dist worksteal

bench: install
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/service.py
