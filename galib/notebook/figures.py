"""Figures for the notebooks: each function takes plain arrays, writes one PNG and returns the figure.

Every plotting function takes an explicit ``out_path`` (``None`` = do not save) and returns a
``matplotlib.figure.Figure`` built without pyplot, so nothing accumulates in global state and a
notebook shows a figure by ending a cell with it. Image batches are ``(B, C, H, W)`` in [-1, 1];
volumes ``(B, C, D, H, W)`` are shown by their middle depth slice (:func:`middle_slice`).
"""
from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import matplotlib.colors
import matplotlib.font_manager
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from ..io import atomic_write

STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10,
         "ytick.labelsize": 10, "legend.fontsize": 10, "figure.titlesize": 13,
         "axes.spines.top": False, "axes.spines.right": False}
DPI = 110
IMG_CMAP, ERR_CMAP, MAP_CMAP = "gray", "magma", "viridis"
VOLUME_VIEW = "middle"     # how volumes (3-D groups) are drawn: "middle" slice or "max" projection


# ----------------------------------------------------------------------------- helpers
@contextmanager
def rc_style():
    with matplotlib.rc_context(STYLE):
        yield


def tag(dataset: str | None = None, group: str | None = None, tau: float | None = None,
        **extra) -> str:
    """A short figure-title suffix such as ``"mnist · c4 · τ = 0.5"``."""
    parts = [str(dataset)] if dataset else []
    if group:
        parts.append(str(group))
    if tau is not None:
        parts.append(f"τ = {tau:g}")
    parts += [f"{k} = {v}" for k, v in extra.items()]
    return " · ".join(parts)


def save(fig: Figure, out_path: str | os.PathLike | None) -> Figure:
    """Write ``fig`` as PNG to ``out_path`` (atomically: a temporary file renamed into place)."""
    if out_path is None:
        return fig
    atomic_write(Path(out_path), lambda tmp: fig.savefig(tmp, format="png", dpi=DPI,
                                                         bbox_inches="tight"))
    return fig


