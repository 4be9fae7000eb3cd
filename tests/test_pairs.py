"""Per-batch pairing (galib.pairs): (x, T_g x, g) built exactly."""
import pytest
import torch

from galib.datasets import ImageSet
from galib.groups import get_group
from galib.pairs import iterate_pairs, make_pairs


def test_iterate_pairs_builds_exact_pairs():
    c4 = get_group("c4")
    imgs = ImageSet(torch.randint(0, 256, (130, 28, 28), dtype=torch.uint8), torch.arange(130) % 10)
    batches = list(iterate_pairs(imgs, c4, 64, torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in batches] == [64, 64, 2]
    seen = torch.cat([b[3] for b in batches])
    assert sorted(seen.tolist()) == sorted(imgs.labels.tolist())     # every image once
    for x, gx, g, _ in batches:
        assert x.min() >= -1 and x.max() <= 1
        for i in range(len(x)):
            assert torch.equal(gx[i], torch.rot90(x[i], int(g[i]), dims=(-2, -1)))
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_pairs(imgs, c4, 0, torch.Generator()))


def test_make_pairs_with_given_elements():
    c4 = get_group("c4")
    imgs = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    x, gx, g = make_pairs(imgs, c4, g=torch.tensor([0, 1, 2, 3]))
    assert torch.equal(gx[2], torch.rot90(x[2], 2, dims=(-2, -1)))
