"""Where a fixed block goes: the measures of the blocked experiment (notebook 06).

On ``blocked:`` data a fixed occluder stays put while the content moves with ``g``; the paper
claims the learned mask sends it to the invariant part ``z_i``. On test pairs ``(x, T_g x)`` (both
occluded; ``g`` a random non-identity element) :func:`block_scores` measures, for one model:

* ``recon_mse_block`` / ``recon_mse_outside``: transformed-reconstruction MSE of
  ``D(z_i + Phi_g z_v)`` against ``T_g x`` inside the block region and outside it;
* the references ``block_mse_blank`` (``D(0)``: a decode that knows nothing) and
  ``block_mse_mean_z`` (``D(mean z)``), and the ablations ``block_mse_zi_only`` (``D(z_i)``) and
  ``block_mse_zv_only`` (``D(Phi_g z_v)``);
* ``block_gain``: how much of the blank decode's block error the model removes,
  ``(e_blank − e_full) / e_blank`` — 1 a perfect block, 0 no better than drawing nothing. This is
  the size of the effect: the parts can only share a gain that exists. On the paper's grey block a
  blank decode is already near-perfect there, so use a ``blocked:bright:`` or ``blocked:checker:``
  dataset (:mod:`galib.datasets.occluded`);
* ``block_share_zi``: the share of that gain due to ``z_i`` (:func:`block_share`, signed, no clamp):
  1 when the block lives in ``z_i``, 0 when it lives in ``z_v``; ``block_gain_zi`` /
  ``block_gain_zv`` are the two parts (fractions of ``e_blank``, summing to ``block_gain``).
  ``image_share_zi`` / ``image_gain`` are the same outside the block (the reference: a block share
  above it means the block depends on ``z_i`` more than the rest of the image does);
* per channel, signed: ``block_channel_rise[c]`` (zeroing channel ``c`` of ``z_i + Phi_g z_v``
  raises the block error by this) and ``block_channel_gain[c]`` (decoding channel ``c`` alone
  lowers the blank decode's block error by this), both as fractions of ``e_blank``;
  ``block_channels_invariant`` / ``block_channels_invariant_gain``: the share of their sums that
  falls on channels the mask made invariant;
* latent swaps (:func:`block_swap_scores`): ``block_swap_zi`` — decode a blocked image's ``z_i``
  with an unblocked image's ``z_v``: how far (0..1) the block region moves from what the same swap
  draws without any block towards the block itself; ``block_swap_zv`` — the same with the block
  only in the image that gives ``z_v``. Block in ``z_i``: 1 and 0; block in ``z_v``: 0 and 1.

Undefined ratios (nothing to share: the model draws the block no better than a blank decode) are
nan, with the gains saying why.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from ..datasets import ImageSet
from ..devices import model_device
from ..pairs import images_of, make_pairs
from .features import sample_moved

PARTS = ("full", "only_i", "only_v", "blank", "mean_z")


def block_share(err_full: float, err_zi_only: float, err_zv_only: float, err_blank: float) -> float:
    """Share of the gain ``e_blank − e_full`` due to ``z_i`` (the Shapley value of ``z_i`` in the
    two-player game whose value is the error removed relative to a blank decode ``D(0)``):
    ``phi_i = ½[(e_blank − e_zi_only) + (e_zv_only − e_full)]``, share ``phi_i / (e_blank − e_full)``.
    Signed, not clamped: below 0 or above 1 when one part makes the block worse. nan when the
    model removes no error (``e_blank − e_full <= 1e-12 · e_blank``)."""
    total = err_blank - err_full
    if not total > 1e-12 * max(abs(err_blank), 1e-30):
        return math.nan
    return 0.5 * ((err_blank - err_zi_only) + (err_zv_only - err_full)) / total


def _parts(err: dict) -> dict:
    """Gains of one region as fractions of the blank error: total, of ``z_i``, of ``z_v``."""
    blank, full, zi, zv = err["blank"], err["full"], err["only_i"], err["only_v"]
    if not blank > 0:
        return {"gain": math.nan, "gain_zi": math.nan, "gain_zv": math.nan}
    phi_i = 0.5 * ((blank - zi) + (zv - full))
    phi_v = 0.5 * ((blank - zv) + (zi - full))
    return {"gain": (blank - full) / blank, "gain_zi": phi_i / blank, "gain_zv": phi_v / blank}


def occluder_region(data: ImageSet) -> torch.Tensor:
    """Bool ``(H, W)`` of the pixels the set's occluder covers (a ``blocked:`` dataset)."""
    occ = data.occlude
    if occ is None or not hasattr(occ, "region"):
        raise ValueError("block scores need a blocked: dataset (an ImageSet with an Occluder)")
    return occ.region(*data.images.shape[1:])


