# Two commands are the contract: `make figures` (set up + run the notebooks) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= quick
DATASET ?=
KERNEL := galib

.PHONY: setup test test-slow test-browser figures bench lab clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (galib)" >/dev/null
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

figures: setup
	$(PY) -m galib.tools.pipeline --profile $(PROFILE) $(if $(DATASET),--dataset $(DATASET),)

bench: setup
	$(PY) -m galib.tools.bench

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs .pytest_cache
