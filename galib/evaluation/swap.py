"""Latent swaps as a number: does ``D(z_i(a) + Phi z_v(b))`` show ``a``'s content in ``b``'s pose?

When the split works, the invariant code of image ``a`` carries its content (class) and the
variant part of image ``b`` its pose, so the swap decodes to ``a``'s class. :func:`swap_scores`
fits a linear probe on the model's own reconstructions of transformed training images (so it reads
decoded images, blur and all, in any pose), then classifies swaps of test pairs of different
classes (``b`` transformed by a random element): ``swap_content_a`` is the share predicted as
``a``'s class, ``swap_content_b`` as ``b``'s; ``recon_probe_accuracy`` is the same probe on plain
reconstructions of transformed test images (the ceiling).
"""
from __future__ import annotations

import torch

from ..datasets import DataSplits, ImageSet
from ..devices import model_device
from ..pairs import images_of
from .probe import fit_probe


@torch.no_grad()
def _reconstructions(model, data: ImageSet, g: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``D(z_i + z_v)`` of ``T_g x`` for every image of ``data`` (flattened, on the CPU)."""
    out = []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        x = images_of(data, idx, model.group, g[idx], model_device(model))
        z_i, z_v = model.split(model.encode(x), hard=True)
        out.append(model.decode(z_i + z_v).flatten(1).cpu())
    return torch.cat(out)


@torch.no_grad()
def swap_scores(model, splits: DataSplits, n_train: int = 2000, n_test: int = 1000, seed: int = 0,
                probe_iters: int = 50) -> dict:
    """The swap scores above; ``n_train`` training images (a quarter as many for validation) and
    ``n_test`` test pairs ``(a, b)``, ``b`` a random other test image of another class."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    sets = {"train": splits.train.head(n_train), "val": splits.val.head(max(1, n_train // 4)),
            "test": splits.test.head(n_test)}
    feats = {k: _reconstructions(model, d, model.group.sample(len(d), gen)) for k, d in sets.items()}
    probe = fit_probe(feats["train"], sets["train"].labels, feats["val"], sets["val"].labels,
                      max_iter=probe_iters)
    test = sets["test"]
    partner = torch.randperm(len(test), generator=gen)
    keep = test.labels != test.labels[partner]                        # pairs of different classes
    a, b = torch.arange(len(test))[keep], partner[keep]
    d = model_device(model)
    xa = images_of(test, a, device=d)
    xb = images_of(test, b, model.group, model.group.sample(len(b), gen), d)
    z_i, _ = model.split(model.encode(xa), hard=True)
    _, z_v = model.split(model.encode(xb), hard=True)
    pred = probe.predict(model.decode(z_i + z_v).flatten(1).cpu())
    return {"swap_content_a": float((pred == test.labels[a]).double().mean()),
            "swap_content_b": float((pred == test.labels[b]).double().mean()),
            "recon_probe_accuracy": probe.accuracy(feats["test"], test.labels), "swap_pairs": int(len(a))}
