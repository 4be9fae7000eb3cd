"""``shapes3d``: embedded 28³ ``uint8`` voxel volumes of five shape classes built from bars.

``shapes3d`` or ``shapes3d:N_TRAIN,N_TEST`` (default 6000,1000), generated in batch and
deterministic from the seed. Every class is built without rotational symmetry (unequal arms,
off-centre knobs, a chiral chain), so the 24 cube rotations of a volume are all distinct: use with
group ``o3d``.
"""
from __future__ import annotations

import torch

from .base import ImageSet, Loaded, Request

SHAPE_CLASSES = ("L", "T+knob", "box+knob", "chain", "U")
_TEST_SEED_OFFSET = 1_000_003
_MAX_BOXES = 3


def _boxes(cls: int, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes ``(n, K, 3, 2)`` (per axis D, H, W: [lo, hi)) in local coordinates and values ``(n, K)``.

    Unused boxes are empty (lo = hi = 0). Lengths are drawn so no class has a rotational symmetry.
    """
    def ri(lo, hi):                                       # (n,) integers in [lo, hi]
        return torch.randint(lo, hi + 1, (n,), generator=gen)

    z, t = torch.zeros(n, dtype=torch.long), ri(3, 5)     # thickness of every bar
    def box(d0, d1, h0, h1, w0, w1):
        return torch.stack([torch.stack([d0, d1], -1), torch.stack([h0, h1], -1),
                            torch.stack([w0, w1], -1)], 1)                        # (n, 3, 2)

    if cls == 0:      # L: long bar along D, shorter bar along H at one end
        a = ri(14, 20)
        b = a - ri(5, 8)
        parts = [box(z, a, z, t, z, t), box(z, t, z, b, z, t)]
    elif cls == 1:    # T: crossbar along H, off-centre stem along D, knob along W at the stem's end
        c, s, k = ri(14, 20), ri(10, 16), ri(3, 6)
        p = ri(1, 3)                                      # stem near one end of the crossbar
        parts = [box(z, t, z, c, z, t), box(t, t + s, p, p + t, z, t),
                 box(t + s - 3, t + s, p, p + 3, t, t + k)]
    elif cls == 2:    # box with a knob sticking out of its +W face near one corner
        bd, bh, bw, k = ri(8, 13), ri(8, 13), ri(8, 13), ri(4, 7)
        u, v = ri(1, 2), ri(1, 2)
        parts = [box(z, bd, z, bh, z, bw), box(u, u + 3, bh - v - 3, bh - v, bw, bw + k)]
    elif cls == 3:    # chiral chain: bars along D, then H, then W (first and last of unequal length)
        a, b, c = ri(13, 18), ri(8, 14), ri(5, 9)
        e = a - t                                         # start of the second bar
        parts = [box(z, a, z, t, z, t), box(e, a, z, b, z, t), box(e, a, b - t, b, t, t + c)]
    elif cls == 4:    # U: base along D, two legs along H of unequal length
        a, l1 = ri(12, 18), ri(10, 16)
        l2 = l1 - ri(4, 6)
        parts = [box(z, a, z, t, z, t), box(z, t, t, t + l1, z, t), box(a - t, a, t, t + l2, z, t)]
    else:
        raise ValueError(f"shape class {cls} out of range 0..{len(SHAPE_CLASSES) - 1}")
    boxes = torch.zeros(n, _MAX_BOXES, 3, 2, dtype=torch.long)
    boxes[:, :len(parts)] = torch.stack(parts, 1)
    values = torch.randint(160, 256, (n, _MAX_BOXES), generator=gen)
    return boxes, values


def _render(boxes: torch.Tensor, values: torch.Tensor, size: int, chunk: int = 64) -> torch.Tensor:
    """Voxelise boxes ``(N, K, 3, 2)`` with values ``(N, K)`` into ``(N, size, size, size)`` uint8.

    Overlapping boxes keep the larger value. One box of a chunk at a time keeps temporaries small.
    """
    ar = torch.arange(size)
    out = torch.zeros(len(boxes), size, size, size, dtype=torch.uint8)
    for i in range(0, len(boxes), chunk):
        b, v, o = boxes[i:i + chunk], values[i:i + chunk].to(torch.uint8), out[i:i + chunk]
        inside = (ar >= b[..., :1]) & (ar < b[..., 1:])                  # (n, K, 3, size) bool
        for k in range(b.shape[1]):
            dh = (inside[:, k, 0, :, None] & inside[:, k, 1, None, :]) * v[:, k, None, None]  # (n, s, s)
            torch.maximum(o, dh[..., None] * inside[:, k, 2, None, None, :], out=o)       # (n, s, s, s)
    return out


def make_shapes3d(n: int, seed: int = 0, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """``(volumes (n, size, size, size) uint8, labels (n,) int64)``, deterministic from ``seed``.

    Each volume holds one shape of class ``labels[i]`` (see ``SHAPE_CLASSES``), placed at a random
    offset with a margin of at least one voxel.
    """
    if size < 28:
        raise ValueError(f"shapes3d needs size >= 28 to fit its shapes; got {size}")
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(SHAPE_CLASSES), (n,), generator=gen)
    boxes = torch.zeros(n, _MAX_BOXES, 3, 2, dtype=torch.long)
    values = torch.zeros(n, _MAX_BOXES, dtype=torch.long)
    for c in range(len(SHAPE_CLASSES)):
        idx = (labels == c).nonzero().squeeze(1)
        boxes[idx], values[idx] = _boxes(c, len(idx), gen)
    extent = boxes[..., 1].amax(1)                                       # (n, 3)
    room = size - 1 - extent                                             # offsets in [1, room]
    offset = 1 + (torch.rand(n, 3, generator=gen) * room).long()        # (n, 3)
    used = (boxes[..., 1] > boxes[..., 0]).all(-1, keepdim=True)         # (n, K, 1) non-empty
    boxes = boxes + (offset[:, None, :, None] * used[..., None])
    return _render(boxes, values, size), labels


def load(req: Request) -> Loaded:
    """``shapes3d`` (6000 train, 1000 test volumes) or ``shapes3d:N_TRAIN,N_TEST``."""
    name, spec = req.name, req.name[len("shapes3d"):]
    n_train, n_test = 6000, 1000
    if spec:
        try:
            n_train, n_test = (int(v) for v in spec.lstrip(":").split(","))
            assert spec.startswith(":") and n_train > 0 and n_test > 0
        except (ValueError, AssertionError):
            raise ValueError(f"bad dataset name {name!r}; use 'shapes3d' or 'shapes3d:N_TRAIN,N_TEST' "
                             f"with positive integers, e.g. 'shapes3d:6000,1000'") from None
    train = ImageSet(*make_shapes3d(n_train, req.seed))
    test = ImageSet(*make_shapes3d(n_test, req.seed + _TEST_SEED_OFFSET))
    return Loaded(f"generated locally ({len(SHAPE_CLASSES)} classes: {', '.join(SHAPE_CLASSES)})",
                  train, test, classes=SHAPE_CLASSES)
