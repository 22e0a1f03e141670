# The two commands of the README. Everything they need is installed here, into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
INSTALL_INPUTS := requirements-dev.txt instrumentation/pyproject.toml collector_exporter/pyproject.toml

.PHONY: demo test lint typecheck unit install clean browser-deps generated llamaindex-venv openlit-venv

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt \
		-e ./instrumentation -e ./collector_exporter
	touch $@

demo: $(STAMP)
	$(BIN)/python -m demo.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) browser-deps llamaindex-venv openlit-venv
	$(BIN)/python -m pytest
	FEATURECOST_LLAMAINDEX_VENV=1 $(LLAMAINDEX_VENV)/bin/python -m pytest tests/llamaindex

# llama-index-llms-openai pins openai<3, which requirements-dev.txt does not allow: its own venv,
# constrained by requirements-dev.txt for everything else (minus the openai-3-only packages).
LLAMAINDEX_VENV := .venv-llamaindex
LLAMAINDEX_STAMP := $(LLAMAINDEX_VENV)/.installed-stamp
llamaindex-venv: $(LLAMAINDEX_STAMP)

$(LLAMAINDEX_STAMP): requirements-llamaindex.txt requirements-dev.txt instrumentation/pyproject.toml collector_exporter/pyproject.toml
	test -x $(LLAMAINDEX_VENV)/bin/python || $(PYTHON) -m venv $(LLAMAINDEX_VENV)
	$(LLAMAINDEX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	grep -v -E '^(openai|langchain-|pydantic-ai|opentelemetry-instrumentation-openai|openinference-instrumentation-openai)' \
		requirements-dev.txt > $(LLAMAINDEX_VENV)/constraints.txt
	$(LLAMAINDEX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-c $(LLAMAINDEX_VENV)/constraints.txt -r requirements-llamaindex.txt \
		-e ./instrumentation -e ./collector_exporter
	touch $@

# OpenLIT pins openai<3 and anthropic<1: verified as a peer (tests/instrumentation/
# test_peer_environments.py runs its app process with this venv's python) in its own venv,
# constrained by requirements-dev.txt for everything its pins do not decide.
OPENLIT_VENV := .venv-openlit
OPENLIT_STAMP := $(OPENLIT_VENV)/.installed-stamp
openlit-venv: $(OPENLIT_STAMP)

$(OPENLIT_STAMP): requirements-openlit.txt requirements-dev.txt instrumentation/pyproject.toml
	test -x $(OPENLIT_VENV)/bin/python || $(PYTHON) -m venv $(OPENLIT_VENV)
	$(OPENLIT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	grep -v -E '^(opentelemetry-|openinference-|openai|anthropic|langchain-|pydantic-ai|logfire|langfuse|litellm)' \
		requirements-dev.txt > $(OPENLIT_VENV)/constraints.txt
	$(OPENLIT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-c $(OPENLIT_VENV)/constraints.txt -r requirements-openlit.txt -e ./instrumentation
	touch $@

test: lint typecheck unit

# The web page tests drive Debian's chromium headless; install it only when it is missing
# (CI runs as root on a clean Debian machine with apt available).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# Regenerate the committed artefacts the tests compare against: the Grafana dashboard JSON
# (from dashboards/sql/*.sql), the cluster DDL (from the migrations) and the OTel Collector
# filter (from the collector's alias table).
generated: $(STAMP)
	$(BIN)/python -m dashboards.build
	$(BIN)/featurecost storage cluster-ddl -o deploy/clickhouse/cluster.sql
	$(BIN)/python -m featurecost.collector.pipeline.otel_filter --write deploy/otel-collector/config.yaml

clean:
	rm -rf $(VENV) $(LLAMAINDEX_VENV) $(OPENLIT_VENV) .demo .pytest_cache .mypy_cache .ruff_cache
