"""Where a fixed block goes: the measures of the blocked experiment (notebook 06).

On ``blocked:NAME`` data a fixed occluder stays put while the content moves with ``g``; the paper
claims the learned mask sends it to the invariant part ``z_i``. On test pairs ``(x, T_g x)`` (both
occluded) :func:`block_scores` measures, for one model:

* ``recon_mse_block`` / ``recon_mse_outside``: transformed-reconstruction MSE of
  ``D(z_i + Phi_g z_v)`` against ``T_g x`` inside the block region and outside it;
* ``block_share_zi``: how much the block's reconstruction depends on each part. Dropping ``z_v``
  (decoding ``z_i`` alone) raises the block error by ``loss_v``, dropping ``z_i`` (decoding
  ``Phi_g z_v`` alone) by ``loss_i``; the share of ``z_i`` is ``loss_i / (loss_i + loss_v)``
  (:func:`block_share`): 1 when the block survives without ``z_v``, 0 when it survives without
  ``z_i``. ``image_share_zi`` is the same outside the block, the reference: a block share above it
  means the block depends on ``z_i`` more than the rest of the image does;
* ``block_channels_invariant``: which channels carry the block. Zeroing one channel of
  ``z_i + Phi_g z_v`` raises the block-region error by ``rise[c]``; this is the share of the total
  rise that falls on channels the mask made invariant (``block_channel_rise`` lists them all;
  compare with the share of channels that are invariant).
"""
from __future__ import annotations

import math

import torch

from ..datasets import ImageSet
from ..devices import model_device
from ..pairs import make_pairs


def block_share(err_full: float, err_zi_only: float, err_zv_only: float) -> float:
    """``loss_i / (loss_i + loss_v)``: ``loss_i = max(0, err_zv_only − err_full)`` is what dropping
    ``z_i`` costs, ``loss_v = max(0, err_zi_only − err_full)`` what dropping ``z_v`` costs; nan
    when dropping either costs nothing."""
    loss_i, loss_v = max(0.0, err_zv_only - err_full), max(0.0, err_zi_only - err_full)
    return loss_i / (loss_i + loss_v) if loss_i + loss_v > 0 else math.nan


def occluder_region(data: ImageSet) -> torch.Tensor:
    """Bool ``(H, W)`` of the pixels the set's occluder covers (a ``blocked:`` dataset)."""
    occ = data.occlude
    if occ is None or not hasattr(occ, "region"):
        raise ValueError("block scores need a blocked: dataset (an ImageSet with an Occluder)")
    return occ.region(*data.images.shape[1:])


@torch.no_grad()
def block_scores(model, data: ImageSet, n_images: int | None = 512, seed: int = 0,
                 batch_size: int = 256) -> dict:
    """The block measures above on the first ``n_images`` images of ``data``, each paired with a
    random group element drawn from ``seed``."""
    region = occluder_region(data).to(model_device(model))          # (H, W)
    data = data.head(n_images)
    g_all = model.group.sample(len(data), torch.Generator().manual_seed(seed))
    C = model.latent_channels
    keys = ("full", "only_i", "only_v")
    sums = {f"{k}_{where}": 0.0 for k in keys for where in ("in", "out")}
    rise = torch.zeros(C, dtype=torch.float64)
    model.eval()
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        x, gx, g = make_pairs(data.images[idx], model.group, g=g_all[idx], occlude=data.occlude)
        x, gx, g = (t.to(model_device(model)) for t in (x, gx, g))
        z_i, z_v = model.split(model.encode(x), hard=True)
        z = z_i + model.act(z_v, g)                                   # (B, C, h, w)

        def block_err(y: torch.Tensor, where=region) -> float:        # summed over the region
            return float((y - gx).pow(2)[..., where].double().sum())
        for k, y in zip(keys, (model.decode(z), model.decode(z_i), model.decode(z - z_i))):
            sums[f"{k}_in"] += block_err(y)
            sums[f"{k}_out"] += block_err(y, ~region)
        for c in range(C):
            zc = z.clone()
            zc[:, c] = 0
            rise[c] += block_err(model.decode(zc))
    n_in = len(data) * int(region.sum())
    n_out = len(data) * int((~region).sum())
    rise = (rise / n_in - sums["full_in"] / n_in).clamp(min=0)       # (C,) error rise per channel
    invariant = (model.hard_mask() == 0).cpu()
    total = float(rise.sum())
    inside = [sums[f"{k}_in"] / n_in for k in keys]
    outside = [sums[f"{k}_out"] / n_out for k in keys]
    return {"recon_mse_block": inside[0], "recon_mse_outside": outside[0],
            "block_mse_zi_only": inside[1], "block_mse_zv_only": inside[2],
            "block_share_zi": block_share(*inside), "image_share_zi": block_share(*outside),
            "block_channels_invariant": float(rise[invariant].sum()) / total if total > 0 else math.nan,
            "block_channel_rise": rise.tolist(), "n_images": len(data)}


@torch.no_grad()
def block_pictures(model, data: ImageSet, n: int = 6, seed: int = 0) -> dict:
    """For ``n`` test pairs: ``gx`` (truth), ``full`` = ``D(z_i + Phi_g z_v)``, ``zi`` = ``D(z_i)``
    and ``zv`` = ``D(Phi_g z_v)``, each ``(n, 1, H, W)`` on the CPU."""
    data = data.head(n)
    g = model.group.sample(len(data), torch.Generator().manual_seed(seed))
    x, gx, g = make_pairs(data.images, model.group, g=g, occlude=data.occlude)
    d = model_device(model)
    model.eval()
    z_i, z_v = model.split(model.encode(x.to(d)), hard=True)
    phi = model.act(z_v, g.to(d))
    return {"gx": gx, "full": model.decode(z_i + phi).cpu(), "zi": model.decode(z_i).cpu(),
            "zv": model.decode(phi).cpu()}
