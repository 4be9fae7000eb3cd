"""``translate``: cyclic shifts by whole encoder cells, ``Z_n × Z_n``.

``T_g`` rolls the image by ``stride·k`` pixels, ``Phi_g`` rolls the latent by ``k`` cells; ``Z_7 ×
Z_7`` (49 elements) for 28-px images and the paper encoder (stride 4). Exact because the image
shift lands on the latent grid.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .base import TwoSpaceFiniteGroup


class TranslationGroup(TwoSpaceFiniteGroup):
    """``Z_n × Z_n`` cyclic shifts: element ``k = dy·n + dx`` rolls the latent by ``(dy, dx)`` cells
    and the image by ``(stride·dy, stride·dx)`` pixels. Needs images of side ``stride·n``."""

    def __init__(self, cells: int = 7, stride: int = 4):
        self.cells, self.stride = cells, stride
        shifts = [(dy, dx) for dy in range(cells) for dx in range(cells)]
        lat = [(lambda t, s=s: torch.roll(t, s, dims=(-2, -1))) for s in shifts]
        img = [(lambda t, s=s: torch.roll(t, (stride * s[0], stride * s[1]), dims=(-2, -1)))
               for s in shifts]
        names = [f"({stride * dy},{stride * dx})px" for dy, dx in shifts]
        super().__init__("translate", img, lat, names, probe_size=cells)

    def check_shape(self, shape: Sequence[int], what: str = "latent") -> None:
        super().check_shape(shape, what)
        h, w = shape[-2:]
        n, s = self.cells, self.stride
        if what == "image":
            if h % s or w % s:
                raise ValueError(f"group 'translate' shifts by multiples of the encoder stride {s}; "
                                 f"image size {h}x{w} is not divisible by {s}")
            if (h, w) != (s * n, s * n):
                raise ValueError(f"group 'translate' (Z_{n} x Z_{n}, stride {s}) acts on "
                                 f"{s * n}x{s * n} images; got {h}x{w} "
                                 f"(use TranslationGroup(cells={h // s}) for square images of side {h})")
        elif (h, w) != (n, n):
            raise ValueError(f"group 'translate' (Z_{n} x Z_{n}) acts on {n}x{n} {what} maps; "
                             f"got {h}x{w}")

    def shifts(self, g: torch.Tensor) -> torch.Tensor:
        """Pixel shifts ``(B, 2)`` (dy, dx) of elements ``g``."""
        return torch.stack([g // self.cells, g % self.cells], 1) * self.stride
