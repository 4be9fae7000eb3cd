"""The three training losses on pairs ``(x, T_g x)`` (all mean-squared errors).

- ``L_recon = ‖D(z_i(x) + Phi_g(z_v(x))) − T_g x‖²``
- ``L_inv   = ‖z_i(x) − sg[z_i(T_g x)]‖²``
- ``L_const = ‖Phi_g(z_v(x)) − sg[z_v(T_g x)]‖²``

``sg`` is stop-gradient: ``T_g x`` is encoded under ``torch.no_grad`` and split with the hard mask,
so no gradient reaches the encoder or the mask logits through the transformed branch.

Consistency forms (``LossOptions.consistency``):

- ``direct`` — ``L_const`` as above (the paper's; the default for every finite group, whose
  ``Phi_g`` is an exact permutation of latent cells).
- ``midpoint`` — ``‖Phi_h1(z_v(x)) − sg[Phi_h2(z_v(T_g x))]‖²`` with ``h2⁻¹∘h1 = g`` split so that
  both sides are resampled alike (``group.balanced_split``; for ``so2``: ``g = q + r`` with ``q``
  the nearest quarter turn, ``h1 = q + r/2``, ``h2 = −r/2``). It states the same equivariance
  condition. For ``so2`` it is needed: bilinear rotation of a 7×7 map loses energy (20–35 % at
  random angles, measured at initialisation and after training: corners and blur), so the
  direct form asks the encoder for a ``z_v(x)`` larger than the stop-gradient target
  ``z_v(T_g x)`` — which the same encoder produces, so every step scales the latent up and
  training diverges (measured: ‖z‖² 1e6 within 350 steps). With
  the loss balanced there is no such drift; at quarter turns it equals the direct form.
- ``auto`` — ``midpoint`` for groups that offer a balanced split (``group.has_balanced_split``:
  ``so2``), else ``direct``.

Targets (``LossOptions.targets``):

- ``detached`` — the paper's: ``T_g x`` is encoded without gradient (``sg`` above).
- ``both-ways`` — ``T_g x`` is encoded with gradient, so ``L_inv`` and ``L_const`` pull both
  sides together (the sum of the loss taken from ``x`` to ``T_g x`` and back, halved: the same
  value, and the gradient of the undetached loss).
- ``scale-free`` — detached, but both sides of ``L_inv`` and ``L_const`` are first centred per
  channel (over batch and grid) and divided by their RMS: the losses are blind to an offset and a
  scale of ``z_i`` / ``z_v``, so they exert no force on either. A detached target grows with the encoder that
  chases it: when ``r² = E‖z_v(T_g x)‖² / E‖z_v(x)‖²`` exceeds ``1 + e`` (``e`` the relative
  consistency error) each step scales ``z_v`` up (``galib.train.diagnostics``, ``const_drive``);
  with both sides trained, scaling ``z_v`` only ever raises the loss.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .models import GroupLatentAutoencoder


CONSISTENCY = ("auto", "direct", "midpoint")


def resolve_consistency(consistency: str, group) -> str:
    """``direct`` or ``midpoint`` for ``group``; a clear error for an unknown or unsupported form."""
    if consistency not in CONSISTENCY:
        raise ValueError(f"unknown consistency {consistency!r}; choose one of {list(CONSISTENCY)}")
    if consistency == "auto":
        return "midpoint" if group.has_balanced_split else "direct"
    if consistency == "midpoint" and not group.has_balanced_split:
        group.balanced_split(None)                            # raises, naming the group
    return consistency


INV_FORMS = ("mse", "normalised")          # the form of L_inv
TARGETS = ("detached", "both-ways", "scale-free")


def _standardised(t: torch.Tensor) -> torch.Tensor:
    """``t`` centred per channel over the batch and the grid and divided by its overall RMS: what
    is left cannot be changed by an offset or a scale of ``t`` (the ``scale-free`` targets)."""
    dims = (0,) + tuple(range(2, t.dim()))
    c = t - t.mean(dims, keepdim=True)                                   # (B, C, *S) centred per channel
    return c / c.pow(2).mean().add(1e-12).sqrt()


def invariance_loss(z_i: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """``L_inv``: ``mse`` is the paper's ``‖z_i(x) − sg[z_i(T_g x)]‖²``; ``normalised`` divides each
    channel's squared error by that channel's variance in the (stop-gradient) target over the batch
    and grid (plus 0.1 % of the mean variance), then averages over channels — it cannot be met by shrinking ``z_i`` or by a constant
    offset, and weighs a small-variance channel like a large one (as a standardised probe does)."""
    if kind == "mse":
        return F.mse_loss(z_i, target)
    if kind != "normalised":
        raise ValueError(f"unknown inv_form {kind!r}; choose one of {list(INV_FORMS)}")
    dims = (0,) + tuple(range(2, target.dim()))                  # batch and grid, per channel
    var = target.var(dims)                                        # (C,)
    eps = 1e-3 * var.mean() + 1e-12                               # scales with z_i: no escape by shrinking
    return ((z_i - target).pow(2).mean(dims) / (var + eps)).mean()


@dataclass(frozen=True)
class LossOptions:
    """How the loss terms are weighted and formed (every default is the paper's).

    ``lambda_inv`` / ``lambda_const`` weigh ``L_inv`` / ``L_const`` against ``L_recon``;
    ``consistency`` (:data:`CONSISTENCY`), ``inv_form`` (:data:`INV_FORMS`) and ``targets``
    (:data:`TARGETS`) pick the forms described in this module's docstring.
    """
    lambda_inv: float = 1.0
    lambda_const: float = 1.0
    consistency: str = "auto"
    inv_form: str = "mse"
    targets: str = "detached"

    @classmethod
    def from_config(cls, cfg) -> "LossOptions":
        """The options a ``TrainConfig`` asks for."""
        return cls(cfg.lambda_inv, cfg.lambda_const, cfg.consistency, cfg.inv_form, cfg.targets)


def ald_losses(model: GroupLatentAutoencoder, x: torch.Tensor, gx: torch.Tensor, g: torch.Tensor,
               options: LossOptions = LossOptions()) -> dict[str, torch.Tensor]:
    """Total loss and each term for a batch of pairs; ``x, gx``: (B, C, H, W), ``g``: (B,);
    ``options``: the weights and forms of the terms (:class:`LossOptions`)."""
    targets = options.targets
    if targets not in TARGETS:
        raise ValueError(f"unknown targets {targets!r}; choose one of {list(TARGETS)}")
    out = model(x, g)                                         # recon, z_i, phi_z_v: grad flows
    midpoint = resolve_consistency(options.consistency, model.group) == "midpoint"
    detached = targets != "both-ways"                          # scale-free targets are detached too
    with torch.set_grad_enabled(torch.is_grad_enabled() and not detached):
        zt_i, zt_v = model.split(model.encode(gx), hard=detached)  # [sg] z_i(T_g x), z_v(T_g x)
        if midpoint:
            h1, h2 = model.group.balanced_split(g)             # h2⁻¹ h1 = g
            zt_v = model.act(zt_v, h2)                         # sg[Phi_h2 z_v(T_g x)]
    recon = F.mse_loss(out["recon"], gx)
    pred_i, pred_v = out["z_i"], model.act(out["z_v"], h1) if midpoint else out["phi_z_v"]
    if targets == "scale-free":
        pred_i, zt_i, pred_v, zt_v = map(_standardised, (pred_i, zt_i, pred_v, zt_v))
    inv = invariance_loss(pred_i, zt_i, options.inv_form)
    const = F.mse_loss(pred_v, zt_v)
    total = recon + options.lambda_inv * inv + options.lambda_const * const
    return {"loss": total, "recon": recon, "inv": inv, "const": const}


def ae_losses(model: GroupLatentAutoencoder, x: torch.Tensor, gx: torch.Tensor, g: torch.Tensor,
              options: LossOptions = LossOptions()) -> dict[str, torch.Tensor]:
    """Plain autoencoder baseline: reconstruct ``x`` from the whole latent; no group, no mask
    (``g`` and ``options`` are taken for a common signature with :func:`ald_losses`, and unused)."""
    recon = F.mse_loss(model.decode(model.encode(x)), x)
    zero = recon.new_zeros(())
    return {"loss": recon, "recon": recon, "inv": zero, "const": zero}


class PairLoss(nn.Module):
    """``model`` and its objective as one module: ``forward(x, gx, g)`` returns the loss terms —
    :func:`ald_losses` for a model with a mask, :func:`ae_losses` for one without (``mask='none'``).

    The training loop calls this module, so wrapping it in ``DistributedDataParallel`` puts the
    whole step (the stop-gradient encoding of ``T_g x`` included) under DDP's gradient all-reduce,
    and every parameter of ``model`` (the ALD mask logits too) is synchronised.
    """

    def __init__(self, model: GroupLatentAutoencoder, options: LossOptions = LossOptions()):
        super().__init__()
        self.model, self.loss_fn = model, ae_losses if model.mask is None else ald_losses
        self.options = replace(options, consistency=resolve_consistency(options.consistency, model.group))

    @classmethod
    def from_config(cls, model: GroupLatentAutoencoder, cfg) -> "PairLoss":
        """The step a ``TrainConfig`` asks for."""
        return cls(model, LossOptions.from_config(cfg))

    def forward(self, x: torch.Tensor, gx: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss_fn(self.model, x, gx, g, self.options)
