# 数据跑腿 Exchange — the two commands: `make demo` and `make test`. Everything else is a step of them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXCHANGE := $(BIN)/exchange
STAMP := $(VENV)/.installed

.PHONY: demo test install postgres java promtool stack stack-down lint typecheck unit integration clean

demo: install postgres java
	$(EXCHANGE) stack up
	$(EXCHANGE) demo

# Brings the stack up, runs lint, types and the whole suite, and brings the stack down even on failure.
test: install postgres java promtool
	@status=0; \
	$(EXCHANGE) stack up || status=$$?; \
	if [ $$status -eq 0 ]; then $(MAKE) --no-print-directory lint typecheck || status=$$?; fi; \
	if [ $$status -eq 0 ]; then $(BIN)/pytest -q -p no:cacheprovider tests || status=$$?; fi; \
	$(EXCHANGE) stack down || true; \
	exit $$status

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Debian's PostgreSQL server, installed when absent, without the default cluster it would create and
# start: the exchange runs its own cluster under .stack/.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL from Debian's packages"; \
	  mkdir -p /etc/postgresql-common/createcluster.d; \
	  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/exchange.conf; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

java:
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
	  echo "installing JDK 17 and Maven from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null; }

# promtool checks and unit-tests the alert rules (tests/unit/monitoring); Debian ships it in `prometheus`.
# Only /usr/bin/promtool is used; no recommends keeps the exporters it would suggest out.
promtool:
	@command -v promtool >/dev/null || { \
	  echo "installing promtool from Debian's prometheus package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

stack: install postgres java
	$(EXCHANGE) stack up

stack-down:
	$(EXCHANGE) stack down

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

unit: install promtool
	$(BIN)/pytest -q tests/unit

integration: stack
	$(BIN)/pytest -q tests/integration tests/e2e

# With no virtualenv (a first run that failed building it) there is no stack of ours to stop.
clean:
	if [ -x $(EXCHANGE) ]; then $(EXCHANGE) stack down; fi
	rm -rf .stack $(VENV)
