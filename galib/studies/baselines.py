"""Baselines and loss ablations, trained alike, evaluated alike, over several seeds, tabulated.

Every model shares the base ``TrainConfig`` (encoder/decoder, data, epochs) and differs only
in the fields below; ``pixels`` and the two orbit controls train nothing (one value, copied to
every seed and marked ``single_valued``).

=============== ============================================ =======================================
name            what                                         config overrides
=============== ============================================ =======================================
``pixels``      linear probes on raw pixels                  (no model)
``pixels-orbit`` orbit invariants (|DFT| over the orbit) of  (no model; exactly invariant)
                the pixels: a control without training
``random-orbit`` orbit invariants of a randomly initialised  (no model; exactly invariant)
                paper encoder: a control without training
``ae``          plain autoencoder, reconstructs ``x``        ``mask='none'`` (no mask, no group: read
                                                             with the whole latent variant)
``manual``      fixed mask, first half of channels variant   ``mask='manual'``
``ald``         the paper: learned mask, all three losses    ``mask='learned'``
``random``      fixed random mask, as many variant channels  ``mask='random'``, ``mask_variant`` =
                as the same seed's learned mask (a control)  the ``ald`` run's ``n_variant``
``random2/3``   two more draws of that random mask           ``mask_seed`` = seed + 1000·k
``random-mask-  a design of ``z_i`` with a random mask of its    ``mask='random'``, the design's fields;
*-norm``        learned size (the design's control)          size from ``ald-*-norm``
``all-variant`` fixed mask, every channel variant            ``mask='manual'``, ``mask_variant=C``
``ald-pooled``  learned mask, ``z_i`` pooled over the grid      ``zi_design='pooled'``
``ald-orbit``   learned mask, ``z_i`` averaged over the orbit   ``zi_design='orbit'``
``ald-spectrum`` learned mask, ``z_i`` a learned map of the     ``zi_design='spectrum'``
``-norm``       orbit's invariant spectrum                   (with the normalised ``L_inv``)
``ald-*-norm``  the same with the normalised ``L_inv``           ``inv_form='normalised'``
``recon+inv``   ablation ``L_recon + L_inv``                 ``lambda_const=0``
``recon+const`` ablation ``L_recon + L_const``               ``lambda_inv=0``
``recon``       ablation ``L_recon`` only (not by default)   ``lambda_inv=lambda_const=0``
=============== ============================================ =======================================

:func:`baseline_trainings` is the plan: one :class:`~galib.experiments.plan.Training` per
(baseline, training seed), in ``run_root/<name>`` (the base config's seed) or
``run_root/<name>_seed<s>`` (:func:`~galib.experiments.plan.run_folder`); ``random`` needs the same
seed's ``ald`` run (its size is derived when that run has finished). :func:`run_baselines` loads
(or trains) each, scores it through :mod:`galib.evaluation` and caches the row
(:mod:`galib.experiments.scoring`); with ``EvalSettings.jobs > 1`` the rows not yet cached are scored
first in that many processes, one training seed per task (scores do not depend on which process
computes them: each runs the same code at the same thread count).
:func:`results_table` / :func:`write_table` turn rows into a markdown + JSON table, mean ± sd over
seeds. The command line is :mod:`galib.tools.baseline_table`.
"""
from __future__ import annotations

import functools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import torch

from ..datasets import DataSplits
from ..evaluation.features import FEATURES, LATENT_FEATURES, MATCHED_CONTROLS, PROTOCOLS, probe_model
from ..evaluation.scores import SCORE_LABELS, evaluate_model
from ..evaluation.spread import aggregate
from ..evaluation.tables import format_pm, markdown_table
from ..experiments.plan import DataRequest, Scoring, Training, plan_inputs, run_folder, seeds_of, train_or_load
from ..experiments.scoring import EvalSettings, scored_row
from ..io import save_json, write_text
from ..train import TrainConfig
from .training import divergence_epoch


