"""Known-answer tests for shapes3d, npz:PATH and blocked:NAME, plus quick training runs on them."""
import math

import numpy as np
import pytest
import torch

from galib.data import DataSplits, DatasetUnavailable, ImageSet, iterate_pairs, load_dataset, make_pairs
from galib.datasets_extra import SHAPE_CLASSES, Occluder, blocked, make_shapes3d
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


# ----------------------------------------------------------------------------- npz
def _write_npz(path, shape, val=True, float_images=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 20), ("val", 6), ("test", 8)):
        if split == "val" and not val:
            continue
        imgs = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        arrays[f"{split}_images"] = imgs / 255.0 if float_images else imgs
        arrays[f"{split}_labels"] = rng.integers(0, 3, size=(n, 1))
    np.savez(path, **arrays)
    return arrays


def test_npz_round_trip_2d_with_val(tmp_path):
    a = _write_npz(tmp_path / "d2.npz", (28, 28))
    d = load_dataset(f"npz:{tmp_path / 'd2.npz'}", verbose=False)
    assert d.image_shape == (28, 28) and d.train.images.dtype == torch.uint8
    assert torch.equal(d.train.images, torch.from_numpy(a["train_images"]))  # no 80/20 re-split
    assert torch.equal(d.val.images, torch.from_numpy(a["val_images"]))
    assert torch.equal(d.test.labels, torch.from_numpy(a["test_labels"][:, 0]))
    assert d.train.labels.shape == (20,) and d.train.labels.dtype == torch.int64


def test_npz_round_trip_3d_float_without_val(tmp_path):
    a = _write_npz(tmp_path / "d3.npz", (8, 8, 8), val=False, float_images=True)
    d = load_dataset("npz:d3.npz", data_root=tmp_path, verbose=False)    # relative to data_root
    assert d.image_shape == (8, 8, 8) and (len(d.train), len(d.val)) == (16, 4)  # 80/20 split
    want = torch.from_numpy(np.rint(a["test_images"] * 255).astype(np.uint8))
    assert torch.equal(d.test.images, want)
    both = torch.cat([d.train.images, d.val.images]).flatten(1)
    orig = torch.from_numpy(np.rint(a["train_images"] * 255).astype(np.uint8)).flatten(1)
    assert torch.equal(both.sort(0).values, orig.sort(0).values)     # the split is a permutation


def test_npz_rgb_becomes_grey(tmp_path):
    rgb = np.zeros((4, 6, 6, 3), np.uint8)
    rgb[..., 0] = 200                                                 # pure red → 0.299 * 200
    lab = np.arange(4)
    np.savez(tmp_path / "rgb.npz", train_images=rgb, train_labels=lab, test_images=rgb, test_labels=lab)
    d = load_dataset(f"npz:{tmp_path / 'rgb.npz'}", verbose=False)
    assert d.image_shape == (6, 6) and bool((d.test.images == 60).all())


def test_npz_errors(tmp_path):
    with pytest.raises(DatasetUnavailable, match="nope.npz"):
        load_dataset(f"npz:{tmp_path / 'nope.npz'}", verbose=False)
    np.savez(tmp_path / "bad.npz", train_images=np.zeros((2, 4, 4), np.uint8),
             train_labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"\['test_images', 'test_labels'\]"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}", verbose=False)
    np.savez(tmp_path / "range.npz", train_images=np.full((2, 4, 4), 3.0), train_labels=np.zeros(2),
             test_images=np.zeros((2, 4, 4)), test_labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_dataset(f"npz:{tmp_path / 'range.npz'}", verbose=False)


# ----------------------------------------------------------------------------- blocked
def test_blocked_block_stays_fixed_while_content_rotates(tmp_path):
    _write_npz(tmp_path / "d2.npz", (28, 28))
    plain = load_dataset(f"npz:{tmp_path / 'd2.npz'}", verbose=False)
    d = load_dataset(f"blocked:npz:{tmp_path / 'd2.npz'}", verbose=False)
    occ = d.train.occlude
    assert d.name.startswith("blocked:npz:") and occ == Occluder(3, 17, 8, 0.0)
    assert torch.equal(d.train.images, plain.train.images)           # uint8 stays unoccluded
    block = (slice(None), slice(None), slice(3, 11), slice(17, 25))
    G = get_group("c4")
    g = torch.tensor([1, 2, 3, 1, 2])
    x, gx, _ = make_pairs(d.train.images[:5], G, g=g, occlude=occ)
    assert bool((x[block] == 0.0).all() and (gx[block] == 0.0).all())
    x0, gx0, _ = make_pairs(d.train.images[:5], G, g=g)
    outside = torch.ones(28, 28, dtype=torch.bool)
    outside[3:11, 17:25] = False
    assert torch.equal(gx[..., outside], gx0[..., outside])           # content rotated as usual
    assert not torch.equal(gx0[block], x0[block])                     # ... and did move
    assert torch.equal(d.train.floats(torch.arange(5)), x)
    xb, gxb, gb, _ = next(iterate_pairs(d.train.take(torch.arange(8)), get_group("so2"), 8,
                                         torch.Generator().manual_seed(0)))
    assert bool((xb[block] == 0.0).all() and (gxb[block] == 0.0).all())


def test_blocked_glyphs_through_load_dataset():
    pytest.importorskip("galib.glyphs")
    d = load_dataset("blocked:glyphs", glyphs_sizes=(40, 10), verbose=False)
    assert d.name == "blocked:glyphs" and (len(d.train), len(d.val), len(d.test)) == (32, 8, 10)
    assert all(s.occlude is not None for s in (d.train, d.val, d.test))
    assert d.val.take(torch.arange(2)).occlude is d.val.occlude


def test_blocked_needs_2d():
    d = DataSplits("vol", "test", *(ImageSet(torch.zeros(2, 8, 8, 8, dtype=torch.uint8),
                                             torch.zeros(2, dtype=torch.long)) for _ in range(3)))
    with pytest.raises(ValueError, match="2D"):
        blocked(d)


# ----------------------------------------------------------------------------- training runs
def test_train_o3d_on_shapes3d():
    cfg = TrainConfig(dataset="shapes3d:40,10", group="o3d", epochs=1, max_train=32,
                      latent_channels=8, batch_size=16, device="cpu")
    res = train(cfg, progress=False, verbose=False)
    assert math.isfinite(res.history[0]["val_loss"])
    assert res.model.encode(torch.zeros(1, 1, 28, 28, 28)).shape == (1, 8, 7, 7, 7)


def _tiny_glyph_splits():
    try:
        from galib.glyphs import make_glyphs
        imgs, labels = make_glyphs(48, seed=0)
    except ImportError:                                               # glyphs not there yet
        g = torch.Generator().manual_seed(0)
        imgs = (torch.rand(48, 28, 28, generator=g) > 0.8).to(torch.uint8) * 255
        labels = torch.arange(48) % 10
    sets = [ImageSet(imgs[a:b], labels[a:b]) for a, b in ((0, 32), (32, 40), (40, 48))]
    return DataSplits("glyphs", "test", *sets)


def test_train_so2_learned_on_blocked_glyphs():
    cfg = TrainConfig(dataset="glyphs", group="so2", latent_action="learned", epochs=1,
                      latent_channels=8, batch_size=16, device="cpu")
    res = train(cfg, data=blocked(_tiny_glyph_splits()), progress=False, verbose=False)
    assert math.isfinite(res.history[0]["val_loss"])
    act = res.model.latent_action
    assert act.freq.shape == (4,) and not torch.equal(act.skew, torch.zeros(8, 8))  # it trained
