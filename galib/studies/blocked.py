"""The blocked experiment behind notebook 06: does the learned mask send a fixed block to ``z_i``?

``blocked:NAME`` images carry a square that does not move with the group (``blocked:bright:NAME``:
a white one, which a blank decode does not already draw; the paper's grey is ``blocked:NAME``).
The paper claims the learned mask discovers this: the block should be drawn by the invariant part.
For each dataset and training seed, :func:`blocked_study` loads (or trains) the learned mask
(``ald``), an all-variant model, the manual half/half split, a random mask of the learned mask's
size and the loss ablations (``recon+inv``: no ``L_const``; ``recon+const``: no ``L_inv``;
``recon``: neither — do the losses route the block?), and scores each with
:func:`galib.evaluation.block.block_scores` (signed shares against a blank decode, gains, swaps,
which channels carry it) and the usual test scores. :func:`block_sentences` states the answer in
words computed from the numbers, the learned mask against the others paired by seed.
"""
from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..evaluation.block import block_pictures, block_scores
from ..evaluation.spread import aggregate
from ..evaluation.stats import paired_comparison, spread_margin
from ..experiments.plan import DataRequest, Training, train_or_load
from ..experiments.scoring import EvalSettings
from ..train import TrainConfig
from .baselines import BASELINES, baseline_scorings, baseline_trainings, run_baselines
from .plotting import as_images, image_grid, rc_style, save
from .probes import paired_values
from .wording import num


BLOCK_DRAWN = 0.25       # block gain below this: the model hardly draws the block (no verdict on where)
BLOCK_IN_PART = 0.75     # block share of z_i at or above this: drawn by z_i; at or below 1 − this: by z_v

BLOCKED_MODELS = ("ald", "all-variant", "manual", "random", "recon+inv", "recon+const", "recon")
BLOCK_KEYS = ("block_share_zi", "block_gain", "block_gain_zi", "block_gain_zv", "block_swap_zi",
              "block_swap_zv", "image_share_zi", "block_channels_invariant", "recon_mse_block",
              "recon_mse_outside", "block_mse_blank", "recon_mse", "equivariance_error",
              "equivariance_error_centred", "variant_fraction")
# (key, what it says) of the paired comparisons the sentences make
SENTENCE_KEYS = (("block_share_zi", "block share of z_i"), ("block_swap_zi", "block moving with z_i"))


def _block_extra(model, data, n_images: int, seed: int) -> dict:
    return block_scores(model, data.test, n_images=n_images, seed=seed)


def dataset_dir(run_root: str | Path, dataset: str) -> Path:
    """``run_root/<dataset>`` with ``:`` made safe for file systems (``blocked_glyphs``)."""
    return Path(run_root) / dataset.replace(":", "_")


def blocked_trainings(base_cfg: TrainConfig, datasets, run_root: str | Path, seeds=None,
                      models=BLOCKED_MODELS, max_test: int | None = None) -> list[Training]:
    """The plan: every (dataset, model, seed) in ``run_root/<dataset>/<model>[_seed<s>]``, each
    dataset on the base seed's split."""
    out = []
    for name in datasets:
        cfg = replace(base_cfg, dataset=name)
        out += [replace(t, key=f"blocked/{name}/{t.key.split('/', 1)[1]}",
                        needs=tuple(f"blocked/{name}/{n.split('/', 1)[1]}" for n in t.needs))
                for t in baseline_trainings(cfg, models, dataset_dir(run_root, name), seeds,
                                            DataRequest.of(cfg, max_test=max_test))]
    return out


