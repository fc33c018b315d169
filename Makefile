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

# Debian's python3 makes virtualenvs only with python3-venv (its ensurepip) installed.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "installing python3-venv from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
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

# promtool checks and unit-tests the alert rules (tests/unit/monitoring). Debian ships it in the
# `prometheus` package, whose install would also start a Prometheus server on :9090 where systemd runs
# (the port docker/compose.yml's wants): only the promtool binary is taken out of the package.
promtool:
	@command -v promtool >/dev/null || { \
	  echo "installing promtool from Debian's prometheus package (the binary only)"; \
	  work=$$(mktemp -d); \
	  ( cd $$work && apt-get update -qq && apt-get download -qq prometheus 2>/dev/null && \
	    dpkg-deb -x prometheus_*.deb extracted && install -m 0755 extracted/usr/bin/promtool /usr/local/bin/promtool ); \
	  status=$$?; rm -rf $$work; exit $$status; }

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