MODEL_FEATURES = LATENT_FEATURES   # pixels: a row of its own
DESIGN_FEATURES = ("z_i", "orbit")   # designs of z_i: the invariant features are what they change


@dataclass(frozen=True)
class Baseline:
    label: str                       # how the table names it
    overrides: dict | None           # TrainConfig fields to change; None: no model
    features: tuple = MODEL_FEATURES  # probe features that mean something for it


BASELINES: dict[str, Baseline] = {
    "pixels": Baseline("pixels", None, features=("pixels",)),
    "ae": Baseline("AE", {"mask": "none"}, features=("z", "orbit")),
    "manual": Baseline("manual mask", {"mask": "manual"}),
    "ald": Baseline("ALD (all three)", {"mask": "learned"}, features=MODEL_FEATURES + MATCHED_CONTROLS),
    "random": Baseline("random mask", {"mask": "random"}),
    "random2": Baseline("random mask, draw 2", {"mask": "random"}),
    "random3": Baseline("random mask, draw 3", {"mask": "random"}),
    "pixels-orbit": Baseline("orbit inv. of pixels", None, features=("pixels-orbit",)),
    "random-orbit": Baseline("orbit inv. of a random encoder", None, features=("random-orbit",)),
    "all-variant": Baseline("all variant", {"mask": "manual"}),
    "ald-pooled": Baseline("ALD, pooled z_i", {"mask": "learned", "zi_design": "pooled"},
                           features=DESIGN_FEATURES),
    "ald-orbit": Baseline("ALD, orbit-mean z_i", {"mask": "learned", "zi_design": "orbit"},
                           features=DESIGN_FEATURES),
    "ald-orbit-norm": Baseline("ALD, orbit-mean z_i, normalised L_inv",
                               {"mask": "learned", "zi_design": "orbit", "inv_form": "normalised"},
                               features=DESIGN_FEATURES),
    "ald-spectrum-norm": Baseline("ALD, orbit-spectrum z_i, normalised L_inv",
                                  {"mask": "learned", "zi_design": "spectrum",
                                   "inv_form": "normalised"}, features=DESIGN_FEATURES),
    "ald-pooled-norm": Baseline("ALD, pooled z_i, normalised L_inv",
                                {"mask": "learned", "zi_design": "pooled", "inv_form": "normalised"},
                                features=DESIGN_FEATURES),
    "recon+inv": Baseline("L_recon + L_inv", {"mask": "learned", "lambda_const": 0.0}),
    "recon+const": Baseline("L_recon + L_const", {"mask": "learned", "lambda_inv": 0.0}),
    "recon": Baseline("L_recon only", {"mask": "learned", "lambda_inv": 0.0,
                                       "lambda_const": 0.0}),
}
DEFAULT_NAMES = ("pixels", "ae", "manual", "ald", "recon+inv", "recon+const")
# random-mask controls: name → (the learned-mask baseline whose size it takes, draw); draw k uses
# mask_seed = seed + 1000·k (draw 0: the seed itself)
RANDOM_CONTROLS = {"random": ("ald", 0), "random2": ("ald", 1), "random3": ("ald", 2)}


def _random_mask_of(learned: str) -> Baseline:
    """Baseline ``learned`` (a design of ``z_i``) with a random mask instead of its learned one."""
    spec = BASELINES[learned]
    return Baseline(spec.label.replace("ALD", "random mask", 1), {**spec.overrides, "mask": "random"},
                    spec.features)


for _design in ("ald-orbit-norm", "ald-spectrum-norm"):       # each design's random-mask control
    BASELINES[_design.replace("ald-", "random-mask-", 1)] = _random_mask_of(_design)
    RANDOM_CONTROLS[_design.replace("ald-", "random-mask-", 1)] = (_design, 0)
del _design