def blocked_study(base_cfg: TrainConfig, datasets, run_root: str | Path, seeds=None,
                  models=BLOCKED_MODELS, settings: EvalSettings | None = None, progress: bool = False,
                  verbose: bool = True) -> list[dict]:
    """One row per (dataset, model, training seed): every test score of ``run_baselines`` (no
    probes) and every block score, on the first ``settings.max_images`` test images (default 512),
    the group elements drawn from ``settings.seed``."""
    settings = block_settings(settings)
    rows = []
    for name in datasets:
        cfg = replace(base_cfg, dataset=name)
        data = DataRequest.of(cfg, max_test=settings.max_test).load(verbose=verbose)
        rows += run_baselines(cfg, models, dataset_dir(run_root, name), data=data, settings=settings,
                              seeds=seeds, progress=progress, verbose=verbose)
    return rows


def eval_settings(params: Mapping) -> EvalSettings:
    """How notebook 06 scores its rows, from its parameters (the sweep scores them alike)."""
    return EvalSettings(seed=int(params["seed"]), probe=False, max_images=params.get("n_images"),
                        max_test=params.get("max_test"))


def block_settings(settings: EvalSettings | None = None) -> EvalSettings:
    """How the study scores (no probes; the block scores as the extra), from the notebook's."""
    settings = settings or EvalSettings(probe=False, max_images=512)
    extra = functools.partial(_block_extra, n_images=settings.max_images, seed=settings.seed)
    return replace(settings, probe=False, extra=extra)


def blocked_scorings(base_cfg: TrainConfig, datasets, run_root: str | Path, seeds=None,
                     models=BLOCKED_MODELS, settings: EvalSettings | None = None) -> list:
    """The scoring tasks of :func:`blocked_study` with these arguments: one per row (keys
    ``blocked/<dataset>/rows/<model>/seed<s>``, needing :func:`blocked_trainings`' runs)."""
    settings = block_settings(settings)
    out = []
    for name in datasets:
        cfg = replace(base_cfg, dataset=name)
        out += baseline_scorings(cfg, models, dataset_dir(run_root, name), seeds, settings,
                                 DataRequest.of(cfg, max_test=settings.max_test), prefix=f"blocked/{name}")
    return out


def block_table(rows: list[dict]) -> list[dict]:
    """Mean, sd and per-seed values of ``BLOCK_KEYS`` per (dataset, model)."""
    keyed = [{**r, "_key": f"{r['dataset']}|{r['name']}"} for r in rows]
    agg = aggregate(keyed, BLOCK_KEYS, by="_key")
    for a in agg:
        a["dataset"], a["name"] = a.pop("_key").split("|")
    return agg


def block_sentences(table: list[dict], rows: list[dict] | None = None) -> list[str]:
    """Per dataset, the answer in words: how much of the block's error the learned mask removes
    against a blank decode (the size of the effect), which part that comes from (signed share), and
    whether the block moves with ``z_i`` in swaps; then, paired by seed with ``rows``, the learned
    mask against the random mask of its size and against the loss ablations."""
    out = []
    for ds in dict.fromkeys(r["dataset"] for r in table):
        by = {r["name"]: r for r in table if r["dataset"] == ds}
        ald = by.get("ald")
        if ald is None:
            continue
        seeds = f"{ald['n_seeds']} seed{'s' if ald['n_seeds'] > 1 else ''}"
        gain = ald.get("block_gain")
        if gain is None or not gain > 0:
            text = (f"On {ds} ({seeds}), the learned mask draws the block no better than a blank decode "
                    f"(gain {_pct(gain)} of the blank decode's block error), so where it is drawn "
                    f"cannot be told")
        else:
            text = (f"On {ds} ({seeds}), the learned mask removes {_pct(gain)} of a blank decode's error "
                    f"in the block; {_pct(ald.get('block_share_zi'))} ± "
                    f"{_pct(ald.get('block_share_zi_sd'))} of that comes from z_i (against "
                    f"{_pct(ald.get('image_share_zi'))} for the rest of the image)")
        text += (f"; in swaps the block moves {_pct(ald.get('block_swap_zi'))} of the way with z_i and "
                 f"{_pct(ald.get('block_swap_zv'))} with z_v")
        others = [f"{BASELINES[n].label} {_pct(by[n].get('block_share_zi'))}" for n in by if n != "ald"]
        text += f" (block share of z_i: {', '.join(others)})." if others else "."
        part = [r for r in rows or [] if r["dataset"] == ds]
        for other in ("random", "recon"):
            text += _paired_words(part, other)
        out.append(text)
    return out


