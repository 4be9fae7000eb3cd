"""JupyterLab in a real browser: each notebook runs all its cells, and its widgets redraw figures.

Not part of ``make test`` (marker ``browser``); ``make test-browser`` runs it. It needs Chromium and
ChromeDriver (Debian: ``apt-get install chromium chromium-driver``) and ``selenium`` (the make target
installs it into the venv). The tests:

1. parameterise the five notebooks with the smoke profile and ``interactive = True`` (papermill
   ``prepare_only``: papermill executes nothing), sharing one run folder as ``make figures`` does;
2. start one ``jupyter lab`` on a free local port with the project's kernel ``galib``;
3. per notebook, in order, in headless Chromium: open it, click *Run → Run All Cells*, wait until
   every code cell has an execution count and no cell shows an error;
4. where the notebook has sliders (01, 02, 04): for up to two of them, read the figure the widget
   shows, move the slider one step with the keyboard, and wait for a different figure.

JupyterLab re-renders cells and outputs while it runs them, so the test never keeps an element
handle across a wait: what it reads it reads in one JavaScript call (strings, not elements), what
it clicks it finds again right before the click (retrying if the element went stale or was
covered), and every wait polls a condition.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser
TIMEOUT = 600


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: install Chromium and ChromeDriver "
                    f"(Debian: apt-get install chromium chromium-driver)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, fn, timeout: float = TIMEOUT, every: float = 0.5):
    """Poll ``fn`` until it returns something true; an element that went stale or was covered
    while ``fn`` used it counts as "not yet"."""
    from selenium.common.exceptions import (ElementClickInterceptedException,
                                            ElementNotInteractableException,
                                            StaleElementReferenceException)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = fn()
        except (StaleElementReferenceException, ElementClickInterceptedException,
                ElementNotInteractableException):
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _texts(d, css: str) -> list[str]:
    """The text of every element matching ``css``, read in one go (no element handles). It is
    ``textContent`` (non-breaking spaces as spaces): Lab skips rendering cells scrolled out of
    view, whose ``innerText`` is then empty."""
    return d.execute_script("return Array.from(document.querySelectorAll(arguments[0]))"
                            ".map(e => e.textContent.replace(/\\u00a0/g, ' '));", css)


def _click(d, what: str, find, timeout: float = 30) -> None:
    """Click the element ``find()`` returns, found again on every try (None: not there yet)."""
    def attempt():
        _accept_kernel_dialog(d)                               # a modal dialog would take the click
        element = find()
        if element is None:
            return False
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()
        return True
    _wait(what, attempt, timeout, every=0.2)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running JupyterLab serving a folder with the five notebooks, prepared for the smoke run."""
    import papermill as pm
    from galib.tools.pipeline import NOTEBOOK_DIR, NOTEBOOKS, load_profile, notebook_parameters
    root = tmp_path_factory.mktemp("lab")
    profile = load_profile("smoke")
    for stem in NOTEBOOKS:
        params = {**notebook_parameters(profile, stem, root / "figures", root / "runs"),
                  "interactive": True}                 # the pipeline always sets False
        pm.execute_notebook(NOTEBOOK_DIR / f"{stem}.ipynb", root / f"{stem}.ipynb",
                            prepare_only=True, kernel_name="galib", parameters=params)
    port, token = _free_port(), "galib-browser-test"
    env = {**os.environ, "OMP_NUM_THREADS": str(profile.get("threads", 1)),
           "JUPYTER_CONFIG_DIR": str(root / "jupyter")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
         "--LabApp.news_url="] + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=root, env=env, stdout=open(root / "lab.log", "wb"), stderr=subprocess.STDOUT)
    try:
        def up():
            if server.poll() is not None:
                raise AssertionError(f"jupyter lab exited ({server.returncode}):\n"
                                     + (root / "lab.log").read_text()[-3000:])
            return _listening(port)
        _wait("jupyter lab to listen", up, timeout=120)
        # a workspace of its own per notebook (?reset): only that notebook's tab is open
        yield f"http://127.0.0.1:{port}/lab/workspaces/{{0}}/tree/{{0}}.ipynb?reset&token={token}", root
        _shutdown_kernels(port, token)
    finally:
        server.terminate()
        server.wait(30)