def baseline_config(base_cfg: TrainConfig, name: str, n_variant: int | None = None) -> TrainConfig | None:
    """The ``TrainConfig`` of baseline ``name`` (``None`` for ``pixels``). ``random`` takes
    ``n_variant`` (the learned mask's count; ``None``: filled in by the plan from the learned
    run it controls for, :data:`RANDOM_CONTROLS`) and draws its mask from the config's seed."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {list(BASELINES)}")
    over = BASELINES[name].overrides
    if over is None:
        return None
    if name in RANDOM_CONTROLS:            # mask_variant None: the plan derives it from the learned run
        over = {**over, "mask_variant": None if n_variant is None else int(n_variant),
                "mask_seed": base_cfg.seed + 1000 * RANDOM_CONTROLS[name][1]}
    if name == "all-variant":
        over = {**over, "mask_variant": base_cfg.latent_channels}
    return replace(base_cfg, **over)


def run_dir_of(run_root: str | Path, name: str, seed: int, base_seed: int) -> Path:
    """Where baseline ``name`` trains for ``seed`` (:func:`~galib.experiments.plan.run_folder`)."""
    return run_folder(run_root, name, seed, base_seed)


def seed_table(cfg: TrainConfig, names, seeds=None) -> dict[str, list[int]]:
    """Each baseline's training seeds: ``seeds`` for every name (a list; ``None``: the config's
    seed), or a mapping ``name → seeds`` (a name it lacks trains on no seed). A random-mask control
    needs its learned mask at each of its seeds (a ``ValueError`` names the seeds that lack it)."""
    if isinstance(seeds, Mapping):
        table = {n: [int(s) for s in seeds.get(n, ())] for n in names}
    else:
        every = seeds_of(cfg, seeds)
        table = {n: every for n in names}
    for r in [n for n in names if n in RANDOM_CONTROLS and RANDOM_CONTROLS[n][0] in table]:
        missing = sorted(set(table[r]) - set(table[RANDOM_CONTROLS[r][0]]))
        if missing:
            raise ValueError(f"baseline {r!r} takes its size from {RANDOM_CONTROLS[r][0]!r} of the same "
                             f"seed, which does not train on seeds {missing}")
    return table


def all_seeds(table: Mapping) -> list[int]:
    """Every seed of a :func:`seed_table`, in the order they first appear."""
    return list(dict.fromkeys(s for seeds in table.values() for s in seeds))


def baseline_trainings(base_cfg: TrainConfig, names, run_root: str | Path, seeds=None,
                       data: DataRequest | None = None, prefix: str = "baselines") -> list[Training]:
    """The plan: one training per (trained baseline, seed) — ``pixels`` trains nothing. Keys are
    ``<prefix>/<name>/seed<s>``; a random-mask control needs the same seed's learned run
    (:data:`RANDOM_CONTROLS`; listed before it). ``seeds``: a list for every baseline or a mapping
    per baseline (:func:`seed_table`)."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
    names = list(names)
    for r in [n for n in names if n in RANDOM_CONTROLS]:
        learned = RANDOM_CONTROLS[r][0]
        if learned not in names or names.index(learned) > names.index(r):
            raise ValueError(f"baseline {r!r} takes as many variant channels as the learned mask: "
                             f"list {learned!r} before {r!r}")
    base_cfg, _, data = plan_inputs(base_cfg, None, data)
    table = seed_table(base_cfg, names, seeds)
    out = []
    for s in all_seeds(table):
        for name in [n for n in names if s in table[n]]:
            cfg = baseline_config(replace(base_cfg, seed=s), name)
            if cfg is None:
                continue
            random = name in RANDOM_CONTROLS
            out.append(Training(f"{prefix}/{name}/seed{s}", cfg,
                                str(run_dir_of(run_root, name, s, base_cfg.seed)), data,
                                needs=(f"{prefix}/{RANDOM_CONTROLS[name][0]}/seed{s}",) if random else (),
                                derive="random-mask-size" if random else None))
    return out


