"""A notebook's parameters, read and checked without running it: what its ``parameters`` cell
declares (:func:`declared_in_notebook`, :func:`notebook_defaults`), which values are allowed
(:data:`NOTEBOOK_PARAMS`, :func:`check_notebook_params`), the config they make
(:func:`train_config`) and its paths resolved (:func:`resolve_params`: relative paths against
:func:`galib.paths.home`; ``run_dir = None`` is the study's own folder, :meth:`Study.run_dir`).

The notebooks (:func:`galib.notebook.context.setup`), the pipeline and the sweep all read a
notebook's parameters through here, so a value means the same wherever it is read.
"""
from __future__ import annotations

import ast
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Mapping

from ..paths import LAB, home, resolve_path
from ..train import TrainConfig
from ..train.limits import MAX_SEED, check_limits, seed_problem
from .registry import STUDIES

PAPERMILL_HEADER = "# Parameters"           # first line of papermill's injected cell
PARAMETERS_HEADER = "# Parameters:"         # first line of every notebook's own parameters cell


def default_run_dir(stem: str, cfg: TrainConfig) -> Path | None:
    """Where notebook ``stem`` run by hand keeps its runs: its study's folder under
    ``<home>/runs/lab``, keyed by ``cfg`` (:meth:`Study.run_dir`); ``None`` if it trains nothing."""
    study = STUDIES.get(stem)
    return None if study is None else study.run_dir(home() / LAB, cfg)


def train_config(params: Mapping, **overrides) -> TrainConfig:
    """``TrainConfig`` from the notebook parameters that are config fields (plus ``overrides``),
    validated (seeds and sizes within :mod:`galib.train.limits` too); the notebooks' own parameters are
    checked first (:func:`check_notebook_params`)."""
    check_notebook_params(params)
    names = {f.name for f in fields(TrainConfig)}
    d = {k: v for k, v in params.items() if k in names}
    d.update(overrides)
    return check_limits(TrainConfig.from_dict(d).validate())


