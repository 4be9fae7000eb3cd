"""The notebooks, in one table: their order, where their runs live, and the trainings they need.

The pipeline reads the order and the run folders from here, :mod:`galib.notebook.context` the
default (keyed) run folders, and the sweep the plan: :func:`notebook_trainings` gives, for a
notebook's parameters, exactly the trainings its study will open, built by the same study
functions the notebook calls.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from ..train import TrainConfig
from .baselines import baseline_trainings
from .blocked import BLOCKED_MODELS, blocked_trainings
from .plan import DataRequest, Training
from .probes import design_trainings
from .tau import tau_trainings
from .training import ald_training

PlanFn = Callable[[Mapping, TrainConfig], list]


@dataclass(frozen=True)
class Notebook:
    stem: str                          # file name without .ipynb
    family: str | None = None          # keyed run folders: runs/lab/<family>/<label>-<key>[/<sub>]
    sub: str = ""                      # sub-folder of the keyed folder ("ald": 02/04/05 share it)
    swept: tuple[str, ...] = ()        # config fields its study sweeps (left out of the run key)
    pipeline_folder: str | None = None  # the pipeline's run_dir: <run-root>/<profile>/<dataset>/<this>
    extra_dirs: dict = field(default_factory=dict)   # other folder parameters the pipeline sets
    plan: PlanFn | None = None         # (resolved parameters, config) → the trainings it opens


def _plan_02(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return [ald_training(cfg, p["run_dir"], p.get("max_test"))]


def _plan_03(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return tau_trainings(cfg, p["taus"], p["run_dir"], p.get("seeds"),
                         DataRequest.of(cfg, max_test=p.get("max_test")), p.get("init_test_taus") or ())


def _plan_04(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return _plan_02(p, cfg) + design_trainings(cfg, p.get("designs") or [], p["baseline_dir"])


def _plan_05(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return baseline_trainings(cfg, p["baselines"], p["baseline_dir"], p.get("seeds"),
                              DataRequest.of(cfg, max_test=p.get("max_test")))


def _plan_06(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return blocked_trainings(cfg, p["datasets"], p["run_dir"], p.get("seeds"),
                             p.get("models") or BLOCKED_MODELS, p.get("max_test"))


_SHARED = {"family": "train", "sub": "ald", "pipeline_folder": "ald"}
NOTEBOOKS: dict[str, Notebook] = {nb.stem: nb for nb in (
    Notebook("01_data_pairing"),
    Notebook("02_training", **_SHARED, plan=_plan_02),
    Notebook("03_mask_sparsity_vs_tau", "tau_sweep", swept=("tau",), pipeline_folder="tau_sweep",
             plan=_plan_03),
    Notebook("04_latent_traversals", **_SHARED, extra_dirs={"baseline_dir": ""}, plan=_plan_04),
    Notebook("05_linear_probe", **_SHARED, extra_dirs={"baseline_dir": ""}, plan=_plan_05),
    Notebook("06_blocked", "blocked", swept=("dataset",), pipeline_folder="blocked", plan=_plan_06),
)}
STEMS = tuple(NOTEBOOKS)


def notebook_trainings(stem: str, params: Mapping, cfg: TrainConfig) -> list[Training]:
    """The trainings notebook ``stem`` opens with these (resolved) parameters, keys prefixed with
    the notebook's number (``05:baselines/random/seed43``)."""
    if stem not in NOTEBOOKS:
        raise ValueError(f"unknown notebook {stem!r}; known: {list(NOTEBOOKS)}")
    nb = NOTEBOOKS[stem]
    if nb.plan is None:
        return []
    tag = stem.split("_", 1)[0]
    return [replace(t, key=f"{tag}:{t.key}", needs=tuple(f"{tag}:{n}" for n in t.needs))
            for t in nb.plan(params, cfg)]