def _shutdown_kernels(port: int, token: str) -> None:
    """Stop every kernel of the server (each notebook's kernel otherwise lives on)."""
    import json
    import urllib.request
    base, auth = f"http://127.0.0.1:{port}/api/kernels", {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(base, headers=auth)) as r:
        kernels = json.load(r)
    for k in kernels:
        urllib.request.urlopen(urllib.request.Request(f"{base}/{k['id']}", headers=auth, method="DELETE"))


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
    except ImportError:
        pytest.fail("selenium is not installed: run `make test-browser` (it installs it into .venv)")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = _need("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(_need("chromedriver")), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _widget_figures(d) -> list[str]:
    """The ``src`` (a data: URL of the PNG) of the ``<img>`` in every widget output area, in page
    order, read in one JavaScript call."""
    return d.execute_script(
        "return Array.from(document.querySelectorAll('.jupyter-widgets .jp-OutputArea-output img'))"
        ".map(e => e.getAttribute('src'));")


SLIDERS = {"01_data_pairing": 1, "02_training": 1, "03_mask_sparsity_vs_tau": 0,
           "04_latent_traversals": 4, "05_linear_probe": 0}


@pytest.mark.parametrize("stem", list(SLIDERS))
def test_notebook_runs_in_jupyterlab_and_its_widgets_respond(lab, browser, stem):
    url, root = lab
    try:
        _drive(browser, url.format(stem), root, stem)
    except BaseException:
        browser.save_screenshot(str(root / f"{stem}_failure.png"))  # look at it: pytest --basetemp
        raise
    finally:
        port, token = url.split(":")[2].split("/")[0], url.rsplit("token=", 1)[1]
        _shutdown_kernels(int(port), token)


def _drive(d, url, root, stem):
    d.get(url)
    _wait("the notebook to open", lambda: _texts(d, ".jp-Notebook .jp-Cell"), 120)
    _wait("the galib kernel to be idle", lambda: _texts(
        d, ".jp-Notebook-ExecutionIndicator[data-status='idle']"), 120)
    tabs = _texts(d, ".jp-MainAreaWidget .lm-TabBar-tabLabel, .lm-DockPanel-tabBar .lm-TabBar-tabLabel")
    assert tabs == [f"{stem}.ipynb"], tabs
    _run_to_the_end(d, stem)
    d.save_screenshot(str(root / f"{stem}_after_run_all.png"))
    assert (root / "figures" / stem / "metrics.json").is_file()
    _move_sliders(d, stem)
    d.save_screenshot(str(root / f"{stem}_after_sliders.png"))


def _by_text(d, css: str, text: str):
    from selenium.webdriver.common.by import By
    return next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.text == text), None)


def _accept_kernel_dialog(d) -> bool:
    """Accept JupyterLab's "Select Kernel" dialog (preselected: the notebook's own kernel) if it
    is open. Lab shows it when Run All comes while the session is still without its kernel, and
    then runs nothing until someone answers it."""
    return d.execute_script(
        "const dlg = Array.from(document.querySelectorAll('.jp-Dialog'))"
        "  .find(e => /Select Kernel/.test(e.innerText));"
        "const ok = dlg && dlg.querySelector('.jp-Dialog-button.jp-mod-accept');"
        "if (ok) { ok.click(); return true; } return false;")


def _run_all_cells(d) -> None:
    """Run → Run All Cells, again if the first click landed before the panel took focus."""
    def started():
        _accept_kernel_dialog(d)
        return any(p.strip() != "[ ]:" for p in _texts(d, ".jp-CodeCell .jp-InputPrompt"))
    for attempt in range(2):
        _click(d, "the Run menu", lambda: _by_text(d, ".lm-MenuBar-itemLabel", "Run"))
        _click(d, "the Run All Cells menu item", lambda: _by_text(d, ".lm-Menu-itemLabel", "Run All Cells"))
        try:
            _wait("the first cell to start", started, 30)
            return
        except AssertionError:
            if attempt:
                raise


class _Dropped(Exception):
    """Lab dropped a Run All (every cell back to ``[ ]:``, none running)."""


def _run_to_the_end(d, stem: str, tries: int = 3, stall: float = 45) -> None:
    """Run All Cells and wait for every cell to finish. If Lab drops the run (it can, when the
    notebook's session was still connecting its kernel: the "Select Kernel" dialog), run all
    again once nothing has been running for ``stall`` seconds."""
    for _ in range(tries):
        _run_all_cells(d)
        quiet_since = [None]

        def done():
            if _finished(d, stem):
                return True
            if all(p.strip() == "[ ]:" for p in _texts(d, ".jp-CodeCell .jp-InputPrompt")):
                quiet_since[0] = quiet_since[0] or time.monotonic()
                if time.monotonic() - quiet_since[0] > stall:
                    raise _Dropped()
            else:
                quiet_since[0] = None
            return False
        try:
            _wait("all cells to finish", done)
            return
        except _Dropped:
            continue
    raise AssertionError(f"JupyterLab ran none of the cells of {stem} after {tries} Run All")


def _finished(d, stem: str) -> bool:
    _accept_kernel_dialog(d)
    errors = _texts(d, "[data-mime-type='application/vnd.jupyter.error']")
    if errors:
        raise AssertionError(f"a cell of {stem} failed in JupyterLab:\n" + errors[0][:2000])
    prompts = _texts(d, ".jp-CodeCell .jp-InputPrompt")
    return bool(prompts) and all(p.strip() not in ("[ ]:", "[*]:", "") for p in prompts)


def _move_sliders(d, stem: str) -> None:
    """Move up to two sliders one step right; slider k drives the figure of widget k."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    handles = ".jupyter-widgets .noUi-handle"
    n = len(d.find_elements(By.CSS_SELECTOR, handles))
    assert n == SLIDERS[stem], (stem, n)
    assert len(_widget_figures(d)) >= n
    for k in range(min(2, n)):
        before = _widget_figures(d)[k]
        find = lambda: (d.find_elements(By.CSS_SELECTOR, handles) + [None] * (k + 1))[k]
        _click(d, f"slider {k} of {stem}", find)
        _wait(f"slider {k} of {stem} to take the key", lambda: find().send_keys(Keys.ARROW_RIGHT) or True,
              30, every=0.2)
        _wait(f"widget {k} of {stem} to redraw its figure", lambda: (
            len(_widget_figures(d)) > k and _widget_figures(d)[k] != before), 120)