def run_baselines(base_cfg: TrainConfig, names=DEFAULT_NAMES, run_root: str | Path = "runs/baselines",
                  data: DataSplits | None = None, settings: EvalSettings | None = None, seeds=None,
                  progress: bool = False, verbose: bool = True) -> list[dict]:
    """Load (or train), evaluate and probe each baseline for each training seed; one flat dict per
    (baseline, seed).

    Row keys: ``name``, ``label``, ``seed``, ``dataset``, ``group``; for trained models ``mask``, ``lambda_inv``, ``lambda_const``, ``epochs``, ``best_epoch``,
    ``best_val_loss``, ``train_seconds`` and every :func:`galib.evaluation.scores.evaluate_model`
    key (on ``data.test``); with ``settings.probe``, ``probe/<feature>/<a|b|c|val_*|…>`` and
    ``probe/<feature>/dim``; and ``eval_seconds``. Untrained baselines (``pixels``, the orbit
    controls) are scored once and marked ``single_valued``. ``seeds`` (default: the config's seed)
    are training seeds, all on the base seed's data split (a mapping per baseline: :func:`seed_table`); ``settings`` (:class:`EvalSettings`)
    holds the evaluation seed, the caps and ``extra`` (more scores of each model whose latent is
    split, e.g. the swaps).
    """
    base_cfg = base_cfg.validate()
    settings = settings or EvalSettings()
    request = DataRequest.of(base_cfg, max_test=settings.max_test)
    data = data if data is not None else request.load(verbose=verbose)
    study = _Study({t.key: t for t in baseline_trainings(base_cfg, names, run_root, seeds, request)},
                   data, base_cfg.group, settings, progress, verbose)
    table = seed_table(base_cfg, names, seeds)
    if settings.jobs > 1:
        _score_in_processes(base_cfg, names, run_root, data, settings, table, verbose)
    rows, untrained = [], {}
    for s in all_seeds(table):
        for name in [n for n in names if s in table[n]]:
            if name in untrained:                                # no model: the same for every seed
                rows.append({**untrained[name], "seed": s})
                continue
            t = study.plan.get(f"baselines/{name}/seed{s}")
            run_dir = Path(t.run_dir) if t else run_dir_of(run_root, name, s, base_cfg.seed)
            row = study.row(name, s, t, run_dir)
            untrained.update({name: row} if t is None else {})
            rows.append(row)
    return rows


def score_baseline(base_cfg: TrainConfig, name: str, seed: int, run_root: str | Path,
                   settings: EvalSettings, data: DataRequest | DataSplits, first_seed: int | None = None,
                   verbose: bool = True) -> dict:
    """The row of baseline ``name`` at training seed ``seed`` exactly as :func:`run_baselines`
    makes (and caches) it: the sweep's scoring task. ``data``: the notebook's data (or the request
    that loads it). An untrained baseline's row is the one of ``first_seed`` (the study's first
    seed; default ``seed``), where run_baselines keeps it."""
    base_cfg = base_cfg.validate()
    request = data if isinstance(data, DataRequest) else DataRequest.of(base_cfg)
    data = data.load() if isinstance(data, DataRequest) else data
    names = [RANDOM_CONTROLS[name][0], name] if name in RANDOM_CONTROLS else [name]
    plan = {t.key: t for t in baseline_trainings(base_cfg, names, run_root, [seed], request)}
    study = _Study(plan, data, base_cfg.group, settings, False, verbose)
    t = plan.get(f"baselines/{name}/seed{seed}")
    if t is None:
        seed = seed if first_seed is None else int(first_seed)
    return study.row(name, seed, t, Path(t.run_dir) if t else run_dir_of(run_root, name, seed, base_cfg.seed))