@torch.no_grad()
def mean_latent(model, data: ImageSet, batch_size: int = 256) -> torch.Tensor:
    """``mean z`` over the (occluded, upright) images of ``data``, ``(1, C, h, w)``."""
    d, total = model_device(model), 0.0
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        total = total + model.encode(images_of(data, idx, device=d)).double().sum(0, keepdim=True)
    return (total / len(data)).float()


class _BlockSums:
    """Squared errors summed over a region, per part and per channel."""

    def __init__(self, channels: int):
        self.err = {f"{k}_{w}": 0.0 for k in PARTS for w in ("in", "out")}
        self.rise = torch.zeros(channels, dtype=torch.float64)
        self.gain = torch.zeros(channels, dtype=torch.float64)

    def add(self, model, z_i, phi, gx, zbar, region) -> None:
        def err(y: torch.Tensor, where=region) -> float:                  # summed over the region
            return float((y - gx).pow(2)[..., where].double().sum())
        z = z_i + phi                                                     # (B, C, h, w)
        decoded = (model.decode(z), model.decode(z_i), model.decode(phi),
                   model.decode(torch.zeros_like(z)), model.decode(zbar.expand_as(z)))
        for k, y in zip(PARTS, decoded):
            self.err[f"{k}_in"] += err(y)
            self.err[f"{k}_out"] += err(y, ~region)
        for c in range(z.shape[1]):
            zc = z.clone()
            zc[:, c] = 0
            self.rise[c] += err(model.decode(zc))
            only = torch.zeros_like(z)
            only[:, c] = z[:, c]
            self.gain[c] += err(model.decode(only))

    def result(self, n_in: int, n_out: int, invariant: torch.Tensor) -> dict:
        e_in = {k: self.err[f"{k}_in"] / n_in for k in PARTS}
        e_out = {k: self.err[f"{k}_out"] / n_out for k in PARTS}
        blank = e_in["blank"] if e_in["blank"] > 0 else math.nan
        rise = (self.rise / n_in - e_in["full"]) / blank                  # (C,) signed
        gain = (e_in["blank"] - self.gain / n_in) / blank                 # (C,) signed
        pin, pout = _parts(e_in), _parts(e_out)
        return {"recon_mse_block": e_in["full"], "recon_mse_outside": e_out["full"],
                "block_mse_zi_only": e_in["only_i"], "block_mse_zv_only": e_in["only_v"],
                "block_mse_blank": e_in["blank"], "block_mse_mean_z": e_in["mean_z"],
                "block_share_zi": block_share(*(e_in[k] for k in PARTS[:4])),
                "image_share_zi": block_share(*(e_out[k] for k in PARTS[:4])),
                "block_gain": pin["gain"], "block_gain_zi": pin["gain_zi"],
                "block_gain_zv": pin["gain_zv"], "image_gain": pout["gain"],
                "block_channels_invariant": _share_on(rise, invariant),
                "block_channels_invariant_gain": _share_on(gain, invariant),
                "block_channel_rise": rise.tolist(), "block_channel_gain": gain.tolist()}


def _share_on(values: torch.Tensor, chosen: torch.Tensor) -> float:
    """``sum(values[chosen]) / sum(values)``, signed; nan when the sum is ~0 or not finite."""
    total = float(values.sum())
    if not math.isfinite(total) or abs(total) <= 1e-12 * float(values.abs().sum()) or total == 0:
        return math.nan
    return float(values[chosen].sum()) / total


