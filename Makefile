# The commands people type. Every target that needs Python creates .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ASSIGNMENTS := $(notdir $(wildcard solutions/*))
# nbgrader runs `alembic` from PATH when it creates the gradebook.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup lab release solutions test
.DEFAULT_GOAL := help

help:
	@echo "make demo      grade a simulated class end to end (creates .venv if needed)"
	@echo "make test      run every check: notebooks replay, release current, grading"
	@echo "make lab       JupyterLab on the course for a student"
	@echo "make release   regenerate notebooks/ from solutions/ with nbgrader"
	@echo "make solutions re-execute the solution notebooks top to bottom"

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

setup: $(VENV)/.installed

lab: setup
	jupyter lab --notebook-dir=. --LabApp.default_url=/lab/tree/notebooks

solutions: setup
	@for nb in solutions/*/*.ipynb; do \
	  echo "executing $$nb"; \
	  jupyter nbconvert --log-level=WARN --to notebook --execute --inplace "$$nb" || exit 1; \
	done

release: setup
	@for a in $(ASSIGNMENTS); do nbgrader generate_assignment "$$a" --force --log-level=WARN || exit 1; done

test: setup
	$(PY) -m pytest tests
	$(PY) -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg solutions -p no:cacheprovider
