"""Notebook 05's study over the baselines: probe summaries, the learned-vs-random control, the
designs of the invariant part, and the confusion matrix of the best invariant feature.

* :func:`probe_dict`, :func:`probe_summary`, :func:`probe_metrics`: what 05 plots and records;
* :func:`learned_vs_random` / :func:`control_sentence`: the learned mask against random masks of
  its size;
* :func:`design_table` / :func:`design_sentence`: the designs of ``z_i`` side by side;
  :func:`design_trainings` / :func:`design_models` are 04's plan and its models;
* :func:`best_invariant` picks the best invariant feature under protocol b;
  :func:`invariant_confusion` sums the confusion counts of its rows' own protocol-b fits and
  :func:`describe_confusions` says in words which classes it mixes up (and whether 6↔9 is among
  them);
* the scoring tasks beside the rows (:mod:`galib.experiments.scoring`): :func:`budget_scores` (is the
  probe limited by its budget?) and 04's :func:`swap_numbers`, each computed once per run.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..datasets import DataSplits
from ..evaluation.features import CONTROL_FEATURES, FEATURES, PROBE_FIT, probe_model
from ..evaluation.spread import aggregate
from ..evaluation.stats import paired_comparison, spread_margin
from ..evaluation.stats import VERDICTS
from ..evaluation.swap import swap_scores
from ..experiments.plan import DataRequest, Scoring, train_or_load
from ..experiments.scoring import EvalSettings, cached_scores
from ..train import TrainConfig
from .baselines import BASELINES, RANDOM_CONTROLS, baseline_trainings, score_baseline
from .plotting import rc_style, save, to_numpy
from .training import DIVERGENCE_FACTOR, run_identity
from .wording import n_seeds, num, nums, text_of


KEEP_POINTS = 5.0        # a probe feature "keeps" its accuracy if protocol b loses at most this many points

INVARIANT_FEATURES = ("z_i", "orbit")     # features meant not to change under the group
FEATURE_LABELS = {"orbit": "orbit inv. of z_v"}   # how figures name a probe feature


# ----------------------------------------------------------------------------- confusion
def best_invariant(rows: list[dict], protocol: str = "b") -> tuple[str, str, float] | None:
    """``(baseline name, feature, test accuracy)`` of the best invariant feature under
    ``protocol``, chosen on the *validation* accuracy (``probe/<f>/val_<protocol>``, mean over
    seeds) over the rows of :func:`~galib.studies.baselines.run_baselines`; ``None`` if no
    row has one."""
    best, best_val = None, -math.inf
    keys = [f"probe/{f}/{p}" for f in INVARIANT_FEATURES for p in (protocol, f"val_{protocol}")]
    for r in aggregate(rows, keys):
        for f in INVARIANT_FEATURES:
            acc, val = r.get(f"probe/{f}/{protocol}"), r.get(f"probe/{f}/val_{protocol}")
            if acc is None or val is None or math.isnan(val) or math.isnan(acc):
                continue
            if val > best_val:
                best, best_val = (r["name"], f, float(acc)), val
    return best


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Counts ``(K, K)``: rows true class, columns predicted class."""
    idx = y_true.reshape(-1).long() * n_classes + y_pred.reshape(-1).long()
    return torch.bincount(idx.cpu(), minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def top_confusions(cm: torch.Tensor, k: int = 3) -> list[tuple[int, int, float]]:
    """The ``k`` largest off-diagonal rates ``(true, predicted, share of the true class)``."""
    cm = torch.as_tensor(cm, dtype=torch.float64)
    rate = cm / cm.sum(1, keepdim=True).clamp(min=1)
    rate.fill_diagonal_(-1.0)
    vals, flat = rate.flatten().topk(min(k, rate.numel()))
    K = cm.shape[0]
    return [(int(i) // K, int(i) % K, float(v)) for v, i in zip(vals, flat) if v > 0]


def pair_confusion(cm: torch.Tensor, a: int, b: int) -> float:
    """Share of classes ``a`` and ``b`` predicted as the other one (symmetric)."""
    cm = torch.as_tensor(cm, dtype=torch.float64)
    if max(a, b) >= cm.shape[0]:
        return math.nan
    total = float(cm[a].sum() + cm[b].sum())
    return float(cm[a, b] + cm[b, a]) / total if total > 0 else math.nan


def describe_confusions(cm: torch.Tensor, class_names: list[str], digits: bool,
                        k: int = 3) -> str:
    """Plain-language summary of the largest confusions; mentions 6↔9 only if it shows up."""
    tops = top_confusions(cm, k)
    if not tops:
        return "No class is confused with another on these test images."
    parts = [f"{class_names[t]}→{class_names[p]} ({r:.0%} of {class_names[t]})" for t, p, r in tops]
    text = "Largest confusions: " + ", ".join(parts) + "."
    if digits:
        pairs = {frozenset((t, p)) for t, p, _ in tops}
        rate = pair_confusion(cm, 6, 9)
        if frozenset((6, 9)) in pairs:
            text += (f" 6↔9 is among them ({rate:.0%} of all 6s and 9s go to the other class): a "
                     "180° rotation maps one digit onto the other, so a rotation-invariant feature "
                     "cannot tell them apart.")
        else:
            text += f" 6↔9 is not among the largest confusions here ({rate:.0%} of 6s and 9s swap)."
    return text


PROBE_FEATURES = FEATURES     # every feature a row probes (galib.evaluation.features)


def probe_dict(rows: list[dict], features=PROBE_FEATURES, protocols=("a", "b", "c"),
               per_seed: bool = False) -> dict:
    """``{model label: {feature: {protocol: accuracy}}}`` from ``run_baselines`` rows, the mean
    over seeds (``per_seed``: the list of per-seed values instead). Features a model lacks are
    left out; features are named by ``FEATURE_LABELS``."""
    keys = [f"probe/{f}/{p}" for f in features for p in protocols]
    out = {}
    for r in aggregate(rows, keys):
        for f in features:
            accs = {p: r[f"probe/{f}/{p}" + ("_per_seed" if per_seed else "")] for p in protocols
                    if r.get(f"probe/{f}/{p}") is not None}
            if accs:
                out.setdefault(r["label"], {})[FEATURE_LABELS.get(f, f)] = accs
    return out


# The scores on which the learned mask meets random masks of its size: centred errors only (a
# constant offset dominates the plain relative ones), and the centred energy share (no direction).
CONTROL_KEYS = ("recon_mse", "equivariance_error_centred", "invariance_error_centred",
                "energy_share_zi_centred", "probe/z/a", "probe/z_i/b", "probe/orbit/b", "swap_content_a")
CHANCE_KEYS = ("probe/", "swap_content")    # scores read against chance (1/K): no verdict at chance


def diverged_seeds(rows: list[dict], names) -> list[int]:
    """Seeds at which a run of any of ``names`` diverged (its row carries ``diverged_epoch``)."""
    return sorted({r["seed"] for r in rows if r["name"] in tuple(names) and r.get("diverged_epoch")})


def paired_values(rows: list[dict], a: str, b: str | tuple, key: str) -> tuple[list, list, list]:
    """Per seed held by both: the value of ``a`` and the mean over the ``b`` baselines (several
    random draws) — ``(seeds, a values, b values)``, seeds whose values are missing left out, and
    so are seeds where a run of either side diverged (a divergence is a finding, not a data
    point: :func:`compare_rows` counts them)."""
    names = (b,) if isinstance(b, str) else tuple(b)
    skip = set(diverged_seeds(rows, (a, *names)))
    seeds, va, vb = [], [], []
    for s in sorted({r["seed"] for r in rows if r["name"] == a} - skip):
        x = [r.get(key) for r in rows if r["name"] == a and r["seed"] == s]
        ys = [r.get(key) for r in rows if r["name"] in names and r["seed"] == s]
        ys = [y for y in ys if isinstance(y, (int, float)) and not math.isnan(y)]
        if x and isinstance(x[0], (int, float)) and not math.isnan(x[0]) and ys:
            seeds.append(s)
            va.append(float(x[0]))
            vb.append(sum(ys) / len(ys))
    return seeds, va, vb


def compare_rows(rows: list[dict], a: str, b: str | tuple, keys, chance: float | None = None) -> list[dict]:
    """Baseline ``a`` against ``b`` (or the mean of several ``b`` baselines per seed), paired by
    seed: per key with ≥ 2 shared seeds whose runs did not diverge, the means ``a_mean``/``b_mean``,
    ``n_seeds``, ``excluded_seeds`` (pairs left out because a run diverged) and
    :func:`galib.evaluation.stats.paired_comparison` (difference a − b, 95 % and 90 % t intervals,
    verdict). The margin is the spread of ``b`` over its reseeded runs
    (:func:`~galib.evaluation.stats.spread_margin`); a score read against ``chance``
    (:data:`CHANCE_KEYS`) that sits at chance on both sides gets no verdict."""
    out = []
    excluded = diverged_seeds(rows, (a, *((b,) if isinstance(b, str) else b)))
    for key in keys:
        seeds, va, vb = paired_values(rows, a, b, key)
        if len(seeds) >= 2:
            out.append({"key": key, "a_mean": sum(va) / len(va), "b_mean": sum(vb) / len(vb),
                        "n_seeds": len(seeds), "seeds": seeds, "excluded_seeds": excluded,
                        **paired_comparison(va, vb, key, margin=spread_margin(vb, key),
                                            chance=chance if key.startswith(CHANCE_KEYS) else None)})
    return out


def against_matched_control(rows: list[dict], name: str = "ald", protocol: str = "b",
                            chance: float | None = None) -> dict | None:
    """The orbit invariants of ``name``'s ``z_v`` against the untrained control with as many
    features (``random-orbit-zv``: a random encoder's orbit invariants on the same channels and
    positions), paired by seed within ``name``'s rows (diverged runs left out), under probe
    ``protocol``: :func:`compare_rows`' dict for that one score, or ``None`` with fewer than 2 seeds."""
    key, ctrl = f"probe/orbit/{protocol}", f"probe/random-orbit-zv/{protocol}"
    mine = [r for r in rows if r["name"] == name and not r.get("diverged_epoch")]
    pairs = [(r["seed"], r[key], r[ctrl]) for r in mine if isinstance(r.get(key), (int, float))
             and isinstance(r.get(ctrl), (int, float))]
    if len(pairs) < 2:
        return None
    seeds, va, vb = zip(*sorted(pairs))
    dims = [r.get("probe/orbit/dim") for r in mine], [r.get("probe/random-orbit-zv/dim") for r in mine]
    return {"key": key, "model": name, "a_mean": sum(va) / len(va), "b_mean": sum(vb) / len(vb),
            "n_seeds": len(seeds), "seeds": list(seeds), "same_dims": dims[0] == dims[1],
            "excluded_seeds": diverged_seeds(rows, (name,)),
            **paired_comparison(list(va), list(vb), key, margin=spread_margin(vb, key), chance=chance)}


def matched_control_sentence(c: dict | None) -> str:
    """:func:`against_matched_control` in words."""
    if c is None:
        return ""
    if c["verdict"] == "at chance":
        return (f"Under protocol b the orbit invariants of z_v ({c['a_mean']:.3f}) and the untrained "
                f"control with as many features ({c['b_mean']:.3f}) both sit at chance: no verdict.")
    what = {"better": "beat", "worse": "fall behind", "equivalent": "match",
            "inconclusive": "cannot be told from"}[c["verdict"]]
    return (f"Like for like (the same channels and positions, {'the same' if c['same_dims'] else 'different'} "
            f"feature counts), the orbit invariants of z_v ({c['a_mean']:.3f} under protocol b) {what} "
            f"those of an untrained encoder ({c['b_mean']:.3f}): difference {c['diff']:+.3f}, 95 % "
            f"interval [{c['low']:+.3f}, {c['high']:+.3f}], margin {c['margin']:.3f} ({c['margin_basis']}), "
            f"{c['n_seeds']} seeds" + (f", {len(c['excluded_seeds'])} diverged left out" if c["excluded_seeds"] else "")
            + ".")


def learned_vs_random(rows: list[dict], keys=CONTROL_KEYS, learned: str = "ald",
                      chance: float | None = None) -> list[dict]:
    """The learned mask (baseline ``learned``, default ``ald``) against random masks of the same
    size (its controls in :data:`~galib.studies.baselines.RANDOM_CONTROLS`, e.g. ``random``,
    ``random2``, ``random3``: their mean per seed), paired by seed (same initial weights and batch
    order): per key, the means, the paired difference with its 95 % t interval, the equivalence
    margin and the verdict of :func:`galib.evaluation.stats.paired_comparison` (better, worse,
    equivalent within the margin, inconclusive). Empty without ``learned`` and a control."""
    draws = tuple(n for n, (of, _) in RANDOM_CONTROLS.items()
                  if of == learned and any(r["name"] == n for r in rows))
    if not draws or not any(r["name"] == learned for r in rows):
        return []
    diverged = {side: diverged_seeds(rows, names) for side, names in (("learned", (learned,)), ("random", draws))}
    return [{**c, "model": learned, "learned": c["a_mean"], "random": c["b_mean"],
             "n_draws": len(draws), "diverged_seeds": diverged}
            for c in compare_rows(rows, learned, draws, keys, chance)]


def control_sentence(comparisons: list[dict]) -> str:
    """The learned-vs-random comparison in words (computed from :func:`learned_vs_random`)."""
    if not comparisons:
        return ("No random-mask control with at least 2 seeds (whose runs did not diverge) in these "
                "baselines.")
    by = {v: [c["key"] for c in comparisons if c["verdict"] == v] for v in VERDICTS}
    c0 = comparisons[0]
    listed = f" {c0['seeds']}" if c0.get("seeds") else ""
    parts = [f"{words} {', '.join(by[v])}" for v, words in (
        ("better", "better on"), ("worse", "worse on"), ("higher", "higher (no better side) on"),
        ("lower", "lower (no better side) on"), ("equivalent", "equivalent within the margin on"),
        ("inconclusive", "inconclusive on"), ("at chance", "at chance on both sides (no verdict) on"))
        if by[v]]
    text = (f"Paired over {c0['n_seeds']} seeds{listed} (learned mask against the mean of {c0['n_draws']} "
            f"random mask draw{'s' if c0['n_draws'] > 1 else ''} of the same size; a difference by its 95 % "
            f"t interval, equivalence by two one-sided tests (the 90 % interval inside a margin of "
            f"{'the random masks’ seed spread' if 'sd' in c0.get('margin_basis', '') else 'the fixed table'})): "
            + "; ".join(parts) + ".")
    div = c0.get("diverged_seeds") or {}
    if any(div.values()):
        n = len(c0.get("excluded_seeds") or [])
        text += (f" {n} seed pair{'s' if n != 1 else ''} left out of every interval because a run diverged "
                 f"(validation loss above {DIVERGENCE_FACTOR:g}× its best so far or not finite): learned "
                 f"mask seeds {div.get('learned') or 'none'}, random masks seeds {div.get('random') or 'none'}.")
    return text


def load_baseline(base_cfg: TrainConfig, name: str, run_root: str | Path, data: DataSplits,
                  rows: list[dict] | None = None):
    """The base seed's model of baseline ``name`` under ``run_root`` (loaded; trained if missing)."""
    names = (RANDOM_CONTROLS[name][0], name) if name in RANDOM_CONTROLS else (name,)
    plan = {t.key: t for t in baseline_trainings(base_cfg, names, run_root)}
    key = f"baselines/{name}/seed{base_cfg.seed}"
    if key not in plan:
        raise ValueError(f"baseline {name!r} has no model")
    return train_or_load(plan[key], data, plan).model


# ----------------------------------------------------------------------------- summaries
def probe_summary(rows: list[dict], confusion: dict | None = None, digits: bool = False) -> dict:
    """``"<baseline> <feature> <a|b>": accuracy`` (mean over seeds) for the headline features, the
    learned-vs-random differences, plus the refitted best invariant accuracy and (digits only) the
    6↔9 confusion rate."""
    keys = [f"probe/{f}/{p}" for f in FEATURES if f != "z_v"
            for p in ("a", "b")]
    out = {f"{r['name']} {k[6:].replace('/', ' ')}": r[k] for r in aggregate(rows, keys)
           for k in keys if r.get(k) is not None}
    for c in learned_vs_random(rows):
        out[f"learned - random {c['key']}"] = c["diff"]
    if confusion is not None:
        out["best_invariant_b"] = confusion["accuracy"]
        if digits:
            out["six_nine_confusion"] = pair_confusion(confusion["cm"], 6, 9)
    return out


def invariant_confusion(rows: list[dict], data: DataSplits) -> dict | None:
    """The best invariant feature under protocol b (:func:`best_invariant`) and its confusion
    counts, summed over the seeds of its rows (each row's own protocol-b fit, ``probe/<f>/cm_b``:
    nothing is refitted), with its largest confusions in words. Keys: ``baseline``, ``label`` (of
    the baseline), ``feature``, ``feature_label``, ``accuracy_table``, ``cm``, ``accuracy`` (of the
    summed counts), ``n_seeds``, ``text``; ``None`` if no row has such a feature."""
    best = best_invariant(rows, "b")
    if best is None:
        return None
    name, feature, acc = best
    cms = [r[f"probe/{feature}/cm_b"] for r in rows
           if r["name"] == name and r.get(f"probe/{feature}/cm_b") is not None]
    if not cms:
        return None
    cm = torch.tensor(cms, dtype=torch.long).sum(0)
    return {"baseline": name, "label": BASELINES[name].label, "feature": feature,
            "feature_label": FEATURE_LABELS.get(feature, feature), "accuracy_table": acc,
            "cm": cm, "accuracy": float(cm.diagonal().sum() / cm.sum().clamp(min=1)), "n_seeds": len(cms),
            "text": describe_confusions(cm, data.class_names, data.digits)}


def probe_metrics(rows: list[dict], conf: dict | None, table_md: str, data: DataSplits) -> dict:
    """What notebook 05 records besides the common fields: the rows, the probe dict, the table,
    chance, the best invariant feature and its confusion matrix, and the ``summary``."""
    best = None if conf is None else {k: conf[k] for k in ("baseline", "feature", "accuracy_table")}
    confusion = None if conf is None else {
        "feature": conf["feature"], "accuracy": conf["accuracy"], "matrix": conf["cm"],
        "classes": data.class_names, "text": conf["text"]}
    chance = 1 / data.num_classes
    control = learned_vs_random(rows, chance=chance)
    matched = against_matched_control(rows, chance=chance)
    return {"rows": rows, "probes": probe_dict(rows), "probes_per_seed": probe_dict(rows, per_seed=True),
            "table_md": table_md, "chance": chance, "best_invariant": best,
            "confusion": confusion, "learned_vs_random": control,
            "learned_vs_random_text": control_sentence(control),
            "orbit_vs_matched_control": matched, "orbit_vs_matched_control_text": matched_control_sentence(matched),
            "summary": probe_summary(rows, conf, data.digits)}


def probe_budget(model, data: DataSplits, features=("z", "orbit"), seed: int = 0,
                 max_train: int | None = 2000, fit: dict | None = None, base: dict | None = None) -> dict:
    """Is the probe limited by its budget? ``fit``: the probe's ``fit_probe`` keywords (default
    ``{"max_iter": 50}``). Refit with twice the L-BFGS iterations and with twice the training images (not when ``max_train`` is ``None``: every image is used already); per
    feature and protocol the accuracies of the fits, the probe's iterations and final gradient
    norm, and ``max_change`` (largest absolute change over all). ``base``: a scored row of this
    model with the same seed and budget (``probe/<feature>/<key>``), whose fits are reused instead
    of being refitted (the probe is deterministic, so they are the same numbers)."""
    fit = {"max_iter": 50, **(fit or {})}
    probe_iters = int(fit["max_iter"])
    budgets = {"base": (max_train, probe_iters), "2x iterations": (max_train, 2 * probe_iters)}
    if max_train is not None:
        budgets["2x images"] = (2 * max_train, probe_iters)
    fits = {name: probe_model(model, data, features=list(features), seed=seed, max_train=n,
                              fit_kwargs={**fit, "max_iter": it})
            for name, (n, it) in budgets.items() if not (name == "base" and base is not None)}
    if base is not None:
        keys = ("a", "b", "c", "iters", "grad_norm")
        fits = {"base": {f: {k: base[f"probe/{f}/{k}"] for k in keys} for f in features}, **fits}
    out, worst = {}, 0.0
    for f in fits["base"]:
        out[f] = {name: {p: fit[f][p] for p in ("a", "b", "c")} | {"iters": fit[f]["iters"],
                                                                     "grad_norm": fit[f]["grad_norm"]}
                  for name, fit in fits.items()}
        worst = max([worst] + [abs(fit[f][p] - fits["base"][f][p]) for fit in fits.values()
                               for p in ("a", "b", "c")])
    return {"budgets": {k: {"max_train": n, "max_iter": it} for k, (n, it) in budgets.items()},
            "features": out, "max_change": worst, "base_reused": base is not None}


def budget_scores(base_cfg: TrainConfig, run_root: str | Path, settings: EvalSettings,
                  data: DataSplits | DataRequest, verbose: bool = True) -> dict:
    """:func:`probe_budget` of the base seed's ``ald`` run under ``run_root`` with ``settings``'
    probe budget, reusing that run's scored row, computed once and kept in its folder
    (``probe_budget.json``; the sweep computes it first: :func:`budget_scoring`)."""
    data = data.load() if isinstance(data, DataRequest) else data
    (t,) = baseline_trainings(base_cfg, ["ald"], run_root)
    res = train_or_load(t, data, verbose=verbose)
    base = score_baseline(base_cfg, "ald", base_cfg.seed, run_root, settings, data, verbose=verbose)
    fit = {"max_iter": PROBE_FIT["max_iter"], **settings.probe_kwargs().get("fit_kwargs", {})}
    return cached_scores(Path(t.run_dir) / "probe_budget.json",
                         {"scores": "probe_budget", "settings": settings.cache_key(), "run": run_identity(res)},
                         lambda: probe_budget(res.model, data, seed=settings.seed,
                                              max_train=settings.probe_max_train, fit=fit, base=base),
                         "probe budget", cfg=res.config, data=data, verbose=verbose)


def budget_scoring(base_cfg: TrainConfig, run_root: str | Path, settings: EvalSettings,
                   data: DataRequest, rows_key: str) -> Scoring:
    """:func:`budget_scores` as a scoring task (after the ald row, ``rows_key``, is scored)."""
    (t,) = baseline_trainings(base_cfg, ["ald"], run_root)
    return Scoring("baselines/budget", t.run_dir,
                   functools.partial(budget_scores, base_cfg, run_root, settings, data),
                   needs=(t.key, rows_key), fits=4.0)


def baseline_seeds(params: Mapping):
    """05's training seeds: ``seeds`` for every baseline, or — with ``baseline_seed_counts``
    (``{baseline: n}``) — a mapping in which each baseline named there trains on the first ``n``
    of ``seeds`` only (:func:`galib.studies.baselines.seed_table`)."""
    seeds, counts = params.get("seeds"), params.get("baseline_seed_counts")
    if not counts:
        return seeds
    every = [int(s) for s in (seeds if seeds is not None else [params.get("seed", 42)])]
    return {n: every[:int(counts[n])] if n in counts else every for n in params["baselines"]}


def eval_settings(params: Mapping, jobs: int = 1) -> EvalSettings:
    """How notebook 05 scores its rows, from its parameters (the sweep scores them alike);
    ``jobs``: processes that score uncached rows side by side (not part of a score)."""
    return EvalSettings(seed=int(params["seed"]), probe_max_train=params.get("probe_max_train"),
                        probe_iters=params.get("probe_iters"), probe_solver=params.get("probe_solver"),
                        extra=SWAP_SCORES, jobs=jobs)


# ----------------------------------------------------------------------------- invariant designs
DESIGNS = {"ald": "paper", "ald-pooled": "pooled", "ald-orbit": "orbit",            # baseline → design
           "ald-pooled-norm": "pooled + normalised L_inv", "ald-orbit-norm": "orbit + normalised L_inv",
           "ald-spectrum-norm": "orbit spectrum + normalised L_inv"}
GOAL_INVARIANCE = 0.2   # goal: centred invariance error ≤ this fraction of its shuffled reference
DESIGN_KEYS = ("probe/z_i/a", "probe/z_i/b", "probe/z_i/c", "invariance_error_centred",
               "invariance_error_centred_shuffled",
               "energy_share_zi_centred", "recon_mse", "recon_ssim", "equivariance_error_centred", "swap_content_a",
               "swap_content_b", "recon_probe_accuracy")


def design_table(rows: list[dict]) -> list[dict]:
    """One row per design of the invariant part present in ``rows`` (mean, sd, per seed of
    ``DESIGN_KEYS``), with the goal checks: ``b_gap`` (probe a − b of ``z_i``), ``mse_ratio``
    (recon MSE over the paper design's), ``invariance_ratio`` (centred invariance error over its
    shuffled reference: 0 exact, 1 no better than pairing unrelated images) and ``meets_goal`` (b
    within 0.05 of a and ≥ 0.70, invariance ratio ≤ ``GOAL_INVARIANCE``, MSE within 1.2× the
    paper design's)."""
    agg = {r["name"]: r for r in aggregate([r for r in rows if r["name"] in DESIGNS], DESIGN_KEYS)}
    ref = agg.get("ald", {}).get("recon_mse")
    out = []
    for name, r in agg.items():
        a, b = r.get("probe/z_i/a"), r.get("probe/z_i/b")
        gap = None if a is None or b is None else a - b
        ratio = None if not ref else r["recon_mse"] / ref
        inv, ref_inv = r.get("invariance_error_centred"), r.get("invariance_error_centred_shuffled")
        inv_ratio = inv / ref_inv if inv is not None and ref_inv else None
        meets = (gap is not None and gap <= 0.05 and b >= 0.70 and ratio is not None and ratio <= 1.2
                 and inv_ratio is not None and inv_ratio <= GOAL_INVARIANCE)
        out.append({**r, "design": DESIGNS[name], "b_gap": gap, "mse_ratio": ratio,
                    "invariance_ratio": inv_ratio, "meets_goal": meets})
    return out


def design_sentence(table: list[dict]) -> str:
    """The designs compared in words, computed from :func:`design_table`."""
    if not table:
        return "No design of the invariant part among these baselines."
    parts = []
    for r in table:
        parts.append(f"{r['design']}: z_i probe {r.get('probe/z_i/a', float('nan')):.2f} upright → "
                     f"{r.get('probe/z_i/b', float('nan')):.2f} rotated, centred invariance error "
                     f"{r.get('invariance_error_centred', float('nan')):.2f} "
                     f"({(r['invariance_ratio'] or float('nan')):.2f} of unrelated pairs'), recon MSE ×"
                     f"{(r['mse_ratio'] or float('nan')):.2f} of the paper's, swaps show a's class "
                     f"{r.get('swap_content_a', float('nan')):.0%}")
    good = [r["design"] for r in table if r["meets_goal"]]
    verdict = (f"Meets the goal: {', '.join(good)}." if good else
               f"No design meets the goal (z_i probe b ≥ 0.70 and within 0.05 of a, centred "
               f"invariance error ≤ {GOAL_INVARIANCE:g} of unrelated pairs', recon MSE ≤ 1.2× the "
               f"paper's).")
    return "; ".join(parts) + ". " + verdict


DESIGN_DECISION_KEYS = ("probe/z_i/a", "probe/z_i/b", "invariance_error_centred", "recon_mse")


def design_comparison(rows: list[dict], a: str = "ald-spectrum-norm", b: str = "ald-orbit-norm",
                      keys=DESIGN_DECISION_KEYS) -> list[dict]:
    """Two designs of the invariant part paired by seed (:func:`compare_rows`): ``a`` − ``b`` on
    what decides between them (the z_i probes upright and rotated, the centred invariance error,
    the reconstruction). Empty unless both are among the rows with ≥ 2 shared seeds."""
    return compare_rows(rows, a, b, keys)


def comparison_sentence(comparisons: list[dict], a: str, b: str) -> str:
    """A paired comparison of ``a`` against ``b`` in words, one clause per key."""
    if not comparisons:
        return f"No paired comparison of {a} against {b} (both need ≥ 2 shared seeds)."
    parts = [f"{c['key']} {c['a_mean']:.4f} vs {c['b_mean']:.4f}, difference {c['diff']:+.4f} "
             f"[{c['low']:+.4f}, {c['high']:+.4f}] → {c['verdict']}" for c in comparisons]
    return (f"{a} against {b}, paired over {comparisons[0]['n_seeds']} seeds (95 % t intervals, "
            f"'better' and 'worse' are {a}'s): " + "; ".join(parts) + ".")


# run_baselines(extra_scores=SWAP_SCORES): the latent-swap numbers for every model with a mask
SWAP_SCORES = functools.partial(swap_scores, n_train=1000, n_test=1000, seed=0)


# ----------------------------------------------------------------------------- figures
def plot_probe_bars(table: Mapping[str, Mapping[str, Mapping[str, float]]], out_path=None,
                    title: str = "", chance: float | None = None,
                    protocols: Sequence[str] = ("a", "b", "c"), per_seed=None) -> Figure:
    """Grouped bars of probe test accuracy: ``table[method][feature][protocol]``.

    One group of bars per (method, feature), one bar per protocol. ``per_seed`` (the same layout,
    lists of per-seed accuracies) adds a dot per seed and an sd error bar to each bar.
    """
    keys = [(m, f) for m in table for f in table[m]]
    x = np.arange(len(keys))
    w = 0.8 / len(protocols)
    with rc_style():
        fig = Figure(figsize=(max(7, 0.75 * len(keys) + 2), 4.4), layout="constrained")
        ax = fig.subplots()
        colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
        for k, prot in enumerate(protocols):
            vals = [table[m][f].get(prot, np.nan) for m, f in keys]
            xs = x + (k - (len(protocols) - 1) / 2) * w
            seeds = [[v for v in ((per_seed or {}).get(m, {}).get(f, {}).get(prot) or []) if v is not None]
                     for m, f in keys]
            sd = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in seeds]
            ax.bar(xs, vals, w, yerr=sd if any(sd) else None, capsize=2, label=f"protocol {prot}",
                   color=colors[k % len(colors)])
            for xi, v in zip(xs, seeds):
                if len(v) > 1:
                    ax.scatter([xi] * len(v), v, s=7, color="k", alpha=0.6, zorder=3)
        if chance is not None:
            ax.axhline(chance, color="gray", ls=":", label="chance")
        if len(keys) <= 8:
            ax.set_xticks(x, [f"{m}\n{f}" for m, f in keys])
        else:
            ax.set_xticks(x, [f"{m}: {f}" for m, f in keys], rotation=40, ha="right")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1.05)
        ax.legend(ncol=len(protocols) + 1, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                  frameon=False)
        fig.suptitle(f"Linear probes (a: upright→upright, b: upright→transformed, "
                     f"c: transformed→transformed)\n{title}".strip(), fontsize=12)
    return save(fig, out_path)


def plot_confusion(cm, class_names: Sequence[str], out_path=None, title: str = "",
                   normalize: bool = True) -> Figure:
    """Confusion matrix (rows: true class, columns: predicted), row-normalised by default."""
    cm = to_numpy(cm).astype(float)
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    n = len(class_names)
    with rc_style():
        fig = Figure(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n), layout="constrained")
        ax = fig.subplots()
        im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
        for i in range(n):
            for j in range(n):
                if shown[i, j] >= 0.005 or i == j:
                    ax.text(j, i, f"{shown[i, j]:.2f}" if normalize else f"{int(cm[i, j])}",
                            ha="center", va="center", fontsize=8,
                            color="white" if shown[i, j] > 0.6 * (shown.max() or 1) else "black")
        ax.set_xticks(range(n), class_names, rotation=45 if max(len(c) for c in class_names) > 2 else 0,
                      ha="right" if max(len(c) for c in class_names) > 2 else "center")
        ax.set_yticks(range(n), class_names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "count")
        ax.set_title(title)
    return save(fig, out_path)


