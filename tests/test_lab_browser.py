"""JupyterLab in a real browser: notebook 04 runs all its cells and its widgets redraw the figures.

Not part of ``make test`` (marker ``browser``); ``make test-browser`` runs it. It needs Chromium and
ChromeDriver (Debian: ``apt-get install chromium chromium-driver``) and ``selenium`` (the make target
installs it into the venv). The test:

1. parameterises notebook 04 with tiny settings and ``interactive = True`` (papermill
   ``--prepare-only``: nothing is executed by papermill);
2. starts ``jupyter lab`` on a free local port with the project's kernel ``galib``;
3. in headless Chromium opens the notebook, clicks *Run → Run All Cells* and waits until every
   code cell has an execution count and no cell shows an error;
4. for each slider of the orbit and swap figures: reads the figure the widget shows, moves the
   slider one step with the keyboard, and waits for a different figure to appear.
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
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def lab(tmp_path):
    """A running JupyterLab serving ``tmp_path`` and a prepared copy of notebook 04."""
    import papermill as pm
    nb = tmp_path / "04.ipynb"
    pm.execute_notebook(ROOT / "notebooks/04_latent_traversals.ipynb", nb, prepare_only=True,
                        kernel_name="galib", parameters=dict(
                            dataset="glyphs", max_train=512, max_test=64, epochs=1,
                            latent_channels=16, device="cpu", interactive=True,
                            run_dir=str(tmp_path / "run"), fig_dir=str(tmp_path / "figures")))
    port, token = _free_port(), "galib-browser-test"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={tmp_path}", f"--IdentityProvider.token={token}",
         "--LabApp.news_url="] + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=tmp_path, env=env, stdout=open(tmp_path / "lab.log", "wb"), stderr=subprocess.STDOUT)
    try:
        def up():
            if server.poll() is not None:
                raise AssertionError(f"jupyter lab exited ({server.returncode}):\n"
                                     + (tmp_path / "lab.log").read_text()[-3000:])
            return _listening(port)
        _wait("jupyter lab to listen", up, timeout=120)
        yield f"http://127.0.0.1:{port}/lab/tree/{nb.name}?token={token}", tmp_path
    finally:
        server.terminate()
        server.wait(30)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="make test-browser installs selenium")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = _need("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chrome'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(_need("chromedriver")), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _widget_figures(driver) -> list:
    """The ``<img>`` of every widget output area, in page order (src is a data: URL of the PNG)."""
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, ".jupyter-widgets .jp-OutputArea-output img")


def test_notebook_04_runs_and_its_widgets_respond(lab, browser):
    url, workdir = lab
    try:
        _drive(browser, url, workdir)
    except BaseException:
        browser.save_screenshot(str(workdir / "failure.png"))      # look at it: pytest --basetemp
        raise


def _drive(d, url, workdir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    d.get(url)
    _wait("the notebook to open", lambda: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 120)
    _wait("the galib kernel to be idle", lambda: d.find_elements(
        By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']"), 120)
    menu = [e for e in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel") if e.text == "Run"]
    menu[0].click()
    _wait("the Run All Cells menu item", lambda: [
        e for e in d.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel") if e.text == "Run All Cells"],
        30)[0].click()

    def finished():
        prompts = [p.text for p in d.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt")]
        errors = d.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.error']")
        if errors:
            raise AssertionError("a cell failed in JupyterLab:\n" + errors[0].text[:2000])
        return prompts and all(p.strip() not in ("[ ]:", "[*]:", "") for p in prompts)
    _wait("all cells to finish", finished)
    d.save_screenshot(str(workdir / "after_run_all.png"))
    assert (workdir / "figures/04_latent_traversals/metrics.json").is_file()

    sliders = d.find_elements(By.CSS_SELECTOR, ".jupyter-widgets .noUi-handle")
    figures = _widget_figures(d)
    assert len(sliders) >= 4 and len(figures) >= 4, (len(sliders), len(figures))
    # the orbit's image slider and the swap's start slider, each with its own output area
    for k in (0, 1):
        before = _widget_figures(d)[k].get_attribute("src")
        handle = d.find_elements(By.CSS_SELECTOR, ".jupyter-widgets .noUi-handle")[k]
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
        handle.click()
        handle.send_keys(Keys.ARROW_RIGHT)
        _wait(f"widget {k} to redraw its figure", lambda: (
            len(_widget_figures(d)) > k and _widget_figures(d)[k].get_attribute("src") != before), 120)
    d.save_screenshot(str(workdir / "after_sliders.png"))
