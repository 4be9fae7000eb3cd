"""Notebook 01."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .plotting import as_images, image_grid, rc_style, save, to_numpy
from .wording import num, nums


UNIFORM_SDS = 3.0        # an element count within this many expected sds of uniform is "uniform"
EXACT = 1e-5             # a round-trip error below this is "exact" (float error)


# ----------------------------------------------------------------------------- figures
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
    fig = image_grid(rows, labels, [f"g = {n}" for n in element_names[:E]],
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


# ----------------------------------------------------------------------------- findings
def findings(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    n = nums(s, "n_train", "n_val", "n_test", "n_classes")
    if n:
        out.append(f"The training split holds {n[0]:.0f} images of {n[3]:.0f} classes "
                   f"({n[1]:.0f} validation, {n[2]:.0f} test images).")
    imb = num(s.get("class_imbalance"))
    if imb is not None:
        out.append(f"The largest class has {imb:.2f}× as many training images as the smallest.")
    dev, sd = num(s.get("element_max_rel_dev")), num(s.get("element_rel_sd_expected"))
    k = len(m.get("element_counts") or [])
    if dev is not None and sd is not None and k:
        ok = dev <= UNIFORM_SDS * sd
        out.append(f"In one epoch of pairs every one of the {k} group elements (or bins) was drawn "
                   f"within {dev:.1%} of its uniform share, against about {sd:.1%} expected from "
                   f"sampling noise alone: " + ("consistent with uniform sampling." if ok else
                   f"more than {UNIFORM_SDS:g} times that, so the sampler is not uniform."))
    rt = num(s.get("roundtrip_error"))
    if rt is not None:
        out.append("Undoing each transform, T_(g⁻¹)(T_g x), gives back x "
                   + (f"up to {rt:.1e}: the " if rt > 0 else "exactly (bit for bit): the ")
                   + ("image action is exact." if rt < EXACT else
                      "image action is not exact (it interpolates and loses the corners)."))
    return out