# ----------------------------------------------------------------------------- findings
FEATURE_WORDS = {"pixels": "pixels", "z": "the whole latent z", "z_i": "z_i",
                 "orbit": "the orbit invariants of z_v",
                 "pixels-orbit": "the orbit invariants of the pixels",
                 "random-orbit": "the orbit invariants of an untrained encoder"}
CONTROLS = CONTROL_FEATURES      # exactly invariant features that need no training


def _drop(s: Mapping, name: str, feature: str) -> tuple[float, float, float] | None:
    v = nums(s, f"{name} {feature} a", f"{name} {feature} b")
    return None if v is None else (v[0], v[1], 100 * (v[0] - v[1]))


def _row_mean(rows, name: str, key: str) -> float | None:
    """Mean of ``key`` over the rows of baseline ``name`` (``None`` if none holds a number)."""
    vals = [num(r.get(key)) for r in rows if r.get("name") == name]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def _worst_element(rows, name: str, feature: str) -> tuple[str, float] | None:
    """The non-identity element with the lowest protocol-b accuracy (``probe/<f>/b/<e>``, mean
    over the rows of ``name``)."""
    prefix = f"probe/{feature}/b/"
    elements = dict.fromkeys(k[len(prefix):] for r in rows if r.get("name") == name for k in r
                             if k.startswith(prefix))
    accs = {e: _row_mean(rows, name, prefix + e) for e in elements}
    accs = {e: v for e, v in accs.items() if v is not None}
    return min(accs.items(), key=lambda kv: kv[1]) if accs else None


