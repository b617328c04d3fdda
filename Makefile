PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APP ?= examples/orders/app.py
PORT ?= 8787
# pytest processes for `make test`: the suite mostly waits on subprocesses, PostgreSQL and NATS,
# so two keep two cores busy; more only adds contention to its timing-sensitive tests.
TEST_WORKERS ?= 2

# The engine's suites, run a second time by `make test` on the distributed backend
# (PostgreSQL + NATS JetStream, the platform fixture's SQUALL_TEST_BACKEND=cluster).
ENGINE_SUITES := $(addprefix tests/integration/test_,$(addsuffix .py,async bus effects \
	invoke pipeline queues schedules streams tables targets workflows))

.PHONY: run test test-postgres lint bench clean

$(BIN)/squall: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.test-extras: $(BIN)/squall
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

run: $(BIN)/squall
	$(BIN)/squall up $(APP) --port $(PORT)

test: $(VENV)/.test-extras
	test -x /usr/bin/chromium || apt-get install -y chromium
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/mypy
	$(BIN)/pytest -m serial
	$(BIN)/pytest -m "not serial" -n $(TEST_WORKERS) --dist loadfile
	SQUALL_TEST_BACKEND=cluster $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(ENGINE_SUITES)

# The platform tests again, each data dir on a fresh PostgreSQL schema (SQUALL_TEST_POSTGRES).
test-postgres: $(VENV)/.test-extras
	CI=true SQUALL_TEST_BACKEND=postgres $(BIN)/pytest tests/integration

lint: $(VENV)/.test-extras
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/mypy

bench: $(BIN)/squall
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/cold_start.py
	$(BIN)/python benchmarks/warm_invoke.py
	$(BIN)/python benchmarks/async_throughput.py
	$(BIN)/python benchmarks/bus_throughput.py
	$(BIN)/python benchmarks/stream_throughput.py
	$(BIN)/python benchmarks/tables.py
	$(BIN)/python benchmarks/event_store.py
	$(BIN)/python benchmarks/http_throughput.py

clean:
	rm -rf $(VENV) .squall .pytest_cache .mypy_cache
