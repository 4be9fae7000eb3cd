"""Embedded, download-free MNIST-like digits ("glyphs").

Digits 0-9 are rendered once per font from the TrueType fonts that matplotlib ships, centred by
bounding box and scaled so that the digit fits a 20x20 box of a 28x28 canvas (as in MNIST). Each
sample then gets a random font, stroke thickness, scale, aspect, shear, rotation and shift, applied
in batch with an affine sampling grid (as ``affine_grid``) + ``grid_sample``. Templates are rendered and thickened or
thinned at 4x the output resolution and area-averaged down, so edges are antialiased; the shift is
limited so the transformed digit keeps a 1.5 px margin. Everything is deterministic from ``seed``.

Fonts are accepted automatically by rendering: a font is used only if it has all ten digit glyphs,
they are non-empty, they are lining figures (all about the same height; this drops old-style
figures such as cmmi10's, and cmti10 whose 4 descends), and at least half of them are nearest to
the same digit of the reference font DejaVu Sans at 14x14 (real digit fonts match 6-10 of 10;
symbol fonts such as cmsy10/cmex10, whose code points 0x30-0x39 hold other symbols, and
LastResortHE, whose glyphs are placeholder boxes, match 1).
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from .base import ImageSet, Loaded, Request

__all__ = ["make_glyphs", "glyph_fonts", "load"]

_BOX = 20 / 28            # the digit's longer side fills this fraction of the canvas (MNIST: 20/28)
_RENDER_PX = 300          # font size (pixels per em) of the one-off high-resolution rendering
_STROKE_RADII = tuple(range(-2, 5))   # dilation (>0) / erosion (<0) radii, pixels at 4x resolution
                                      # (deeper erosion wipes out the hairlines of serif fonts)
_CHUNK = 4096             # samples transformed at once (bounds memory)
_REFERENCE = "DejaVuSans.ttf"


def _font_dir() -> str:
    import matplotlib
    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf")


@functools.lru_cache(maxsize=None)
def _render(font_file: str, digit: int) -> np.ndarray | None:
    """Ink in [0, 1] of one digit, cropped to its bounding box; None if the font lacks the glyph."""
    from matplotlib import ft2font
    font = ft2font.FT2Font(os.path.join(_font_dir(), font_file))
    if font.get_char_index(ord(str(digit))) == 0:
        return None
    flags = ft2font.LoadFlags.NO_HINTING if hasattr(ft2font, "LoadFlags") else ft2font.LOAD_NO_HINTING
    font.set_size(_RENDER_PX, 72)
    font.set_text(str(digit), 0.0, flags=flags)
    font.draw_glyphs_to_bitmap(antialiased=True)
    img = np.asarray(font.get_image(), dtype=np.float32) / 255.0
    rows, cols = np.nonzero(img > 0.05)
    if rows.size == 0:
        return None
    return img[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _canvas(ink: np.ndarray, side: int) -> torch.Tensor:
    """Resize ink so its longer side fills ``_BOX`` of a side x side canvas, centred by bounding box."""
    h, w = ink.shape
    k = _BOX * side / max(h, w)
    nh, nw = max(1, round(h * k)), max(1, round(w * k))
    t = F.interpolate(torch.from_numpy(ink)[None, None], size=(nh, nw), mode="bilinear",
                      antialias=True, align_corners=False)[0, 0].clamp(0, 1)
    out = torch.zeros(side, side)
    top, left = (side - nh) // 2, (side - nw) // 2
    out[top:top + nh, left:left + nw] = t
    return out


def _digit_features(inks: list[np.ndarray]) -> torch.Tensor:
    """Coarse (14x14) centred, zero-mean, unit-norm versions of ten digit renderings, (10, 196)."""
    f = torch.stack([_canvas(i, 14) for i in inks]).flatten(1)
    f = f - f.mean(1, keepdim=True)
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-8)


@functools.lru_cache(maxsize=None)
def glyph_fonts() -> tuple[str, ...]:
    """File names of the matplotlib fonts whose digits are used (checked by rendering them)."""
    files = sorted(f for f in os.listdir(_font_dir()) if f.lower().endswith(".ttf"))
    reference = _digit_features([_render(_REFERENCE, d) for d in range(10)])
    good = []
    for f in files:
        inks = [_render(f, d) for d in range(10)]
        if any(i is None for i in inks):
            continue                                            # missing or empty digit glyphs
        heights = [i.shape[0] for i in inks]
        if max(heights) > 1.15 * min(heights):
            continue                                            # old-style (non-lining) figures
        matches = (_digit_features(inks) @ reference.T).argmax(1) == torch.arange(10)
        if int(matches.sum()) >= 5:                             # not symbols/placeholders (~1/10)
            good.append(f)
    if not good:
        raise RuntimeError(f"no usable digit fonts found under {_font_dir()}")
    return tuple(good)


def _max3(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Running max over each element and its two neighbours along ``dim`` (borders: just inside)."""
    n = x.shape[dim]
    out = x.clone()
    lo, hi = out.narrow(dim, 1, n - 1), out.narrow(dim, 0, n - 1)
    torch.maximum(lo, x.narrow(dim, 0, n - 1), out=lo)
    torch.maximum(hi, x.narrow(dim, 1, n - 1), out=hi)
    return out