def _comparisons(m: Mapping) -> list[dict]:
    """The paired learned-vs-random comparisons 05 wrote, those with an interval and a known verdict."""
    out = []
    for c in m.get("learned_vs_random") or []:
        if (isinstance(c, Mapping) and c.get("verdict") in VERDICTS and isinstance(c.get("key"), str)
                and nums(c, "diff", "low", "high", "margin")):
            out.append(c)
    return out


def _ald_drops(s: Mapping, rows: list) -> list[str]:
    """The learned mask's features under protocol b, and which of them keep their accuracy."""
    drops = {f: _drop(s, "ald", f) for f in ("z", "z_i", "orbit")}
    drops = {f: d for f, d in drops.items() if d}
    if not drops:
        return []
    parts = [f"{FEATURE_WORDS[f]} from {a:.3f} to {b:.3f} "
             + (f"({d:.0f} points lower)" if d > 0.5 else "(no loss)")
             for f, (a, b, d) in drops.items()]
    out = ["With the learned mask (ALD), protocol b takes "
           + (", ".join(parts[:-1]) + " and " if len(parts) > 1 else "") + parts[-1] + "."]
    keep = [f for f, (_, _, d) in drops.items() if d <= KEEP_POINTS]
    lose = [FEATURE_WORDS[f] for f, (_, _, d) in drops.items() if d > KEEP_POINTS]
    words = []
    for f in keep:
        w = _worst_element(rows, "ald", f)
        words.append(FEATURE_WORDS[f] + (f" (worst element {w[0]}: {w[1]:.3f})" if w else ""))
    text = (f"Invariant under the non-identity group elements (protocol b losing at most "
            f"{KEEP_POINTS:g} points): {', '.join(words) if words else 'none of them'}")
    if lose:
        text += f"; not invariant: {', '.join(lose)}"
    return out + [text + "."]


