"""Datasets (``mnist``, ``fashion-mnist``, ``glyphs``, ``auto``), splits and per-batch pairing.

Images stay in memory as ``uint8`` tensors ``(N, H, W)`` and become floats in [-1, 1] one batch at
a time; pairs ``(x, T_g x, g, y)`` are built per batch with tensor ops (:func:`iterate_pairs`).
Splits follow the paper: 80/20 train/validation from the training set, the official test set.
"""
from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .groups import Group

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("auto", "mnist", "fashion-mnist", "glyphs")
_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_TV_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


class DatasetUnavailable(FileNotFoundError):
    """The requested dataset could not be found or downloaded; the message says what was tried."""


@dataclass
class ImageSet:
    images: torch.Tensor      # (N, H, W) or (N, D, H, W) uint8
    labels: torch.Tensor      # (N,) int64
    # Optional fixed occluder applied to float images *after* the group action (``blocked:``
    # datasets): pairs are (occlude(x), occlude(T_g x)); ``images`` themselves stay unoccluded.
    occlude: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: torch.Tensor) -> "ImageSet":
        return ImageSet(self.images[idx], self.labels[idx], self.occlude)

    def head(self, n: int | None) -> "ImageSet":
        """The first ``n`` images (all of them when ``n`` is None or exceeds the set)."""
        return self if n is None else self.take(torch.arange(min(n, len(self))))

    def floats(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Float images ``(B, 1, *spatial)`` in [-1, 1], occluded if the set has an occluder."""
        x = to_float(self.images if idx is None else self.images[idx])
        return x if self.occlude is None else self.occlude(x)


@dataclass
class DataSplits:
    name: str                 # the dataset actually used (``auto`` resolved)
    source: str               # where its files came from
    train: ImageSet
    val: ImageSet
    test: ImageSet

    @property
    def num_classes(self) -> int:
        return int(self.train.labels.max()) + 1

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])

    def describe(self) -> dict:
        return {"dataset": self.name, "source": self.source, "n_train": len(self.train),
                "n_val": len(self.val), "n_test": len(self.test), "image_shape": list(self.image_shape)}


# ----------------------------------------------------------------------------- IDX files
def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (plain or ``.gz``) into a uint8 tensor."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic {data[:4]!r})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise ValueError(f"{path}: header says {dims} but holds {body.size} bytes")
    return torch.from_numpy(body.reshape(dims).copy())


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_folder(folder: Path) -> tuple[ImageSet, ImageSet] | None:
    """``(train, test)`` if ``folder`` holds all four IDX files, else ``None``."""
    paths = {k: [_find_idx(folder, s) for s in stems] for k, stems in _IDX.items()}
    if any(p is None for ps in paths.values() for p in ps):
        return None
    sets = [ImageSet(read_idx(ps[0]), read_idx(ps[1]).long()) for ps in paths.values()]
    return sets[0], sets[1]


def _candidate_folders(name: str, root: Path) -> list[Path]:
    folders = [root / _TV_FOLDER[name] / "raw", root / name, root]
    if name == "fashion-mnist":
        folders.append(DEBIAN_FASHION)
    return folders


def _load_idx_dataset(name: str, root: Path, download: bool) -> tuple[str, ImageSet, ImageSet]:
    tried = []
    for folder in _candidate_folders(name, root):
        tried.append(str(folder))
        found = _load_idx_folder(folder)
        if found is not None:
            return str(folder), *found
    if download:
        tried.append(f"torchvision download into {root}")
        try:
            import torchvision
            cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
            cls(str(root), train=True, download=True)
            cls(str(root), train=False, download=True)
            found = _load_idx_folder(root / _TV_FOLDER[name] / "raw")
            if found is not None:
                return f"torchvision download ({root})", *found
        except Exception as err:                          # offline: any network error lands here
            tried[-1] += f" (failed: {type(err).__name__})"
    hint = (f"put the four IDX files (e.g. train-images-idx3-ubyte[.gz]) under "
            f"{root / _TV_FOLDER[name] / 'raw'} or pass data_root=...")
    if name == "fashion-mnist":
        hint += ", or install the Debian package dataset-fashion-mnist"
    raise DatasetUnavailable(f"dataset {name!r} not found; tried: {'; '.join(tried)}. To supply it: {hint}")


# ----------------------------------------------------------------------------- datasets
def _glyphs(seed: int, n_train: int, n_test: int) -> tuple[str, ImageSet, ImageSet]:
    from .glyphs import make_glyphs
    train = ImageSet(*make_glyphs(n_train, seed=seed))
    test = ImageSet(*make_glyphs(n_test, seed=seed + 1_000_003))
    return "rendered from matplotlib's fonts", train, test


def _resolve_root(data_root: str | os.PathLike | None) -> Path:
    if data_root is None:
        return Path(os.environ.get("GALIB_DATA_ROOT", "data"))
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetUnavailable(f"data_root {str(data_root)!r} does not exist or is not a folder; "
                                 f"pass an existing folder or data_root=None")
    return root


def _split(train: ImageSet, val_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    n_val = int(round(len(train) * val_fraction))
    return train.take(perm[n_val:]), train.take(perm[:n_val])


def load_dataset(name: str = "auto", data_root: str | os.PathLike | None = None, seed: int = 42,
                 max_train: int | None = None, max_test: int | None = None,
                 val_fraction: float = 0.2, glyphs_sizes: tuple[int, int] | None = None,
                 download: bool = True, verbose: bool = True) -> DataSplits:
    """Load ``name`` and split it 80/20 train/validation (seeded) plus the official test set.

    ``max_train`` caps the training images (validation is capped to keep the 80/20 ratio);
    ``max_test`` caps the test images. ``auto`` takes ``mnist`` if it can be had, else
    ``fashion-mnist`` if found locally, else ``glyphs``, and prints which and why.
    ``glyphs_sizes`` (train, test) defaults to MNIST's 60 000 / 10 000, cut to what the caps need
    (rendering is per sample, so a capped run renders only the images it uses).
    """
    if glyphs_sizes is None:
        glyphs_sizes = _glyph_sizes(max_train, max_test, val_fraction)
    wrapper = next((p for p in _DATASET_WRAPPERS if name.startswith(p)), None)
    if wrapper is not None:                                    # e.g. blocked:NAME → wrap NAME
        inner = load_dataset(name[len(wrapper):], data_root, seed, max_train, max_test,
                             val_fraction, glyphs_sizes, download, verbose)
        return _DATASET_WRAPPERS[wrapper](name, inner)
    if name not in DATASETS and not any(name.startswith(p) for p in _EXTRA_LOADERS):
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(DATASETS)}"
                         + (f" or a prefix {list(_EXTRA_LOADERS) + list(_DATASET_WRAPPERS)}"
                            if _EXTRA_LOADERS or _DATASET_WRAPPERS else ""))
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1); got {val_fraction!r}")
    for key, cap in (("max_train", max_train), ("max_test", max_test)):
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            raise ValueError(f"{key} must be a positive integer or None; got {cap!r}")
    root = _resolve_root(data_root)
    given_val: list = []                                       # an extra loader may bring its own val
    if name == "auto":
        name, source, train, test = _auto(root, seed, glyphs_sizes, download, verbose)
    elif name == "glyphs":
        source, train, test = _glyphs(seed, *glyphs_sizes)
    elif name in _TV_FOLDER:
        source, train, test = _load_idx_dataset(name, root, download)
    else:
        prefix = next(p for p in _EXTRA_LOADERS if name.startswith(p))
        source, train, test, *given_val = _EXTRA_LOADERS[prefix](name, root, seed)
    if given_val and given_val[0] is not None:
        val = given_val[0]
    else:
        train, val = _split(train, val_fraction, seed)
    if max_train is not None:
        train = train.head(max_train)
        val = val.head(max(1, round(max_train * val_fraction / (1 - val_fraction))))
    return DataSplits(name, source, train, val, test.head(max_test))


def _glyph_sizes(max_train, max_test, val_fraction) -> tuple[int, int]:
    n_train, n_test = 60_000, 10_000
    if max_train is not None:
        n_train = min(n_train, math.ceil(max_train / (1 - val_fraction)) + 1)
    if max_test is not None:
        n_test = min(n_test, max_test)
    return n_train, n_test


def _auto(root: Path, seed: int, glyphs_sizes, download: bool, verbose: bool):
    reasons = []
    for name, dl in (("mnist", download), ("fashion-mnist", False)):
        try:
            source, train, test = _load_idx_dataset(name, root, dl)
            if verbose:
                print(f"[galib] dataset 'auto' -> {name!r} from {source}"
                      + (f" ({'; '.join(reasons)})" if reasons else ""))
            return name, source, train, test
        except DatasetUnavailable:
            reasons.append(f"{name} not available")
    source, train, test = _glyphs(seed, *glyphs_sizes)
    if verbose:
        print(f"[galib] dataset 'auto' -> 'glyphs' ({'; '.join(reasons)})")
    return "glyphs", source, train, test


# Further datasets (e.g. ``npz:PATH``) register a loader ``(name, root, seed) -> (source, train, test)``
# or ``(source, train, test, val)`` when the data bring their own validation split.
_EXTRA_LOADERS: dict[str, Callable[[str, Path, int], tuple]] = {}
# Wrappers (e.g. ``blocked:``) load the rest of the name as a dataset and transform its splits.
_DATASET_WRAPPERS: dict[str, Callable[[str, DataSplits], DataSplits]] = {}


# ----------------------------------------------------------------------------- batches and pairs
def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, *spatial)`` → float ``(B, 1, *spatial)`` in [-1, 1]."""
    return images.unsqueeze(1).float().div_(127.5).sub_(1.0)


def make_pairs(images: torch.Tensor, group: Group, generator: torch.Generator | None = None,
               g: torch.Tensor | None = None,
               occlude: Callable[[torch.Tensor], torch.Tensor] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, T_g x, g)`` for a uint8 batch; ``g`` is sampled from ``group`` unless given.

    ``occlude`` (an ``ImageSet.occlude``) is applied to both images after the action.
    """
    x = to_float(images)                                       # (B, 1, H, W)
    if g is None:
        g = group.sample(len(x), generator)
    gx = group.act_image(x, g)
    if occlude is not None:
        x, gx = occlude(x), occlude(gx)
    return x, gx, g


def iterate_pairs(data: ImageSet, group: Group, batch_size: int, generator: torch.Generator,
                  shuffle: bool = True, device: torch.device | str = "cpu",
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(x, T_g x, g, y)`` batches; group elements are drawn afresh on every call."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    elements = group.sample(n, generator)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        x, gx, g = make_pairs(data.images[idx].to(device), group, g=elements[idx].to(device),
                              occlude=data.occlude)
        yield x, gx, g, data.labels[idx].to(device)


from . import datasets_extra  # noqa: E402,F401  (registers shapes3d, npz:, blocked:)
