# Two commands do all the set-up on a fresh machine:
#   make demo   the music example, end to end, on the local backend
#   make test   lint, the whole test suite (with docstring examples) and the docs build
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SCALE ?= 1.0

.PHONY: demo test lint docs bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,docs,aws,plot,train,explain]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m examples.music_recommendation --scale $(SCALE)

lint: $(VENV)/.installed
	$(PY) -m ruff check --no-cache .

docs: $(VENV)/.installed
	$(PY) -m sphinx -n -W --keep-going -q -b html docs docs/_build/html

test: lint $(VENV)/.installed
	$(PY) -m pytest
	$(MAKE) docs

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_flow.py

clean:
	rm -rf $(VENV) docs/_build .mlcycle examples/music_recommendation/output