def _best_against_controls(m: Mapping, controls: dict) -> list[str]:
    """The best invariant feature (chosen on validation) against the better untrained control."""
    best, chance = m.get("best_invariant"), num(m.get("chance"))
    if not isinstance(best, Mapping) or num(best.get("accuracy_table")) is None:
        return []
    acc = float(best["accuracy_table"])
    text = (f"Chosen on validation accuracy, the best invariant feature under protocol b is "
            f"{FEATURE_WORDS.get(best['feature'], best['feature'])} of the {best['baseline']} model, "
            f"at {acc:.3f} on the test images" + (f" (chance {chance:.2f})" if chance is not None else ""))
    if controls:
        ctrl, (_, cb) = max(controls.items(), key=lambda kv: kv[1][1])
        d = 100 * (acc - cb)
        text += (f"; that is {abs(d):.0f} points " + ("above" if d > 0 else "below")
                 + f" the better control ({FEATURE_WORDS[ctrl]}, {cb:.3f}): "
                 + ("training buys invariant class information beyond it" if d > KEEP_POINTS else
                    "training falls behind it" if d < -KEEP_POINTS else
                    f"within {KEEP_POINTS:g} points, no better than invariance alone"))
    return [text + "."]


def _paired_words(m: Mapping) -> list[str]:
    comps = _comparisons(m)
    if not comps:
        return []
    decided = [c for c in comps if c["verdict"] != "inconclusive"]
    if decided:
        return ["Paired by seed, learned minus random (95 % interval; equivalence margin): "
                + "; ".join(f"{c['key']} {c['diff']:+.3g} [{c['low']:+.3g}, {c['high']:+.3g}]; "
                            f"±{c['margin']:g} → {c['verdict']}" for c in decided) + "."]
    return [f"No paired comparison of the learned mask with random masks is decided "
            f"({len(comps)} inconclusive): every 95 % interval holds 0 and reaches beyond "
            f"its equivalence margin, so more seeds are needed to tell."]


