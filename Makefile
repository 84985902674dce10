VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8866
# Voila starts a kernel per page load and never stops it; these cull a kernel once its page is closed and it has
# been idle for CULL_IDLE seconds (checked every CULL_INTERVAL s). An open page keeps its kernel.
CULL_IDLE     ?= 600
CULL_INTERVAL ?= 60

.PHONY: install explore class test lint bench mutation clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Voila serves the repository's export folders (and nothing else) so that the page can offer its exports for download.
# One Dask cluster of WORKERS processes (default: one per 2 cores, 2 torch threads each) trains for every visitor; it
# stops with the server.
WORKERS ?=
explore: install
	@echo "Learngene Explorer: open http://$(HOST):$(PORT)/ in your browser (Ctrl-C stops it)"
	LEARNGENE_SERVED_ROOT=$(CURDIR) $(PY) -m explorer.server $(if $(WORKERS),--workers $(WORKERS)) -- \
		$(VENV)/bin/voila notebooks/explorer.ipynb --no-browser --Voila.ip=$(HOST) \
		--port=$(PORT) --Voila.root_dir=$(CURDIR) \
		--VoilaConfiguration.file_allowlist '^(.*/)?export/view-[0-9a-f]+/[^/]+[.](png|html|csv|json)$$' \
		--MappingKernelManager.cull_idle_timeout=$(CULL_IDLE) --MappingKernelManager.cull_interval=$(CULL_INTERVAL) \
		--MappingKernelManager.cull_connected=False

# Before class: draw tutorial 04's shapes and train every collective run the tutorials ask for (docs/teachers.md).
class: install
	$(VENV)/bin/learngene classroom $(if $(WORKERS),--workers $(WORKERS))

test: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests --hypothesis-profile=ci

lint: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# Mutation testing (not in CI, not in `make test`): mutmut plants small bugs in the files MUTATE names and runs
# MUTATION_TESTS against each one; a surviving mutant is a bug that no test notices. It runs in a copy of the working
# tree under build/mutation, so the tree itself is never touched. The default pair of modules and their fast guard
# tests take a few minutes; the whole scope of the learngene claims is
#   make mutation MUTATE='core/individual/* core/learngene/* core/collective/health.py' \
#     MUTATION_TESTS='tests/test_weight_selection_guards.py tests/test_health_guards.py tests/test_criterion_guards.py \
#     tests/test_inheritance_guards.py tests/test_report_guards.py'
# and takes hours (the last two train a small collective run per mutant). Torch runs at one thread: mutmut forks its
# test runs, and forked children hung in the parent's OpenMP pool until mutmut timed them out.
MUTMUT         ?= mutmut==3.8.1
MUTATE         ?= core/individual/weight_selection.py core/collective/health.py
MUTATION_TESTS ?= tests/test_weight_selection_guards.py tests/test_health_guards.py
MUTATION_DIR   := build/mutation
toml_list = [$(shell printf '"%s", ' $(1))]
mutation: install
	$(PY) -m pip install --quiet '$(MUTMUT)'
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $(MUTATION_DIR)
	printf '\n[tool.mutmut]\nsource_paths = ["core"]\nalso_copy = ["tests", "pyproject.toml"]\n%s\n%s\n%s\n' \
		'only_mutate = $(call toml_list,$(MUTATE))' \
		'pytest_add_cli_args_test_selection = $(call toml_list,$(MUTATION_TESTS))' \
		'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]' >> $(MUTATION_DIR)/pyproject.toml
	cd $(MUTATION_DIR) && OMP_NUM_THREADS=1 $(abspath $(PY)) -m mutmut run --max-children $(or $(JOBS),2); \
		$(abspath $(PY)) -m mutmut results

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
