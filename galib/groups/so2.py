"""``so2``: continuous rotations, and a learned latent representation of them.

An element is an angle in radians, a float tensor ``(B,)``. ``T_g`` and ``Phi_g`` rotate with
bilinear interpolation (``affine_grid`` + ``grid_sample``); they are approximate (interpolation,
lost corners), which :func:`galib.groups.base.homomorphism_error` measures.
``make_latent_action("learned", C)`` gives :class:`LearnedSO2Action`, a learned representation.
Metrics are reported on ``n`` evenly spaced angles (:meth:`SO2.evaluation_grid`).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..devices import wide_dtype
from .base import Group, require_square

TWO_PI = 2.0 * math.pi


def rotate(x: torch.Tensor, theta: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Rotate square maps ``(B, C, H, W)`` counter-clockwise by ``theta`` (B,) radians.

    Bilinear ``grid_sample`` (``align_corners=False``, so 90° equals ``rot90``); points that come
    from outside the map take the value ``fill``.
    """
    t = theta.to(wide_dtype(theta.device))
    c, s, o = t.cos(), t.sin(), torch.zeros_like(t)
    A = torch.stack([c, -s, o, s, c, o], 1).view(-1, 2, 3).to(x.dtype)     # (B, 2, 3)
    grid = F.affine_grid(A, list(x.shape), align_corners=False)            # (B, H, W, 2)
    if fill == 0.0:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill


