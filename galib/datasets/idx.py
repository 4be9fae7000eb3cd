"""``mnist`` and ``fashion-mnist`` from IDX files: a ``data_root`` folder, torchvision's download,
or (Fashion-MNIST) the Debian package ``dataset-fashion-mnist``."""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import torch

from .base import DatasetUnavailable, ImageSet, Loaded, Request

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                   "bag", "boot")
_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_TV_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


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


def _download(name: str, root: Path) -> tuple[ImageSet, ImageSet] | None:
    import torchvision
    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    cls(str(root), train=True, download=True)
    cls(str(root), train=False, download=True)
    return _load_idx_folder(root / _TV_FOLDER[name] / "raw")


def load_idx_dataset(name: str, root: Path, download: bool) -> Loaded:
    """``mnist`` or ``fashion-mnist`` from the first folder that holds all four IDX files, else
    torchvision's download (``download``); a :class:`DatasetUnavailable` naming what was tried."""
    tried = []
    for folder in _candidate_folders(name, root):
        tried.append(str(folder))
        found = _load_idx_folder(folder)
        if found is not None:
            return _loaded(name, str(folder), *found)
    if download:
        tried.append(f"torchvision download into {root}")
        try:
            found = _download(name, root)
            if found is not None:
                return _loaded(name, f"torchvision download ({root})", *found)
        except Exception as err:                          # offline: any network error lands here
            tried[-1] += f" (failed: {type(err).__name__})"
    hint = (f"put the four IDX files (e.g. train-images-idx3-ubyte[.gz]) under "
            f"{root / _TV_FOLDER[name] / 'raw'} or pass data_root=...")
    if name == "fashion-mnist":
        hint += ", or install the Debian package dataset-fashion-mnist"
    raise DatasetUnavailable(f"dataset {name!r} not found; tried: {'; '.join(tried)}. To supply it: {hint}")


def _loaded(name: str, source: str, train: ImageSet, test: ImageSet) -> Loaded:
    if name == "mnist":
        return Loaded(source, train, test, digits=True)
    return Loaded(source, train, test, classes=FASHION_CLASSES)


def load_mnist(req: Request) -> Loaded:
    """The paper's dataset (downloaded by torchvision when allowed)."""
    return load_idx_dataset("mnist", req.root, req.download)


def load_fashion_mnist(req: Request) -> Loaded:
    """The 28×28 drop-in MNIST variant (also from the Debian package)."""
    return load_idx_dataset("fashion-mnist", req.root, req.download)
