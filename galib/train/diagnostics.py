"""What lets a reader see a divergence coming: the latent's offsets, varying parts and drive.

Every epoch of a run records, on a fixed set of validation pairs ``(x, T_g x, g)``
(:func:`diagnostic_pairs`), per part ``p`` of the latent (``zv``: the variant part ``M⊙z``,
``zi``: the invariant part ``(1 − M)⊙z``), over that part's own channels:

- ``<p>_offset`` — RMS of the mean map ``μ = E_x[z_p(x)]``: the input-independent part;
- ``<p>_offset_sym`` — the share of ``‖μ‖²`` that is symmetric under the group (the energy of
  its orbit average ``mean_h Φ_h μ``): a symmetric offset is one ``Φ_g`` leaves unchanged, so
  ``L_const`` cannot see it;
- ``<p>_varying`` — RMS of ``z_p(x) − μ``: the input-dependent part;

and for the consistency loss with its stop-gradient target (``a = z_v(x)``, ``b = z_v(T_g x)``):

- ``const_r2`` — ``r² = E‖b‖² / E‖a‖²``;
- ``const_rel_err`` — ``e = E‖Φ_g a − b‖² / E‖a‖²``;
- ``const_drive`` — ``r² − 1 − e``. Scaling ``a`` by ``1 + ε`` changes ``L_const`` at rate
  ``E‖a‖²·(1 − r² + e)``, and the target ``b`` is not differentiated, so gradient descent grows
  ``z_v`` when this is positive (the target is larger than the prediction's own size by more than
  the error) — and since ``b`` comes from the same encoder, it grows with it.

``mask_flips`` (channels whose hard mask changed, summed over the epoch's steps) is counted by the
training loop. Every value is a plain float; a part without channels reads 0.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..groups.base import Group

DIAGNOSTIC_PAIRS = 2048          # validation images the diagnostics read each epoch
PARTS = ("zv", "zi")
KEYS = tuple(f"{p}_{k}" for p in PARTS for k in ("offset", "offset_sym", "varying")) + (
    "const_r2", "const_rel_err", "const_drive")


def diagnostic_pairs(images: torch.Tensor, group: Group, seed: int,
                     n: int = DIAGNOSTIC_PAIRS) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` of ``images`` (uint8 or float) and group elements drawn from ``seed``."""
    x = images[:n]
    return x, group.sample(len(x), torch.Generator().manual_seed(seed))


def _part_stats(z: torch.Tensor, group: Group) -> tuple[float, float, float]:
    """``(offset RMS, symmetric share of the offset, varying RMS)`` of ``z`` (N, C_p, *S)."""
    if z.shape[1] == 0:
        return 0.0, 0.0, 0.0
    mu = z.mean(0, keepdim=True)                                    # (1, C_p, *S)
    els, _ = group.evaluation_grid()
    sym = torch.stack([group.act_latent(mu, e.unsqueeze(0).to(mu.device)) for e in els]).mean(0)
    energy = mu.pow(2).sum()
    share = (sym.pow(2).sum() / energy).item() if energy > 0 else 0.0
    return mu.pow(2).mean().sqrt().item(), share, (z - mu).pow(2).mean().sqrt().item()


@torch.no_grad()
def latent_diagnostics(encode: Callable[[torch.Tensor], torch.Tensor], mask: torch.Tensor | None,
                       group: Group, x: torch.Tensor, g: torch.Tensor, batch: int = 512) -> dict:
    """The diagnostics above for an encoder ``encode`` (float images (B, 1, *S) → (B, C, *s)),
    a hard per-channel 0/1 ``mask`` (C,; ``None``: every channel variant, a model without a mask), and
    float images ``x`` with group elements ``g``."""
    za, zb = [], []
    for s in range(0, len(x), batch):
        xb, gb = x[s:s + batch], g[s:s + batch]
        za.append(encode(xb).float())
        zb.append(encode(group.act_image(xb, gb)).float())
    za, zb = torch.cat(za), torch.cat(zb)                           # (N, C, *s)
    variant = torch.ones(za.shape[1], dtype=torch.bool, device=za.device) if mask is None else mask.to(za.device) > 0.5
    out = {}
    for part, keep in (("zv", variant), ("zi", ~variant)):
        off, share, var = _part_stats(za[:, keep], group)
        out.update({f"{part}_offset": off, f"{part}_offset_sym": share, f"{part}_varying": var})
    a, b = za[:, variant], zb[:, variant]
    size = a.pow(2).sum()
    if a.shape[1] == 0 or size == 0:
        return {**out, "const_r2": 0.0, "const_rel_err": 0.0, "const_drive": 0.0}
    err = (group.act_latent(a, g.to(a.device)) - b).pow(2).sum()
    r2, e = (b.pow(2).sum() / size).item(), (err / size).item()
    return {**out, "const_r2": r2, "const_rel_err": e, "const_drive": r2 - 1.0 - e}
