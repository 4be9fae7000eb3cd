"""What every notebook does first and last: parameters → config, data, group, title and run
folder (:func:`setup`), and the ``metrics.json`` it ends with (:meth:`Context.finish`).

**Paths.** Relative ``run_dir``, ``fig_dir``, ``baseline_dir`` and ``data_root`` resolve against
:func:`galib.paths.home`, never against the kernel's working directory, so ``papermill`` gives the
same result from any folder.
``data_root = None`` means ``$GALIB_DATA_ROOT``, else ``<home>/data`` (:func:`setup` sets
``$GALIB_DATA_ROOT`` in the kernel, so the studies' own dataset loads look there too; the config's
``data_root`` stays ``None``, so run folders and cached rows do not depend on the path).

**Run folders.** ``run_dir = None`` picks a folder keyed by the configuration,
``<home>/runs/lab/<family>/<dataset>-<group>-<key>`` (:meth:`galib.studies.registry.Study.run_dir`,
the one rule for where a study's runs live): the key hashes every ``TrainConfig`` field that
changes what is trained (:func:`galib.studies.registry.run_key`), so ``-p tau 0.3`` gets its own
run and another ``epochs`` never reuses a shorter or longer one. 02, 04 and 05 share a family, so
they find each other's ALD run; 05's baselines train beside it. :func:`setup` prints the folder and
whether it holds a finished run.

**Parameter check.** Under papermill, a name injected with ``-p``/``-f`` that the notebook's
``parameters`` cell does not declare raises :class:`UnknownParameterError` in :func:`setup`
(papermill itself only logs a warning and the notebook would run its own defaults).
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from ..datasets import DataSplits, load_dataset
from ..devices import configure_threads
from ..groups import Group, get_group
from ..io import jsonable, save_json
from ..paths import COMMAND_ENV, DATA_ENV, display_path, home, relative_paths, resolve_path, source_commit
from ..studies.params import (declared_in_notebook, default_run_dir, injected_and_declared, resolve_params,
                              train_config)
from ..studies.plotting import tag
from ..train import TrainConfig

_LITERALS = (int, float, str, bool, type(None), list, tuple, dict)
PATH_PARAMS = ("run_dir", "fig_dir", "baseline_dir", "data_root")


class UnknownParameterError(ValueError):
    """papermill injected a parameter the notebook does not declare."""


def describe_run_dir(run_dir: Path, cfg: TrainConfig) -> str:
    """One line on what ``run_dir`` holds: a finished run, an unfinished one, earlier runs, or nothing."""
    hist = run_dir / "history.json"
    if hist.is_file():
        try:
            done = len(json.loads(hist.read_text()).get("history", []))
        except (OSError, ValueError):
            done = None
        if done is not None and done >= cfg.epochs:
            return f"reusing its finished run ({done} epoch{'s' if done != 1 else ''})"
        if done is not None:
            return f"resuming its run at epoch {done}/{cfg.epochs}"
    runs = sorted(p.parent.relative_to(run_dir).as_posix() for p in run_dir.glob("**/history.json"))
    if runs:
        shown = ", ".join(runs[:6]) + (", …" if len(runs) > 6 else "")
        return f"holds {len(runs)} earlier run(s), reused where they match ({shown})"
    return "new"


# ----------------------------------------------------------------------------- parameters
def collect_params(namespace: Mapping, before: set | frozenset) -> dict:
    """The parameters a notebook defined (names new since ``before`` holding plain literals)."""
    return {k: v for k, v in namespace.items()
            if k not in before and not k.startswith("_") and isinstance(v, _LITERALS)}


def check_injected(stem: str, namespace: Mapping) -> None:
    """Raise :class:`UnknownParameterError` if papermill injected a name the notebook's parameters
    cell does not declare (a typo such as ``-p epoch 3``). Needs no papermill: it reads the
    kernel's input history; outside papermill (no injected cell) it checks nothing."""
    injected, declared = injected_and_declared(namespace.get("_ih"))
    if not injected:
        return
    if declared is None:
        declared = declared_in_notebook(home() / "notebooks" / f"{stem}.ipynb")
    if declared is None:
        return
    unknown = sorted(injected - declared)
    if unknown:
        hints = {u: difflib.get_close_matches(u, declared, n=1) for u in unknown}
        hint = "; ".join(f"{u!r}: did you mean {m[0]!r}?" for u, m in hints.items() if m)
        raise UnknownParameterError(
            f"{stem}: unknown parameter(s) {unknown} (injected by papermill -p/-f/-y). "
            f"{hint + ' ' if hint else ''}Declared: {sorted(declared)}")


