"""Fast checks of galib.notebook.context: parameters, the training config and metrics.json."""
from __future__ import annotations

import json
import math

import pytest
import torch

from galib.notebook.context import collect_params, flat_scalars, train_config, write_metrics


def test_collect_params_and_config():
    before = {"x"}
    ns = {"x": 1, "tau": 0.3, "epochs": 2, "_hidden": 1, "fn": print, "max_train": None}
    params = collect_params(ns, before)
    assert params == {"tau": 0.3, "epochs": 2, "max_train": None}
    cfg = train_config({**params, "fig_dir": "f", "interactive": False})
    assert cfg.tau == 0.3 and cfg.epochs == 2
    with pytest.raises(ValueError):
        train_config({"tau": 1.5})


def test_metrics_file(tmp_path):
    m = {"a": torch.tensor([1.0, 2.0]), "b": float("nan"), "c": (1, 2), "p": tmp_path}
    path = write_metrics(m, tmp_path, "stem")
    back = json.loads(path.read_text())
    assert back["a"] == [1.0, 2.0] and math.isnan(back["b"]) and back["c"] == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]   # no temporary left
    flat = flat_scalars({"recon_mse": 0.1, "recon_mse/90°": 0.2, "n": 3, "names": ["a"],
                             "sub": {"x": 1.5}, "per_element": {"0": 1.0}})
    assert flat == {"recon_mse": 0.1, "n": 3, "sub.x": 1.5}
