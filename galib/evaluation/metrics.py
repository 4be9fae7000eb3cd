"""Image-quality, equivariance and mask metrics as pure tensor functions.

Every function takes plain tensors and returns a float or a dict of named scores, so notebooks can
dump the result straight into ``metrics.json``. Nothing here knows about models or datasets.

Conventions
-----------
* Images live in [-1, 1], so the default ``data_range`` is 2. Shapes are ``(B, C, H, W)`` or, for
  volumes, ``(B, C, D, H, W)``.
* Quality metrics are computed in float64 (float32 on MPS, which has no float64).
* ``psnr`` caps each per-image value at ``PSNR_CAP_DB`` (100 dB), so identical images give a
  finite, JSON-friendly number instead of ``inf``.
* ``ssim`` is Wang et al. (2004): gaussian window 11 with sigma 1.5, K1 = 0.01, K2 = 0.03, *valid*
  padding (a 28x28 image yields an 18x18 SSIM map), per channel, averaged over the map, the channels
  and the batch. If a spatial side is shorter than 11 the window shrinks to the largest odd size
  that fits on every side (sigma kept at 1.5).
* Relative errors use the rule ``0/0 = 0``: a sample whose target *and* difference are both zero
  (e.g. an empty variant part ``z_v = 0`` on both sides) counts as exact agreement, whereas a
  nonzero difference against a zero target is ``inf``. Dicts report how many zero targets they saw.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..devices import wide_dtype

PSNR_CAP_DB = 100.0
SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {tuple(a.shape)} vs {tuple(b.shape)}")
    dt = wide_dtype(a.device)
    return a.detach().to(dt), b.detach().to(dt)


# ----------------------------------------------------------------------------- image quality

def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared error over every element."""
    a, b = _check_pair(a, b)
    return float(((a - b) ** 2).mean())


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> float:
    """Mean over the batch of per-image PSNR in dB, each capped at ``PSNR_CAP_DB``."""
    a, b = _check_pair(a, b)
    per_img = ((a - b) ** 2).flatten(1).mean(1)                       # (B,)
    db = 10.0 * torch.log10(data_range ** 2 / per_img)                # (B,), inf where mse == 0
    return float(db.clamp(max=PSNR_CAP_DB).mean())


def _gaussian_1d(size: int, sigma: float, dtype, device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    k = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return k / k.sum()                                                # (size,)


def _blur_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable gaussian filter with valid padding on a (N, 1, *spatial) tensor, 2-D or 3-D."""
    nsp = x.dim() - 2
    conv = F.conv2d if nsp == 2 else F.conv3d
    for axis in range(nsp):
        shape = [1, 1] + [1] * nsp
        shape[2 + axis] = k.numel()
        x = conv(x, k.view(shape))                                    # shrinks this axis by size-1
    return x


def ssim_map(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-pixel SSIM map of shape (B, C, H', W') or (B, C, D', H', W') (valid padding)."""
    if a.dim() not in (4, 5):
        raise ValueError(f"expected (B,C,H,W) or (B,C,D,H,W), got shape {tuple(a.shape)}")
    a, b = _check_pair(a, b)
    B, C, *spatial = a.shape
    size = min(SSIM_WINDOW, min(spatial))
    size = size if size % 2 == 1 else size - 1
    k = _gaussian_1d(size, SSIM_SIGMA, a.dtype, a.device)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2

    a, b = a.reshape(B * C, 1, *spatial), b.reshape(B * C, 1, *spatial)  # channels filtered alone
    mu_a, mu_b = _blur_valid(a, k), _blur_valid(b, k)                 # (B*C, 1, H', W')
    var_a = _blur_valid(a * a, k) - mu_a ** 2
    var_b = _blur_valid(b * b, k) - mu_b ** 2
    cov = _blur_valid(a * b, k) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)
    return (num / den).reshape(B, C, *num.shape[2:])


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> float:
    """Mean SSIM (Wang et al. 2004; gaussian 11 / sigma 1.5, valid padding) over map, channels, batch."""
    return float(ssim_map(a, b, data_range).mean())


