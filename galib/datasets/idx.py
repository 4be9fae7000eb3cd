"""``mnist`` and ``fashion-mnist`` from IDX files: a ``data_root`` folder, torchvision's download,
or (Fashion-MNIST) the Debian package ``dataset-fashion-mnist``."""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from .base import DataError, DatasetUnavailable, ImageSet, Loaded, Request, check_images

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                   "bag", "boot")
_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_TV_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (plain or ``.gz``) into a uint8 tensor; :class:`DataError` naming the file
    if it is truncated, corrupt or not an unsigned-byte IDX file."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as err:             # truncated / flipped .gz, unreadable
        raise DataError(f"cannot read {path}: {type(err).__name__}: {err or 'truncated'}; the file is "
                        f"damaged: replace it (e.g. download it again)") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic {data[:4]!r}); "
                        f"replace it with the original file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=min(len(data), 4 + 4 * ndim))
    if body.size != math.prod(dims):
        raise DataError(f"{path}: header says {dims} but holds {body.size} bytes; the file is "
                        f"truncated or damaged: replace it")
    return torch.from_numpy(body.reshape(dims).copy())


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_split(images_path: Path, labels_path: Path, num_classes: int) -> ImageSet:
    """One split from its two IDX files, checked: ``(N, H, W)`` images, ``N`` labels in range."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or labels.dim() != 1:
        raise DataError(f"{images_path} and {labels_path} must hold (N, H, W) images and (N,) labels; "
                        f"got shapes {tuple(images.shape)} and {tuple(labels.shape)}")
    check_images(images, labels.long(), f"{images_path} with {labels_path}", num_classes)
    return ImageSet(images, labels.long())


def _load_idx_folder(folder: Path, num_classes: int = 10) -> tuple[ImageSet, ImageSet] | None:
    """``(train, test)`` if ``folder`` holds all four IDX files, ``None`` if it holds none of them;
    a :class:`DataError` for some but not all (a partial dataset is not silently skipped)."""
    paths = {k: [_find_idx(folder, s) for s in stems] for k, stems in _IDX.items()}
    found = [p for ps in paths.values() for p in ps if p is not None]
    if not found:
        return None
    if len(found) < 4:
        missing = [s for k, stems in _IDX.items() for s, p in zip(stems, paths[k]) if p is None]
        raise DataError(f"{folder} holds {len(found)} of the 4 IDX files: missing "
                        f"{', '.join(m + '[.gz]' for m in missing)}; add them, or remove the others "
                        f"so that this folder is not used")
    train, test = (_read_split(*paths[k], num_classes) for k in ("train", "test"))
    if train.images.shape[1:] != test.images.shape[1:]:
        raise DataError(f"{folder}: training images are {tuple(train.images.shape[1:])} but test images "
                        f"{tuple(test.images.shape[1:])} ({paths['test'][0].name}); both must have "
                        f"one size")
    return train, test


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
