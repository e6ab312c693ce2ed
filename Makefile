# `make demo` and `make test` set everything up from nothing: .venv, Python packages, Debian packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench system clean

# The anchors of bench/ are installed too: the suite runs every bench script's --quick mode.
$(STAMP): pyproject.toml constraints.txt bench/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]' -r bench/requirements.txt
	touch $(STAMP)

system:
	bash scripts/setup_system.sh

demo: $(STAMP) system
	$(VENV)/bin/aelab demo

test: $(STAMP) system
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy

bench: $(STAMP) system
	$(PY) bench/inspect_vs_anchors.py
	$(PY) bench/train_vs_anchors.py

clean:
	rm -rf $(VENV) runs test-artifacts
