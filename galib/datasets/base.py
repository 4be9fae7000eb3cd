"""What every dataset source returns: images in memory as ``uint8``, split into train/val/test.

A source module exposes one loader ``load(request) -> Loaded | DataSplits`` (see :class:`Request`);
:func:`galib.datasets.load_dataset` looks it up by name, then splits 80/20 train/validation
(seeded) unless the source brings its own validation set, and applies the caps.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch


class DatasetUnavailable(FileNotFoundError):
    """The requested dataset could not be found or downloaded; the message says what was tried."""


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
