"""Notebook 02's study: the one ALD run that 02, 04 and 05 share, and its summary."""
from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from ..evaluation.scores import evaluate_model
from ..train import TrainConfig, TrainResult
from .plan import DataRequest, Scoring, Training, train_or_load
from .rows import cached_scores


def ald_training(cfg: TrainConfig, run_dir: str | Path, max_test: int | None = None) -> Training:
    """The shared run: ``cfg`` as it is, in ``run_dir`` (02's run; 05's ``ald`` baseline of the base
    seed lives in the same folder)."""
    cfg = cfg.validate()
    return Training(f"baselines/ald/seed{cfg.seed}", cfg, str(Path(run_dir)),
                    DataRequest.of(cfg, max_test=max_test))


def run_identity(res: TrainResult) -> dict:
    """What a cached score of a finished run depends on besides its config: where it stopped."""
    return {"epochs": len(res.history), "best_epoch": res.best["epoch"],
            "best_val_loss": res.best["val_loss"]}


def test_scores(res: TrainResult, run_dir: str | Path, data, seed: int, verbose: bool = True) -> dict:
    """:func:`~galib.evaluation.scores.evaluate_model` of the finished run ``res`` on
    ``data.test`` (elements drawn from ``seed``), scored once and kept in
    ``run_dir/test_scores.json`` (notebook 02's test scores; the sweep scores them first)."""
    return cached_scores(Path(run_dir) / "test_scores.json",
                         {"scores": "evaluate_model", "seed": int(seed), "run": run_identity(res)},
                         lambda: evaluate_model(res.model, data.test, seed=seed), "test scores",
                         cfg=res.config, data=data, verbose=verbose)


def score_test(training: Training, seed: int, data: DataRequest) -> dict:
    """:func:`test_scores` of ``training`` (finished): the sweep's scoring task."""
    splits = data.load()
    return test_scores(train_or_load(training, splits), training.run_dir, splits, seed)


def test_scoring(training: Training, seed: int, data: DataRequest) -> Scoring:
    """Notebook 02's scoring task: the test scores of its run."""
    return Scoring(f"{training.key}/test", training.run_dir,
                   functools.partial(score_test, training, int(seed), data), needs=(training.key,))


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


def divergence_epoch(history: list[dict], factor: float = DIVERGENCE_FACTOR, key: str = "val_loss") -> int | None:
    """The first epoch whose ``key`` (validation loss) exceeds ``factor`` × the best of the epochs
    before it, or is not finite: where a run blew up (its best checkpoint, the paper's rule, is then
    from before). ``None`` when no epoch does."""
    best = math.inf
    for h in history:
        v = h[key]
        if not math.isfinite(v) or v > factor * best:
            return h["epoch"]
        best = min(best, v)
    return None


TERMS = ("val_recon", "val_inv", "val_const")
# Signals read for the first departure: the loss terms and the latent diagnostics of every history
# row (galib.train.diagnostics); const_drive is signed and departs when it turns positive. (Mask
# flips are recorded and drawn, not read here: a count that starts at 0 has no trend to leave.)
SIGNALS = TERMS + ("zv_offset", "zv_varying", "zi_offset", "zi_varying")
DEPARTURE_FACTOR = 2.0    # a signal departs when it passes this multiple of its lowest value so far
DEPARTURE_PERSIST = 3     # ... and stays above it this many epochs (or to the end of the run)


def departure_epoch(values: list[float], factor: float = DEPARTURE_FACTOR,
                    persist: int = DEPARTURE_PERSIST) -> int | None:
    """1-based index of the first value above ``factor`` × the lowest value before it that stays
    above that level for ``persist`` values (fewer only where the series ends); a transient that
    falls back is not a departure. Non-finite values count as above. ``None`` if none departs."""
    low = math.inf
    for i, v in enumerate(values):
        if 0 < low < math.inf and _above(v, factor * low):
            ahead = values[i:i + persist]
            if all(_above(w, factor * low) for w in ahead):
                return i + 1
        if math.isfinite(v):
            low = min(low, v)
    return None


