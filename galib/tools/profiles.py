"""Profiles and notebook parameters: what the pipeline and the sweep both read.

A profile (``notebooks/params/<profile>.json``) holds ``common`` parameters, per-notebook
overrides under ``notebooks``, and optionally ``threads``, ``fig_dir`` (the profiles whose figures
are committed name theirs; the others write under ``runs/<profile>/figures``) and ``only`` (the
notebooks it is meant for, e.g. ``"01,02,04"`` for the 3-D profile; ``--only`` overrides it).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..experiments.registry import NOTEBOOKS as REGISTRY
from ..experiments.registry import STEMS
from ..notebook.context import home

ROOT = home()                       # the source checkout (notebooks/ beside galib/) or $GALIB_HOME
NOTEBOOK_DIR = ROOT / "notebooks"
PARAMS_DIR = NOTEBOOK_DIR / "params"
PUBLISH_DIR = "notebooks"           # under fig_dir: the executed notebooks, with outputs
NOTEBOOKS = STEMS                   # in order (galib.experiments.registry)
DEFAULT_RUN_FOLDER = "ald"          # 02, 04 and 05 share this run (and 01 names it, unused)


class PipelineError(RuntimeError):
    """A notebook failed or the profile is invalid; the message names what and where."""


def need_checkout() -> None:
    if not NOTEBOOK_DIR.is_dir():
        raise PipelineError(f"no notebooks/ folder at {ROOT}: the pipeline runs the notebooks of a "
                            f"source checkout; run it inside a clone of the repository or set "
                            f"GALIB_HOME to one")


def load_profile(name_or_path: str) -> dict:
    """Profile dict from ``notebooks/params/<name>.json`` or an explicit path."""
    path = Path(name_or_path)
    if not path.suffix:
        need_checkout()
        path = PARAMS_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(p.stem for p in PARAMS_DIR.glob("*.json"))
        raise PipelineError(f"no profile {name_or_path!r} (looked for {path}); known: {known}")
    try:
        prof = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise PipelineError(f"profile {path} cannot be read: {err}") from None
    if not isinstance(prof, dict):
        raise PipelineError(f"profile {path} must hold a JSON object; got {type(prof).__name__}")
    unknown = set(prof.get("notebooks", {})) - set(NOTEBOOKS)
    if unknown:
        raise PipelineError(f"profile {path.name} names unknown notebooks {sorted(unknown)}")
    prof.setdefault("name", path.stem)
    return prof


def flat_parameters(profile: dict, stem: str, overrides: dict | None = None) -> dict:
    """The profile's parameters of notebook ``stem``, without paths: ``common``, then the
    notebook's own entries, then ``overrides``, and ``interactive=False``. This is what
    ``notebooks/params/<profile>/<stem>.yaml`` holds for ``papermill -f``."""
    return {**profile.get("common", {}), **profile.get("notebooks", {}).get(stem, {}),
            **(overrides or {}), "interactive": False}


def notebook_parameters(profile: dict, stem: str, fig_dir: Path, run_root: Path,
                        overrides: dict | None = None) -> dict:
    """Parameters papermill injects into notebook ``stem``: :func:`flat_parameters` plus
    ``run_dir`` (and 05's ``baseline_dir``) under ``run_root`` and ``fig_dir``."""
    p = flat_parameters(profile, stem, overrides)
    base = Path(run_root) / profile["name"] / str(p.get("dataset", "auto"))
    p["run_dir"] = str(base / (REGISTRY[stem].pipeline_folder or DEFAULT_RUN_FOLDER))
    for key, folder in REGISTRY[stem].extra_dirs.items():
        p[key] = str(base / folder)
    p["fig_dir"] = str(fig_dir)
    return p


def select_notebooks(only=None) -> list[str]:
    """The notebooks whose names start with one of ``only`` (all when ``None``), in order. Spaces
    around entries are ignored; an empty entry or one that matches no notebook is an error."""
    if only is None:
        return list(NOTEBOOKS)
    entries = [o.strip() for o in (only.split(",") if isinstance(only, str) else only)]
    bad = [o for o in entries if not o or not any(s.startswith(o) for s in NOTEBOOKS)]
    if bad or not entries:
        raise PipelineError(f"--only {','.join(entries)!r}: {bad or 'nothing'} matches no notebook; "
                            f"give comma-separated prefixes of {list(NOTEBOOKS)}")
    return [s for s in NOTEBOOKS if any(s.startswith(o) for o in entries)]


def default_fig_dir(profile: dict) -> Path:
    """Where a profile's figures go: its ``fig_dir`` (the committed profile: ``figures``), else
    ``runs/<profile>/figures`` — trying another profile never touches the committed figures."""
    return (ROOT / profile.get("fig_dir", Path("runs") / profile["name"] / "figures")).resolve()