def _paired_words(rows: list[dict], other: str) -> str:
    words = []
    for key, what in SENTENCE_KEYS:
        seeds, a, b = paired_values(rows, "ald", other, key)
        if len(seeds) < 2:
            return ""
        c = paired_comparison(a, b, key, margin=spread_margin(b, key))
        words.append(f"{what} {c['verdict']} (difference {c['diff']:+.2f}, 95 % CI "
                     f"[{c['low']:+.2f}, {c['high']:+.2f}], margin {c['margin']:.2f}: {c['margin_basis']})")
    return f" Against {BASELINES[other].label} over {len(seeds)} seeds: " + "; ".join(words) + "."


def _pct(v) -> str:
    return "—" if v is None or v != v else f"{v:.0%}"


def learned_model_pictures(base_cfg: TrainConfig, dataset: str, run_root: str | Path, n: int = 6,
                           seed: int = 0, verbose: bool = False) -> dict:
    """:func:`galib.evaluation.block.block_pictures` of the learned mask's base-seed run."""
    cfg = replace(base_cfg, dataset=dataset)
    (t,) = baseline_trainings(cfg, ["ald"], dataset_dir(run_root, dataset))
    data = replace(t.data, max_test=n).load(verbose=verbose)
    model = train_or_load(t, data, verbose=verbose).model
    return block_pictures(model, data.test, n=n, seed=seed)


# ----------------------------------------------------------------------------- figures
def plot_block_shares(table: Sequence[Mapping], out_path=None, title: str = "",
                      labels: Mapping[str, str] | None = None) -> Figure:
    """Per dataset (a column of panels) and model: the share of the block drawn by ``z_i`` (top)
    and the transformed-reconstruction MSE inside and outside the block (bottom); mean ± sd over
    seeds with a dot per seed. ``table``: rows of ``dataset``, ``name`` and aggregated keys."""
    datasets = list(dict.fromkeys(r["dataset"] for r in table))
    labels = labels or {}
    with rc_style():
        fig = Figure(figsize=(5.2 * len(datasets), 6.4), layout="constrained")
        axes = fig.subplots(2, len(datasets), squeeze=False)
        for j, ds in enumerate(datasets):
            rows = [r for r in table if r["dataset"] == ds]
            x = np.arange(len(rows))
            names = [labels.get(r["name"], r["name"]) for r in rows]
            ax = axes[0, j]
            bars_with_seeds(ax, x, rows, "block_share_zi", 0.6, "tab:blue", None)
            ax.set_ylim(0, 1.05)
            ax.set_ylabel("share of the block drawn by z_i")
            ax.set_title(ds)
            ax = axes[1, j]
            bars_with_seeds(ax, x - 0.2, rows, "recon_mse_block", 0.4, "tab:red", "inside the block")
            bars_with_seeds(ax, x + 0.2, rows, "recon_mse_outside", 0.4, "tab:gray", "outside")
            ax.set_ylabel("transformed recon. MSE")
            ax.legend(fontsize=9)
            for a in axes[:, j]:
                a.set_xticks(x, names, rotation=20, ha="right")
        fig.suptitle(f"Where does the fixed block go?\n{title}".strip())
    return save(fig, out_path)


def bars_with_seeds(ax, x, rows, key, width, color, label):
    vals = [np.nan if r.get(key) is None else r[key] for r in rows]
    sd = [r.get(f"{key}_sd") or 0.0 for r in rows]
    ax.bar(x, vals, width, yerr=sd if any(sd) else None, capsize=3, color=color, alpha=0.8, label=label)
    for xi, r in zip(x, rows):
        v = [p for p in r.get(f"{key}_per_seed") or [] if p is not None]
        if len(v) > 1:
            ax.scatter([xi] * len(v), v, s=10, color="k", zorder=3)


