"""Where a fixed block goes: the measures of the blocked experiment (notebook 06).

On ``blocked:NAME`` data a fixed occluder stays put while the content moves with ``g``; the paper
claims the learned mask sends it to the invariant part ``z_i``. On test pairs ``(x, T_g x)`` (both
occluded) :func:`block_scores` measures, for one model:

* ``recon_mse_block`` / ``recon_mse_outside``: transformed-reconstruction MSE of
  ``D(z_i + Phi_g z_v)`` against ``T_g x`` inside the block region and outside it;
* ``block_share_zi``: what the two latent parts draw in the block region. ``D(z_i)`` alone
  (``z_v`` zeroed) and ``D(Phi_g z_v)`` alone (``z_i`` zeroed) are compared with ``D(0)``: each
  part's *gain* is how much of ``D(0)``'s block error it removes, and the share of ``z_i`` is
  ``gain_i / (gain_i + gain_v)`` (:func:`block_share`): 1 when ``z_v`` draws nothing of the block,
  0 when ``z_i`` draws nothing;
* ``block_channels_invariant``: which channels carry the block. Zeroing one channel of
  ``z_i + Phi_g z_v`` raises the block-region error by ``rise[c]``; this is the share of the total
  rise that falls on channels the mask made invariant (``block_channel_rise`` lists them all).
"""
from __future__ import annotations

import math

import torch

from ..datasets import ImageSet
from ..devices import model_device
from ..pairs import make_pairs


def block_share(err_none: float, err_i: float, err_v: float) -> float:
    """``gain_i / (gain_i + gain_v)`` with ``gain = max(0, err_none − err_part)``; nan when
    neither part removes any of the block error."""
    gain_i, gain_v = max(0.0, err_none - err_i), max(0.0, err_none - err_v)
    return gain_i / (gain_i + gain_v) if gain_i + gain_v > 0 else math.nan


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
    sums = {"full_in": 0.0, "full_out": 0.0, "none": 0.0, "only_i": 0.0, "only_v": 0.0}
    rise = torch.zeros(C, dtype=torch.float64)
    model.eval()
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        x, gx, g = make_pairs(data.images[idx], model.group, g=g_all[idx], occlude=data.occlude)
        x, gx, g = (t.to(model_device(model)) for t in (x, gx, g))
        z_i, z_v = model.split(model.encode(x), hard=True)
        z = z_i + model.act(z_v, g)                                   # (B, C, h, w)

        def block_err(y: torch.Tensor) -> float:                      # summed over block pixels
            return float((y - gx).pow(2)[..., region].double().sum())
        full = model.decode(z)
        sums["full_in"] += block_err(full)
        sums["full_out"] += float((full - gx).pow(2)[..., ~region].double().sum())
        sums["none"] += block_err(model.decode(torch.zeros_like(z)))
        sums["only_i"] += block_err(model.decode(z_i))
        sums["only_v"] += block_err(model.decode(z - z_i))
        for c in range(C):
            zc = z.clone()
            zc[:, c] = 0
            rise[c] += block_err(model.decode(zc))
    n_in = len(data) * int(region.sum())
    n_out = len(data) * int((~region).sum())
    rise = (rise / n_in - sums["full_in"] / n_in).clamp(min=0)       # (C,) error rise per channel
    invariant = (model.hard_mask() == 0).cpu()
    total = float(rise.sum())
    return {"recon_mse_block": sums["full_in"] / n_in, "recon_mse_outside": sums["full_out"] / n_out,
            "block_mse_none": sums["none"] / n_in, "block_mse_zi_only": sums["only_i"] / n_in,
            "block_mse_zv_only": sums["only_v"] / n_in,
            "block_share_zi": block_share(sums["none"] / n_in, sums["only_i"] / n_in,
                                          sums["only_v"] / n_in),
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
