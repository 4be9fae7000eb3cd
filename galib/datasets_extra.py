"""More datasets for :func:`galib.data.load_dataset`: ``shapes3d``, ``npz:PATH`` and ``blocked:NAME``.

* ``shapes3d`` (or ``shapes3d:N_TRAIN,N_TEST``, default 6000,1000) — embedded 28³ ``uint8`` voxel
  volumes of five shape classes built from axis-aligned bars, generated in batch and deterministic
  from the seed. Every class is built without rotational symmetry (unequal arms, off-centre knobs,
  a chiral chain), so the 24 cube rotations of a volume are all distinct: use with group ``o3d``.
* ``npz:PATH`` — user data in the MedMNIST ``.npz`` layout: ``train_images``, ``train_labels``,
  ``test_images``, ``test_labels`` and optionally ``val_images``, ``val_labels`` (then used as the
  validation set instead of the 80/20 split). Images ``N×H×W`` (2D), ``N×D×H×W`` (3D) or RGB
  ``N×H×W×3`` (converted to grey); ``uint8``, or floats in [0, 1] (scaled to 0..255).
  A relative ``PATH`` is looked up in the working directory, then under ``data_root``.
* ``blocked:NAME`` — any 2D dataset ``NAME`` (``blocked:glyphs``, ``blocked:fashion-mnist``,
  ``blocked:npz:...``) with a fixed mid-grey square that does *not* move with the group:
  pairs are ``(occlude(x), occlude(T_g x))``. The occluder rides on each ``ImageSet.occlude`` and
  is applied by ``make_pairs(..., occlude=...)`` / ``iterate_pairs`` / ``ImageSet.floats``; the
  stored ``uint8`` images stay unoccluded.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import _DATASET_WRAPPERS, _EXTRA_LOADERS, DataSplits, DatasetUnavailable, ImageSet

SHAPE_CLASSES = ("L", "T+knob", "box+knob", "chain", "U")
_TEST_SEED_OFFSET = 1_000_003
_MAX_BOXES = 3


# ----------------------------------------------------------------------------- shapes3d
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


def _load_shapes3d(name: str, root: Path, seed: int) -> tuple[str, ImageSet, ImageSet]:
    spec = name[len("shapes3d"):]
    n_train, n_test = 6000, 1000
    if spec:
        try:
            n_train, n_test = (int(v) for v in spec.lstrip(":").split(","))
            assert spec.startswith(":") and n_train > 0 and n_test > 0
        except (ValueError, AssertionError):
            raise ValueError(f"bad dataset name {name!r}; use 'shapes3d' or 'shapes3d:N_TRAIN,N_TEST' "
                             f"with positive integers, e.g. 'shapes3d:6000,1000'") from None
    train = ImageSet(*make_shapes3d(n_train, seed))
    test = ImageSet(*make_shapes3d(n_test, seed + _TEST_SEED_OFFSET))
    return f"generated locally ({len(SHAPE_CLASSES)} classes: {', '.join(SHAPE_CLASSES)})", train, test


# ----------------------------------------------------------------------------- npz (MedMNIST layout)
NPZ_REQUIRED = ("train_images", "train_labels", "test_images", "test_labels")


def _npz_images(arr: np.ndarray, key: str, path: Path) -> torch.Tensor:
    if arr.ndim == 4 and arr.shape[-1] == 3 and arr.shape[1] == arr.shape[2] != 3:
        grey = arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # RGB (N, H, W, 3) → grey
        arr = grey if np.issubdtype(arr.dtype, np.floating) else np.rint(grey).astype(arr.dtype)
    if arr.ndim not in (3, 4):
        raise ValueError(f"{path}: {key} must be N×H×W (2D) or N×D×H×W (3D); got shape {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if arr.size and (np.nanmin(arr) < 0.0 or np.nanmax(arr) > 1.0 or np.isnan(arr).any()):
            raise ValueError(f"{path}: float {key} must lie in [0, 1] (or store uint8 0..255); "
                             f"got range [{np.nanmin(arr):g}, {np.nanmax(arr):g}]")
        out = np.rint(arr * 255.0).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"{path}: integer {key} must lie in 0..255; got [{arr.min()}, {arr.max()}]")
        out = arr.astype(np.uint8)
    else:
        raise ValueError(f"{path}: {key} has unsupported dtype {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(out))


def _npz_labels(arr: np.ndarray, key: str, n: int, path: Path) -> torch.Tensor:
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{path}: {key} must have shape ({n},) or ({n}, 1) to match the images; "
                         f"got {arr.shape} (multi-label data is not supported)")
    if not np.issubdtype(arr.dtype, np.integer) and not np.all(arr == np.rint(arr)):
        raise ValueError(f"{path}: {key} must hold integer class labels; got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{path}: {key} must be non-negative class indices; got min {arr.min()}")
    return torch.from_numpy(arr.astype(np.int64))


def load_npz(path: str | Path, root: Path | None = None) -> tuple[str, ImageSet, ImageSet, ImageSet | None]:
    """``(source, train, test, val or None)`` from a MedMNIST-layout ``.npz`` file."""
    p = Path(path).expanduser()
    tried = [p]
    if not p.is_file() and not p.is_absolute() and root is not None:
        tried.append(Path(root) / p)
        p = tried[-1]
    if not p.is_file():
        raise DatasetUnavailable(f"npz dataset file not found; tried {', '.join(map(str, tried))}. "
                                 f"Pass 'npz:/path/to/file.npz' holding arrays {list(NPZ_REQUIRED)} "
                                 f"(and optionally val_images, val_labels)")
    with np.load(p, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    missing = [k for k in NPZ_REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"{p} lacks the arrays {missing}; the MedMNIST layout needs {list(NPZ_REQUIRED)} "
                         f"(optionally val_images, val_labels); found {sorted(arrays)}")
    if ("val_images" in arrays) != ("val_labels" in arrays):
        raise ValueError(f"{p} has only one of val_images / val_labels; supply both or neither")

    def split(prefix: str) -> ImageSet:
        images = _npz_images(arrays[f"{prefix}_images"], f"{prefix}_images", p)
        return ImageSet(images, _npz_labels(arrays[f"{prefix}_labels"], f"{prefix}_labels", len(images), p))

    train, test = split("train"), split("test")
    val = split("val") if "val_images" in arrays else None
    shapes = {s.images.shape[1:] for s in (train, test, val) if s is not None}
    if len(shapes) != 1:
        raise ValueError(f"{p}: train/val/test images differ in shape: {sorted(map(tuple, shapes))}")
    return str(p), train, test, val


def _load_npz(name: str, root: Path, seed: int):
    del seed
    if name == "npz:":
        raise ValueError("dataset 'npz:' needs a path, e.g. 'npz:/data/pathmnist.npz'")
    return load_npz(name[len("npz:"):], root)


# ----------------------------------------------------------------------------- blocked:NAME
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
    return DataSplits(f"blocked:{data.name}", f"{data.source}; fixed block {occ}", **sets)


_EXTRA_LOADERS["shapes3d"] = _load_shapes3d
_EXTRA_LOADERS["npz:"] = _load_npz
_DATASET_WRAPPERS["blocked:"] = lambda name, data: blocked(data)

__all__ = ["SHAPE_CLASSES", "make_shapes3d", "load_npz", "Occluder", "blocked"]
