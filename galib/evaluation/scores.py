"""Score a trained model the same way everywhere: :func:`evaluate_model`.

Every image of a set is paired with every evaluation element ``g`` of the group
(:meth:`galib.groups.base.Group.evaluation_grid`); each batch of pairs is described by a
:class:`PairBatch` and scored by every entry of ``PAIR_SCORES``. Adding a metric is one entry
there (a pure function of :mod:`galib.evaluation.metrics` applied to the batch); it is then
averaged per element and overall, reported per element, and available to every table.
Scores that need the whole set at once (energy share, centred errors) are kept by
:class:`_SetSums`. Runs under ``no_grad`` with the *hard* mask; deterministic for a given ``seed``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..datasets import DataSplits, ImageSet
from ..devices import model_device, wide_dtype
from ..groups import Group
from ..pairs import images_of
from . import metrics as M
from .features import LatentView, is_identity, repeat_element, resolve_view, view_split


@dataclass
class PairBatch:
    """One batch of pairs ``(x, T_g x)`` for one element ``g``, and what the model makes of it."""
    gx: torch.Tensor          # T_g x                       (B, 1, H, W)
    recon: torch.Tensor       # D(z_i(x) + Phi_g z_v(x))     (B, 1, H, W)
    phi: torch.Tensor         # Phi_g z_v(x)                 (B, C, h, w)
    z_i: torch.Tensor         # z_i(x)
    zt_i: torch.Tensor        # z_i(T_g x)
    zt_v: torch.Tensor        # z_v(T_g x)


@dataclass(frozen=True)
class PairScore:
    """``compute(batch)`` gives the batch mean (a float) or an error dict of
    :mod:`galib.evaluation.metrics` (``mean``, ``max``, ``n_zero_target``), which adds the keys
    ``<name>_max`` and ``<first word>_n_zero_target``. ``needs_mask``: ``None`` for a model
    without a mask (``mask='none'``). ``moved_only``: the overall mean (and ``_max``, zero count) is over the
    non-identity elements only (at the identity an error is 0 by construction)."""
    label: str                # how tables name it
    compute: Callable[[PairBatch], "float | dict"]
    needs_mask: bool = False
    moved_only: bool = False


PAIR_SCORES: dict[str, PairScore] = {
    "recon_mse": PairScore("recon MSE", lambda b: M.mse(b.recon, b.gx)),
    "recon_psnr": PairScore("PSNR", lambda b: M.psnr(b.recon, b.gx)),
    "recon_ssim": PairScore("SSIM", lambda b: M.ssim(b.recon, b.gx)),
    "equivariance_error": PairScore("equiv err", lambda b: M.equivariance_errors(b.phi, b.zt_v),
                                    moved_only=True),
    "invariance_error": PairScore("inv err", lambda b: M.invariance_errors(b.z_i, b.zt_i),
                                  needs_mask=True, moved_only=True),
}
# Labels of every scalar score a table shows, in table order: the pair scores, then the set ones.
SCORE_LABELS: dict[str, str] = {
    **{key: s.label for key, s in PAIR_SCORES.items()},
    "equivariance_error_centred": "equiv err c", "invariance_error_centred": "inv err c",
    "energy_share_zi": "E(z_i) share", "energy_share_zi_centred": "E(z_i) share c",
    "variant_fraction": "variant frac",
}


def _sq(t: torch.Tensor) -> float:
    """Sum of squares, in float64 where the device has it (MPS does not)."""
    return float(t.to(wide_dtype(t.device)).pow(2).sum()) if torch.is_tensor(t) else 0.0


def _root_ratio(num: float, den: float, eps: float = 1e-12) -> float:
    """``sqrt(num / den)`` with ``0/0 = 0`` (as :func:`galib.evaluation.metrics.relative_error`)."""
    if den <= eps:
        return 0.0 if num <= eps else math.inf
    return math.sqrt(max(num, 0.0) / den)


class _SetSums:
    """Sums over the whole set: latent energy of ``z_i`` and ``z``, and the centred errors
    ``sqrt(Σ‖error‖² / Σ‖target − mean target‖²)`` (target mean over images, per element) over
    the pairs of non-identity elements — and the same with the images shuffled (each prediction
    against the next image's target, :func:`random_pairing_error`): the level of an encoder that
    knows nothing about the pairing."""

    def __init__(self, n_elements: int):
        self.energy_i = self.energy = 0.0
        self.zi_sum = self.z_sum = 0.0
        self.zt_sum, self.zt_sq = [0.0] * n_elements, [0.0] * n_elements
        self.num = {k: 0.0 for k in ("eq", "inv", "eq_shuffled", "inv_shuffled")}
        self.n_shuffled, self.n_moved, self.moved_ids = 0, 0, []

    def add_images(self, z: torch.Tensor, z_i: torch.Tensor) -> None:
        self.energy_i += _sq(z_i)
        self.energy += _sq(z)
        self.zi_sum = self.zi_sum + z_i.to(wide_dtype(z_i.device)).sum(0)    # (C, h, w)
        self.z_sum = self.z_sum + z.to(wide_dtype(z.device)).sum(0)

    def add_pairs(self, k: int, b: PairBatch) -> None:
        """Pairs of a non-identity element ``k`` (pairs of the identity are not added)."""
        if k not in self.moved_ids:
            self.moved_ids.append(k)
        self.num["eq"] += _sq(b.phi - b.zt_v)
        self.num["inv"] += _sq(b.z_i - b.zt_i)
        if len(b.phi) > 1:                                   # shuffled: image j against j + 1
            self.num["eq_shuffled"] += _sq(b.phi.roll(1, 0) - b.zt_v)
            self.num["inv_shuffled"] += _sq(b.z_i.roll(1, 0) - b.zt_i)
            self.n_shuffled += len(b.phi)
        self.n_moved += len(b.phi)
        self.zt_sum[k] = self.zt_sum[k] + b.zt_v.to(wide_dtype(b.zt_v.device)).sum(0)
        self.zt_sq[k] += _sq(b.zt_v)

    def result(self, n: int) -> dict:
        ks = self.moved_ids
        eq_den = sum(self.zt_sq[k] - _sq(self.zt_sum[k]) / n for k in ks)
        centred_i, centred = self.energy_i - _sq(self.zi_sum) / n, self.energy - _sq(self.z_sum) / n
        inv_den = len(ks) * centred_i
        scale = self.n_moved / self.n_shuffled if self.n_shuffled else math.nan
        out = {"energy_share_zi": self.energy_i / self.energy if self.energy > 0 else math.nan,
               "energy_share_zi_centred": centred_i / centred if centred > 0 else math.nan,
               "equivariance_error_centred": _root_ratio(self.num["eq"], eq_den),
               "invariance_error_centred": _root_ratio(self.num["inv"], inv_den)}
        for key, num, den in (("equivariance", "eq_shuffled", eq_den), ("invariance", "inv_shuffled", inv_den)):
            out[f"{key}_error_centred_shuffled"] = (_root_ratio(self.num[num] * scale, den)
                                                    if self.n_shuffled else math.nan)
        return out


def random_pairing_error(pred: torch.Tensor, target: torch.Tensor) -> dict:
    """The centred error of ``pred`` against ``target`` (both ``(N, ...)``, row ``j`` a pair),
    as matched and with the pairing shuffled (``pred`` row ``j + 1`` against target ``j``):
    ``{"matched", "shuffled"}``. ``shuffled`` is the reference level of a prediction that ignores
    which image it belongs to — √2 when predictions and targets are independent draws of one
    distribution, larger when the predictions spread more than the targets."""
    if pred.shape != target.shape or len(pred) < 2:
        raise ValueError(f"need two equal (N >= 2, ...) tensors; got {tuple(pred.shape)}, {tuple(target.shape)}")
    t = target.detach().flatten(1).double()
    p = pred.detach().flatten(1).double()
    den = float((t - t.mean(0)).pow(2).sum())
    return {"matched": _root_ratio(float((p - t).pow(2).sum()), den),
            "shuffled": _root_ratio(float((p.roll(1, 0) - t).pow(2).sum()), den)}


class _ScoreSums:
    """Per-element sums of every ``PAIR_SCORES`` entry (weighted by batch size), worst errors
    and zero-target counts (over the moved elements for ``moved_only`` scores)."""

    def __init__(self, n_elements: int, moved: list[bool]):
        self.sums = {key: [0.0] * n_elements for key in PAIR_SCORES}
        self.moved = moved                                   # (G,) element is not the identity
        self.worst: dict[str, float] = {}
        self.zero: dict[str, int] = {}

    def add(self, k: int, b: PairBatch, weight: int) -> None:
        for key, score in PAIR_SCORES.items():
            value = score.compute(b)
            if isinstance(value, dict):
                if self.moved[k] or not score.moved_only:
                    self.worst[key] = max(self.worst.get(key, 0.0), value["max"])
                    self.zero[key] = self.zero.get(key, 0) + value["n_zero_target"]
                value = value["mean"]
            self.sums[key][k] += value * weight

    def result(self, n: int, names: list[str]) -> dict:
        out = {}
        for key, sums in self.sums.items():
            per = [s / n for s in sums]
            use = [v for v, m in zip(per, self.moved) if m or not PAIR_SCORES[key].moved_only]
            out[key] = sum(use) / len(use) if use else math.nan
            out.update({f"{key}/{name}": v for name, v in zip(names, per)})
        for key in self.worst:
            out[f"{key}_max"] = self.worst[key]
            out[f"{key.split('_')[0]}_n_zero_target"] = self.zero[key]
        return out


def _pair_batch(model, view: LatentView, data: ImageSet, idx, g, z_i, z_v, device) -> PairBatch:
    """The pairs ``(x, T_g x)`` of images ``idx`` of ``data`` for elements ``g`` (B, ...), read
    through ``view`` (group, latent action, mask); ``z_i``, ``z_v``: the split latents of ``x``."""
    gx = images_of(data, idx, view.group, g, device)                       # T_g x
    phi = view.act(z_v, g)                                                 # Phi_g z_v(x)
    recon = model.decode(z_i + phi)
    zt_i, zt_v = view_split(model, model.encode(gx), view.mask)            # z_i(T_g x), z_v(T_g x)
    return PairBatch(gx, recon, phi, z_i, zt_i, zt_v)


def _mask_scores(model, mask) -> dict:
    if mask is None:
        return dict(variant_fraction=None, n_variant=None, variant_channels=None, mask_probs=None,
                    n_unsettled=None, tau=None)
    stats = M.mask_stats(model.mask.logits, model.tau, band=0.05)
    return dict(variant_fraction=stats["variant_fraction"], n_variant=stats["n_variant"],
                variant_channels=stats["variant_channels"], mask_probs=stats["probs"],
                n_unsettled=stats["n_unsettled"], tau=model.tau)


@torch.no_grad()
def evaluate_model(model, data: ImageSet | DataSplits, group: Group | str | None = None, seed: int = 0,
                   batch_size: int = 512, max_images: int | None = None,
                   n_eval: int = 8) -> dict:
    """Scores of ``model`` on every image of ``data`` paired with every evaluation element ``g``.

    Keys (``<e>`` = element name, e.g. ``90°``): each ``PAIR_SCORES`` name — ``recon_mse``,
    ``recon_psnr``, ``recon_ssim`` of ``D(z_i + Phi_g z_v(x))`` vs ``T_g x``;
    ``equivariance_error`` (mean of ``‖Phi_g z_v(x) − z_v(T_g x)‖/‖z_v(T_g x)‖``);
    ``invariance_error`` (``‖z_i(x) − z_i(T_g x)‖/‖z_i(x)‖``) — with ``<name>/<e>``, and
    ``<name>_max``, ``<word>_n_zero_target`` for the errors; ``equivariance_error_centred`` and
    ``invariance_error_centred``, ``sqrt(Σ‖error‖² / Σ‖target − mean target‖²)`` (0 is exact —
    the plain relative errors look small whenever a large input-independent offset dominates the
    norm) with their reference levels ``equivariance_error_centred_shuffled`` and
    ``invariance_error_centred_shuffled``, computed alike with the images shuffled (each prediction
    against another image's target: what knowing nothing about the pairing scores, ≈ √2 when both
    sides spread alike); ``energy_share_zi`` (``Σz_i²/Σz²``) and ``energy_share_zi_centred``
    (the same with each latent coordinate's mean over the images taken out of ``z_i`` and ``z``:
    a constant offset, which carries nothing about the image, no longer counts); mask statistics ``variant_fraction``, ``n_variant``, ``variant_channels``,
    ``mask_probs`` (sigmoid(alpha)), ``n_unsettled`` (``|p − τ| < 0.05``), ``tau``; and
    ``group``, ``elements``, ``n_images``, ``n_pairs``, ``n_pairs_moved``. For a model without a
    mask (``mask='none'``) the ``z_i``/mask scores are ``None``. Overall means weight every element
    equally; those of the equivariance and invariance errors (plain, ``_max``, zero counts and
    centred) are over the *non-identity* elements only, since at the identity they are 0 by
    construction; per-element keys are reported for every element, the identity included.
    A ``DataSplits`` is evaluated on its test set.
    """
    if isinstance(data, DataSplits):
        data = data.test
    view = resolve_view(model, group)
    group, mask = view.group, view.mask
    els, names = group.evaluation_grid(n_eval, seed)
    device, was_training = model_device(model), model.training
    model.eval()
    data = data.head(max_images)
    n = len(data)
    if n == 0:
        raise ValueError("evaluate_model needs at least one image")
    moved = [not is_identity(group, el) for el in els]
    scores, totals = _ScoreSums(len(els), moved), _SetSums(len(els))
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        z = model.encode(images_of(data, idx, device=device))              # (B, C, h, w)
        z_i, z_v = view_split(model, z, mask)
        totals.add_images(z, z_i)
        for k, el in enumerate(els):
            b = _pair_batch(model, view, data, idx, repeat_element(el, len(idx), device),
                            z_i, z_v, device)
            scores.add(k, b, len(idx))
            if moved[k]:
                totals.add_pairs(k, b)
    model.train(was_training)
    out = {"group": group.name, "elements": names, "n_images": n,
           "n_pairs": n * len(els), "n_pairs_moved": n * sum(moved),
           **scores.result(n, names), **totals.result(n)}
    if mask is None:                                   # no mask: z_i and mask scores are undefined
        masked = tuple(k.split("_")[0] + "_" for k, s in PAIR_SCORES.items() if s.needs_mask)
        for key in [k for k in out if k.startswith(masked)] + ["energy_share_zi", "energy_share_zi_centred"]:
            out[key] = None
    return {**out, **_mask_scores(model, mask)}