def baseline_scorings(base_cfg: TrainConfig, names, run_root: str | Path, seeds, settings: EvalSettings,
                      data: DataRequest, prefix: str = "baselines") -> list:
    """The scoring tasks of :func:`run_baselines` with these arguments: one per row it scores
    (each trained baseline and seed, needing that training; each untrained baseline once), keys
    ``<prefix>/rows/<name>/seed<s>``."""
    base_cfg = base_cfg.validate()
    table = seed_table(base_cfg, names, seeds)
    seeds = all_seeds(table)
    trainings = {t.key: t for t in baseline_trainings(base_cfg, names, run_root, table, data, prefix)}
    out = []
    for s in seeds:
        for name in [n for n in names if s in table[n]]:
            t = trainings.get(f"{prefix}/{name}/seed{s}")
            if t is None and s != seeds[0]:
                continue                               # an untrained baseline: scored once
            spec = BASELINES[name]
            out.append(Scoring(f"{prefix}/rows/{name}/seed{s}",
                               t.run_dir if t else str(run_dir_of(run_root, name, s, base_cfg.seed)),
                               functools.partial(score_baseline, base_cfg, name, s, run_root, settings,
                                                 data, seeds[0]),
                               needs=(t.key,) + t.needs if t else (),
                               fits=float(settings.probe) * len(spec.features),
                               images=settings.max_images or 0))
    return out


def _score_in_processes(base_cfg: TrainConfig, names, run_root, data: DataSplits,
                        settings: EvalSettings, table: dict, verbose: bool) -> None:
    """Score the rows whose ``row.json`` is missing in ``settings.jobs`` processes, one task per
    training seed (the untrained baselines in a task of their own), so that the caller's serial
    pass reads them from the cache. Tasks never share a run folder; a row that still misses or is
    stale afterwards is simply scored by the serial pass. ``table``: :func:`seed_table`."""
    seeds = all_seeds(table)
    untrained = [n for n in names if BASELINES[n].overrides is None]
    tasks = [(untrained, seeds[0])] if untrained else []
    tasks += [(trained, s) for s in seeds
              if (trained := [n for n in names if n not in untrained and s in table[n]])]
    todo = [(n, s) for n, s in tasks
            if any(not (run_dir_of(run_root, m, s, base_cfg.seed) / "row.json").is_file() for m in n)]
    if len(todo) < 2:
        return
    jobs = min(settings.jobs, len(todo))
    if verbose:
        print(f"[galib] scoring {len(todo)} tasks (seeds) in {jobs} processes", flush=True)
    one = replace(settings, jobs=1)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        futures = [pool.submit(_score_task, base_cfg, n, run_root, data, one, s, torch.get_num_threads())
                   for n, s in todo]
        for f in futures:
            f.result()                                  # a worker's error surfaces here, named


def _score_task(base_cfg: TrainConfig, names, run_root, data: DataSplits, settings: EvalSettings,
                seed: int, threads: int) -> None:
    torch.set_num_threads(threads)
    run_baselines(base_cfg, names, run_root, data=data, settings=settings, seeds=[seed], verbose=False)


@dataclass
class _Study:
    """What scoring one baseline run needs besides the run itself."""
    plan: dict
    data: DataSplits
    group: str
    settings: EvalSettings
    progress: bool
    verbose: bool

    def row(self, name: str, seed: int, training: Training | None, run_dir: Path) -> dict:
        """Load (or train) one baseline for one seed, and score it (or reuse its cached row)."""
        spec, data = BASELINES[name], self.data
        row = {"name": name, "label": spec.label, "seed": seed, "dataset": data.name,
               "group": self.group}
        if training is None:                  # no model: one value, copied to every seed
            row["single_valued"] = True
        model, cfg = None, None
        if training is not None:
            res = train_or_load(training, data, self.plan, progress=self.progress, verbose=self.verbose)
            model, cfg, best = res.model, res.config, res.best
            row.update(mask=cfg.mask, lambda_inv=cfg.lambda_inv,
                       lambda_const=cfg.lambda_const, epochs=len(res.history),
                       best_epoch=best["epoch"], best_val_loss=best["val_loss"],
                       train_seconds=sum(h["seconds"] for h in res.history))
        extra = self.settings.extra

        def score() -> dict:
            out = _score(model, data, spec, self.group, self.settings)
            if extra is not None and model is not None and model.mask is not None:
                out.update(extra(model, data))
            return out
        scored = scored_row(run_dir, row, cfg, data, self.settings.cache_key(), score,
                            f"{name} (seed {seed})", self.verbose)
        if training is not None:              # read from the history, not a score: not in the key
            scored = {**scored, "diverged_epoch": divergence_epoch(res.history)}
        return scored


