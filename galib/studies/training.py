"""Notebook 02's study: the one ALD run that 02, 04 and 05 share, and its summary."""
from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..evaluation.scores import evaluate_model
from ..experiments.plan import DataRequest, Scoring, Training, train_or_load
from ..experiments.scoring import cached_scores
from ..train import TrainConfig, TrainResult
from .plotting import as_images, image_grid, log_ticks, rc_style, save
from .wording import INVARIANT, NOT_INVARIANT, invariance_verdict, num, nums


UNSETTLED_SHARE = 0.25   # more than this share of channels within 0.05 of τ: the split is "unsettled"


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


# ----------------------------------------------------------------------------- figures
def plot_loss_curves(history: Sequence[Mapping], out_path=None, title: str = "") -> Figure:
    """One panel per loss term (total, recon, inv, const): train and validation per epoch."""
    epochs = [r["epoch"] for r in history]
    terms = [("loss", "total loss"), ("recon", "L_recon"), ("inv", "L_inv"), ("const", "L_const")]
    with rc_style():
        fig = Figure(figsize=(12, 3.4), layout="constrained")
        axes = fig.subplots(1, 4)
        for ax, (key, name) in zip(axes, terms):
            for split, style in (("train", "-o"), ("val", "--s")):
                ax.plot(epochs, [r[f"{split}_{key}"] for r in history], style, ms=4, label=split)
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.set_ylabel("MSE")
            if min(min(r[f"train_{key}"], r[f"val_{key}"]) for r in history) > 0:
                ax.set_yscale("log")
                log_ticks(ax)
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].legend()
        fig.suptitle(f"Loss per term\n{title}".strip())
    return save(fig, out_path)


def plot_val_curves(histories: Mapping[str, Sequence[Mapping]], diverged: Mapping[str, int | None],
                    out_path=None, title: str = "") -> Figure:
    """Validation loss per epoch of several runs on one log axis; runs that diverged dashed, with a
    marker at their best epoch (the checkpoint kept)."""
    with rc_style():
        fig = Figure(figsize=(8, 4.5), layout="constrained")
        ax = fig.subplots()
        for name, hist in histories.items():
            vals = [h["val_loss"] for h in hist]
            line, = ax.plot([h["epoch"] for h in hist], vals, "--" if diverged.get(name) else "-",
                            lw=1.4, label=name + (f" (diverged at {diverged[name]})" if diverged.get(name) else ""))
            b = min(range(len(vals)), key=vals.__getitem__)
            ax.plot([hist[b]["epoch"]], [vals[b]], "o", color=line.get_color(), ms=5)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss")
        ax.legend(fontsize=8, ncol=2)
        fig.suptitle(f"Validation loss per run (dot: best epoch, the checkpoint kept)\n{title}".strip())
    return save(fig, out_path)


DIAGNOSTIC_PANELS = (("zv_offset", "offset of z_v (RMS)", "log"), ("zv_varying", "varying part of z_v (RMS)", "log"),
                     ("const_drive", "drive of L_const (r² − 1 − e; > 0 grows z_v)", "linear"),
                     ("zi_offset", "offset of z_i (RMS)", "log"), ("zi_varying", "varying part of z_i (RMS)", "log"),
                     ("mask_flips", "mask flips per epoch", "symlog"))


def plot_diagnostics(histories: Mapping[str, Sequence[Mapping]], out_path=None, title: str = "") -> Figure:
    """The latent diagnostics of each run per epoch (:mod:`galib.train.diagnostics`), one panel
    each: the offsets and varying parts of ``z_v`` and ``z_i``, the drive of ``L_const`` and the
    mask flips; rows without a diagnostic are skipped."""
    with rc_style():
        fig = Figure(figsize=(12, 6.5), layout="constrained")
        axes = fig.subplots(2, 3).ravel()
        for ax, (key, label, scale) in zip(axes, DIAGNOSTIC_PANELS):
            for name, hist in histories.items():
                rows = [h for h in hist if key in h]
                ax.plot([h["epoch"] for h in rows], [h[key] for h in rows], lw=1.3, label=name)
            if key == "const_drive":
                ax.axhline(0, color="0.5", lw=0.8)
            if not any(key in h for hist in histories.values() for h in hist):
                ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.set_yscale(scale)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("epoch")
        axes[0].legend(fontsize=7)
        fig.suptitle(f"Latent diagnostics per epoch (fixed validation pairs)\n{title}".strip())
    return save(fig, out_path)


