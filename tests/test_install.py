"""``pip install`` of the package as a user gets it: built from a copy of the source (pyproject.toml,
README.md, LICENSE, galib/) into a fresh virtual environment, and checked there.

The fresh venv reuses the already installed dependencies, so the test stays offline and fast: it
is created without pip by this interpreter, and a ``.pth`` file puts this environment's
site-packages after its own (``--system-site-packages`` would not see a venv's packages). pip,
run from there, installs with ``--no-deps --no-build-isolation --no-index --ignore-installed``, so
it builds a wheel with the setuptools already installed and touches nothing outside the new venv.
The test then reads the installed metadata (dependencies, extras, console scripts) with
``importlib.metadata`` and runs each console script's ``--help`` from a folder outside the
repository.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("galib-train", "galib-figures", "galib-bench", "galib-baselines", "galib-sweep")
RUNTIME = {"torch", "torchvision", "numpy", "matplotlib", "tqdm"}
EXTRAS = {"notebooks": {"ipywidgets", "ipykernel", "jupyterlab", "papermill", "nbformat", "pyyaml"},
          "sweep": {"submitit", "ray"}, "test": {"pytest", "papermill", "nbformat", "submitit", "ray"}}

PROBE = r"""
import json, re, galib
from importlib import metadata
d = metadata.distribution("galib")
reqs = d.requires or []
def name(r): return re.split(r"[<>=!~ ;\[]", r, 1)[0].lower()
print(json.dumps({
    "file": galib.__file__,
    "location": str(d.locate_file("")),
    "runtime": sorted(name(r) for r in reqs if "extra ==" not in r),
    "extras": {e: sorted(name(r) for r in reqs if f'extra == "{e}"' in r)
               for e in d.metadata.get_all("Provides-Extra") or []},
    "requires": reqs,
    "scripts": {e.name: e.value for e in metadata.entry_points(group="console_scripts")
                if e.value.startswith("galib")},
    "license": d.metadata.get("License-Expression") or d.metadata.get("License"),
}))
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / f, src / f)
    shutil.copytree(ROOT / "galib", src / "galib", ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "_reuse_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--ignore-installed", str(src)],
                          cwd=tmp, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return env_dir, tmp


def _run(venv, *args):
    env_dir, tmp = venv
    return subprocess.run([str(a) for a in args], cwd=tmp, capture_output=True, text=True, timeout=300,
                          env={"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                               "HOME": str(tmp)})


def test_metadata(venv):
    env_dir, _ = venv
    proc = _run(venv, env_dir / "bin" / "python", "-c", PROBE)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["file"].startswith(str(env_dir)), info["file"]      # the installed copy, not the checkout
    assert set(info["runtime"]) == RUNTIME
    for extra, names in EXTRAS.items():
        assert names <= set(info["extras"].get(extra, [])), (extra, info["extras"])
    assert not any("<" in r for r in info["requires"]), "no machine-specific caps in the metadata"
    assert info["scripts"] == {"galib-train": "galib.tools:train_main",
                               "galib-figures": "galib.tools.pipeline:main",
                               "galib-bench": "galib.tools:bench_main",
                               "galib-baselines": "galib.tools:baselines_main",
                               "galib-sweep": "galib.tools.sweep:main"}
    assert info["license"] == "MIT"


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_script_help(venv, script):
    env_dir, _ = venv
    exe = env_dir / "bin" / script
    assert exe.is_file()
    proc = _run(venv, exe, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage:")


def test_requirements_and_constraints():
    """requirements.txt keeps lower bounds only; the torch cap lives in constraints-local.txt,
    which only the Makefile passes to pip."""
    reqs = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert reqs and not any("<" in r for r in reqs)
    caps = (ROOT / "constraints-local.txt").read_text()
    assert "torch<=" in caps and "torchvision<=" in caps
    make = (ROOT / "Makefile").read_text()
    assert "constraints-local.txt" in make and "-c $(CONSTRAINTS)" in make
    assert "ipykernel install --user" in make and "ipykernel install --sys-prefix" in make