def to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def middle_slice(x, spatial_dims: int | None = None) -> np.ndarray:
    """The middle depth slice of a volume: ``(..., D, H, W) -> (..., H, W)`` when 3-D.

    ``spatial_dims`` defaults to 3 for 5-D batches ``(B, C, D, H, W)`` and 3-D maps ``(D, H, W)``.
    With ``VOLUME_VIEW = "max"`` volumes are shown as maximum-intensity projections along depth
    instead (useful for sparse volumes whose middle slice is often empty).
    """
    x = to_numpy(x)
    if spatial_dims is None:
        spatial_dims = 3 if x.ndim in (3, 5) else 2
    if spatial_dims == 3:
        x = x.max(axis=-3) if VOLUME_VIEW == "max" else x[..., x.shape[-3] // 2, :, :]
    return x


def as_images(batch) -> np.ndarray:
    """``(B, C, H, W)`` or ``(B, C, D, H, W)`` → ``(B, H, W)`` (grey) or ``(B, H, W, 3)`` (RGB)."""
    x = to_numpy(batch)
    if x.ndim not in (4, 5):
        raise ValueError(f"expected an image batch (B, C, H, W) or (B, C, D, H, W); got {x.shape}")
    x = middle_slice(x, 3 if x.ndim == 5 else 2)                # (B, C, H, W)
    if x.shape[1] == 3:
        return np.clip((np.moveaxis(x, 1, -1) + 1) / 2, 0, 1)
    return x[:, 0]


def _show(ax, img, vmin=-1.0, vmax=1.0, cmap=IMG_CMAP):
    im = ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    return im


def _wrap(label: str, width: int) -> str:
    """Break a column label that would overlap its neighbours (before ``[``, else at spaces)."""
    if len(label) <= width:
        return label
    if "[" in label:
        head, _, tail = label.partition("[")
        return f"{head}\n[{tail}"
    return textwrap.fill(label, width)


def error_scale(err, q: float = 99.0) -> float:
    """Top of an error map's colour scale: the ``q``-th percentile of the errors (so a few
    outliers do not leave the rest black), or their maximum if that is 0; 1 for all-zero errors."""
    err = np.asarray(err, dtype=float)
    top = float(np.percentile(err, q)) if err.size else 0.0
    return top if top > 0 else (float(err.max()) if err.size and err.max() > 0 else 1.0)


def _grid(*args, **kwargs) -> Figure:
    """Rows of images (each ``(N, H, W)``); rows listed in ``err_rows`` use the error colormap."""
    with rc_style():
        return _grid_body(*args, **kwargs)


def _grid_body(rows: Sequence[np.ndarray], row_labels: Sequence[str],
               col_labels: Sequence[str] | None, title: str, cell: float = 1.15,
               err_rows: Sequence[int] = (), err_max: float | None = None,
               col_title: str | None = None) -> Figure:
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    label_w = 1.6
    fig = Figure(figsize=(label_w + cell * n_cols + (0.8 if err_rows else 0.2),
                          0.9 + cell * n_rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    err_note = None
    if err_rows and err_max is None:
        err_max = error_scale(np.concatenate([np.ravel(rows[i]) for i in err_rows]))
        err_note = f"top: 99th\npercentile\n= {err_max:.2g}"
    err_im = None
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(row):
                ax.axis("off")
                continue
            if i in err_rows:
                err_im = _show(ax, row[j], 0.0, err_max, ERR_CMAP)
            else:
                _show(ax, row[j])
            if j == 0:
                ax.set_ylabel(row_labels[i], rotation=0, ha="right", va="center", labelpad=6)
            if i == 0 and col_labels is not None and j < len(col_labels):
                ax.set_title(_wrap(col_labels[j], int(cell * 9)), fontsize=10)
    if err_im is not None:
        cb = fig.colorbar(err_im, ax=[axes[i, -1] for i in err_rows], shrink=0.9, label="|error|",
                          extend="max" if err_note else "neither")
        if err_note:
            cb.ax.set_title(err_note, fontsize=8, loc="left")
    fig.suptitle(title)
    if col_title:
        fig.supxlabel(col_title, fontsize=10)
    return fig


def log_ticks(ax, min_gap: float = 1.8) -> None:
    """Label a log-scaled y axis without overlapping labels: the densest of the tick sets
    {10^k}, {1, 2, 5}·10^k and {1, …, 9}·10^k whose labels are at least ``min_gap`` label heights
    apart, with at least two ticks in view; on a range too narrow for any of them (under a factor
    of about 2), evenly spaced round values. Minor ticks stay unlabelled."""
    import math
    lo, hi = ax.get_ylim()
    lo, hi = max(min(lo, hi), 1e-300), max(lo, hi)
    span = math.log10(hi / lo) or 1e-12
    height_pt = ax.get_window_extent().height * 72 / ax.figure.dpi
    label_pt = matplotlib.font_manager.FontProperties(
        size=matplotlib.rcParams["ytick.labelsize"]).get_size_in_points()
    ticks = None
    for subs in ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 5), (1,)):
        cand = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                for m in subs]
        cand = [t for t in cand if lo <= t <= hi]
        if len(cand) < 2:
            continue
        gap = min(math.log10(b / a) for a, b in zip(cand, cand[1:])) / span * height_pt
        if gap >= min_gap * label_pt:
            ticks = cand
            break
    if ticks is None:                                           # a narrow range: round linear steps
        ticks = [t for t in matplotlib.ticker.MaxNLocator(nbins=3, steps=[1, 2, 5, 10]).tick_values(lo, hi)
                 if lo <= t <= hi]
    digits = 2
    while digits < 6 and len({f"{t:.{digits}g}" for t in ticks}) < len(ticks):
        digits += 1
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.{digits}g}"))
    ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs="all"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylim(lo, hi)


