# Two entry points: `make demo` (set up, run the main job) and `make test` (set up, run the tests).
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: demo test lint clean

.venv/bin/python:
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml .venv/bin/python
	$(PY) -m pip install -q -e '.[mpi,test]'
	touch $(STAMP)

demo: $(STAMP)
	PATH=$(CURDIR)/.venv/bin:$$PATH $(PY) -m bench.demo

test: $(STAMP)
	PATH=$(CURDIR)/.venv/bin:$$PATH $(PY) -m ruff check .
	PATH=$(CURDIR)/.venv/bin:$$PATH MPLBACKEND=Agg $(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf .venv report .pytest_cache .hypothesis
