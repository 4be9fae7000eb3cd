"""What every notebook does first and last: parameters → config, data, group and title
(:func:`setup`), and the ``metrics.json`` it ends with (:meth:`Context.finish`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..datasets import DataSplits, load_dataset
from ..groups import Group, get_group
from ..io import jsonable, save_json
from ..train import TrainConfig
from .figures import tag

_LITERALS = (int, float, str, bool, type(None), list, tuple, dict)


def collect_params(namespace: Mapping, before: set | frozenset) -> dict:
    """The parameters a notebook defined (names new since ``before`` holding plain literals)."""
    return {k: v for k, v in namespace.items()
            if k not in before and not k.startswith("_") and isinstance(v, _LITERALS)}


def train_config(params: Mapping, **overrides) -> TrainConfig:
    """``TrainConfig`` from the notebook parameters that are config fields (plus ``overrides``)."""
    names = {f.name for f in fields(TrainConfig)}
    d = {k: v for k, v in params.items() if k in names}
    d.update(overrides)
    return TrainConfig.from_dict(d).validate()


def resolve_path(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p.resolve()


@dataclass
class Context:
    """A notebook's parameters and what its first cell builds from them."""
    stem: str                 # the notebook's name, e.g. "02_training"
    params: dict              # its parameters (flat literals), as recorded in metrics.json
    out: Path                 # {fig_dir}/{stem}: its figures and metrics.json
    cfg: TrainConfig
    data: DataSplits
    group: Group
    title: str                # figure-title suffix, e.g. "fashion-mnist · c4 · τ = 0.5"

    def finish(self, metrics: Mapping) -> dict:
        """Write ``{out}/metrics.json`` (atomically): ``notebook``, ``dataset``, ``params``,
        ``data`` and then ``metrics``; returns its ``summary`` for the cell to show."""
        full = {"notebook": self.stem, "dataset": self.data.name, "params": self.params,
                "data": self.data.describe(), **metrics}
        write_metrics(full, self.out.parent, self.stem)
        return full.get("summary")


def setup(stem: str, namespace: Mapping, before: set | frozenset, title_with=("tau",)) -> Context:
    """Everything a notebook builds from its parameters: ``collect_params``, the output folder,
    the validated ``TrainConfig``, the data (``max_test`` capped), the group and the title, which
    names ``tau`` and any other parameter listed in ``title_with``. Seeds torch with ``seed``."""
    params = collect_params(namespace, before)
    cfg = train_config(params)
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset, cfg.data_root, seed=cfg.seed, max_train=cfg.max_train,
                        max_test=params.get("max_test"), val_fraction=cfg.val_fraction)
    extra = {k: params[k] for k in title_with if k != "tau"}
    title = tag(data.name, cfg.group, cfg.tau if "tau" in title_with else None, **extra)
    out = resolve_path(Path(params["fig_dir"]) / stem)
    return Context(stem, params, out, cfg, data, get_group(cfg.group), title)


def write_metrics(metrics: Mapping, fig_dir: str | os.PathLike, stem: str) -> Path:
    """Write ``{fig_dir}/{stem}/metrics.json`` atomically; returns its path."""
    path = Path(fig_dir) / stem / "metrics.json"
    save_json(jsonable(metrics), path)
    return path


def flat_scalars(d: Mapping, prefix: str = "", skip: tuple[str, ...] = ("per_element",)) -> dict:
    """Nested dict → ``{"a.b": number}`` for a ``summary`` block; per-element entries (keys in
    ``skip`` or containing ``/``, e.g. ``recon_mse/90°``) and non-numbers are left out."""
    out = {}
    for k, v in d.items():
        if k in skip or "/" in str(k):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flat_scalars(v, key + ".", skip))
        elif isinstance(v, (int, float, np.generic)) and not isinstance(v, bool):
            out[key] = float(v) if isinstance(v, (float, np.floating)) else int(v)
    return out