# ----------------------------------------------------------------------------- 01 data and pairing
def plot_pair_grid(x, gx, element_names: Sequence[str], out_path=None, title: str = "") -> Figure:
    """Pairs ``(x, T_g x)`` for each group element: ``x, gx`` are ``(E, K, C, ...)``.

    Columns are group elements; each of the ``K`` examples takes two rows (``x`` then ``T_g x``).
    """
    x, gx = to_numpy(x), to_numpy(gx)
    E, K = x.shape[:2]
    rows, labels = [], []
    for k in range(K):
        rows += [as_images(x[:, k]), as_images(gx[:, k])]
        labels += [f"x #{k + 1}", f"T_g x #{k + 1}"]
    fig = _grid(rows, labels, [f"g = {n}" for n in element_names[:E]],
                f"Pairs (x, T_g x) per group element\n{title}".strip(), cell=1.0)
    return save(fig, out_path)


def plot_counts(class_counts: Sequence[int], element_counts: Sequence[float],
                class_names: Sequence[str], element_names: Sequence[str], out_path=None,
                title: str = "", element_xlabel: str = "group element g") -> Figure:
    """Two bar charts: images per class, and how often each group element was drawn.

    Dashed lines mark the uniform expectation (same count in every bar).
    """
    with rc_style():
        fig = Figure(figsize=(11, 3.8), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2, width_ratios=[max(len(class_counts), 4), max(len(element_counts), 4)])
        for ax, counts, names, xl, what in (
                (ax1, class_counts, class_names, "class", "images"),
                (ax2, element_counts, element_names, element_xlabel, "pairs")):
            counts = np.asarray(counts, dtype=float)
            ax.bar(np.arange(len(counts)), counts, color="tab:blue" if ax is ax1 else "tab:orange")
            ax.axhline(counts.sum() / len(counts), ls="--", color="k", lw=1, label="uniform")
            crowded = sum(len(str(n)) + 2 for n in names) > 36
            ax.set_xticks(np.arange(len(counts)), [str(n) for n in names],
                          rotation=45 if crowded else 0, ha="right" if crowded else "center")
            ax.set_xlabel(xl)
            ax.set_ylabel(f"number of {what}")
            ax.legend(loc="lower right")
        ax1.set_title("class balance (training split)")
        ax2.set_title("occurrence of each group element")
        fig.suptitle(title)
    return save(fig, out_path)


# ----------------------------------------------------------------------------- 02 training
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
    fig = _grid([xs, gt, pr, err], ["x", "T_g x\n(truth)", "D(z_i+Φ_g z_v)\n(prediction)", "|error|"],
                labels, f"Transformed reconstructions\n{title}".strip(), err_rows=(3,))
    return save(fig, out_path)


# ----------------------------------------------------------------------------- 03 tau sweep
def plot_tau_sweep(rows: Sequence[Mapping], out_path=None, title: str = "",
                   chance: float | None = None) -> Figure:
    """Four panels against τ: variant fraction, transformed-reconstruction MSE, share of latent
    energy in ``z_i``, and protocol-b probe accuracy for ``z_i`` and for orbit invariants of ``z_v``.

    ``rows`` hold ``tau``, ``variant_fraction``, ``recon_mse``, ``energy_share_zi`` and
    ``probe_b_zi`` / ``probe_b_zv_orbit`` (missing keys are skipped); rows aggregated over seeds
    (``<key>_sd``, ``<key>_per_seed``) are drawn as mean ± sd with one dot per seed.
    """
    taus = [r["tau"] for r in rows]
    panels = [("variant_fraction", "variant fraction", (0, 1)),
              ("recon_mse", "transformed recon. MSE", None),
              ("energy_share_zi", "energy share of z_i", (0, 1))]
    with rc_style():
        fig = Figure(figsize=(13, 3.6), layout="constrained")
        axes = fig.subplots(1, 4)
        for ax, (key, name, lim) in zip(axes, panels):
            _spread_line(ax, taus, rows, key, "-o")
            ax.set_title(name)
            ax.set_ylabel(name)
            if lim:
                ax.set_ylim(lim[0] - 0.03, lim[1] + 0.03)
        ax = axes[3]
        for key, name, m in (("probe_b_zi", "z_i", "-o"), ("probe_b_zv_orbit", "orbit inv. of z_v", "--s")):
            if any(key in r for r in rows):
                _spread_line(ax, taus, rows, key, m, label=name)
        if chance is not None:
            ax.axhline(chance, color="gray", ls=":", label="chance")
        ax.set_ylim(0, 1.02)
        ax.set_title("probe accuracy, protocol b")
        ax.set_ylabel("test accuracy (transformed)")
        ax.legend(fontsize=9)
        for ax in axes:
            ax.set_xlabel("τ")
        fig.suptitle(f"Mask threshold sweep\n{title}".strip())
    return save(fig, out_path)


