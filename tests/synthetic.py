"""Shared synthetic data for the evaluation and baseline tests."""
import torch

from galib.datasets import DataSplits, ImageSet


def synthetic_splits(n_train=256, n_val=64, n_test=128, k=4, seed=0):
    """Linearly separable classes: a fixed random binary prototype per class plus noise."""
    protos = (torch.rand(k, 28, 28, generator=torch.Generator().manual_seed(99)) > 0.7).float() * 200
    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.randint(0, k, (n,), generator=g)
        x = protos[y] + torch.rand(n, 28, 28, generator=g) * 55
        return ImageSet(x.clamp(0, 255).to(torch.uint8), y)
    return DataSplits("synthetic", "tests", make(n_train), make(n_val), make(n_test))
