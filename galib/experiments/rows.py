"""Scored rows, computed once: the evaluation settings of a study and the row cache of a run.

:class:`EvalSettings` is what a study relays to :mod:`galib.evaluation` (the evaluation seed, the
test-image caps, the probe's budget) as one object instead of chains of keywords.
:func:`scored_row` scores a run once and keeps the row in ``<run_dir>/row.json``, reused while
the run, its data, the settings and :data:`ROW_VERSION` are unchanged.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..io import save_json

ROW_VERSION = 2                  # bump when the scores change meaning: cached rows are recomputed


@dataclass(frozen=True)
class EvalSettings:
    """How a study scores its models (every field has a default that runs as it is)."""
    seed: int = 0                          # evaluation seed: group elements, probe splits
    probe: bool = True                     # fit the linear probes
    max_images: int | None = None          # test images for evaluate_model's scores (None: all)
    max_test: int | None = None            # test images loaded with the data (None: all)
    probe_max_train: int | None = None     # training images per probe (None: all)
    probe_max_test: int | None = None      # test images per probe (None: all)
    probe_iters: int | None = None         # L-BFGS iterations per l2 (None: the probe's default)
    probe_l2: tuple | None = None          # the probe's l2 grid (None: the probe's default)
    extra: Callable | None = None          # extra(model, data) -> dict: more scores per split model
    jobs: int = 1                          # processes that score uncached rows side by side (not a score)

    def __post_init__(self):
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"EvalSettings.jobs must be a positive integer; got {self.jobs!r}")

    def probe_kwargs(self) -> dict:
        """Keywords of :func:`galib.evaluation.features.probe_model`."""
        kw = {"max_train": self.probe_max_train, "max_test": self.probe_max_test}
        fit = {}
        if self.probe_iters is not None:
            fit["max_iter"] = int(self.probe_iters)
        if self.probe_l2 is not None:
            fit["l2_grid"] = tuple(self.probe_l2)
        if fit:
            kw["fit_kwargs"] = fit
        return kw

    def cache_key(self) -> dict:
        """What the cached row depends on besides the run and the data."""
        return {"probe": self.probe, "seed": self.seed, "eval": {"max_images": self.max_images},
                "probe_kw": self.probe_kwargs(), "extra": describe_function(self.extra)}


def describe_function(fn) -> str | None:
    """A stable text for a scoring function (and a partial's arguments), for the row cache."""
    if fn is None:
        return None
    base = getattr(fn, "func", fn)
    args = (getattr(fn, "args", ()), getattr(fn, "keywords", {}))
    return f"{base.__module__}.{base.__qualname__}{args!r}"


def scored_row(run_dir: str | Path, row: dict, cfg, data, settings_key: dict, score: Callable[[], dict],
               label: str, verbose: bool = True) -> dict:
    """``row`` plus ``score()`` (and ``eval_seconds``), or the row cached in ``run_dir/row.json``
    when it was made from the same row fields, config, data and settings."""
    path = Path(run_dir) / "row.json"
    key = json.dumps({"row": {k: v for k, v in row.items() if k != "train_seconds"},
                      "config": None if cfg is None else asdict(cfg), "data": data.describe(),
                      **settings_key, "version": ROW_VERSION}, sort_keys=True, default=str)
    cached = _load_row(path, key)
    if cached is not None:
        if verbose:
            print(f"[galib] {label}: reusing {path}")
        return cached
    t0 = time.perf_counter()
    row = {**row, **score()}
    row["eval_seconds"] = time.perf_counter() - t0
    save_json({"key": key, "row": row}, path)
    if verbose:
        print(f"[galib] {label}: evaluated in {row['eval_seconds']:.1f}s")
    return row


def _load_row(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return saved["row"] if isinstance(saved, dict) and saved.get("key") == key else None
