"""The studies, in one table: each notebook's file, its study module, where its runs live, the
trainings it needs, the scores it reads and the ``metrics.json`` keys its findings read.

A study is one module of :mod:`galib.studies` (its plan, rows, figures and ``findings``) plus one
:class:`Study` line here plus its notebook. The pipeline reads the order from here, the notebooks
their run folders (:meth:`Study.run_dir`, the one rule for where a study's runs live), and the sweep
the plan: :func:`study_trainings` gives, for a notebook's parameters, exactly the trainings its
study will open, and :func:`study_scorings` the scores (rows, test scores, swaps, the probe-budget
check) it will read, each built by the same study functions, with the same settings, that the
notebook calls. :func:`report` gives a run's findings in sentences.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Callable, Mapping

from ..experiments.plan import DataRequest, Scoring, Training
from ..train import TrainConfig
from ..train.config import RENAMED, key_fields
from . import blocked, pairing, probes, tau, training, traversals
from .baselines import baseline_scorings, baseline_trainings
from .wording import Findings

PlanFn = Callable[[Mapping, TrainConfig], list]
# Config fields that do not change what a run computes: left out of the run key.
KEY_FREE = ("device", "data_root", "amp")


@dataclass(frozen=True)
class Study:
    """One notebook and its study."""
    stem: str                          # the notebook's file name without .ipynb
    module: ModuleType                 # its study: plan, rows, figures and ``findings(metrics)``
    reads: tuple[str, ...] = ()        # the metrics.json keys its findings read
    folder: str | None = None          # its runs' folder (None: it trains nothing); "ald": 02/04/05 share it
    family: str | None = None          # the lab's keyed folder family (default: ``folder``)
    swept: tuple[str, ...] = ()        # config fields its study sweeps (left out of the run key)
    baselines: bool = False            # it declares ``baseline_dir``: the folder holding ``run_dir``
    plan: PlanFn | None = None         # (resolved parameters, config) → the trainings it opens
    scores: PlanFn | None = None       # (resolved parameters, config) → the scorings it reads

    @property
    def notebook(self) -> str:
        """Its notebook, relative to the checkout."""
        return f"notebooks/{self.stem}.ipynb"

    def run_dir(self, root: str | Path, cfg: TrainConfig | None = None) -> Path | None:
        """Where its runs live under ``root``, the one rule: ``root/<folder>`` (the pipeline's
        ``<run-root>/<profile>/<dataset>``); with ``cfg`` (a notebook run by hand, ``root`` =
        ``<home>/runs/lab``) a folder keyed by the config, ``root/<family>/<dataset>-<group>-<key>``
        (``/<folder>`` when the family differs from it), so another ``tau`` or ``epochs`` gets its
        own run. ``None`` for a study that trains nothing."""
        if self.folder is None:
            return None
        if cfg is None:
            return Path(root) / self.folder
        family = self.family or self.folder
        label = "-".join(str(getattr(cfg, k)) for k in ("dataset", "group") if k not in self.swept)
        label = re.sub(r"[^A-Za-z0-9._]+", "-", label).strip("-")[:40]
        path = Path(root) / family / f"{label}-{run_key(cfg, self.swept)}"
        return path if family == self.folder else path / self.folder


def run_key(cfg: TrainConfig, exclude=()) -> str:
    """A short hash of the config fields that define a run (all but ``KEY_FREE`` and
    ``exclude``), under the names they had before the renaming
    (:func:`~galib.train.config.key_fields`), so folders keyed before it keep their keys; ints given for float fields count as the
    same float."""
    floats = {f.name for f in fields(TrainConfig) if isinstance(f.default, float)}
    floats |= {old for old, new in RENAMED.items() if new in floats}
    d = {}
    for name, v in key_fields(cfg).items():
        if name in KEY_FREE or name in exclude:
            continue
        if name in floats and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        d[name] = v
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def _data(p: Mapping, cfg: TrainConfig) -> DataRequest:
    """The data a notebook's first cell loads (:func:`galib.notebook.context.setup`)."""
    return DataRequest.of(cfg, max_test=p.get("max_test"))


