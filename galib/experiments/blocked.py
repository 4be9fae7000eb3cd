"""The blocked experiment behind notebook 06: does the learned mask send a fixed block to ``z_i``?

``blocked:NAME`` images carry a mid-grey square that does not move with the group. The paper
claims the learned mask discovers this: the block should be drawn by the invariant part. For each
dataset and training seed, :func:`blocked_study` trains (or loads) the learned mask (``ald``), an
all-variant model, the manual half/half split and a random mask of the learned mask's size, and
scores each with :func:`galib.evaluation.block.block_scores` (where the block is drawn, which
channels carry it) and the usual test scores. :func:`block_sentences` states the answer in words
computed from the numbers.
"""
from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

from ..evaluation.block import block_pictures, block_scores
from ..evaluation.spread import aggregate, compare
from ..train import TrainConfig
from .baselines import BASELINES, baseline_trainings, run_baselines
from .plan import DataRequest, Training, train_or_load
from .rows import EvalSettings

BLOCKED_MODELS = ("ald", "all-variant", "manual", "random")
BLOCK_KEYS = ("block_share_zi", "image_share_zi", "block_channels_invariant", "recon_mse_block",
              "recon_mse_outside",
              "recon_mse", "equivariance_error", "equivariance_error_centred", "variant_fraction")


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
                  models=BLOCKED_MODELS, n_images: int = 512, max_test: int | None = None,
                  seed: int = 0, progress: bool = False, verbose: bool = True) -> list[dict]:
    """One row per (dataset, model, training seed): every test score of ``run_baselines`` (no
    probes) and every block score, on the first ``n_images`` test images."""
    extra = functools.partial(_block_extra, n_images=n_images, seed=seed)
    settings = EvalSettings(seed=seed, probe=False, max_images=n_images, max_test=max_test)
    rows = []
    for name in datasets:
        cfg = replace(base_cfg, dataset=name)
        data = DataRequest.of(cfg, max_test=max_test).load(verbose=verbose)
        rows += run_baselines(cfg, models, dataset_dir(run_root, name), data=data, settings=settings,
                              seeds=seeds, extra_scores=extra, progress=progress, verbose=verbose)
    return rows


def block_table(rows: list[dict]) -> list[dict]:
    """Mean, sd and per-seed values of ``BLOCK_KEYS`` per (dataset, model)."""
    keyed = [{**r, "_key": f"{r['dataset']}|{r['name']}"} for r in rows]
    agg = aggregate(keyed, BLOCK_KEYS, by="_key")
    for a in agg:
        a["dataset"], a["name"] = a.pop("_key").split("|")
    return agg


def block_sentences(table: list[dict]) -> list[str]:
    """Per dataset, the answer in one sentence: where the learned mask's block comes from, against
    the random mask of the same size, and whether the channels that carry it are invariant."""
    out = []
    for ds in dict.fromkeys(r["dataset"] for r in table):
        by = {r["name"]: r for r in table if r["dataset"] == ds}
        ald = by.get("ald")
        if ald is None:
            continue
        text = (f"On {ds} ({ald['n_seeds']} seed{'s' if ald['n_seeds'] > 1 else ''}), the block's "
                f"reconstruction comes {_pct(ald.get('block_share_zi'))} ± "
                f"{_pct(ald.get('block_share_zi_sd'))} from z_i with the learned mask, against "
                f"{_pct(ald.get('image_share_zi'))} for the rest of the image")
        others = [f"{BASELINES[n].label} {_pct(by[n].get('block_share_zi'))}" for n in by if n != "ald"]
        if others:
            text += f" ({', '.join(others)})"
        inv_share = 1 - ald["variant_fraction"]
        text += (f"; {_pct(ald.get('block_channels_invariant'))} of the channels' effect on the block "
                 f"lies in the channels it made invariant, which are {inv_share:.0%} of all channels.")
        if "random" in by:
            c = compare(ald, by["random"], "block_share_zi", lower_is_better=False)
            rnd = by["random"]
            text += (f" Random masks of the same size put {_pct(rnd.get('block_channels_invariant'))} "
                     f"of it in their invariant channels; on the block share the learned mask is "
                     f"{c['verdict']} than random masks (difference {c['diff']:+.0%}, spread "
                     f"{c['spread']:.0%}).")
        out.append(text)
    return out


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
