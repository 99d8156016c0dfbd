# The front door: `make run` (demo on SQLite, eager Celery) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test e2e bench lint messages worker worker-batch beat system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test,demo]"
	touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

run: $(STAMP) system-deps
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py seed_demo
	@echo "Demo at http://127.0.0.1:$(PORT)  (users demo_applicant, demo_rm, demo_branch_approver, demo_ops, demo_risk, demo_admin ... password demo-pass; staff second-factor codes are shown on the verification page)"
	DEMO_OTP_HINTS=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# On SQLite without DATABASE_URL; on Postgres + Redis when DATABASE_URL / REDIS_URL are set (CI).
test: $(STAMP)
	@WITH_BROWSER=1 bash scripts/system-deps.sh
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python -m pytest $(PYTEST_ARGS)

e2e: $(STAMP)
	@WITH_BROWSER=1 bash scripts/system-deps.sh
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

bench: $(STAMP) system-deps
	$(BIN)/python bench/run_all.py

# ruff, and the floors: import-linter's layers contract in pyproject.toml (docs/architecture.md).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# The catalogs (needs GNU gettext): collect the strings; English: copy the English the msgids already carry; Chinese:
# the Chinese of each "中文 english" label (pairs "中文 / English" stay bilingual); compile.
# Translate what i18n_fill.py lists in locale/en/LC_MESSAGES/django.po, run it again, commit the .po and the .mo.
messages: $(STAMP)
	$(BIN)/python manage.py makemessages -l en -l zh_Hans --ignore=.venv --ignore=staticfiles --ignore=var --ignore=ci-artifacts --ignore=node_modules
	$(BIN)/python scripts/i18n_fill.py
	$(BIN)/python scripts/i18n_fill.py --chinese locale/zh_Hans/LC_MESSAGES/django.po
	$(BIN)/python manage.py compilemessages --ignore=.venv

# Two workers in production (config/settings.py, CELERY_BATCH_TASKS): the cases' tasks, and the night's batch work.
worker: $(STAMP)
	$(BIN)/celery -A config worker -l info -Q celery

worker-batch: $(STAMP)
	$(BIN)/celery -A config worker -l info -Q batch -n batch@%h

beat: $(STAMP)
	$(BIN)/celery -A config beat -l info

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm var staticfiles
