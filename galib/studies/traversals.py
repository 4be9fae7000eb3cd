"""Notebook 04."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..datasets import DataSplits
from ..evaluation.swap import swap_scores
from ..experiments.plan import DataRequest, Scoring, Training, train_or_load
from ..experiments.scoring import cached_scores
from ..train import TrainConfig
from .baselines import baseline_trainings
from .plotting import MAP_CMAP, as_images, image_grid, middle_slice, rc_style, save, to_numpy, wrap_label
from .training import ald_training, run_identity
from .wording import WORSE, num


# ----------------------------------------------------------------------------- swaps (04)
SWAP_IMAGES = 1000        # training and test images of 04's swap scores


def swap_numbers(training: Training, data: DataSplits | DataRequest, seed: int, verbose: bool = True) -> dict:
    """:func:`~galib.evaluation.swap.swap_scores` of one finished run (``SWAP_IMAGES`` images,
    elements from ``seed``), computed once and kept in its folder (``swaps.json``)."""
    data = data.load() if isinstance(data, DataRequest) else data
    res = train_or_load(training, data, verbose=verbose)
    return cached_scores(Path(training.run_dir) / "swaps.json",
                         {"scores": "swaps", "seed": int(seed), "images": SWAP_IMAGES, "run": run_identity(res)},
                         lambda: swap_scores(res.model, data, n_train=SWAP_IMAGES, n_test=SWAP_IMAGES, seed=seed),
                         f"swaps of {training.key}", cfg=res.config, data=data, verbose=verbose)


def swap_trainings(base_cfg: TrainConfig, run_dir: str | Path, designs, run_root: str | Path) -> dict:
    """``{"paper": 02's run, design name: its run}``: the models whose swaps 04 shows."""
    return {"paper": ald_training(base_cfg, run_dir),
            **{t.key.split("/")[1]: t for t in design_trainings(base_cfg, designs, run_root)}}


def swap_scorings(base_cfg: TrainConfig, run_dir: str | Path, designs, run_root: str | Path, seed: int,
                  data: DataRequest) -> list[Scoring]:
    """04's scoring tasks: the swaps of each model it shows."""
    return [Scoring(f"{t.key}/swaps", t.run_dir, functools.partial(swap_numbers, t, data, int(seed)),
                    needs=(t.key,), images=2 * SWAP_IMAGES)
            for t in swap_trainings(base_cfg, run_dir, designs, run_root).values()]


# ----------------------------------------------------------------------------- designs shown
def design_trainings(base_cfg: TrainConfig, names, run_root: str | Path) -> list[Training]:
    """04's plan: the base seed of each design of the invariant part, where 05 looks for it."""
    return baseline_trainings(base_cfg, names, run_root)


def design_models(base_cfg: TrainConfig, names, run_root: str | Path, data: DataSplits,
                  progress: bool = False, verbose: bool = True) -> dict:
    """``{baseline name: model}`` for the base seed of each design of the invariant part (loaded
    from ``run_root/<name>``, where notebook 05's baselines look for them; trained if missing)."""
    return {t.key.split("/")[1]: train_or_load(t, data, progress=progress, verbose=verbose).model
            for t in design_trainings(base_cfg, names, run_root)}

# ----------------------------------------------------------------------------- figures
def plot_orbit(pred, truth, element_names: Sequence[str], out_path=None, title: str = "",
               source=None) -> Figure:
    """Latent orbit ``{D(z_i + Phi_g z_v)}`` (``pred``, ``(G, C, ...)``) beside ``{T_g x}``.

    ``source`` (``(1, C, ...)``), if given, is shown in front of both rows for reference.
    """
    p, t = as_images(pred), as_images(truth)
    err = np.abs(p - t)
    fig = image_grid([t, p, err], ["T_g x", "D(z_i+Φ_g z_v)", "|error|"],
                [f"g = {n}" for n in element_names], f"Orbit of one test image\n{title}".strip(),
                err_rows=(2,))
    return save(fig, out_path)


def plot_swap(xa, xb, a_content_b_pose, b_content_a_pose, out_path=None, title: str = "") -> Figure:
    """Latent swap for pairs of images (each argument ``(N, C, ...)``): columns are
    ``a``, ``b``, ``D(z_i(a) + z_v(b))`` and ``D(z_i(b) + z_v(a))``; one row per pair."""
    cols = [as_images(t) for t in (xa, xb, a_content_b_pose, b_content_a_pose)]
    rows = [np.stack([c[i] for c in cols]) for i in range(len(cols[0]))]
    fig = image_grid(rows, [f"pair {i + 1}" for i in range(len(rows))],
                ["image a", "image b", "z_i(a) + z_v(b)", "z_i(b) + z_v(a)"],
                f"Latent swap (decoded)\n{title}".strip(), cell=1.5)
    return save(fig, out_path)


def plot_traversal(images, values: Sequence[float], channels: Sequence[int], out_path=None,
                   title: str = "", value_label: str = "scale") -> Figure:
    """Traversals: ``images`` is ``(K, V, C, ...)`` — one row per channel, one column per value."""
    imgs = to_numpy(images)
    rows = [as_images(imgs[k]) for k in range(imgs.shape[0])]
    fig = image_grid(rows, [f"channel {c}" for c in channels], [f"{value_label} {v:g}" for v in values],
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


def plot_design_swaps(xa, xb, swaps: Mapping[str, object], out_path=None, title: str = "") -> Figure:
    """Latent swaps of several designs side by side: rows ``a``, ``b`` and, per design (label →
    ``(N, C, H, W)``), ``D(z_i(a) + z_v(b))`` — ``a``'s content in ``b``'s pose when the split works."""
    rows = [as_images(xa), as_images(xb)] + [as_images(v) for v in swaps.values()]
    labels = ["a", "b"] + [wrap_label(f"{k}:\nz_i(a)+z_v(b)", 18) for k in swaps]
    fig = image_grid(rows, labels, None, f"Latent swaps per design of z_i\n{title}".strip(), cell=1.2)
    return save(fig, out_path)


# ----------------------------------------------------------------------------- findings
def findings(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    orbit = {k: num(v) for k, v in (m.get("orbit_mse") or {}).items()}
    orbit = {k: v for k, v in orbit.items() if v is not None}
    if orbit:
        worst = max(orbit, key=orbit.get)
        best = min(orbit, key=orbit.get)
        mean = sum(orbit.values()) / len(orbit)
        even = orbit[worst] <= WORSE * max(orbit[best], 1e-12)
        out.append(f"Decoding the latent orbit D(z_i + Φ_g z_v) of an untransformed test image reproduces "
                   f"T_g x with MSE {mean:.4f} on average over {len(orbit)} group elements (best g = {best}: "
                   f"{orbit[best]:.4f}, worst g = {worst}: {orbit[worst]:.4f}); "
                   + ("the latent action serves every element about equally well." if even else
                      f"some elements are reproduced more than {WORSE:g}× worse than others."))
    n_inv = num(s.get("n_invariant_channels"))
    channels = num((m.get("params") or {}).get("latent_channels"))
    e = num(s.get("energy_share_zi"))
    if n_inv is not None and channels:
        if n_inv == 0:
            out.append(f"Every one of the {channels:.0f} channels is variant: there is no invariant "
                       f"channel to traverse.")
        else:
            out.append(f"{n_inv:.0f} of {channels:.0f} latent channels are invariant"
                       + (f"; together they carry {e:.0%} of the latent energy." if e is not None else "."))
    return out