def _spread_line(ax, xs, rows, key, style, label=None):
    """Mean line of ``rows[key]``; with ``<key>_sd`` error bars, with ``<key>_per_seed`` a dot per seed."""
    ys = [r.get(key, np.nan) for r in rows]
    ys = [np.nan if v is None else v for v in ys]
    sd = [r.get(f"{key}_sd") for r in rows]
    if any(v for v in sd if v is not None):
        line = ax.errorbar(xs, ys, yerr=[0 if v is None else v for v in sd], fmt=style, capsize=3,
                           label=label)[0]
    else:
        line = ax.plot(xs, ys, style, label=label)[0]
    for x, r in zip(xs, rows):
        vals = [v for v in r.get(f"{key}_per_seed") or [] if v is not None]
        if len(vals) > 1:
            ax.scatter([x] * len(vals), vals, s=9, color=line.get_color(), alpha=0.5, zorder=3)
    return line


def plot_final_mask_probs(taus: Sequence[float], probs: Sequence[Sequence[float]], out_path=None,
                          title: str = "") -> Figure:
    """Per-channel ``sigmoid(alpha)`` at the end of training for each τ (channels sorted by p),
    one line per τ with its threshold drawn as a dashed line of the same colour."""
    with rc_style():
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax = fig.subplots()
        cmap = matplotlib.colormaps["plasma"]
        for k, (tau, p) in enumerate(zip(taus, probs)):
            c = cmap(0.85 * k / max(len(taus) - 1, 1))              # stop before pale yellow
            p = np.sort(np.asarray(p))[::-1]
            ax.plot(np.arange(len(p)), p, "-", color=c, lw=2, label=f"τ = {tau:g} ({(p > tau).mean():.0%} variant)")
            ax.axhline(tau, color=c, ls="--", lw=0.8)
        ax.set_xlabel("latent channel (sorted by p, per τ)")
        ax.set_ylabel("p = sigmoid(α) after training")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.suptitle(f"Final mask probabilities (dashed: threshold τ)\n{title}".strip())
    return save(fig, out_path)


# ----------------------------------------------------------------------------- 04 latents
def plot_orbit(pred, truth, element_names: Sequence[str], out_path=None, title: str = "",
               source=None) -> Figure:
    """Latent orbit ``{D(z_i + Phi_g z_v)}`` (``pred``, ``(G, C, ...)``) beside ``{T_g x}``.

    ``source`` (``(1, C, ...)``), if given, is shown in front of both rows for reference.
    """
    p, t = as_images(pred), as_images(truth)
    err = np.abs(p - t)
    fig = _grid([t, p, err], ["T_g x", "D(z_i+Φ_g z_v)", "|error|"],
                [f"g = {n}" for n in element_names], f"Orbit of one test image\n{title}".strip(),
                err_rows=(2,))
    return save(fig, out_path)


def plot_swap(xa, xb, a_content_b_pose, b_content_a_pose, out_path=None, title: str = "") -> Figure:
    """Latent swap for pairs of images (each argument ``(N, C, ...)``): columns are
    ``a``, ``b``, ``D(z_i(a) + z_v(b))`` and ``D(z_i(b) + z_v(a))``; one row per pair."""
    cols = [as_images(t) for t in (xa, xb, a_content_b_pose, b_content_a_pose)]
    rows = [np.stack([c[i] for c in cols]) for i in range(len(cols[0]))]
    fig = _grid(rows, [f"pair {i + 1}" for i in range(len(rows))],
                ["image a", "image b", "z_i(a) + z_v(b)", "z_i(b) + z_v(a)"],
                f"Latent swap (decoded)\n{title}".strip(), cell=1.5)
    return save(fig, out_path)