def _plan_02(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return [training.ald_training(cfg, p["run_dir"], p.get("max_test"))]


def _plan_03(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return tau.tau_trainings(cfg, p["taus"], p["run_dir"], p.get("seeds"), _data(p, cfg),
                             p.get("init_test_taus") or ())


def _plan_04(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return _plan_02(p, cfg) + traversals.design_trainings(cfg, p.get("designs") or [], p["baseline_dir"])


def _plan_05(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return baseline_trainings(cfg, p["baselines"], p["baseline_dir"], probes.baseline_seeds(p), _data(p, cfg))


def _plan_06(p: Mapping, cfg: TrainConfig) -> list[Training]:
    return blocked.blocked_trainings(cfg, p["datasets"], p["run_dir"], p.get("seeds"),
                                     p.get("models") or blocked.BLOCKED_MODELS, p.get("max_test"))


def _scores_02(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    return [training.test_scoring(_plan_02(p, cfg)[0], cfg.seed, _data(p, cfg))]


def _scores_03(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    return tau.tau_scorings(cfg, p["taus"], p["run_dir"], p.get("seeds"), tau.eval_settings(p),
                            _data(p, cfg))


def _scores_04(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    return traversals.swap_scorings(cfg, p["run_dir"], p.get("designs") or [], p["baseline_dir"],
                                    cfg.seed, _data(p, cfg))


def _scores_05(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    settings = probes.eval_settings(p)
    out = baseline_scorings(cfg, p["baselines"], p["baseline_dir"], probes.baseline_seeds(p), settings,
                            _data(p, cfg))
    if "ald" in p["baselines"]:
        out.append(probes.budget_scoring(cfg, p["baseline_dir"], settings, _data(p, cfg),
                                         f"baselines/rows/ald/seed{cfg.seed}"))
    return out


def _scores_06(p: Mapping, cfg: TrainConfig) -> list[Scoring]:
    return blocked.blocked_scorings(cfg, p["datasets"], p["run_dir"], p.get("seeds"),
                                    p.get("models") or blocked.BLOCKED_MODELS, blocked.eval_settings(p))


_SHARED = {"folder": "ald", "family": "train"}
STUDIES: dict[str, Study] = {s.stem: s for s in (
    Study("01_data_pairing", pairing, reads=("summary", "element_counts")),
    Study("02_training", training, ("summary", "history"), **_SHARED, plan=_plan_02, scores=_scores_02),
    Study("03_mask_sparsity_vs_tau", tau, ("by_tau", "mask_dynamics", "init_test_text"),
          folder="tau_sweep", swept=("tau",), plan=_plan_03, scores=_scores_03),
    Study("04_latent_traversals", traversals, ("summary", "orbit_mse", "params"), **_SHARED,
          baselines=True, plan=_plan_04, scores=_scores_04),
    Study("05_linear_probe", probes, ("summary", "rows", "best_invariant", "chance", "learned_vs_random",
                                      "orbit_vs_matched_control_text",
                                      "learned_vs_random_text"), **_SHARED, baselines=True,
          plan=_plan_05, scores=_scores_05),
    Study("06_blocked", blocked, ("answer", "table"), folder="blocked", swept=("dataset",),
          plan=_plan_06, scores=_scores_06),
)}
STEMS = tuple(STUDIES)


def study_trainings(stem: str, params: Mapping, cfg: TrainConfig) -> list[Training]:
    """The trainings notebook ``stem`` opens with these (resolved) parameters, keys prefixed with
    the notebook's number (``05:baselines/random/seed43``)."""
    return _tagged(stem, "plan", params, cfg)


def study_scorings(stem: str, params: Mapping, cfg: TrainConfig) -> list[Scoring]:
    """The scoring tasks of notebook ``stem`` with these (resolved) parameters: every score it will
    read, keys and needs prefixed with the notebook's number (``05:baselines/rows/ald/seed42``)."""
    return _tagged(stem, "scores", params, cfg)


def study_of(stem: str) -> Study:
    """The study of notebook ``stem`` (a ``ValueError`` names the known ones)."""
    if stem not in STUDIES:
        raise ValueError(f"unknown notebook {stem!r}; known: {list(STUDIES)}")
    return STUDIES[stem]


def _tagged(stem: str, field_name: str, params: Mapping, cfg: TrainConfig) -> list:
    """The tasks of the study's ``field_name`` (``plan`` or ``scores``), keys and needs prefixed
    with its number."""
    make = getattr(study_of(stem), field_name)
    if make is None:
        return []
    tag = stem.split("_", 1)[0]
    return [replace(t, key=f"{tag}:{t.key}", needs=tuple(f"{tag}:{n}" for n in t.needs))
            for t in make(params, cfg)]


# ----------------------------------------------------------------------------- findings
def missing_keys(metrics: Mapping) -> list[str]:
    """The keys its study's ``reads`` names for ``metrics["notebook"]`` that ``metrics`` lacks."""
    study = STUDIES.get(metrics.get("notebook"))
    return [k for k in (study.reads if study else ()) if k not in metrics]


def report(metrics: Mapping | None) -> Findings:
    """The sentences for ``metrics`` (what ``Context.finish`` wrote), by its ``notebook`` entry:
    its study's ``findings``, a pure function ``metrics -> list[str]``."""
    if not metrics:
        return Findings(["No metrics: run the notebook's last cell (ctx.finish) first."])
    study = STUDIES.get(str(metrics.get("notebook")))
    if study is None:
        return Findings([f"No findings are defined for notebook {metrics.get('notebook')!r}."])
    return Findings(study.module.findings(metrics))