class SO2(Group):
    """Continuous rotations of square maps. Element: angle in radians, float tensor ``(B,)``.

    ``act_image`` pads with ``background`` (-1: images live in [-1, 1] on a black background);
    ``act_latent`` (the ``resample`` action, also what ``latent_action='exact'`` uses) pads with 0.
    """

    name, spatial_dims, finite = "so2", 2, False
    background = -1.0
    latent_actions = ("resample", "learned")
    has_balanced_split = True
    moved_away = math.pi / 8           # sample_moved: at least 22.5° from the identity by default

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, generator=generator) * TWO_PI                 # (n,) in [0, 2π)

    def identity(self, n: int = 1) -> torch.Tensor:
        return torch.zeros(n)

    def compose(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.remainder(g + h, TWO_PI)

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        return torch.remainder(-g, TWO_PI)

    def sample_moved(self, n: int, generator: torch.Generator | None = None,
                     away: float | None = None) -> torch.Tensor:
        """``n`` angles uniform in ``[away, 2π − away]`` (``away``: default :attr:`moved_away`)."""
        away = self.moved_away if away is None else away
        if not 0.0 <= away < math.pi:
            raise ValueError(f"away must be an angle in [0, π) radians; got {away!r}")
        return away + torch.rand(n, generator=generator) * (2 * math.pi - 2 * away)

    def balanced_split(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``g = q + r`` with ``q`` the nearest quarter turn (exact on the latent grid) and
        ``|r| ≤ 45°``: ``h1 = q + r/2``, ``h2 = −r/2``. Both sides are resampled by ``|r|/2``, so
        neither is systematically smoother or smaller; at quarter turns the loss is the exact
        direct one."""
        quarter = TWO_PI / 4
        q = torch.round(torch.remainder(g, TWO_PI) / quarter) * quarter
        r = torch.remainder(g, TWO_PI) - q                                 # in [-π/4, π/4]
        return torch.remainder(q + r / 2, TWO_PI), torch.remainder(-r / 2, TWO_PI)

    def check_shape(self, shape: Sequence[int], what: str = "latent") -> None:
        super().check_shape(shape, what)
        require_square(self.name, shape, what)

    def _check_elements(self, t: torch.Tensor, g: torch.Tensor) -> None:
        if g.shape != t.shape[:1]:
            raise ValueError(f"need one angle per sample: angles {tuple(g.shape)}, tensor {tuple(t.shape)}")

    def act_image(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.check_shape(x.shape, "image")
        self._check_elements(x, g)
        return rotate(x, g, fill=self.background)

    def act_latent(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        self.check_shape(z.shape, "latent")
        self._check_elements(z, g)
        return rotate(z, g)

    def evaluation_grid(self, n: int = 8, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
        """``n`` evenly spaced angles ``2πk/n`` (k = 0..n-1) and their names in degrees."""
        angles = torch.arange(n, dtype=torch.float64).mul(TWO_PI / n).float()
        return angles, [f"{360 * k / n:g}°" for k in range(n)]

    def parameter_axis(self, g: torch.Tensor) -> tuple[torch.Tensor, str]:
        return g.reshape(len(g), -1)[:, 0].double().rad2deg(), "rotation angle in degrees"

    def make_latent_action(self, kind: str, channels: int):
        if kind in ("resample", "exact"):
            return self.act_latent
        if kind == "learned":
            return LearnedSO2Action(channels)
        raise ValueError(f"group 'so2' offers latent_action 'exact'/'resample' or 'learned'; got {kind!r}")


class LearnedSO2Action(nn.Module):
    """A learned representation ``rho(θ)`` of SO(2) on the C channels, times spatial rotation.

    ``Phi_θ(z) = R_θ(Q · D(θ) · Qᵀ · z)`` where, per spatial position,

    * ``D(θ)`` is block-diagonal: channel pair ``(2k, 2k+1)`` is rotated by ``m_k·θ`` (an odd last
      channel is left alone, frequency 0). The frequencies are learned (``freq``, init 1) and
      rounded to integers in the forward pass with a straight-through gradient, so ``rho`` is
      2π-periodic and an exact homomorphism of SO(2) at every step of training (a real frequency
      would break ``Phi_θ Phi_φ = Phi_{θ+φ mod 2π}`` on wrap-around). A pair whose frequency
      reaches 0 becomes invariant.
    * ``Q = exp(S - Sᵀ)`` is a learned orthogonal change of basis (``S`` init 0, so ``Q = I``): it
      lets the rotating pairs align with whichever channels the ALD mask makes variant.
    * ``R_θ`` is the bilinear spatial rotation of the map (``spatial=True``; it commutes with the
      pointwise channel mixing and carries all of the action's interpolation error).

    The model applies it to ``z_v = M⊙z`` (all C channels, zeros where the mask is invariant).
    """

    def __init__(self, channels: int, spatial: bool = True, mix: bool = True, init_frequency: float = 1.0):
        super().__init__()
        self.channels, self.spatial = channels, spatial
        self.freq = nn.Parameter(torch.full((channels // 2,), float(init_frequency)))   # (P,)
        self.skew = nn.Parameter(torch.zeros(channels, channels)) if mix else None       # (C, C)

    def frequencies(self) -> torch.Tensor:
        m = self.freq
        return m + (torch.round(m) - m).detach()          # (P,) forward integers, backward identity

    def basis(self) -> torch.Tensor | None:
        if self.skew is None:
            return None
        return torch.linalg.matrix_exp(self.skew - self.skew.T)                          # (C, C)

    def channel_action(self, z: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """``rho(θ) z`` on ``z`` of shape ``(B, C, *spatial)``, no spatial resampling."""
        B, C = z.shape[:2]
        if C != self.channels:
            raise ValueError(f"learned so2 action was built for {self.channels} channels; got {C}")
        Q = self.basis()
        if Q is not None:
            z = torch.einsum("dc,bc...->bd...", Q.T, z)  # to the rotating basis: Qᵀ z
        P = C // 2
        ang = theta.to(z.dtype).view(B, 1) * self.frequencies().to(z.dtype)              # (B, P)
        c = ang.cos().view(B, P, *([1] * (z.dim() - 2)))                                 # (B, P, 1, 1)
        s = ang.sin().view_as(c)
        a, b = z[:, 0:2 * P:2], z[:, 1:2 * P:2]                                          # (B, P, h, w)
        pairs = torch.stack([c * a - s * b, s * a + c * b], 2).flatten(1, 2)             # (B, 2P, h, w)
        out = torch.cat([pairs, z[:, 2 * P:]], 1)                                        # (B, C, h, w)
        if Q is not None:
            out = torch.einsum("dc,bc...->bd...", Q, out)
        return out

    def forward(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        out = self.channel_action(z, g)
        return rotate(out, g) if self.spatial else out
