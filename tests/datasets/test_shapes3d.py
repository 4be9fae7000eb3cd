"""Known-answer tests for shapes3d (galib.datasets.shapes3d), plus a quick o3d training run on it."""
import math

import pytest
import torch

from galib.datasets import load_dataset
from galib.datasets.shapes3d import SHAPE_CLASSES, make_shapes3d
from galib.groups import get_group
from galib.train import TrainConfig, train


# ----------------------------------------------------------------------------- shapes3d
def test_shapes3d_shapes_dtypes_determinism():
    v, y = make_shapes3d(60, seed=3)
    assert v.shape == (60, 28, 28, 28) and v.dtype == torch.uint8 and y.dtype == torch.int64
    assert set(y.tolist()) == set(range(len(SHAPE_CLASSES))) and len(SHAPE_CLASSES) >= 4
    v2, y2 = make_shapes3d(60, seed=3)
    assert torch.equal(v, v2) and torch.equal(y, y2)
    assert not torch.equal(v, make_shapes3d(60, seed=4)[0])
    filled = (v > 0).flatten(1).float().mean(1)
    assert bool((filled > 0.005).all())                              # every volume holds a shape
    assert bool((v[:, 0] == 0).all() and (v[:, :, :, -1] == 0).all())  # one-voxel empty margin


def test_shapes3d_rotations_distinguishable():
    G = get_group("o3d")
    v, y = make_shapes3d(40, seed=0)
    picks = torch.stack([(y == c).nonzero()[0, 0] for c in range(len(SHAPE_CLASSES))])
    x = v[picks].unsqueeze(1)                                        # (5, 1, 28, 28, 28)
    orbit = torch.stack([G.act_image(x, torch.full((len(x),), k)) for k in range(24)], 1)
    flat = orbit.flatten(2)                                          # (5, 24, 28**3)
    for i in range(len(x)):
        assert torch.unique(flat[i], dim=0).shape[0] == 24, SHAPE_CLASSES[int(y[picks[i]])]


def test_shapes3d_load_dataset():
    d = load_dataset("shapes3d:50,20", seed=1, verbose=False)
    assert d.name == "shapes3d:50,20" and d.image_shape == (28, 28, 28)
    assert (len(d.train), len(d.val), len(d.test)) == (40, 10, 20)
    with pytest.raises(ValueError, match="shapes3d:N_TRAIN,N_TEST"):
        load_dataset("shapes3d:many", verbose=False)


# ----------------------------------------------------------------------------- training run
def test_train_o3d_on_shapes3d():
    cfg = TrainConfig(dataset="shapes3d:40,10", group="o3d", epochs=1, max_train=32,
                      latent_channels=8, batch_size=16, device="cpu")
    res = train(cfg, progress=False, verbose=False)
    assert math.isfinite(res.history[0]["val_loss"])
    assert res.model.encode(torch.zeros(1, 1, 28, 28, 28)).shape == (1, 8, 7, 7, 7)
