"""Notebook 02's study: the one ALD run that 02, 04 and 05 share, and its summary."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Mapping

import numpy as np

from ..train import TrainConfig
from .plan import DataRequest, Training


def ald_training(cfg: TrainConfig, run_dir: str | Path, max_test: int | None = None) -> Training:
    """The shared run: ``cfg`` as it is, in ``run_dir`` (02's run; 05's ``ald`` baseline of the base
    seed lives in the same folder)."""
    cfg = cfg.validate()
    return Training(f"baselines/ald/seed{cfg.seed}", cfg, str(Path(run_dir)),
                    DataRequest.of(cfg, max_test=max_test))


def flat_scalars(d: Mapping, prefix: str = "", skip: tuple[str, ...] = ("per_element",)) -> dict:
    """Nested dict → ``{"a.b": number}`` for a ``summary`` block; per-element entries (keys in
    ``skip`` or containing ``/``, e.g. ``recon_mse/90°``) and non-numbers are left out."""
    out = {}
    for k, v in d.items():
        if k in skip or "/" in str(k):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flat_scalars(v, key + ".", skip))
        elif isinstance(v, (int, float, np.generic)) and not isinstance(v, bool):
            out[key] = float(v) if isinstance(v, (float, np.floating)) else int(v)
    return out


PLATEAU_WINDOW = 5        # epochs looked ahead when asking whether the validation loss still improves
PLATEAU_GAIN = 0.01       # ... by at least this fraction of the best loss so far


def plateau_epoch(history: list[dict], window: int = PLATEAU_WINDOW, gain: float = PLATEAU_GAIN) -> int | None:
    """The first epoch ``e`` after which the next ``window`` epochs lower the best validation loss
    by less than ``gain`` (relative): where training has stopped paying. ``None`` when every
    window still gains that much, or the run is too short to tell."""
    best = list(itertools.accumulate((h["val_loss"] for h in history), min))   # best so far
    for i in range(len(history) - window):
        if best[i + window] > best[i] * (1 - gain):
            return history[i]["epoch"]
    return None


DIVERGENCE_FACTOR = 2.0  # an epoch whose validation loss exceeds this multiple of the best so far


def divergence_epoch(history: list[dict], factor: float = DIVERGENCE_FACTOR) -> int | None:
    """The first epoch whose validation loss exceeds ``factor`` × the best of the epochs before
    it: where a run blew up (its best checkpoint, the paper's rule, is then from before). ``None``
    when no epoch does."""
    best = float("inf")
    for h in history:
        if h["val_loss"] > factor * best:
            return h["epoch"]
        best = min(best, h["val_loss"])
    return None


TERMS = ("val_recon", "val_inv", "val_const")


def stability(history: list[dict], factor: float = DIVERGENCE_FACTOR) -> dict:
    """How a run's validation loss behaved: ``epochs``, ``best_epoch``, ``best_val_loss``,
    ``last_val_loss``, ``max_val_loss``, ``diverged_epoch`` (:func:`divergence_epoch`, ``None`` if
    it did not) and ``first_term`` — the loss term (recon, inv, const) that first exceeded
    ``factor`` × its own best so far at or before that epoch."""
    vals = [h["val_loss"] for h in history]
    best_i = min(range(len(vals)), key=vals.__getitem__)
    out = {"epochs": len(history), "best_epoch": history[best_i]["epoch"], "best_val_loss": vals[best_i],
           "last_val_loss": vals[-1], "max_val_loss": max(vals),
           "diverged_epoch": divergence_epoch(history, factor), "first_term": None}
    if out["diverged_epoch"] is not None:
        firsts = {t[4:]: divergence_epoch([{"epoch": h["epoch"], "val_loss": h[t]} for h in history], factor)
                  for t in TERMS if all(t in h for h in history)}
        firsts = {t: e for t, e in firsts.items() if e is not None}
        out["first_term"] = min(firsts, key=firsts.get) if firsts else None
    return out


def training_summary(history: list[dict], test_metrics: dict) -> dict:
    """Headline numbers of a training run for ``metrics.json``'s ``summary``: first/last losses,
    the epoch where the validation loss plateaus (:func:`plateau_epoch`; -1 if it does not yet),
    final variant fraction, seconds per epoch and the scalar test metrics (per-element ones left
    out)."""
    first, last = history[0], history[-1]
    plateau = plateau_epoch(history)
    return {"epochs": len(history), "plateau_epoch": -1 if plateau is None else plateau,
            "train_loss_first": first["train_loss"],
            "train_loss_last": last["train_loss"], "val_loss_first": first["val_loss"],
            "val_loss_last": last["val_loss"], "variant_fraction": last["variant_fraction"],
            "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history),
            **flat_scalars(test_metrics)}
