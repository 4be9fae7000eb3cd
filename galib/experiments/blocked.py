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
from typing import Mapping

from ..evaluation.block import block_pictures, block_scores
from ..evaluation.spread import aggregate
from ..evaluation.stats import paired_comparison
from ..train import TrainConfig
from .baselines import BASELINES, baseline_scorings, baseline_trainings, run_baselines
from .plan import DataRequest, Training, train_or_load
from .probes import paired_values
from .rows import EvalSettings

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
        c = paired_comparison(a, b, key)
        words.append(f"{what} {c['verdict']} (difference {c['diff']:+.2f}, 95 % CI "
                     f"[{c['low']:+.2f}, {c['high']:+.2f}], margin {c['margin']:.2f})")
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