# ----------------------------------------------------------------------------- setup / finish
@dataclass
class Context:
    """A notebook's parameters and what its first cell builds from them."""
    stem: str                 # the notebook's name, e.g. "02_training"
    params: dict              # its parameters (flat literals, paths resolved), as in metrics.json
    out: Path                 # {fig_dir}/{stem}: its figures and metrics.json
    cfg: TrainConfig
    data: DataSplits
    group: Group
    title: str                # figure-title suffix, e.g. "fashion-mnist · c4 · τ = 0.5"
    run_dir: Path | None = None   # where this notebook trains (None: it does not)
    metrics: dict | None = field(default=None, repr=False)  # what finish wrote

    def provenance(self) -> dict:
        """Where a file this notebook writes comes from: its ``params`` (paths relative to the
        repository), the ``commit`` and the ``command``."""
        command = os.environ.get(COMMAND_ENV) or f"notebooks/{self.stem}.ipynb (Jupyter or papermill)"
        return relative_paths({"commit": source_commit(), "command": command, "params": self.params})

    def finish(self, metrics: Mapping) -> dict:
        """Write ``{out}/metrics.json`` (atomically): ``notebook``, ``dataset``, ``commit``,
        ``command``, ``params``, ``data`` and then ``metrics``, every path relative to the
        repository; keeps it as ``self.metrics`` (for :mod:`galib.studies.registry.report`) and returns
        its ``summary`` for the cell to show."""
        full = {"notebook": self.stem, "dataset": self.data.name, **self.provenance(),
                "data": self.data.describe(), **metrics}
        self.metrics = relative_paths(jsonable(full))
        write_metrics(self.metrics, self.out.parent, self.stem)
        return full.get("summary")


def setup(stem: str, namespace: Mapping, before: set | frozenset, title_with=("tau",)) -> Context:
    """Everything a notebook builds from its parameters: ``collect_params`` (papermill-injected
    names checked by :func:`check_injected`), paths resolved (:func:`resolve_params`; the run
    folder printed), the validated ``TrainConfig``, the data (``max_test`` capped), the group and
    the title, which names ``tau`` and any other parameter
    listed in ``title_with``. Seeds torch with ``seed``."""
    check_injected(stem, namespace)
    configure_threads()                  # 1 per kernel (OMP_NUM_THREADS or the fixed default)
    params = collect_params(namespace, before)
    if params.get("data_root") is None and not os.environ.get(DATA_ENV):
        os.environ[DATA_ENV] = str(home() / "data")     # this kernel's default: <home>/data
    cfg0 = train_config(params)
    params = resolve_params(stem, params, cfg0)
    cfg = train_config(params)
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset, cfg.data_root, seed=cfg.seed, max_train=cfg.max_train,
                        max_test=params.get("max_test"), val_fraction=cfg.val_fraction)
    extra = {k: params[k] for k in title_with if k != "tau"}
    title = tag(data.name, cfg.group, cfg.tau if "tau" in title_with else None, **extra)
    out = resolve_path(Path(params["fig_dir"]) / stem)
    run_dir = Path(params["run_dir"]) if params.get("run_dir") and default_run_dir(stem, cfg) is not None else None
    if run_dir is not None:
        print(f"[galib] run folder {display_path(run_dir)}: {describe_run_dir(run_dir, cfg)}")
    return Context(stem, params, out, cfg, data, get_group(cfg.group), title, run_dir)


def write_metrics(metrics: Mapping, fig_dir: str | os.PathLike, stem: str) -> Path:
    """Write ``{fig_dir}/{stem}/metrics.json`` atomically; returns its path."""
    path = Path(fig_dir) / stem / "metrics.json"
    save_json(jsonable(metrics), path)
    return path