def image_scores(pred: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> dict:
    """All three image-quality scores at once: keys ``mse``, ``psnr``, ``ssim``."""
    return {"mse": mse(pred, target), "psnr": psnr(pred, target, data_range),
            "ssim": ssim(pred, target, data_range)}


# ----------------------------------------------------------------------------- latent errors

def relative_error(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-sample ``||pred - target|| / ||target||`` over all non-batch dims, shape (B,).

    A target with norm <= ``eps`` gives 0 if the difference norm is also <= ``eps`` (0/0 = 0)
    and ``inf`` otherwise.
    """
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(target.shape)}")
    pred, target = pred.detach().flatten(1).double(), target.detach().flatten(1).double()
    diff = (pred - target).norm(dim=1)                                # (B,)
    ref = target.norm(dim=1)                                          # (B,)
    err = diff / ref.clamp(min=eps)
    zero_ref = ref <= eps
    err = torch.where(zero_ref & (diff <= eps), torch.zeros_like(err), err)
    err = torch.where(zero_ref & (diff > eps), torch.full_like(err, math.inf), err)
    return err


def _grouped_errors(err: torch.Tensor, ref_zero: torch.Tensor, g, elements) -> dict:
    out = {"mean": float(err.mean()), "max": float(err.max()),
           "n_zero_target": int(ref_zero.sum())}
    if g is not None:
        g = torch.as_tensor(g).reshape(-1).to(err.device)             # (B,) element ids
        if g.numel() != err.numel():
            raise ValueError(f"g has {g.numel()} entries for a batch of {err.numel()}")
        ids = [int(e) for e in elements] if elements is not None else \
            [int(e) for e in torch.unique(g).tolist()]
        out["per_element"] = {
            e: (float(err[g == e].mean()) if bool((g == e).any()) else math.nan) for e in ids}
    return out


def equivariance_errors(phi_zv: torch.Tensor, zv_of_gx: torch.Tensor, g=None, elements=None,
                        eps: float = 1e-12) -> dict:
    """Relative equivariance error ``||Phi_g z_v(x) - z_v(T_g x)|| / ||z_v(T_g x)||``.

    Returns ``mean`` and ``max`` over the batch, ``n_zero_target`` (samples with z_v(T_g x) = 0,
    scored by the 0/0 = 0 rule) and, when ``g`` (int64 (B,) element ids) is given,
    ``per_element``: {element id: mean error}; ids listed in ``elements`` but absent give nan.
    """
    err = relative_error(phi_zv, zv_of_gx, eps)                       # (B,)
    ref_zero = zv_of_gx.detach().flatten(1).double().norm(dim=1) <= eps
    return _grouped_errors(err, ref_zero, g, elements)


def invariance_errors(zi_x: torch.Tensor, zi_gx: torch.Tensor, g=None, elements=None,
                      eps: float = 1e-12) -> dict:
    """Relative invariance error ``||z_i(x) - z_i(T_g x)|| / ||z_i(x)||``; keys as
    :func:`equivariance_errors`."""
    err = relative_error(zi_gx, zi_x, eps)                            # (B,)
    ref_zero = zi_x.detach().flatten(1).double().norm(dim=1) <= eps
    return _grouped_errors(err, ref_zero, g, elements)


def energy_share(z_i: torch.Tensor, z: torch.Tensor) -> float:
    """Share of latent energy ``sum z_i^2 / sum z^2``; nan if ``z`` is all zero."""
    num = float(z_i.detach().double().pow(2).sum())
    den = float(z.detach().double().pow(2).sum())
    return num / den if den > 0 else math.nan


# ----------------------------------------------------------------------------- ALD mask

def cohen_kappa(observed: float, chance: float) -> float:
    """Cohen's kappa ``(p_o − p_e) / (1 − p_e)``: agreement beyond chance, 1 for perfect agreement,
    0 for what independent sides give, negative below it; nan when ``p_e = 1`` (every channel on
    one side at both ends: nothing to tell)."""
    return (observed - chance) / (1.0 - chance) if chance < 1.0 else math.nan


def mask_side_agreement(init_probs, final_probs, tau: float = 0.5) -> dict:
    """Did each channel end on the side of τ it started on? ``agreement`` (share of channels
    whose final side equals their initial side), ``agreement_chance`` (what independent sides with
    the same variant fractions would give: ``a·b + (1−a)(1−b)``), ``kappa`` (Cohen's kappa of the
    two, :func:`cohen_kappa`: comparable across τ values whose chance levels differ),
    ``rank_correlation`` (Spearman, initial vs final ``p``; nan if either is constant) and
    ``n_channels``."""
    p0 = torch.as_tensor(init_probs, dtype=torch.float64).reshape(-1)
    p1 = torch.as_tensor(final_probs, dtype=torch.float64).reshape(-1)
    if p0.shape != p1.shape:
        raise ValueError(f"init and final probs differ in shape: {tuple(p0.shape)} vs {tuple(p1.shape)}")
    s0, s1 = p0 > tau, p1 > tau
    a, b = float(s0.double().mean()), float(s1.double().mean())
    r0, r1 = p0.argsort().argsort().double(), p1.argsort().argsort().double()
    r0, r1 = r0 - r0.mean(), r1 - r1.mean()
    den = float(r0.norm() * r1.norm())
    agree, chance = float((s0 == s1).double().mean()), a * b + (1 - a) * (1 - b)
    return {"agreement": agree, "agreement_chance": chance, "kappa": cohen_kappa(agree, chance),
            "rank_correlation": float((r0 * r1).sum()) / den if den > 0 and p0.std() > 0 and p1.std() > 0
            else math.nan, "n_channels": int(p0.numel())}


def mask_stats(logits: torch.Tensor, tau: float = 0.5, band: float = 0.05) -> dict:
    """Summary of the ALD mask logits ``alpha`` (C,).

    Keys: ``variant_fraction`` (share of channels with p > tau), ``n_variant``,
    ``variant_channels`` (their indices), ``probs`` (p = sigmoid(alpha) per channel) and
    ``n_unsettled`` (channels with |p - tau| < band, i.e. still close to flipping).
    """
    p = torch.sigmoid(logits.detach().double().reshape(-1))           # (C,)
    variant = p > tau                                                 # (C,) bool
    return {
        "variant_fraction": float(variant.double().mean()),
        "n_variant": int(variant.sum()),
        "variant_channels": [int(i) for i in torch.nonzero(variant).reshape(-1).tolist()],
        "probs": [float(v) for v in p.tolist()],
        "n_unsettled": int(((p - tau).abs() < band).sum()),
    }
