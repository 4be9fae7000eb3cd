"""The notebooks, in one table: their order, where their runs live, the trainings they need and
the scores they read.

The pipeline reads the order and the run folders from here, :mod:`galib.notebook.context` the
default (keyed) run folders, and the sweep the plan: :func:`notebook_trainings` gives, for a
notebook's parameters, exactly the trainings its study will open, and :func:`notebook_scorings`
the scores (rows, test scores, swaps, the probe-budget check) it will read, each built by the same
study functions, with the same settings, that the notebook calls.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from ..train import TrainConfig
from .baselines import baseline_scorings, baseline_trainings
from .blocked import BLOCKED_MODELS, blocked_scorings, blocked_trainings
from .blocked import eval_settings as blocked_settings
from .plan import DataRequest, Scoring, Training
from .probes import budget_scoring, design_trainings, swap_scorings
from .probes import eval_settings as probe_settings
from .tau import eval_settings as tau_settings
from .tau import tau_scorings, tau_trainings
from .training import ald_training, test_scoring

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
    scores: PlanFn | None = None       # (resolved parameters, config) → the scorings it reads


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


def _data(p: Mapping, cfg: TrainConfig) -> DataRequest:
    """The data a notebook's first cell loads (:func:`galib.notebook.context.setup`)."""
    return DataRequest.of(cfg, max_test=p.get("max_test"))


def _scores_02(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    return [test_scoring(_plan_02(p, cfg)[0], cfg.seed, _data(p, cfg))]


def _scores_03(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    return tau_scorings(cfg, p["taus"], p["run_dir"], p.get("seeds"), tau_settings(p), _data(p, cfg))


def _scores_04(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    return swap_scorings(cfg, p["run_dir"], p.get("designs") or [], p["baseline_dir"], cfg.seed,
                         _data(p, cfg))


def _scores_05(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    settings = probe_settings(p)
    out = baseline_scorings(cfg, p["baselines"], p["baseline_dir"], p.get("seeds"), settings, _data(p, cfg))
    if "ald" in p["baselines"]:
        out.append(budget_scoring(cfg, p["baseline_dir"], settings, _data(p, cfg),
                                  f"baselines/rows/ald/seed{cfg.seed}"))
    return out


def _scores_06(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    return blocked_scorings(cfg, p["datasets"], p["run_dir"], p.get("seeds"),
                            p.get("models") or BLOCKED_MODELS, blocked_settings(p))


_SHARED = {"family": "train", "sub": "ald", "pipeline_folder": "ald"}
NOTEBOOKS: dict[str, Notebook] = {nb.stem: nb for nb in (
    Notebook("01_data_pairing"),
    Notebook("02_training", **_SHARED, plan=_plan_02, scores=_scores_02),
    Notebook("03_mask_sparsity_vs_tau", "tau_sweep", swept=("tau",), pipeline_folder="tau_sweep",
             plan=_plan_03, scores=_scores_03),
    Notebook("04_latent_traversals", **_SHARED, extra_dirs={"baseline_dir": ""}, plan=_plan_04,
             scores=_scores_04),
    Notebook("05_linear_probe", **_SHARED, extra_dirs={"baseline_dir": ""}, plan=_plan_05,
             scores=_scores_05),
    Notebook("06_blocked", "blocked", swept=("dataset",), pipeline_folder="blocked", plan=_plan_06,
             scores=_scores_06),
)}
STEMS = tuple(NOTEBOOKS)


def notebook_trainings(stem: str, params: Mapping, cfg: TrainConfig) -> list[Training]:
    """The trainings notebook ``stem`` opens with these (resolved) parameters, keys prefixed with
    the notebook's number (``05:baselines/random/seed43``)."""
    return _tagged(stem, "plan", params, cfg)


def notebook_scorings(stem: str, params: Mapping, cfg: TrainConfig) -> list[Scoring]:
    """The scoring tasks of notebook ``stem`` with these (resolved) parameters: every score it will
    read, keys and needs prefixed with the notebook's number (``05:baselines/rows/ald/seed42``)."""
    return _tagged(stem, "scores", params, cfg)


def _tagged(stem: str, field_name: str, params: Mapping, cfg: TrainConfig) -> list:
    """The tasks of the notebook's ``field_name`` (``plan`` or ``scores``), keys and needs
    prefixed with its number."""
    if stem not in NOTEBOOKS:
        raise ValueError(f"unknown notebook {stem!r}; known: {list(NOTEBOOKS)}")
    make = getattr(NOTEBOOKS[stem], field_name)
    if make is None:
        return []
    tag = stem.split("_", 1)[0]
    return [replace(t, key=f"{tag}:{t.key}", needs=tuple(f"{tag}:{n}" for n in t.needs))
            for t in make(params, cfg)]