@torch.no_grad()
def block_scores(model, data: ImageSet, n_images: int | None = 512, seed: int = 0,
                 batch_size: int = 256) -> dict:
    """The block measures above on the first ``n_images`` images of ``data``, each paired with a
    random non-identity group element drawn from ``seed``; plus :func:`block_swap_scores` and
    ``n_images``."""
    region = occluder_region(data).to(model_device(model))              # (H, W)
    data = data.head(n_images)
    d = model_device(model)
    g_all = sample_moved(model.group, len(data), torch.Generator().manual_seed(seed))
    model.eval()
    zbar = mean_latent(model, data, batch_size)                         # (1, C, h, w)
    sums = _BlockSums(model.latent_channels)
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        x, gx, g = make_pairs(data.images[idx], model.group, g=g_all[idx], occlude=data.occlude)
        x, gx, g = (t.to(d) for t in (x, gx, g))
        z_i, z_v = model.split(model.encode(x), hard=True)
        sums.add(model, z_i, model.act(z_v, g), gx, zbar, region)
    n_in, n_out = len(data) * int(region.sum()), len(data) * int((~region).sum())
    invariant = (model.hard_mask() == 0).cpu()
    return {**sums.result(n_in, n_out, invariant), **block_swap_scores(model, data, batch_size),
            "n_images": len(data)}


def _toward(y: torch.Tensor, q: torch.Tensor, p: torch.Tensor, region: torch.Tensor):
    """Per image, how far ``y`` lies from ``q`` towards ``p`` on the region, clamped to [0, 1]
    (projection onto the segment); ``(values (B',), kept (B,))`` — images where ``p = q`` there
    are left out."""
    yq, pq = (y - q)[..., region].flatten(1), (p - q)[..., region].flatten(1)   # (B, R)
    den = pq.pow(2).sum(1)
    keep = den > 1e-8 * pq.shape[1]
    return ((yq * pq).sum(1)[keep] / den[keep]).clamp(0, 1), keep


@torch.no_grad()
def block_swap_scores(model, data: ImageSet, batch_size: int = 256) -> dict:
    """Does the block move with ``z_i``? Image ``a`` is paired with ``b`` (the next image); with
    ``a`` blocked and ``b`` not, ``D(z_i(a) + z_v(b))`` is placed on the segment from ``D(z_i(a⁰) +
    z_v(b⁰))`` (neither blocked) to the block fill, on the block region: ``block_swap_zi`` is the
    mean position (0: no block drawn, 1: the block). ``block_swap_zv`` swaps the roles (the block
    only in the image that gives ``z_v``). ``block_swap_n``: images scored (those where the
    unblocked swap already draws the fill are left out); nan if none."""
    region = occluder_region(data).to(model_device(model))
    clean = dataclasses.replace(data, occlude=None)
    d = model_device(model)
    vals = {"zi": [], "zv": []}
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        if len(idx) < 2:
            continue
        parts = {}
        for key, src in (("blocked", data), ("clean", clean)):
            z_i, z_v = model.split(model.encode(images_of(src, idx, device=d)), hard=True)
            parts[key] = (z_i, z_v.roll(1, 0))                           # z_v of the next image
        (bi, bv), (ci, cv) = parts["blocked"], parts["clean"]
        q = model.decode(ci + cv)
        p = data.occlude(q)                                               # the fill on the region
        for key, y in (("zi", model.decode(bi + cv)), ("zv", model.decode(ci + bv))):
            vals[key].append(_toward(y, q, p, region)[0])
    out = {}
    for key, v in vals.items():
        v = torch.cat(v) if v else torch.zeros(0)
        out[f"block_swap_{key}"] = float(v.double().mean()) if len(v) else math.nan
    out["block_swap_n"] = int(len(torch.cat(vals["zi"]))) if vals["zi"] else 0
    return out


@torch.no_grad()
def block_pictures(model, data: ImageSet, n: int = 6, seed: int = 0) -> dict:
    """For ``n`` test pairs (non-identity elements): ``gx`` (truth), ``full`` =
    ``D(z_i + Phi_g z_v)``, ``zi`` = ``D(z_i)``, ``zv`` = ``D(Phi_g z_v)`` and ``blank`` = ``D(0)``,
    each ``(n, 1, H, W)`` on the CPU."""
    data = data.head(n)
    g = sample_moved(model.group, len(data), torch.Generator().manual_seed(seed))
    x, gx, g = make_pairs(data.images, model.group, g=g, occlude=data.occlude)
    d = model_device(model)
    model.eval()
    z_i, z_v = model.split(model.encode(x.to(d)), hard=True)
    phi = model.act(z_v, g.to(d))
    return {"gx": gx, "full": model.decode(z_i + phi).cpu(), "zi": model.decode(z_i).cpu(),
            "zv": model.decode(phi).cpu(), "blank": model.decode(torch.zeros_like(phi)).cpu()}
