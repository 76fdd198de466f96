# Postline: `make dev` to run it, `make test` to test it. Both install what they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
# Fails the recipe when no PostgreSQL/Redis/S3 can be found or started.
SERVICES = services_env="$$($(PY) scripts/services.py env)"; eval "$$services_env"
PORT ?= 8000
# Development mode for every target here (the settings default to production: DEBUG off).
export DEBUG ?= true

.PHONY: setup dev test lint check-migrations pytest bench services services-stop clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || "$$(scripts/python.sh)" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

services: setup
	@$(PY) scripts/services.py env >/dev/null && echo "PostgreSQL, Redis and the object store are ready."

services-stop:
	$(PY) scripts/services.py stop

# scripts/dev.sh migrates, ensures the demo agency and runs everything; links follow PORT.
dev: setup
	@$(SERVICES); PY=$(PY) PORT=$(PORT) exec bash scripts/dev.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile
	$(PY) scripts/production_lock.py --check

check-migrations: setup
	@$(SERVICES); $(PY) manage.py makemigrations --check --dry-run

# loadgroup: the fault suite's scenarios share its servers, so one process runs them all.
pytest: setup
	@$(SERVICES); $(VENV)/bin/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test: lint check-migrations pytest

bench: setup
	@$(SERVICES); $(PY) manage.py migrate_all --verbosity 0; $(PY) -m bench.provisioning; $(PY) -m bench.publishing; $(PY) -m bench.media; $(PY) -m bench.dashboard; $(PY) -m bench.pages; $(PY) -m bench.agencies; $(PY) -m bench.backup; $(PY) -m bench.api; $(PY) -m bench.imports

clean: services-stop
	rm -rf $(VENV) .local