def plot_block_parts(pics: Mapping[str, object], out_path=None, title: str = "") -> Figure:
    """Rows ``T_g x``, ``D(z_i + Φ_g z_v)``, ``D(z_i)`` alone and ``D(Φ_g z_v)`` alone (each
    ``(N, 1, H, W)``): which part draws the block."""
    rows = [as_images(pics[k]) for k in ("gx", "full", "zi", "zv")]
    fig = image_grid(rows, ["T_g x\n(truth)", "D(z_i+Φ_g z_v)", "D(z_i)\nalone", "D(Φ_g z_v)\nalone"],
                None, f"What each latent part draws (learned mask)\n{title}".strip())
    return save(fig, out_path)


# ----------------------------------------------------------------------------- findings
def _block_verdict(r: Mapping) -> str | None:
    """Where the learned mask draws the block, from one ``table`` row (``None`` without a gain)."""
    gain = num(r.get("block_gain"))
    if gain is None:
        return None
    ds = r.get("dataset", "this dataset")
    if gain < BLOCK_DRAWN:
        drawn = (f"removes only {gain:.0%} of a blank decode's error in the block (less than "
                 f"{BLOCK_DRAWN:.0%}), so it hardly draws the block" if gain > 0 else
                 f"draws the block no better than a blank decode D(0) (block gain {gain:.0%})")
        return f"Where the block lives on {ds} cannot be told: the learned mask {drawn}."
    share = num(r.get("block_share_zi"))
    if share is None:
        return None
    where = (f"the learned mask draws it with z_i (share {share:.0%}, at least {BLOCK_IN_PART:.0%}), "
             f"as the paper claims" if share >= BLOCK_IN_PART else
             f"the learned mask draws it with z_v (share of z_i {share:.0%}, at most "
             f"{1 - BLOCK_IN_PART:.0%}), not with the invariant part the paper expects"
             if share <= 1 - BLOCK_IN_PART else
             f"the learned mask draws it with both parts (share of z_i {share:.0%}, between "
             f"{1 - BLOCK_IN_PART:.0%} and {BLOCK_IN_PART:.0%})")
    img = num(r.get("image_share_zi"))
    if img is not None:
        where += f"; the rest of the image takes {img:.0%} from z_i"
    return f"Where the block lives on {ds} (block gain {gain:.0%}): " + where + "."


SAME_SWAP = 0.05   # other models whose block swap toward z_i is within this of the learned mask's: "the same"


def _block_others(table: list, ald: Mapping) -> str | None:
    """Whether the other models with a z_i route the block as the learned mask does (swap measure)."""
    a = num(ald.get("block_swap_zi"))
    others = {r["name"]: num(r.get("block_swap_zi")) for r in table if isinstance(r, Mapping)
              and r.get("dataset") == ald.get("dataset") and r.get("name") not in ("ald", "all-variant")}
    others = {k: v for k, v in others.items() if v is not None}
    if a is None or not others:
        return None
    same = sorted(k for k, v in others.items() if abs(v - a) <= SAME_SWAP)
    text = (f"On {ald.get('dataset')}, in swaps the block follows z_i {a:.0%} of the way with the learned "
            f"mask; {', '.join(same) or 'no other model'} "
            f"{'do' if len(same) > 1 else 'does'} the same within {SAME_SWAP:.0%}")
    if {"random", "recon"} <= set(same):
        text += (": a random mask of its size and L_recon alone route the block as well, so neither "
                 "the learned choice of channels nor L_inv/L_const is what sends it to z_i")
    return text + "."


def findings(m: Mapping) -> list[str]:
    out = [a for a in (m.get("answer") or []) if isinstance(a, str)]   # block_sentences: numbers, paired verdicts
    table = m.get("table") or []
    for r in table:
        if isinstance(r, Mapping) and r.get("name") == "ald":
            out += [v for v in (_block_verdict(r), _block_others(table, r)) if v]
    return out
