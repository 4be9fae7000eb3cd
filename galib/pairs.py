"""Where data meets groups: pairs ``(x, T_g x, g)`` built per batch with tensor ops.

Images stay ``uint8`` until a batch is drawn; each batch becomes floats in [-1, 1], is acted on by
``T_g`` and then, for ``blocked:`` datasets, occluded (the occluder does not move with ``g``).
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch

from .datasets.base import ImageSet, to_float
from .groups.base import Group


def make_pairs(images: torch.Tensor, group: Group, generator: torch.Generator | None = None,
               g: torch.Tensor | None = None,
               occlude: Callable[[torch.Tensor], torch.Tensor] | None = None,
               pose: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, T_g x, g)`` for a uint8 batch; ``g`` is sampled from ``group`` unless given.

    ``pose`` (group elements, one per image) first moves every image to ``T_pose x``: the pair is
    then ``(T_h x, T_g T_h x)`` (the symmetric pairs of ``TrainConfig.pose='random'``).
    ``occlude`` (an ``ImageSet.occlude``) is applied to both images after the action.
    """
    x = to_float(images)                                       # (B, 1, H, W)
    if pose is not None:
        x = group.act_image(x, pose)
    if g is None:
        g = group.sample(len(x), generator)
    gx = group.act_image(x, g)
    if occlude is not None:
        x, gx = occlude(x), occlude(gx)
    return x, gx, g


def images_of(data: ImageSet, idx, group: Group | None = None, g: torch.Tensor | None = None,
              device="cpu") -> torch.Tensor:
    """Float images ``data[idx]`` ``(B, 1, *spatial)`` as the model sees them: transformed by
    ``g`` if given, then occluded if the set has an occluder (the order of :func:`make_pairs`)."""
    images = data.images[idx].to(device)
    if g is None:
        x = to_float(images)
        return x if data.occlude is None else data.occlude(x)
    return make_pairs(images, group, g=g.to(device), occlude=data.occlude)[1]


def iterate_pairs(data: ImageSet, group: Group, batch_size: int, generator: torch.Generator,
                  shuffle: bool = True, device: torch.device | str = "cpu",
                  pose_generator: torch.Generator | None = None,
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(x, T_g x, g, y)`` batches; group elements are drawn afresh on every call. With
    ``pose_generator`` each image also gets a random pose ``h`` from it (``x`` is ``T_h`` of the
    stored image); the order and the ``g`` are drawn from ``generator`` alone, so they do not
    change."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    elements = group.sample(n, generator)
    poses = None if pose_generator is None else group.sample(n, pose_generator)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        x, gx, g = make_pairs(data.images[idx].to(device), group, g=elements[idx].to(device),
                              occlude=data.occlude,
                              pose=None if poses is None else poses[idx].to(device))
        yield x, gx, g, data.labels[idx].to(device)
