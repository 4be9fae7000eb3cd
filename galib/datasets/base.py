"""What every dataset source returns: images in memory as ``uint8``, split into train/val/test.

A source module exposes one loader ``load(request) -> Loaded | DataSplits`` (see :class:`Request`);
:func:`galib.datasets.load_dataset` looks it up by name, then splits 80/20 train/validation
(seeded) unless the source brings its own validation set, and applies the caps. Every result is
checked (:func:`check_images`, :meth:`DataSplits.check`): images ``uint8``, one label per image,
labels integer class indices in range, one image shape for all splits, no empty split. Data that
is found but unusable raises :class:`DataError` naming the file or source and what is wrong.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch


class DatasetUnavailable(FileNotFoundError):
    """The requested dataset could not be found or downloaded; the message says what was tried."""


class DataError(ValueError):
    """Data that was found but cannot be used (corrupt, partial, inconsistent); the message names
    the file or source, the bad value and what is allowed."""


def check_images(images: torch.Tensor, labels: torch.Tensor, where: str,
                 num_classes: int | None = None) -> None:
    """Raise :class:`DataError` unless ``images`` is ``uint8 (N, *spatial)`` (2D or 3D) and
    ``labels`` is ``(N,)`` of integer class indices in ``0..num_classes-1`` (``>= 0`` if None)."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() not in (3, 4):
        raise DataError(f"{where}: images must be a uint8 tensor of shape (N, H, W) or (N, D, H, W); "
                        f"got {getattr(images, 'dtype', type(images).__name__)} "
                        f"{tuple(getattr(images, 'shape', ()))}")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype.is_floating_point \
            or labels.dtype in (torch.bool, torch.complex64, torch.complex128):
        raise DataError(f"{where}: labels must be a 1-D integer tensor; got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}")
    if len(labels) != len(images):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels; every image needs "
                        f"exactly one label (is a file truncated or from another set?)")
    if len(labels) and (labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes)):
        allowed = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        bad = labels[(labels < 0) | (labels >= (num_classes or 2 ** 62))][0].item()
        raise DataError(f"{where}: label {bad} is out of range; class labels must be integers {allowed}")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, *spatial)`` → float ``(B, 1, *spatial)`` in [-1, 1]."""
    return images.unsqueeze(1).float().div_(127.5).sub_(1.0)


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
    classes: tuple[str, ...] | None = None   # class names; None: "0", "1", …
    digits: bool = False      # classes are the digits 0-9 (6 and 9 swap under a half turn)

    @property
    def num_classes(self) -> int:
        return int(self.train.labels.max()) + 1

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])

    @property
    def class_names(self) -> list[str]:
        """Human-readable class names, one per class index."""
        if self.classes is None:
            return [str(i) for i in range(self.num_classes)]
        return list(self.classes)[: self.num_classes]

    def describe(self) -> dict:
        return {"dataset": self.name, "source": self.source, "n_train": len(self.train),
                "n_val": len(self.val), "n_test": len(self.test), "image_shape": list(self.image_shape)}

    def check(self) -> "DataSplits":
        """Raise :class:`DataError` unless every split is well-formed (:func:`check_images`),
        train and validation are non-empty and all splits share one image shape."""
        known = len(self.classes) if self.classes is not None else (10 if self.digits else None)
        for split in ("train", "val", "test"):
            s = getattr(self, split)
            check_images(s.images, s.labels, f"dataset {self.name!r} ({self.source}), {split} split",
                         known)
        for split in ("train", "val"):
            if len(getattr(self, split)) == 0:
                raise DataError(f"dataset {self.name!r} ({self.source}): the {split} split is empty "
                                f"({len(self.train)} train / {len(self.val)} val images); supply more "
                                f"training images, a larger max_train, or its own val split")
        shapes = {k: tuple(getattr(self, k).images.shape[1:]) for k in ("train", "val", "test")}
        if len(set(shapes.values())) != 1:
            raise DataError(f"dataset {self.name!r} ({self.source}): the splits differ in image shape "
                            f"{shapes}; every split needs the same size")
        return self

    def fingerprint(self) -> str:
        """SHA-256 (hex) of what training sees: train and validation images and labels, in order."""
        h = hashlib.sha256()
        for s in (self.train, self.val):
            for t in (s.images, s.labels):
                h.update(str((t.dtype, tuple(t.shape))).encode())
                h.update(t.contiguous().numpy().data)
        return h.hexdigest()


@dataclass
class Loaded:
    """What a source loader returns before splitting and capping."""
    source: str                            # where the data came from, in words
    train: ImageSet
    test: ImageSet
    val: ImageSet | None = None            # the source's own validation split, if it has one
    name: str | None = None                # the dataset's name when it differs from the request
    classes: tuple[str, ...] | None = None
    digits: bool = False


@dataclass
class Request:
    """Everything a loader may need: the full ``name`` (``npz:PATH``, ``shapes3d:6000,1000``), the
    ``root`` folder, the ``seed``, how many images the caps need (``sizes``: train, test) and
    ``load`` (a full :func:`galib.datasets.load_dataset` with the same settings, for wrappers)."""
    name: str
    root: Path
    seed: int
    sizes: tuple[int, int]
    download: bool
    verbose: bool
    load: Callable[[str], DataSplits] = field(repr=False)

    @property
    def spec(self) -> str:
        """What follows the first ``:`` of the name (``""`` if none)."""
        return self.name.partition(":")[2]


def resolve_root(data_root: str | os.PathLike | None) -> Path:
    """``data_root``, else ``$GALIB_DATA_ROOT``, else ``./data``; an explicit root must exist."""
    if data_root is None:
        return Path(os.environ.get("GALIB_DATA_ROOT", "data"))
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetUnavailable(f"data_root {str(data_root)!r} does not exist or is not a folder; "
                                 f"pass an existing folder or data_root=None")
    return root
