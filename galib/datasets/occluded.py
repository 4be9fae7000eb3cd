"""``blocked:NAME``: any 2D dataset with a fixed square that does *not* move with the group.

Pairs are ``(occlude(x), occlude(T_g x))`` (``blocked:glyphs``, ``blocked:fashion-mnist``,
``blocked:npz:...``). The occluder rides on each ``ImageSet.occlude`` and is applied by
``make_pairs(..., occlude=...)`` / ``iterate_pairs`` / ``ImageSet.floats``; the stored ``uint8``
images stay unoccluded.

The block's look is chosen by an optional style before the dataset name (``BLOCK_STYLES``):

* ``blocked:NAME`` = ``blocked:grey:NAME`` — the paper's mid-grey block (value 0). A near-blank
  decode (``D(0)`` of a trained model) draws about the same grey, so how well a model "draws the
  block" can hardly be told from drawing nothing;
* ``blocked:bright:NAME`` — a white block (value 1), which neither the black background nor a
  blank decode matches;
* ``blocked:checker:NAME`` — a checkerboard of ±1 in 2-px cells (mean 0, so a flat decode of any
  value misses it by at least 1 per pixel).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .base import DataSplits, Request

PATTERNS = ("flat", "checker")
BLOCK_STYLES = {"grey": (0.0, "flat"), "bright": (1.0, "flat"), "checker": (1.0, "checker")}


@dataclass(frozen=True)
class Occluder:
    """Sets the square ``[top, top+size) × [left, left+size)`` of float images to a fixed fill.

    Acts on ``(B, C, H, W)`` floats in [-1, 1]. ``pattern`` ``"flat"``: every pixel ``value``
    (0 is mid-grey, visible on the black background and on white strokes alike; 1 is white);
    ``"checker"``: ``±value`` in 2-px cells, ``+value`` at the top-left.
    """
    top: int = 3
    left: int = 17
    size: int = 8
    value: float = 0.0
    pattern: str = "flat"

    def __post_init__(self):
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown occluder pattern {self.pattern!r}; choose one of {PATTERNS}")

    def fill(self) -> torch.Tensor:
        """The block's pixels ``(size, size)``."""
        if self.pattern == "flat":
            return torch.full((self.size, self.size), float(self.value))
        k = torch.arange(self.size) // 2
        sign = 1.0 - 2.0 * ((k.view(-1, 1) + k.view(1, -1)) % 2).float()     # +1 / -1 cells
        return sign * float(self.value)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        out[..., self.top:self.top + self.size, self.left:self.left + self.size] = \
            self.fill().to(out.device, out.dtype)
        return out

    def region(self, h: int, w: int) -> torch.Tensor:
        """Bool ``(h, w)``: the pixels this occluder covers."""
        r = torch.zeros(h, w, dtype=torch.bool)
        r[self.top:self.top + self.size, self.left:self.left + self.size] = True
        return r

    @classmethod
    def default(cls, h: int, w: int, style: str = "grey") -> "Occluder":
        """An 8×8 block 3 px from the top and right edges of a 28×28 image, scaled to ``h×w``,
        in one of ``BLOCK_STYLES``."""
        if style not in BLOCK_STYLES:
            raise ValueError(f"unknown block style {style!r}; choose one of {sorted(BLOCK_STYLES)}")
        value, pattern = BLOCK_STYLES[style]
        size = max(1, round(8 * min(h, w) / 28))
        return cls(top=round(3 * h / 28), left=w - size - round(3 * w / 28), size=size,
                   value=value, pattern=pattern)


def blocked(data: DataSplits, occluder: Occluder | None = None, style: str = "grey") -> DataSplits:
    """``data`` with a fixed occluder on every split (2D datasets only): ``occluder`` if given,
    else the default block in ``style``. Named ``blocked:NAME`` (grey) or ``blocked:STYLE:NAME``."""
    if len(data.image_shape) != 2:
        raise ValueError(f"blocked: needs a 2D dataset; {data.name!r} has images of shape "
                         f"{data.image_shape}")
    occ = occluder or Occluder.default(*data.image_shape, style=style)
    sets = {k: dataclasses.replace(getattr(data, k), occlude=occ) for k in ("train", "val", "test")}
    name = f"blocked:{data.name}" if style == "grey" else f"blocked:{style}:{data.name}"
    return DataSplits(name, f"{data.source}; fixed block {occ}", **sets,
                      classes=data.classes, digits=data.digits)


def parse_spec(spec: str) -> tuple[str, str]:
    """``(style, dataset name)`` of what follows ``blocked:`` (``bright:glyphs`` → ``("bright",
    "glyphs")``; no known style first → ``("grey", spec)``)."""
    head, sep, rest = spec.partition(":")
    if sep and head in BLOCK_STYLES:
        if not rest:
            raise ValueError(f"dataset 'blocked:{spec}' needs a dataset name after the style, "
                             f"e.g. 'blocked:{head}:glyphs'")
        return head, rest
    return "grey", spec


def load(req: Request) -> DataSplits:
    """``blocked:[STYLE:]NAME``: dataset ``NAME``, loaded with the same settings, with the fixed
    block in ``STYLE`` (``grey`` unless given; see ``BLOCK_STYLES``)."""
    if not req.spec:
        raise ValueError("dataset 'blocked:' needs the name of a 2D dataset, e.g. 'blocked:glyphs' "
                         f"or 'blocked:bright:glyphs' (styles: {sorted(BLOCK_STYLES)})")
    style, name = parse_spec(req.spec)
    return blocked(req.load(name), style=style)