def findings(m: Mapping) -> list[str]:
    s, out, rows = m.get("summary", {}), [], m.get("rows") or []
    n = n_seeds(m)
    px = _drop(s, "pixels", "pixels")
    if px:
        out.append(f"A linear probe on pixels trained on upright images scores {px[0]:.3f} on upright test "
                   f"images (protocol a) and {px[1]:.3f} on test images each moved by a non-identity "
                   f"group element (protocol b), {px[2]:.0f} points lower"
                   + (f" (means over {n} seeds)." if n > 1 else "."))
    out += _ald_drops(s, rows)
    controls = {c: (_row_mean(rows, c, f"probe/{c}/a"), _row_mean(rows, c, f"probe/{c}/b"))
                for c in CONTROLS}
    controls = {c: v for c, v in controls.items() if None not in v}
    if controls:
        parts = [f"{FEATURE_WORDS[c]} {a:.3f} upright and {b:.3f} moved" for c, (a, b) in controls.items()]
        out.append("The exactly invariant controls, which need no training, score: "
                   + "; ".join(parts) + " — what invariance alone gives a linear probe.")
    out += _best_against_controls(m, controls)
    out += text_of(m, "orbit_vs_matched_control_text")
    out += text_of(m, "learned_vs_random_text")
    return out + _paired_words(m)