def _stroke_levels(t: torch.Tensor) -> list[torch.Tensor]:
    """``t`` grey-level dilated (r > 0) or eroded (r < 0) by |r| steps of an octagon-like element
    (alternating 3x3 square and 3x3 cross), for each r in ``_STROKE_RADII``."""
    levels = {0: t}
    for sign in (1.0, -1.0):
        x = sign * t
        for i in range(max(0, *(int(sign) * r for r in _STROKE_RADII))):
            h = _max3(x, -1)
            x = _max3(h, -2) if i % 2 == 0 else torch.maximum(h, _max3(x, -2))
            levels[int(sign) * (i + 1)] = sign * x
    return [levels[r] for r in _STROKE_RADII]


def _stroke_width(t: torch.Tensor) -> torch.Tensor:
    """Mean stroke width (pixels) of each binarised image in (N, 1, H, W): 2 * area / perimeter."""
    ink = (t > 0.5).float()
    inner = -_max3(_max3(-ink, -1), -2)
    edge = (ink - inner).flatten(1).sum(1)
    return 2 * ink.flatten(1).sum(1) / edge.clamp_min(1)


@functools.lru_cache(maxsize=4)
def _bank(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Templates (fonts*10*levels, 1, size, size), rendered and stroke-adjusted at 4x resolution then
    area-averaged (antialiased); their stroke widths (fonts*10, levels) in output pixels; and the
    half-extents (x, y) of each digit's bounding box (fonts*10, 2) in [-1, 1] image units."""
    hi = 4 * size
    t = torch.stack([_canvas(_render(f, d), hi) for f in glyph_fonts() for d in range(10)])[:, None]
    bank = torch.stack(_stroke_levels(t), 1)                     # (F*10, L, 1, hi, hi)
    widths = _stroke_width(bank.flatten(0, 1)).view(bank.shape[:2]) / 4
    bank = F.avg_pool2d(bank.flatten(0, 1), 4).contiguous()      # (F*10*L, 1, size, size)
    shapes = torch.tensor([_render(f, d).shape for f in glyph_fonts() for d in range(10)])
    half = _BOX * shapes.flip(1) / shapes.amax(1, keepdim=True)
    return bank, widths, half


def _is_int(v) -> bool:
    return not isinstance(v, bool) and hasattr(v, "__index__")


def _affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """``F.affine_grid(theta, (m, 1, size, size), align_corners=False)`` computed as outer sums of
    per-row and per-column terms, which is several times faster on CPU."""
    coord = (torch.arange(size, dtype=theta.dtype) * 2 + 1) / size - 1   # pixel centres in [-1, 1]
    th = theta[:, :, :, None, None]                                      # (m, 2, 3, 1, 1)
    grid = torch.empty(theta.shape[0], size, size, 2, dtype=theta.dtype)
    for k in range(2):                                                   # k = 0: x, k = 1: y
        torch.add(th[:, k, 0] * coord[None, None, :], th[:, k, 1] * coord[None, :, None] + th[:, k, 2],
                  out=grid[..., k])
    return grid


def make_glyphs(n: int, seed: int = 0, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """n images of digits 0-9 as uint8 tensor (n, size, size) (0=background, 255=ink, white digit on
    black like MNIST) and int64 labels (n,)."""
    if not _is_int(n) or n <= 0:
        raise ValueError(f"n must be a positive integer (number of images), got {n!r}")
    if not _is_int(size) or size < 8:
        raise ValueError(f"size must be an integer >= 8 (image side in pixels), got {size!r}")
    n, size = int(n), int(size)
    bank, widths, half = _bank(size)
    n_fonts, n_levels = widths.shape[0] // 10, widths.shape[1]
    g = torch.Generator().manual_seed(int(seed))

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=g)

    labels = torch.randint(0, 10, (n,), generator=g)
    font = torch.randint(0, n_fonts, (n,), generator=g)
    target_width = u(1.5, 3.1) * size / 28
    scale, aspect, shear = u(0.8, 1.15), u(0.9, 1.1), u(-0.3, 0.3)
    angle = u(-12.0, 12.0) * (math.pi / 180)
    shift = (torch.rand(n, 2, generator=g) * 4 - 2) * (2 / size)   # +-2 px in [-1, 1] units

    glyph = font * 10 + labels
    level = (widths[glyph] - target_width[:, None]).abs().argmin(1)
    index = glyph * n_levels + level

    # forward map A = rotation @ shear @ scale; grid_sample needs output -> input, i.e. A^-1.
    c, s = torch.cos(angle), torch.sin(angle)
    sx, sy = scale * aspect, scale                                 # aspect jitter: width only
    a = torch.stack([torch.stack([c * sx, (c * shear - s) * sy], -1),
                     torch.stack([s * sx, (s * shear + c) * sy], -1)], -2)
    # Keep the transformed bounding box 1.5 px inside the image: shrink digits that would not fit,
    # then limit the shift to the room that is left.
    grow = torch.tensor(_STROKE_RADII)[level].clamp_min(0) / (2 * size)   # dilation, [-1,1] units
    extent = (a.abs() @ half[glyph][:, :, None])[:, :, 0] + grow[:, None]   # half-extents (n, 2)
    room = 1 - 3 / size
    fit = (room / extent).amin(1).clamp(max=1)
    a, extent = a * fit[:, None, None], extent * fit[:, None]
    limit = (room - extent).clamp_min(0)
    shift = torch.maximum(torch.minimum(shift, limit), -limit)
    inv = torch.linalg.inv(a)
    theta = torch.cat([inv, -(inv @ shift[:, :, None])], 2)

    out = torch.empty(n, size, size, dtype=torch.uint8)
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, min(n, lo + _CHUNK))
        img = F.grid_sample(bank[index[sl]], _affine_grid(theta[sl], size), mode="bilinear",
                            padding_mode="zeros", align_corners=False)
        out[sl] = img[:, 0].mul_(255).round_().clamp_(0, 255).to(torch.uint8)
    return out, labels


TEST_SEED_OFFSET = 1_000_003


def load(req: Request) -> Loaded:
    """Embedded digits, rendered for this seed: as many as the caps need (``req.sizes``)."""
    n_train, n_test = req.sizes
    train = ImageSet(*make_glyphs(n_train, seed=req.seed))
    test = ImageSet(*make_glyphs(n_test, seed=req.seed + TEST_SEED_OFFSET))
    return Loaded("rendered from matplotlib's fonts", train, test, digits=True)
