VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8866
# Voila starts a kernel per page load and never stops it; these cull a kernel once its page is closed and it has
# been idle for CULL_IDLE seconds (checked every CULL_INTERVAL s). An open page keeps its kernel.
CULL_IDLE     ?= 600
CULL_INTERVAL ?= 60

.PHONY: install explore test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Voila serves the repository's export folders (and nothing else) so that the page can offer its exports for download.
# One Dask cluster of WORKERS processes (default: one per core) trains for every visitor; it stops with the server.
WORKERS ?=
explore: install
	@echo "Learngene Explorer: open http://$(HOST):$(PORT)/ in your browser (Ctrl-C stops it)"
	LEARNGENE_SERVED_ROOT=$(CURDIR) $(PY) -m explorer.server $(if $(WORKERS),--workers $(WORKERS)) -- \
		$(VENV)/bin/voila notebooks/explorer.ipynb --no-browser --Voila.ip=$(HOST) \
		--port=$(PORT) --Voila.root_dir=$(CURDIR) \
		--VoilaConfiguration.file_allowlist="['(.*/)?export/view-[0-9a-f]+/[^/]+[.](png|html|csv|json)']" \
		--MappingKernelManager.cull_idle_timeout=$(CULL_IDLE) --MappingKernelManager.cull_interval=$(CULL_INTERVAL) \
		--MappingKernelManager.cull_connected=False

test: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests --hypothesis-profile=ci

lint: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