def plot_mask_evolution(history: Sequence[Mapping], tau: float, out_path=None, title: str = "",
                        sort: bool = True) -> Figure:
    """Heatmap epochs × channels of ``sigmoid(alpha)``; dots (up to 15 epochs) and a black contour
    mark channels that are variant (p > τ).

    The colour scale is centred on τ and spans the observed range, so small drifts stay visible.
    With ``sort`` the channels are ordered by their final probability, so the variant block is
    contiguous; the right panel shows the variant fraction per epoch.
    """
    P = np.array([r["mask_probs"] for r in history])          # (E, C)
    epochs = np.array([r["epoch"] for r in history])
    order = np.argsort(-P[-1], kind="stable") if sort else np.arange(P.shape[1])
    P = P[:, order]
    half = max(float(np.abs(P - tau).max()), 0.05)            # colour range centred on τ
    norm = matplotlib.colors.TwoSlopeNorm(vcenter=tau, vmin=max(tau - half, 0.0),
                                          vmax=min(tau + half, 1.0))
    with rc_style():
        fig = Figure(figsize=(12, 2.8 + 0.3 * min(len(epochs), 12)), layout="constrained")
        ax, ax2 = fig.subplots(1, 2, width_ratios=[5, 1])
        im = ax.imshow(P, aspect="auto", cmap="coolwarm", norm=norm, interpolation="nearest",
                       extent=(-0.5, P.shape[1] - 0.5, epochs[-1] + 0.5, epochs[0] - 0.5))
        if len(epochs) <= 15:                                 # dots stay legible
            ee, cc = np.nonzero(P > tau)
            ax.scatter(cc, epochs[ee], s=6, c="k", marker="o", label=f"variant (p > τ = {tau:g})")
            ax.legend(loc="upper right", bbox_to_anchor=(1, 1.18), frameon=False, fontsize=9)
        if len(epochs) > 1:
            ax.contour(np.arange(P.shape[1]), epochs, P, levels=[tau], colors="k", linewidths=1)
        ax.set_xlabel("latent channel" + (" (sorted by final p)" if sort else ""))
        ax.set_ylabel("epoch")
        ax.yaxis.get_major_locator().set_params(integer=True)
        fig.colorbar(im, ax=ax, label="p = sigmoid(α)  (centred on τ)", pad=0.01)
        ax.set_title("Mask probabilities per channel", loc="left")
        frac = [r["variant_fraction"] for r in history]
        ax2.plot(frac, epochs, "-o" if len(epochs) <= 15 else "-", ms=4)
        ax2.set_ylim(epochs[-1] + 0.5, epochs[0] - 0.5)
        ax2.set_xlim(0, 1)
        ax2.set_xlabel("variant fraction")
        ax2.set_title("|z_v| / C")
        ax2.yaxis.get_major_locator().set_params(integer=True)
        fig.suptitle(f"ALD mask over training\n{title}".strip())
    return save(fig, out_path)


def plot_reconstructions(x, gx, recon, element_names: Sequence[str] | None = None, out_path=None,
                         title: str = "") -> Figure:
    """Rows: input ``x``, ground truth ``T_g x``, prediction ``D(z_i + Phi_g z_v)``, |error|."""
    xs, gt, pr = as_images(x), as_images(gx), as_images(recon)
    err = np.abs(pr - gt)
    if err.ndim == 4:
        err = err.mean(-1)
    labels = None if element_names is None else [f"g = {n}" for n in element_names]
    fig = image_grid([xs, gt, pr, err], ["x", "T_g x\n(truth)", "D(z_i+Φ_g z_v)\n(prediction)", "|error|"],
                labels, f"Transformed reconstructions\n{title}".strip(), err_rows=(3,))
    return save(fig, out_path)


# ----------------------------------------------------------------------------- findings
def findings(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    hist = m.get("history") or []
    channels = len(hist[-1].get("mask_probs") or []) if hist else 0
    v = nums(s, "epochs", "val_loss_first", "val_loss_last")
    if v:
        change = (f"down by a factor {v[1] / v[2]:.1f}" if v[2] < v[1] else "it did not fall") if v[2] > 0 else ""
        out.append(f"In {v[0]:.0f} epochs the validation loss went from {v[1]:.4f} to {v[2]:.4f}"
                   + (f" ({change})." if change else "."))
    nv, tau = num(s.get("n_variant")), num(s.get("tau"))
    if nv is not None and tau is not None and channels:
        text = (f"The learned mask made {nv:.0f} of {channels} channels variant at τ = {tau:g} "
                f"({nv / channels:.0%} of the latent is z_v).")
        uns = num(s.get("n_unsettled"))
        if uns is not None:
            text += (f" {uns:.0f} channels end within 0.05 of τ, so "
                     + ("the split is not settled yet: more epochs may move channels across τ."
                        if uns > UNSETTLED_SHARE * channels else "the split looks settled."))
        out.append(text)
    r = nums(s, "n_images", "recon_mse", "recon_psnr", "recon_ssim")
    if r:
        out.append(f"On {r[0]:.0f} test images, the prediction D(z_i + Φ_g z_v) from the untransformed x "
                   f"matches T_g x with MSE {r[1]:.4f} (PSNR {r[2]:.1f} dB, SSIM {r[3]:.2f}).")
    eq = num(s.get("equivariance_error"))
    if eq is not None:
        text = (f"Over the non-identity group elements, z_v is equivariant up to a relative error of "
                f"{eq:.3f} (‖Φ_g z_v(x) − z_v(T_g x)‖ / ‖z_v(T_g x)‖, mean over test pairs)")
        c = nums(s, "equivariance_error_centred", "equivariance_error_centred_shuffled")
        if c and c[1] > 0:
            text += (f"; its centred error is {c[0]:.2f} against {c[1]:.2f} when each prediction is "
                     f"paired with another image's target ({c[0] / c[1]:.0%} of that level)")
        out.append(text + ".")
    inv = num(s.get("invariance_error_centred"))
    ref = num(s.get("invariance_error_centred_shuffled"))
    if inv is not None:
        head = f"The centred invariance error of z_i over the non-identity group elements is {inv:.2f}"
        if ref is None:
            out.append(head + " (0 is exact; this run holds no shuffled reference to read it against).")
        elif ref <= 0:
            out.append(head + f" and its shuffled reference {ref:.2f}: z_i does not vary between test "
                       f"images (empty or constant), so its invariance tells nothing.")
        else:
            out.append(head + f", against {ref:.2f} when each image's z_i is paired with another "
                       f"image's transform (no relation at all; 0 is exact): {inv / ref:.0%} of that "
                       f"level (below {INVARIANT:.0%} counts as largely invariant, from "
                       f"{NOT_INVARIANT:.0%} as not invariant), so z_i is {invariance_verdict(inv, ref)}.")
    e = num(s.get("energy_share_zi"))
    if e is not None:
        out.append(f"z_i carries {e:.0%} of the latent energy.")
    return out
