"""A group and a dataset defined outside the package plug in through the two registries and train."""
import math

import pytest
import torch

import galib.datasets
import galib.groups
from galib.datasets import ImageSet, load_dataset, register_dataset
from galib.datasets.base import Loaded
from galib.groups import check_group_action, get_group, register_group
from galib.groups.base import FiniteGroup
from galib.train import TrainConfig, train

N_TRAIN, N_TEST = 100, 40


class Flip2(FiniteGroup):
    """The identity and the left-right flip: the smallest non-trivial group."""

    def __init__(self):
        super().__init__("flip2", ops=[lambda t: t, lambda t: t.flip(-1)], names=["e", "flip"])


def _stripes(n: int, seed: int) -> ImageSet:
    """Vertical stripes of period 2..5 at a random phase; the period is the label."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    phase = torch.randint(0, 5, (n,), generator=g)
    cols = torch.arange(28)
    on = ((cols[None] + phase[:, None]) // (labels[:, None] + 2)) % 2 == 0          # (n, 28)
    images = (on[:, None, :].expand(n, 28, 28).to(torch.uint8) * 255).contiguous()
    return ImageSet(images, labels)


def load_stripes(req):
    return Loaded(source="generated", train=_stripes(N_TRAIN, req.seed),
                  test=_stripes(N_TEST, req.seed + 1))


@pytest.fixture
def registered():
    register_group("flip2", Flip2)
    register_dataset("stripes", load_stripes)
    yield
    galib.groups.GROUPS.pop("flip2", None)
    galib.datasets.LOADERS.pop("stripes", None)


def test_toy_group_is_a_group_action(registered):
    G = get_group("flip2")
    assert isinstance(G, Flip2) and len(G) == 2 and G.element_names() == ["e", "flip"]
    assert G.table.tolist() == [[0, 1], [1, 0]]
    z = torch.randn(3, 4, 7, 7)
    assert check_group_action(G, G.act_latent, z) == 0.0
    flipped = torch.stack([z[0], z[1].flip(-1), z[2].flip(-1)])
    assert torch.equal(G.act_image(z, torch.tensor([0, 1, 1])), flipped)
    assert "flip2" in galib.groups.available_groups()


def test_toy_dataset_loads_with_the_usual_split(registered):
    d = load_dataset("stripes", verbose=False)
    assert d.name == "stripes" and d.source == "generated"
    assert (len(d.train), len(d.val), len(d.test)) == (80, 20, N_TEST)             # 80/20 split
    assert d.image_shape == (28, 28) and d.train.images.dtype == torch.uint8
    capped = load_dataset("stripes", max_train=40, max_test=10, verbose=False)
    assert (len(capped.train), len(capped.val), len(capped.test)) == (40, 10, 10)


def test_train_one_epoch_on_the_toy_group_and_dataset(registered):
    cfg = TrainConfig(dataset="stripes", group="flip2", epochs=1, max_train=64, batch_size=32,
                      latent_channels=8, device="cpu")
    res = train(cfg, progress=False, verbose=False)
    assert len(res.history) == 1
    row = res.history[0]
    for key in ("train_loss", "val_loss", "val_recon", "val_inv", "val_const"):
        assert math.isfinite(row[key]), key
    assert res.model.group.name == "flip2"


def test_registrations_are_gone_afterwards():
    assert "flip2" not in galib.groups.GROUPS and "stripes" not in galib.datasets.LOADERS