def plot_traversal(images, values: Sequence[float], channels: Sequence[int], out_path=None,
                   title: str = "", value_label: str = "scale") -> Figure:
    """Traversals: ``images`` is ``(K, V, C, ...)`` — one row per channel, one column per value."""
    imgs = to_numpy(images)
    rows = [as_images(imgs[k]) for k in range(imgs.shape[0])]
    fig = _grid(rows, [f"channel {c}" for c in channels], [f"{value_label} {v:g}" for v in values],
                f"Traversal of single invariant channels\n{title}".strip())
    return save(fig, out_path)


def plot_magnitude_maps(maps: Mapping[str, object], out_path=None, title: str = "",
                        shared_scale: bool = True) -> Figure:
    """Heatmaps of average latent magnitudes (each value ``(h, w)``, or ``(d, h, w)`` → middle slice)."""
    names = list(maps)
    arrs = [middle_slice(maps[n], 3 if to_numpy(maps[n]).ndim == 3 else 2) for n in names]
    vmax = max(float(a.max()) for a in arrs) if shared_scale else None
    with rc_style():
        fig = Figure(figsize=(2.7 * len(names) + 1, 3.6), layout="constrained")
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for ax, n, a in zip(axes, names, arrs):
            im = ax.imshow(a, cmap=MAP_CMAP, vmin=0, vmax=vmax if shared_scale else a.max(),
                           interpolation="nearest")
            ax.set_title(n)
            ax.set_xlabel("latent x")
            ax.set_ylabel("latent y")
            if not shared_scale:
                fig.colorbar(im, ax=ax, shrink=0.8)
        if shared_scale:
            fig.colorbar(im, ax=list(axes), shrink=0.8, label="mean per-location norm")
        fig.suptitle(f"Average latent magnitude maps\n{title}".strip())
    return save(fig, out_path)


# ----------------------------------------------------------------------------- 05 probes
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


# ----------------------------------------------------------------------------- 06 blocked
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
            _bars_with_seeds(ax, x, rows, "block_share_zi", 0.6, "tab:blue", None)
            ax.set_ylim(0, 1.05)
            ax.set_ylabel("share of the block drawn by z_i")
            ax.set_title(ds)
            ax = axes[1, j]
            _bars_with_seeds(ax, x - 0.2, rows, "recon_mse_block", 0.4, "tab:red", "inside the block")
            _bars_with_seeds(ax, x + 0.2, rows, "recon_mse_outside", 0.4, "tab:gray", "outside")
            ax.set_ylabel("transformed recon. MSE")
            ax.legend(fontsize=9)
            for a in axes[:, j]:
                a.set_xticks(x, names, rotation=20, ha="right")
        fig.suptitle(f"Where does the fixed block go?\n{title}".strip())
    return save(fig, out_path)


def _bars_with_seeds(ax, x, rows, key, width, color, label):
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
    fig = _grid(rows, ["T_g x\n(truth)", "D(z_i+Φ_g z_v)", "D(z_i)\nalone", "D(Φ_g z_v)\nalone"],
                None, f"What each latent part draws (learned mask)\n{title}".strip())
    return save(fig, out_path)


def plot_design_swaps(xa, xb, swaps: Mapping[str, object], out_path=None, title: str = "") -> Figure:
    """Latent swaps of several designs side by side: rows ``a``, ``b`` and, per design (label →
    ``(N, C, H, W)``), ``D(z_i(a) + z_v(b))`` — ``a``'s content in ``b``'s pose when the split works."""
    rows = [as_images(xa), as_images(xb)] + [as_images(v) for v in swaps.values()]
    labels = ["a", "b"] + [_wrap(f"{k}:\nz_i(a)+z_v(b)", 18) for k in swaps]
    fig = _grid(rows, labels, None, f"Latent swaps per design of z_i\n{title}".strip(), cell=1.2)
    return save(fig, out_path)
