"""Datasets: the one name → loader table and :func:`load_dataset`.

Each source is one module (``idx``: mnist, fashion-mnist; ``glyphs``; ``shapes3d``; ``npz``;
``occluded``: ``blocked:NAME``) exposing a loader ``(Request) -> Loaded | DataSplits`` (:mod:`galib.datasets.base`).
A name matches an entry of ``LOADERS`` exactly or as ``ENTRY:SPEC`` (``npz:/data/x.npz``,
``shapes3d:600,100``, ``blocked:glyphs``). Adding a dataset is one module plus one line in
``LOADERS`` (or :func:`register_dataset` from outside the package). Whatever a loader returns is
checked (:meth:`DataSplits.check`): unusable data is a :class:`DataError` naming its source.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from typing import Callable

import torch

from . import glyphs, npz, occluded, shapes3d
from .base import (DataError, DataSplits, DatasetUnavailable, ImageSet, Loaded, Request,
                   resolve_root, to_float)
from .idx import DEBIAN_FASHION, load_fashion_mnist, load_idx_dataset, load_mnist

Loader = Callable[[Request], "Loaded | DataSplits"]


def _auto(req: Request) -> Loaded:
    """``mnist`` if it can be had, else ``fashion-mnist`` if found locally, else ``glyphs``."""
    reasons = []
    for name, download in (("mnist", req.download), ("fashion-mnist", False)):
        try:
            found = load_idx_dataset(name, req.root, download)
        except DatasetUnavailable:
            reasons.append(f"{name} not available")
            continue
        if req.verbose:
            print(f"[galib] dataset 'auto' -> {name!r} from {found.source}"
                  + (f" ({'; '.join(reasons)})" if reasons else ""))
        found.name = name
        return found
    found = glyphs.load(req)
    if req.verbose:
        print(f"[galib] dataset 'auto' -> 'glyphs' ({'; '.join(reasons)})")
    found.name = "glyphs"
    return found


LOADERS: dict[str, Loader] = {
    "auto": _auto,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "glyphs": glyphs.load,
    "shapes3d": shapes3d.load,        # shapes3d[:N_TRAIN,N_TEST]
    "npz": npz.load,                  # npz:PATH
    "blocked": occluded.load,          # blocked:NAME
}


def register_dataset(name: str, loader: Loader) -> None:
    """Make ``load_dataset(name)`` (and ``name:SPEC``) call ``loader`` (a source defined outside
    this package)."""
    if not callable(loader) or ":" in name:
        raise ValueError(f"register_dataset needs a name without ':' and a callable loader; "
                         f"got {name!r}, {loader!r}")
    LOADERS[name] = loader


def available_datasets() -> list[str]:
    return list(LOADERS)


def find_loader(name: str) -> Loader:
    """The loader of ``name``: an exact entry, else the entry before the first ``:``."""
    key = name if name in LOADERS else name.partition(":")[0]
    if key not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(LOADERS)} "
                         f"(with a spec: npz:PATH, shapes3d:N_TRAIN,N_TEST, blocked:NAME)")
    return LOADERS[key]


@dataclass(frozen=True)
class DataOptions:
    """How :func:`load_dataset` splits and caps a dataset.

    ``seed`` draws the 80/20 train/validation split; ``max_train`` caps the training images
    (validation is capped to keep the ratio); ``max_test`` caps the test images;
    ``glyphs_sizes`` (train, test) of sources generated on demand defaults to MNIST's
    60 000 / 10 000, cut to what the caps need (rendering is per sample)."""
    seed: int = 42
    max_train: int | None = None
    max_test: int | None = None
    val_fraction: float = 0.2
    glyphs_sizes: tuple[int, int] | None = None

    def check(self) -> "DataOptions":
        """Raise ``ValueError`` naming a value that is not allowed; return ``self``."""
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1); got {self.val_fraction!r}")
        for key, cap in (("max_train", self.max_train), ("max_test", self.max_test)):
            if cap is not None and (not isinstance(cap, int) or cap < 1):
                raise ValueError(f"{key} must be a positive integer or None; got {cap!r}")
        return self

    @classmethod
    def of(cls, options: "DataOptions | None", fields_: dict) -> "DataOptions":
        """``options`` (default: the defaults) with ``fields_`` replacing its fields; an unknown
        field is a ``TypeError`` naming it and the allowed ones."""
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(fields_) - set(allowed))
        if unknown:
            raise TypeError(f"load_dataset got unknown keyword(s) {unknown}; DataOptions fields: {allowed}")
        return replace(options or cls(), **fields_).check()


def load_dataset(name: str = "auto", data_root: str | os.PathLike | None = None,
                 options: DataOptions | None = None, download: bool = True, verbose: bool = True,
                 **fields_) -> DataSplits:
    """Load ``name`` and split it 80/20 train/validation (seeded) plus the official test set, as
    ``options`` says (:class:`DataOptions`; its fields may also be given as keywords:
    ``load_dataset("glyphs", seed=1, max_train=500)``).

    ``auto`` takes ``mnist`` if it can be had, else ``fashion-mnist`` if found locally, else
    ``glyphs``, and prints which and why.
    """
    loader = find_loader(name)
    opt = DataOptions.of(options, fields_)
    sizes = opt.glyphs_sizes or _needed_sizes(opt.max_train, opt.max_test, opt.val_fraction)

    def inner(other: str) -> DataSplits:
        return load_dataset(other, data_root, replace(opt, glyphs_sizes=sizes), download, verbose)
    req = Request(name, resolve_root(data_root), opt.seed, sizes, download, verbose, inner)
    found = loader(req)
    if isinstance(found, DataSplits):                     # a wrapper such as blocked:NAME
        return found.check()
    train, val = (found.train, found.val) if found.val is not None else \
        split_train(found.train, opt.val_fraction, opt.seed)
    if opt.max_train is not None:
        train = train.head(opt.max_train)
        val = val.head(max(1, round(opt.max_train * opt.val_fraction / (1 - opt.val_fraction))))
    return DataSplits(found.name or name, found.source, train, val, found.test.head(opt.max_test),
                      found.classes, found.digits).check()


def split_train(train: ImageSet, val_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """A seeded random ``(train, validation)`` split of the training images."""
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    n_val = int(round(len(train) * val_fraction))
    return train.take(perm[n_val:]), train.take(perm[:n_val])


def _needed_sizes(max_train, max_test, val_fraction) -> tuple[int, int]:
    """MNIST's 60 000 / 10 000, cut to what the caps need (for sources generated on demand)."""
    n_train, n_test = 60_000, 10_000
    if max_train is not None:
        n_train = min(n_train, math.ceil(max_train / (1 - val_fraction)) + 1)
    if max_test is not None:
        n_test = min(n_test, max_test)
    return n_train, n_test


__all__ = ["DataError", "DataOptions", "DataSplits", "DatasetUnavailable", "ImageSet", "Loaded", "Request", "LOADERS",
           "DEBIAN_FASHION", "load_dataset", "register_dataset", "available_datasets",
           "split_train", "to_float"]