def _above(v: float, level: float) -> bool:
    return not math.isfinite(v) or v > level


def positive_epoch(values: list[float], persist: int = DEPARTURE_PERSIST) -> int | None:
    """1-based index of the first value > 0 that stays > 0 for ``persist`` values (or to the end)."""
    for i in range(len(values)):
        if all(_above(w, 0.0) for w in values[i:i + persist]):
            return i + 1
    return None


def first_signal(history: list[dict], factor: float = DEPARTURE_FACTOR,
                 persist: int = DEPARTURE_PERSIST) -> tuple[str | None, int | None, dict]:
    """``(signal, epoch, {signal: epoch})``: which of :data:`SIGNALS` (and ``const_drive`` turning
    positive) leaves its own early trend first (:func:`departure_epoch`), ties going to the order
    of ``SIGNALS``; signals a history does not carry are skipped."""
    epochs = [h["epoch"] for h in history]
    found = {}
    for s in SIGNALS + ("const_drive",):
        if not history or not all(s in h for h in history):
            continue
        vals = [float(h[s]) for h in history]
        i = positive_epoch(vals, persist) if s == "const_drive" else departure_epoch(vals, factor, persist)
        if i is not None:
            found[s] = epochs[i - 1]
    if not found:
        return None, None, found
    name = min(found, key=lambda s: (found[s], (SIGNALS + ("const_drive",)).index(s)))
    return name, found[name], found


def stability(history: list[dict], factor: float = DIVERGENCE_FACTOR) -> dict:
    """How a run's validation loss behaved: ``epochs``, ``best_epoch``, ``best_val_loss``,
    ``last_val_loss``, ``max_val_loss`` (NaN if any is not finite), ``diverged_epoch``
    (:func:`divergence_epoch`, ``None`` if it did not), ``first_term`` — the loss term (recon, inv,
    const) that first exceeded ``factor`` × its own best so far at or before that epoch — and, for
    a diverged run, ``first_signal`` / ``first_signal_epoch`` / ``departures``: the loss term or
    latent diagnostic that first left its own early trend for good (:func:`first_signal`)."""
    vals = [h["val_loss"] for h in history]
    finite = [i for i, v in enumerate(vals) if math.isfinite(v)] or [0]
    best_i = min(finite, key=vals.__getitem__)
    out = {"epochs": len(history), "best_epoch": history[best_i]["epoch"], "best_val_loss": vals[best_i],
           "last_val_loss": vals[-1], "max_val_loss": max(vals) if all(map(math.isfinite, vals)) else math.nan,
           "diverged_epoch": divergence_epoch(history, factor), "first_term": None,
           "first_signal": None, "first_signal_epoch": None, "departures": {}}
    if out["diverged_epoch"] is not None:
        firsts = {t[4:]: divergence_epoch(history, factor, key=t) for t in TERMS if all(t in h for h in history)}
        firsts = {t: e for t, e in firsts.items() if e is not None}
        out["first_term"] = min(firsts, key=firsts.get) if firsts else None
        name, epoch, found = first_signal(history)
        out.update(first_signal=name, first_signal_epoch=epoch, departures=found)
    return out


def training_summary(history: list[dict], test_metrics: dict) -> dict:
    """Headline numbers of a training run for ``metrics.json``'s ``summary``: first/last losses,
    the epoch where the validation loss plateaus (:func:`plateau_epoch`; -1 if it does not yet),
    final variant fraction, seconds per epoch and the scalar test metrics (per-element ones left
    out)."""
    first, last = history[0], history[-1]
    plateau, diverged = plateau_epoch(history), divergence_epoch(history)
    return {"epochs": len(history), "plateau_epoch": -1 if plateau is None else plateau,
            "diverged_epoch": -1 if diverged is None else diverged,
            "train_loss_first": first["train_loss"],
            "train_loss_last": last["train_loss"], "val_loss_first": first["val_loss"],
            "val_loss_last": last["val_loss"], "variant_fraction": last["variant_fraction"],
            "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history),
            **flat_scalars(test_metrics)}
