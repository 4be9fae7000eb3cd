"""Known-answer tests for blocked:NAME (galib.datasets.occluded), plus a quick so2 training run on it."""
import math

import pytest
import torch

from galib.datasets import DataSplits, ImageSet, load_dataset
from galib.datasets.occluded import Occluder, blocked
from galib.groups import get_group
from galib.pairs import iterate_pairs, make_pairs
from galib.train import TrainConfig, train
from tests.datasets.test_npz import _write_npz


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
    pytest.importorskip("galib.datasets.glyphs")
    d = load_dataset("blocked:glyphs", glyphs_sizes=(40, 10), verbose=False)
    assert d.name == "blocked:glyphs" and (len(d.train), len(d.val), len(d.test)) == (32, 8, 10)
    assert all(s.occlude is not None for s in (d.train, d.val, d.test))
    assert d.val.take(torch.arange(2)).occlude is d.val.occlude


def test_blocked_needs_2d():
    d = DataSplits("vol", "test", *(ImageSet(torch.zeros(2, 8, 8, 8, dtype=torch.uint8),
                                             torch.zeros(2, dtype=torch.long)) for _ in range(3)))
    with pytest.raises(ValueError, match="2D"):
        blocked(d)


# ----------------------------------------------------------------------------- training run
def _tiny_glyph_splits():
    try:
        from galib.datasets.glyphs import make_glyphs
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


def test_block_styles_through_load_dataset(tmp_path):
    from galib.datasets.occluded import parse_spec
    _write_npz(tmp_path / "d2.npz", (28, 28))
    bright = load_dataset(f"blocked:bright:npz:{tmp_path / 'd2.npz'}", verbose=False)
    assert bright.name == f"blocked:bright:npz:{tmp_path / 'd2.npz'}"
    assert bright.test.occlude == Occluder(3, 17, 8, 1.0, "flat")
    x = bright.test.floats(torch.arange(3))
    assert bool((x[..., 3:11, 17:25] == 1.0).all())                   # white block
    checker = load_dataset(f"blocked:checker:npz:{tmp_path / 'd2.npz'}", verbose=False)
    xc = checker.test.floats(torch.arange(3))[..., 3:11, 17:25]
    assert set(xc.unique().tolist()) == {-1.0, 1.0} and xc[..., 0, 0].eq(1.0).all()
    assert parse_spec("glyphs") == ("grey", "glyphs") and parse_spec("grey:glyphs") == ("grey", "glyphs")
    assert parse_spec("npz:/a:b.npz") == ("grey", "npz:/a:b.npz")     # not a style: a dataset name
    with pytest.raises(ValueError, match="dataset name after the style"):
        parse_spec("bright:")
    with pytest.raises(ValueError, match="pattern"):
        Occluder(pattern="stripes")
