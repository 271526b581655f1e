# The commands people type. Every target that needs Python creates .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ASSIGNMENTS := $(notdir $(wildcard solutions/*))
# nbgrader runs `alembic` from PATH when it creates the gradebook.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup sandbox-tools system-packages demo bench lab lab-instructor release solutions test test-fast hub hub-proxy
.DEFAULT_GOAL := help

help:
	@echo "make demo      grade a simulated class end to end (creates .venv if needed)"
	@echo "make bench     cost per submission for classes of 32 and 128, 1 and 2 jobs, against stock nbgrader"
	@echo "               (BENCH_ARGS=--large adds 512); then the class report's cost for 128, 256, 512 students"
	@echo "make test      run every check: notebooks replay, release current, grading"
	@echo "make test-fast the unit tests: not marked slow, browser or sandbox (no grading, no root needed)"
	@echo "make lab       JupyterLab on the course for a student (STUDENT=name on a shared machine)"
	@echo "make lab-instructor  JupyterLab with formgrader on the course"
	@echo "make hub       (root) the course on JupyterHub for the class in grader/roster.csv"
	@echo "make system-packages  (root) the Debian packages the tests need"
	@echo "make release   regenerate notebooks/ from solutions/ with nbgrader"
	@echo "make solutions re-execute the solution notebooks top to bottom"

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

setup: $(VENV)/.installed sandbox-tools

# Grading runs student code in bubblewrap; install it when we can (root on Debian).
sandbox-tools:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } || \
	  echo "note: bubblewrap missing; grading will refuse to run without --no-sandbox"

demo: setup
	$(PY) -m grader demo --cell-timeout 10 --verify-timeout 10

bench: setup
	$(PY) -m grader.demo.bench $(BENCH_ARGS)
	$(PY) -m grader.demo.class_report_bench --sizes 128 256 512

lab: setup
	$(PY) -m grader.lab student $(if $(STUDENT),--student $(STUDENT))

lab-instructor: setup
	$(PY) -m grader.lab instructor

# Debian packages the tests need: Chromium (browser tests), bubblewrap (grading sandbox),
# PostgreSQL (the hub's gradebook), CJK fonts (the Korean text in screenshots), and node/npm for
# JupyterHub's proxy when there is no node on the machine.
SYSTEM_PACKAGES := chromium chromium-driver bubblewrap postgresql fonts-noto-cjk \
  $(if $(shell command -v npm),,nodejs npm)
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "system packages present: $(SYSTEM_PACKAGES)"; \
	elif [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:" $$missing "- run: sudo make system-packages" >&2; exit 1; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

solutions: setup
	@for nb in solutions/*/*.ipynb; do \
	  echo "executing $$nb"; \
	  jupyter nbconvert --log-level=WARN --to notebook --execute --inplace "$$nb" || exit 1; \
	done

release: setup
	@for a in $(ASSIGNMENTS); do nbgrader generate_assignment "$$a" --force --log-level=WARN || exit 1; done

# JupyterHub's proxy (configurable-http-proxy, npm), into grader/hub/node_modules, not globally.
HUB_PROXY := grader/hub/node_modules/.installed
$(HUB_PROXY): grader/hub/package.json grader/hub/package-lock.json
	@command -v npm >/dev/null || { echo "npm missing: run \`sudo make system-packages\`" >&2; exit 1; }
	cd grader/hub && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
hub-proxy: $(HUB_PROXY)

# The course on JupyterHub for a class (as root): users from the roster, the exchange, PostgreSQL,
# formgrader for the instructor; prints where to log in and the passwords. Ctrl-C stops it all.
ROSTER ?= $(if $(wildcard grader/roster.csv),grader/roster.csv,grader/roster.example.csv)
INSTRUCTOR ?= instructor
HUB_PORT ?= 8000
HUB_ARGS ?=
hub: setup system-packages $(HUB_PROXY)
	@[ "$$(id -u)" = 0 ] || { echo "make hub creates a user per student: run it as root (sudo make hub)" >&2; exit 1; }
	$(PY) -m grader.hub up --roster $(ROSTER) --instructor $(INSTRUCTOR) --port $(HUB_PORT) $(HUB_ARGS)

# The unit tests: no whole-class grading, no browser, no sandbox (so no root or bubblewrap needed).
test-fast: setup
	$(PY) -m pytest -m "not slow and not browser and not sandbox" tests

# One run: the tests and nbval's replay of the solution notebooks. Test files run in parallel,
# each whole in one process (its fixtures are graded once); the heaviest start first and the
# notebooks fill the gaps (tests/conftest.py).
test: setup $(if $(shell command -v npm),$(HUB_PROXY))
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder -p no:cacheprovider \
	  --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg tests solutions
