# cdr-audit — two commands: `make demo` (set up + run the nightly DAG on a sample night), `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
NIGHT ?= 2026-11-22
ROWS ?= 2000
export AIRFLOW_HOME := $(CURDIR)/airflow_home
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export CDR_AUDIT_LAKE ?= $(CURDIR)/lake
export CDR_AUDIT_LANDING ?= $(CURDIR)/.work/landing/{night}
# The Airflow UI's accounts (SimpleAuthManager, name:role; README "Airflow accounts and roles"): the platform
# team's admin, the data engineers' operator account, the compliance readers' read-only account. Their passwords
# are generated into UI_PASSWORDS, owner-only (scripts/airflow_ui_passwords.py), never into the repo.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS ?= admin:admin,engineer:user,compliance:viewer
UI_PASSWORDS := $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated
# The demo and the tests pseudonymize with the built-in demo key; real runs must set a key (see README).
export CDR_AUDIT_DEMO_MODE ?= 1

.PHONY: demo ui ui-accounts test reliability celery-demo install airflow-db clean help

help:
	@echo "make demo   set up .venv + Airflow (SQLite), generate a sample night, run cdr_nightly_audit on it"
	@echo "make ui     the Airflow UI on http://localhost:8080 (airflow standalone) with the accounts admin, engineer, compliance"
	@echo "make test   run the test suite (sets up .venv first if needed)"
	@echo "make celery-demo  the nightly DAG on Redis + PostgreSQL + two Celery workers (installs them from Debian's packages), compared with cdr-audit run"
	@echo "make reliability  the reliability suite (tests/reliability) at a larger size: RELIABILITY_SCALE=5, a fresh seed"
	@echo "make clean  remove the lake, Airflow home and scratch files (keeps .venv)"

$(BIN)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "cdr-audit needs Python 3.11 (found %s)" % sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/.installed

$(AIRFLOW_HOME)/airflow.db: $(BIN)/.installed
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/migrate.log; exit 1)

airflow-db: $(AIRFLOW_HOME)/airflow.db

ui-accounts: $(BIN)/.installed
	$(BIN)/python scripts/airflow_ui_passwords.py $(UI_PASSWORDS)

demo: airflow-db ui-accounts
	$(BIN)/python -m sample_data.generate --rows $(ROWS) --seed 7 --date $(NIGHT) --out .work/landing/$(NIGHT)
	CDR_AUDIT_TASK_RETRIES=0 $(BIN)/airflow dags test cdr_nightly_audit $(NIGHT) > $(AIRFLOW_HOME)/demo_dags_test.log 2>&1 \
	  || (tail -40 $(AIRFLOW_HOME)/demo_dags_test.log; echo "DAG run failed; full log: $(AIRFLOW_HOME)/demo_dags_test.log"; exit 1)
	@echo "Airflow DAG cdr_nightly_audit ran for night $(NIGHT); log: $(AIRFLOW_HOME)/demo_dags_test.log"
	$(BIN)/cdr-audit summary --lake $(CDR_AUDIT_LAKE)
	@$(BIN)/cdr-audit report --lake $(CDR_AUDIT_LAKE) | tail -1   # the HTML compliance report of the night

# Scheduler, dag processor, triggerer and api-server in one process tree (SQLite, LocalExecutor); Ctrl-C stops it.
ui: airflow-db ui-accounts
	PATH=$(CURDIR)/$(BIN):$$PATH airflow standalone

test: airflow-db
	$(BIN)/python -m pytest

# The same code as CI's run of tests/reliability, at RELIABILITY_SCALE times its size (nights fuzzed, kills) and
# a seed of the moment unless RELIABILITY_SEED is given; the seed is printed in the header and in every failure.
RELIABILITY_SCALE ?= 5
RELIABILITY_SEED ?= $(shell date +%s)
reliability: airflow-db
	CDR_AUDIT_RELIABILITY_SCALE=$(RELIABILITY_SCALE) CDR_AUDIT_RELIABILITY_SEED=$(RELIABILITY_SEED) \
	  $(BIN)/python -m pytest tests/reliability -rxX

# docker-compose.yml's services as processes on this machine (no Docker): Redis and PostgreSQL (apt-get when
# missing), Airflow's api-server, scheduler, dag-processor and two Celery workers with their own hostnames; one
# generated night, which worker ran which task, and the lake compared with `cdr-audit run`'s. About 5 minutes.
celery-demo: $(BIN)/.installed
	$(BIN)/python scripts/celery_cluster.py --compare

clean:
	rm -rf lake airflow_home .work benchmarks/out
