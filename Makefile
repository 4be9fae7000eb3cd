# Two commands are the contract: `make figures` (set up + run the notebooks) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= quick
DATASET ?=
KERNEL := galib
# This machine's cap on torch/torchvision (its local wheels). Elsewhere: make setup CONSTRAINTS=
CONSTRAINTS ?= constraints-local.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

.PHONY: setup test test-slow test-browser figures bench lab clean

# The kernel "galib" goes into the venv (papermill, make lab) and into the user's Jupyter folder,
# so that a JupyterLab outside the venv lists "Python (galib)" too (inside the venv, Jupyter
# prefers the venv's own copy).
$(VENV)/.installed: requirements.txt pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(PIP_C) -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (galib)" >/dev/null
	$(PY) -m ipykernel install --user --name $(KERNEL) --display-name "Python (galib)" >/dev/null
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

# JupyterLab in headless Chromium: notebook 04 runs all cells and its sliders redraw the figures.
# Needs Chromium + ChromeDriver (Debian: apt-get install chromium chromium-driver).
test-browser: setup
	$(PY) -m pip install -q selenium
	$(PY) -m pytest -q -m browser

# Runs notebooks 01→06 (profile PROFILE) → figures/<stem>/, figures/RESULTS.md, and the executed
# notebooks with their outputs → figures/notebooks/.
figures: setup
	$(PY) -m galib.tools.pipeline --profile $(PROFILE) $(if $(DATASET),--dataset $(DATASET),)

bench: setup
	$(PY) -m galib.tools.bench

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs .pytest_cache
