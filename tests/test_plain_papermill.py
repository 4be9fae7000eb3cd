"""Notebooks under plain ``papermill`` (its own CLI), as a user runs them: from a working directory
outside the repository, with ``-p`` and with ``-f <shipped profile file>``.

Paths resolve against ``$GALIB_HOME`` (here a temporary folder, so nothing is written into the
checkout); the kernel's working directory does not matter. An unknown parameter fails the run
instead of papermill's warning. Notebook 01 is the fastest (about 10 s a run).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks" / "01_data_pairing.ipynb"
PROFILE = ROOT / "notebooks" / "params" / "smoke" / "01_data_pairing.yaml"


def _papermill(*args, cwd: Path, home: Path):
    exe = shutil.which("papermill", path=str(Path(sys.executable).parent)) or "papermill"
    env = {**os.environ, "GALIB_HOME": str(home), "OMP_NUM_THREADS": "1"}
    env.pop("GALIB_DATA_ROOT", None)
    return subprocess.run([exe, *map(str, args), "--no-progress-bar"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def where(tmp_path):
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    return cwd, home


def _metrics(path: Path) -> dict:
    assert path.is_file(), f"no {path}"
    return json.loads(path.read_text())


def test_p_parameters(where):
    cwd, home = where
    proc = _papermill(NB, "out.ipynb", "-p", "dataset", "glyphs", "-p", "max_train", 256,
                      "-p", "max_test", 128, "-p", "seed", 7, "-p", "fig_dir", "figs",
                      "-p", "interactive", "False", cwd=cwd, home=home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = _metrics(home / "figs" / "01_data_pairing" / "metrics.json")    # relative to GALIB_HOME
    assert m["params"]["seed"] == 7 and m["params"]["max_train"] == 256
    assert m["summary"]["n_train"] == 256 and m["dataset"] == "glyphs"
    assert (home / "figs" / "01_data_pairing" / "balance.png").is_file()
    assert sorted(p.name for p in cwd.iterdir()) == ["out.ipynb"]      # nothing else where we stand
    out = json.loads((cwd / "out.ipynb").read_text())
    shown = [o for c in out["cells"] if c.get("id") == "findings-code" for o in c["outputs"]]
    assert "256 images of 10 classes" in "".join(shown[0]["data"]["text/plain"])


def test_f_shipped_profile(where):
    cwd, home = where
    proc = _papermill(NB, cwd / "out.ipynb", "-f", PROFILE, cwd=cwd, home=home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = _metrics(home / "runs" / "lab" / "figures" / "01_data_pairing" / "metrics.json")
    for key, value in yaml.safe_load(PROFILE.read_text()).items():  # every value took effect
        assert m["params"][key] == value, key
    assert m["summary"]["n_train"] == m["params"]["max_train"]


def test_unknown_parameter_fails(where):
    cwd, home = where
    proc = _papermill(NB, "out.ipynb", "-p", "dataset", "glyphs", "-p", "epoch", 3, cwd=cwd, home=home)
    assert proc.returncode != 0
    assert "UnknownParameterError" in proc.stderr and "did you mean 'epochs'" in proc.stderr
    assert not (home / "runs" / "lab" / "figures" / "01_data_pairing").exists()


def test_help_notebook_lists_the_parameters(where):
    cwd, home = where
    proc = _papermill("--help-notebook", NB, cwd=cwd, home=home)
    assert proc.returncode == 0, proc.stderr
    for name in ("dataset", "epochs", "run_dir", "fig_dir", "interactive"):
        assert name in proc.stdout
    assert "None: <repo>/runs/lab/figures" in proc.stdout
