"""``blocked:NAME``: any 2D dataset with a fixed mid-grey square that does *not* move with the group.

Pairs are ``(occlude(x), occlude(T_g x))`` (``blocked:glyphs``, ``blocked:fashion-mnist``,
``blocked:npz:...``). The occluder rides on each ``ImageSet.occlude`` and is applied by
``make_pairs(..., occlude=...)`` / ``iterate_pairs`` / ``ImageSet.floats``; the stored ``uint8``
images stay unoccluded.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .base import DataSplits, Request


@dataclass(frozen=True)
class Occluder:
    """Sets the square ``[top, top+size) × [left, left+size)`` of float images to ``value``.

    Acts on ``(B, C, H, W)`` floats in [-1, 1]; ``value`` 0 is mid-grey (visible on the black
    background and on white strokes alike).
    """
    top: int = 3
    left: int = 17
    size: int = 8
    value: float = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        out[..., self.top:self.top + self.size, self.left:self.left + self.size] = self.value
        return out

    def region(self, h: int, w: int) -> torch.Tensor:
        """Bool ``(h, w)``: the pixels this occluder covers."""
        r = torch.zeros(h, w, dtype=torch.bool)
        r[self.top:self.top + self.size, self.left:self.left + self.size] = True
        return r

    @classmethod
    def default(cls, h: int, w: int) -> "Occluder":
        """An 8×8 block 3 px from the top and right edges of a 28×28 image, scaled to ``h×w``."""
        size = max(1, round(8 * min(h, w) / 28))
        return cls(top=round(3 * h / 28), left=w - size - round(3 * w / 28), size=size)


def blocked(data: DataSplits, occluder: Occluder | None = None) -> DataSplits:
    """``data`` with a fixed occluder on every split (2D datasets only)."""
    if len(data.image_shape) != 2:
        raise ValueError(f"blocked: needs a 2D dataset; {data.name!r} has images of shape "
                         f"{data.image_shape}")
    occ = occluder or Occluder.default(*data.image_shape)
    sets = {k: dataclasses.replace(getattr(data, k), occlude=occ) for k in ("train", "val", "test")}
    return DataSplits(f"blocked:{data.name}", f"{data.source}; fixed block {occ}", **sets,
                      classes=data.classes, digits=data.digits)


def load(req: Request) -> DataSplits:
    """``blocked:NAME``: dataset ``NAME``, loaded with the same settings, with the fixed block."""
    if not req.spec:
        raise ValueError("dataset 'blocked:' needs the name of a 2D dataset, e.g. 'blocked:glyphs'")
    return blocked(req.load(req.spec))

