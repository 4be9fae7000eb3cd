"""The three training losses on pairs ``(x, T_g x)`` (all mean-squared errors).

- ``L_recon = ‖D(z_i(x) + Phi_g(z_v(x))) − T_g x‖²``
- ``L_inv   = ‖z_i(x) − sg[z_i(T_g x)]‖²``
- ``L_const = ‖Phi_g(z_v(x)) − sg[z_v(T_g x)]‖²``

``sg`` is stop-gradient: ``T_g x`` is encoded under ``torch.no_grad`` and split with the hard mask,
so no gradient reaches the encoder or the mask logits through the transformed branch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models import GroupLatentAutoencoder


def ald_losses(model: GroupLatentAutoencoder, x: torch.Tensor, gx: torch.Tensor, g: torch.Tensor,
               lambda_inv: float = 1.0, lambda_const: float = 1.0) -> dict[str, torch.Tensor]:
    """Total loss and each term for a batch of pairs; ``x, gx``: (B, C, H, W), ``g``: (B,)."""
    out = model(x, g)                                         # recon, z_i, phi_z_v: grad flows
    with torch.no_grad():
        zt_i, zt_v = model.split(model.encode(gx), hard=True)  # sg[z_i(T_g x)], sg[z_v(T_g x)]
    recon = F.mse_loss(out["recon"], gx)
    inv = F.mse_loss(out["z_i"], zt_i)
    const = F.mse_loss(out["phi_z_v"], zt_v)
    total = recon + lambda_inv * inv + lambda_const * const
    return {"loss": total, "recon": recon, "inv": inv, "const": const}


def ae_losses(model: GroupLatentAutoencoder, x: torch.Tensor, gx: torch.Tensor, g: torch.Tensor,
              lambda_inv: float = 0.0, lambda_const: float = 0.0) -> dict[str, torch.Tensor]:
    """Plain autoencoder baseline: reconstruct ``x`` from the whole latent; no group, no mask."""
    recon = F.mse_loss(model.decode(model.encode(x)), x)
    zero = recon.new_zeros(())
    return {"loss": recon, "recon": recon, "inv": zero, "const": zero}


OBJECTIVES = {"group": ald_losses, "ae": ae_losses}


class PairLoss(nn.Module):
    """``model`` and an objective as one module: ``forward(x, gx, g)`` returns the loss terms.

    The training loop calls this module, so wrapping it in ``DistributedDataParallel`` puts the
    whole step (the stop-gradient encoding of ``T_g x`` included) under DDP's gradient all-reduce,
    and every parameter of ``model`` (the ALD mask logits too) is synchronised.
    """

    def __init__(self, model: GroupLatentAutoencoder, objective: str = "group",
                 lambda_inv: float = 1.0, lambda_const: float = 1.0):
        super().__init__()
        self.model, self.loss_fn = model, OBJECTIVES[objective]
        self.lambda_inv, self.lambda_const = lambda_inv, lambda_const

    def forward(self, x: torch.Tensor, gx: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss_fn(self.model, x, gx, g, self.lambda_inv, self.lambda_const)