def _positive(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _list_of(ok, empty: bool = True, none: bool = False):
    return lambda v: (none and v is None) or (isinstance(v, (list, tuple)) and (empty or len(v) > 0)
                                              and all(ok(x) for x in v))


def _in_unit(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 < v < 1.0


# The notebooks' parameters that are not TrainConfig fields: (what is allowed, check).
NOTEBOOK_PARAMS = {
    "seeds": (f"a list of training seeds, integers in [0, {MAX_SEED}], e.g. [42, 43], or None",
              _list_of(lambda x: seed_problem("seed", x) is None, none=True)),
    "taus": ("a non-empty list of thresholds in (0, 1), e.g. [0.3, 0.5]", _list_of(_in_unit, empty=False)),
    "init_test_taus": ("a list of thresholds in (0, 1), e.g. [0.5] (or [] or None: no test)",
                       _list_of(_in_unit, none=True)),
    "max_test": ("a positive integer or None (all)", lambda v: v is None or _positive(v)),
    "probe_max_train": ("a positive integer or None (all)", lambda v: v is None or _positive(v)),
    "probe_iters": ("a positive integer", _positive),
    "n_images": ("a positive integer", _positive),
    "baselines": ("a non-empty list of baseline names", _list_of(lambda x: isinstance(x, str), empty=False)),
    "baseline_seed_counts": ("a mapping of baseline names to a positive number of seeds, e.g. "
                             "{\"random2\": 3}, or None", lambda v: v is None or (
                                 isinstance(v, dict) and all(isinstance(k, str) and _positive(n)
                                                             for k, n in v.items()))),
    "designs": ("a list of design names or None", _list_of(lambda x: isinstance(x, str), none=True)),
    "datasets": ("a non-empty list of dataset names", _list_of(lambda x: isinstance(x, str), empty=False)),
    "models": ("a list of model names or None", _list_of(lambda x: isinstance(x, str), none=True)),
    "interactive": ("True or False", lambda v: isinstance(v, bool)),
}


def check_notebook_params(params: Mapping) -> None:
    """Raise ``ValueError`` naming the first notebook parameter (:data:`NOTEBOOK_PARAMS`) whose
    value is not allowed, and what is (e.g. ``-p taus 0.5``: a list is needed)."""
    for key, (allowed, ok) in NOTEBOOK_PARAMS.items():
        if key in params and not ok(params[key]):
            raise ValueError(f"{key} must be {allowed}; got {params[key]!r}")


def assigned_names(source: str) -> set[str]:
    """Names a cell assigns at top level (``name = ...``); empty if it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {t.id for s in tree.body if isinstance(s, (ast.Assign, ast.AnnAssign))
            for t in (s.targets if isinstance(s, ast.Assign) else [s.target]) if isinstance(t, ast.Name)}


def _first_line(source: str) -> str:
    return source.lstrip().split("\n", 1)[0].strip()


def injected_and_declared(history) -> tuple[set[str] | None, set[str] | None]:
    """From the kernel's input history (IPython's ``_ih``), the names papermill's last injected
    cell set (its first line is ``# Parameters``) and those the notebook's own parameters cell
    declares (first line ``# Parameters: …``) — ``None`` where no such cell ran."""
    injected = declared = None
    for src in reversed(list(history or [])):
        if not isinstance(src, str):
            continue
        first = _first_line(src)
        if injected is None and first == PAPERMILL_HEADER:
            injected = assigned_names(src)
        elif declared is None and first.startswith(PARAMETERS_HEADER):
            declared = assigned_names(src)
    return injected, declared


def parameters_source(nb: Mapping) -> str | None:
    """The source of the cell tagged ``parameters`` of a notebook (its JSON), or ``None``."""
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell["source"]
            return "".join(src) if isinstance(src, list) else src
    return None


def declared_in_notebook(path: str | os.PathLike) -> set[str] | None:
    """Names assigned by the cell tagged ``parameters`` of the notebook file at ``path``."""
    try:
        src = parameters_source(json.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return None
    return None if src is None else assigned_names(src)


def notebook_defaults(stem: str) -> dict:
    """The literal values the ``parameters`` cell of ``notebooks/<stem>.ipynb`` assigns (what the
    notebook runs with when nothing is injected)."""
    path = home() / "notebooks" / f"{stem}.ipynb"
    src = parameters_source(json.loads(path.read_text()))
    if src is None:
        raise ValueError(f"{path} has no cell tagged 'parameters'")
    return {t.id: ast.literal_eval(s.value) for s in ast.parse(src).body if isinstance(s, ast.Assign)
            for t in s.targets if isinstance(t, ast.Name)}


def notebook_config(stem: str, params: Mapping) -> tuple[dict, TrainConfig]:
    """What :func:`setup` makes of injected ``params`` without running the notebook: the full
    parameters (the notebook's defaults, then ``params``; paths resolved) and the config."""
    full = {**notebook_defaults(stem), **params}
    params = resolve_params(stem, full, train_config(full))
    return params, train_config(params)


def resolve_params(stem: str, params: Mapping, cfg: TrainConfig) -> dict:
    """``params`` with ``fig_dir``, ``run_dir`` and ``baseline_dir`` absolute (``None`` filled in:
    ``<home>/runs/lab/figures``, :func:`default_run_dir`, the folder holding ``run_dir``) and an
    explicit ``data_root`` absolute; every path against :func:`home`."""
    p = dict(params)
    p["fig_dir"] = str(resolve_path(p.get("fig_dir") or LAB / "figures", mkdir=False))
    if p.get("data_root") is not None:
        p["data_root"] = str(resolve_path(p["data_root"], mkdir=False))
    if "run_dir" in p:
        rd = p["run_dir"]
        rd = default_run_dir(stem, cfg) if rd is None else resolve_path(rd, mkdir=False)
        p["run_dir"] = None if rd is None else str(rd)
    if "baseline_dir" in p:
        bd = p["baseline_dir"]
        if bd is None and p.get("run_dir") is not None:
            bd = Path(p["run_dir"]).parent
        p["baseline_dir"] = None if bd is None else str(resolve_path(bd, mkdir=False))
    return p


