"""Symmetries of the square: ``c4`` (rotations by multiples of 90°) and ``d4`` (with reflections).

The same op acts on images and on latent maps (``rot90`` and ``flip`` of square maps), so both
actions are exact: a 28×28 image maps to a 7×7 latent and rotating either commutes with the
paper's encoder up to what it learns.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .base import FiniteGroup, require_square


class CyclicRotations(FiniteGroup):
    """C4: rotations by multiples of 90° in the (H, W) plane; ``rot90`` on images and latents.

    ``sample`` follows the paper: an angle uniform in [0°, 360°) rounded to the nearest multiple of
    90° (so 315°–360° rounds to 0°) — each of the four elements has probability 1/4.
    """

    def __init__(self):
        ops = [(lambda t, k=k: torch.rot90(t, k, dims=(-2, -1))) for k in range(4)]
        super().__init__("c4", ops, ["0°", "90°", "180°", "270°"])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        angle = torch.rand(n, generator=generator, dtype=torch.float64) * 360.0
        return torch.round(angle / 90.0).long() % 4

    def check_shape(self, shape: Sequence[int], what: str = "latent") -> None:
        super().check_shape(shape, what)
        if shape[-1] != shape[-2]:
            raise ValueError(f"group 'c4' rotates square maps; got {what} of spatial size "
                             f"{shape[-2]}x{shape[-1]} (make H == W)")


class DihedralGroup(FiniteGroup):
    """D4: ``rot90^k`` (k = 0..3) and ``rot90^k ∘ flip`` (mirror left-right first) of square maps."""

    def __init__(self):
        rot = [(lambda t, k=k: torch.rot90(t, k, dims=(-2, -1))) for k in range(4)]
        ref = [(lambda t, k=k: torch.rot90(t.flip(-1), k, dims=(-2, -1))) for k in range(4)]
        names = [f"{90 * k}°" for k in range(4)] + [f"flip·{90 * k}°" for k in range(4)]
        super().__init__("d4", rot + ref, names)

    def check_shape(self, shape: Sequence[int], what: str = "latent") -> None:
        super().check_shape(shape, what)
        require_square(self.name, shape, what)
