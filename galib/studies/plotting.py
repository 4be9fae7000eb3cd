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
from typing import Sequence

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


def show_image(ax, img, vmin=-1.0, vmax=1.0, cmap=IMG_CMAP):
    im = ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    return im


def wrap_label(label: str, width: int) -> str:
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


def image_grid(*args, **kwargs) -> Figure:
    """Rows of images (each ``(N, H, W)``); rows listed in ``err_rows`` use the error colormap."""
    with rc_style():
        return grid_body(*args, **kwargs)


def grid_body(rows: Sequence[np.ndarray], row_labels: Sequence[str],
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
                err_im = show_image(ax, row[j], 0.0, err_max, ERR_CMAP)
            else:
                show_image(ax, row[j])
            if j == 0:
                ax.set_ylabel(row_labels[i], rotation=0, ha="right", va="center", labelpad=6)
            if i == 0 and col_labels is not None and j < len(col_labels):
                ax.set_title(wrap_label(col_labels[j], int(cell * 9)), fontsize=10)
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
