"""``npz:PATH``: user data in the MedMNIST ``.npz`` layout.

Arrays ``train_images``, ``train_labels``, ``test_images``, ``test_labels`` and optionally
``val_images``, ``val_labels`` (then used as the validation set instead of the 80/20 split). Images
``N×H×W`` (2D), ``N×D×H×W`` (3D) or RGB ``N×H×W×3`` (converted to grey); ``uint8``, or floats in
[0, 1] (scaled to 0..255). A relative ``PATH`` is looked up in the working directory, then under
``data_root``.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .base import DataError, DatasetUnavailable, ImageSet, Loaded, Request

NPZ_REQUIRED = ("train_images", "train_labels", "test_images", "test_labels")


def _npz_images(arr: np.ndarray, key: str, path: Path) -> torch.Tensor:
    if arr.ndim == 4 and arr.shape[-1] == 3 and arr.shape[1] == arr.shape[2] != 3:
        grey = arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # RGB (N, H, W, 3) → grey
        arr = grey if np.issubdtype(arr.dtype, np.floating) else np.rint(grey).astype(arr.dtype)
    if arr.ndim not in (3, 4):
        raise DataError(f"{path}: {key} must be N×H×W (2D) or N×D×H×W (3D); got shape {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        bad = int((~np.isfinite(arr)).sum())
        if bad:
            raise DataError(f"{path}: {key} holds {bad} non-finite values (NaN or inf); every pixel "
                            f"must be a finite number in [0, 1] (or store uint8 0..255)")
        if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
            raise DataError(f"{path}: float {key} must lie in [0, 1] (or store uint8 0..255); "
                            f"got range [{arr.min():g}, {arr.max():g}]")
        out = np.rint(arr * 255.0).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise DataError(f"{path}: integer {key} must lie in 0..255; got [{arr.min()}, {arr.max()}]")
        out = arr.astype(np.uint8)
    else:
        raise DataError(f"{path}: {key} has unsupported dtype {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(out))


def _npz_labels(arr: np.ndarray, key: str, n: int, path: Path) -> torch.Tensor:
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(f"{path}: {key} must have shape ({n},) or ({n}, 1) to match the images; "
                         f"got {arr.shape} (multi-label data is not supported)")
    numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if not numeric or (not np.issubdtype(arr.dtype, np.integer) and not np.all(arr == np.rint(arr))):
        raise DataError(f"{path}: {key} must hold integer class labels 0, 1, ...; got dtype "
                        f"{arr.dtype}" + (f" (e.g. {arr.flat[0]!r})" if arr.size else ""))
    if arr.size and arr.min() < 0:
        raise DataError(f"{path}: {key} must be non-negative class indices; got min {arr.min()}")
    return torch.from_numpy(arr.astype(np.int64))


_EXPECTED = ("an .npz archive (numpy.savez or numpy.savez_compressed) holding the numeric arrays "
             f"{list(NPZ_REQUIRED)} (optionally val_images, val_labels)")


def _read_arrays(p: Path) -> dict[str, np.ndarray]:
    """Every array of the .npz archive ``p``; a DataError naming the file and what is expected
    otherwise (never numpy's advice to load pickles)."""
    with open(p, "rb") as f:
        head = f.read(6)
    if head == b"\x93NUMPY":
        raise DataError(f"{p} is a single .npy array, not a dataset; expected {_EXPECTED}")
    if head[:2] != b"PK":                                      # every zip archive starts so
        kind = "is empty" if not head else f"is not a zip archive (it starts with {head!r})"
        raise DataError(f"{p} {kind}; expected {_EXPECTED}")
    try:
        with np.load(p, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except ValueError as err:
        if "allow_pickle" in str(err) or "pickled" in str(err):
            raise DataError(f"{p} holds Python objects (object arrays), which galib does not load; "
                            f"expected {_EXPECTED}") from None
        raise DataError(f"cannot read {p} ({type(err).__name__}: {err}); expected {_EXPECTED}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"cannot read {p} ({type(err).__name__}: {err}); expected {_EXPECTED}") from None


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
    arrays = _read_arrays(p)
    missing = [k for k in NPZ_REQUIRED if k not in arrays]
    if missing:
        raise DataError(f"{p} lacks the arrays {missing}; the MedMNIST layout needs {list(NPZ_REQUIRED)} "
                         f"(optionally val_images, val_labels); found {sorted(arrays)}")
    if ("val_images" in arrays) != ("val_labels" in arrays):
        raise DataError(f"{p} has only one of val_images / val_labels; supply both or neither")

    def split(prefix: str) -> ImageSet:
        images = _npz_images(arrays[f"{prefix}_images"], f"{prefix}_images", p)
        return ImageSet(images, _npz_labels(arrays[f"{prefix}_labels"], f"{prefix}_labels", len(images), p))

    train, test = split("train"), split("test")
    val = split("val") if "val_images" in arrays else None
    shapes = {s.images.shape[1:] for s in (train, test, val) if s is not None}
    if len(shapes) != 1:
        raise DataError(f"{p}: train/val/test images differ in shape: {sorted(map(tuple, shapes))}")
    return str(p), train, test, val


def load(req: Request) -> Loaded:
    """``npz:PATH``: user data in the MedMNIST layout."""
    if not req.spec:
        raise ValueError("dataset 'npz:' needs a path, e.g. 'npz:/data/pathmnist.npz'")
    source, train, test, val = load_npz(req.spec, req.root)
    return Loaded(source, train, test, val)
