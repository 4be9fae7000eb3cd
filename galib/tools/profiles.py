"""Profiles and notebook parameters: what the pipeline and the sweep both read.

A profile (``notebooks/params/<profile>.json``) holds ``common`` parameters, per-notebook
overrides under ``notebooks``, and optionally ``threads``, ``fig_dir`` (the profiles whose figures
are committed name theirs; the others write under ``runs/<profile>/figures``) and ``only`` (the
notebooks it is meant for, e.g. ``"01,02,04"`` for the 3-D profile; ``--only`` overrides it).
"""
from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path

from ..paths import home
from ..studies.params import declared_in_notebook
from ..studies.registry import STEMS, STUDIES

ROOT = home()                       # the source checkout (notebooks/ beside galib/) or $GALIB_HOME
NOTEBOOK_DIR = ROOT / "notebooks"
PARAMS_DIR = NOTEBOOK_DIR / "params"
PUBLISH_DIR = "notebooks"           # under fig_dir: the executed notebooks, with outputs
NOTEBOOKS = STEMS                   # in order (galib.studies.registry)
DEFAULT_RUN_FOLDER = STUDIES["02_training"].folder   # what 01 names as its (unused) run_dir


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
    prof.setdefault("name", path.stem)
    check_profile(prof, where=f"profile {path.name}")
    return prof


# ----------------------------------------------------------------------------- checks
def declared(stem: str) -> frozenset[str]:
    """The parameters notebook ``stem`` declares (the names its ``parameters`` cell assigns)."""
    path = NOTEBOOK_DIR / f"{stem}.ipynb"
    try:
        return _declared(str(path), path.stat().st_mtime_ns)
    except OSError as err:
        raise PipelineError(f"notebook {path} cannot be read ({err.strerror or err}); run the "
                            f"pipeline in a source checkout") from None


@functools.lru_cache(maxsize=32)
def _declared(path: str, _mtime: int) -> frozenset[str]:
    names = declared_in_notebook(path)
    if names is None:
        raise PipelineError(f"notebook {path} has no readable cell tagged 'parameters'")
    return frozenset(names)


def check_profile(prof: dict, stems=None, overrides: dict | None = None,
                  where: str | None = None) -> None:
    """A one-line :class:`PipelineError` unless ``prof`` is well-formed for the notebooks ``stems``
    (default: the profile's ``only``, else all): ``common`` and each ``notebooks`` entry a mapping
    of parameters; each name in ``common`` declared by every notebook in ``stems``; each name of
    an entry declared by its notebook; each name in ``overrides`` (``--set``) by one of ``stems``;
    ``threads`` a positive integer. Values are checked where the notebooks' configs are built
    (:func:`galib.notebook.context.notebook_config`)."""
    where = where or f"profile {prof.get('name', '?')!r}"
    common, entries = prof.get("common", {}), prof.get("notebooks", {})
    _need_mapping(common, f"{where}: common", 'parameters for every notebook, e.g. {"epochs": 3}')
    _need_mapping(entries, f"{where}: notebooks",
                  'one entry per notebook, e.g. {"02_training": {"epochs": 3}}')
    unknown = sorted(set(entries) - set(NOTEBOOKS))
    if unknown:
        raise PipelineError(f"{where} names unknown notebooks {unknown}; known: {list(NOTEBOOKS)}")
    threads = prof.get("threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise PipelineError(f"{where}: threads must be a positive integer; got {threads!r}")
    only = prof.get("only")
    if only is not None and not (isinstance(only, str) or (isinstance(only, list) and all(
            isinstance(o, str) for o in only))):
        raise PipelineError(f"{where}: only must be comma-separated notebook prefixes, e.g. \"01,02\"; "
                            f"got {only!r}")
    stems = select_notebooks(stems if stems is not None else only)
    _check_names(f"{where}: common", common, stems, every=True)
    for stem, entry in entries.items():
        _need_mapping(entry, f"{where}: notebooks.{stem}",
                      'parameters of that notebook, e.g. {"epochs": 3}')
        _check_names(f"{where}: notebooks.{stem}", entry, [stem], every=True)
    _check_names("--set", overrides or {}, stems, every=False)


def _need_mapping(value, what: str, expected: str) -> None:
    if not isinstance(value, dict):
        raise PipelineError(f"{what} must be a JSON object of {expected}; got a "
                            f"{type(value).__name__} ({value!r:.60})")


def _check_names(what: str, params: dict, stems: list[str], every: bool) -> None:
    """Every name in ``params`` declared by every (``every``) or some notebook of ``stems``."""
    sets = [declared(s) for s in stems]
    allowed = set.intersection(*map(set, sets)) if every else set().union(*sets)
    bad = sorted(k for k in params if k not in allowed)
    if not bad:
        return
    notes = []
    for key in bad:
        lacking = [s for s, names in zip(stems, sets) if key not in names]
        if len(lacking) < len(stems):
            notes.append(f"{key!r} is not declared by {', '.join(lacking)}")
        else:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            notes.append(f"{key!r}: did you mean {close[0]!r}?" if close
                         else f"{key!r} is declared by no notebook")
    raise PipelineError(f"{what}: unknown parameter(s) {bad} ({'; '.join(notes)}); allowed there: "
                        f"{sorted(allowed)}")


def flat_parameters(profile: dict, stem: str, overrides: dict | None = None) -> dict:
    """The profile's parameters of notebook ``stem``, without paths: ``common``, then the
    notebook's own entries, then those of ``overrides`` it declares (``--set``: every notebook
    that declares the name), and ``interactive=False``. This is what
    ``notebooks/params/<profile>/<stem>.yaml`` holds for ``papermill -f``."""
    mine = {k: v for k, v in (overrides or {}).items() if k in declared(stem)} if overrides else {}
    return {**profile.get("common", {}), **profile.get("notebooks", {}).get(stem, {}),
            **mine, "interactive": False}


def notebook_parameters(profile: dict, stem: str, fig_dir: Path, run_root: Path,
                        overrides: dict | None = None) -> dict:
    """Parameters papermill injects into notebook ``stem``: :func:`flat_parameters` plus
    ``run_dir`` (and 05's ``baseline_dir``) under ``run_root`` and ``fig_dir``."""
    p = flat_parameters(profile, stem, overrides)
    base = Path(run_root) / profile["name"] / str(p.get("dataset", "auto"))
    run_dir = STUDIES[stem].run_dir(base) or base / DEFAULT_RUN_FOLDER
    p["run_dir"] = str(run_dir)
    if STUDIES[stem].baselines:
        p["baseline_dir"] = str(run_dir.parent)
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