def _score(model, data: DataSplits, spec: Baseline, group: str, settings: EvalSettings) -> dict:
    """Every :func:`evaluate_model` score (trained models) and, with ``settings.probe``, every
    ``probe/<feature>/<a|b|c|dim>`` of :func:`probe_model`."""
    row = {}
    if model is not None:
        scores = evaluate_model(model, data.test, seed=settings.seed, max_images=settings.max_images)
        row.update({k: v for k, v in scores.items() if k != "group"})
    if settings.probe:
        found = probe_model(model, data, features=spec.features, seed=settings.seed, group=group,
                            **settings.probe_kwargs())
        for feat, res in found.items():            # a, b, c, val_*, b/<element>, dim, iters, cm_b …
            row.update({f"probe/{feat}/{k}": v for k, v in res.items()
                        if k == "cm_b" or (isinstance(v, (int, float)) and not isinstance(v, bool))})
    return row


# ----------------------------------------------------------------------------- tables
def table_columns(rows: list[dict]) -> list[tuple[str, str]]:
    """``(column, row key)``: every score of ``SCORE_LABELS`` and ``<feature> <a|b|c>`` for every
    probe feature any row has."""
    feats = [f for f in FEATURES if any(f"probe/{f}/a" in r for r in rows)]
    cols = [(label, key) for key, label in SCORE_LABELS.items()]
    return cols + [(f"{f} {p}", f"probe/{f}/{p}") for f in feats for p in PROTOCOLS]


def results_table(rows: list[dict]) -> list[dict]:
    """One dict per model: ``model`` plus every column of :func:`table_columns` (``None`` where a
    model has no such score), the mean over its seeds; with several seeds also ``seeds`` and
    ``<column> sd``."""
    cols = table_columns(rows)
    agg = aggregate(rows, [k for _, k in cols])
    several = any(r["n_seeds"] > 1 for r in agg)
    out = []
    for r in agg:
        line = {"model": r["label"], **{c: r.get(k) for c, k in cols}}
        if several:
            line.update({"seeds": r["n_seeds"], **{f"{c} sd": r.get(f"{k}_sd") for c, k in cols}})
        out.append(line)
    return out


def format_markdown(table: list[dict]) -> str:
    """A GitHub-flavoured markdown table of :func:`results_table` output (``mean ± sd`` cells when
    it holds several seeds)."""
    if not table:
        return ""
    cols = [c for c in table[0] if not c.endswith(" sd") and c != "seeds"]

    def cell(row, col):
        v, sd = row.get(col), row.get(f"{col} sd")
        if sd is None or v is None:
            return v
        return format_pm(v, sd, "sig3")
    return markdown_table(table, [(c, c) for c in cols], spec="sig3", cell=cell)


def write_table(rows: list[dict], out_dir: str | Path, stem: str = "baselines",
                meta: dict | None = None) -> dict[str, Path]:
    """Write ``{stem}.md`` (the table) and ``{stem}.json`` (``table``, full ``rows``, ``meta``)
    atomically into ``out_dir``; returns ``{"md": path, "json": path}``."""
    out_dir = Path(out_dir)
    table = results_table(rows)
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    text = format_markdown(table)
    write_text(md, text)
    save_json({"meta": meta or {}, "table": table, "rows": rows}, js)
    return {"md": md, "json": js}
