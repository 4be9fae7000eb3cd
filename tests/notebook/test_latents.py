"""Fast checks of what the notebooks call from galib.notebook.latents (pairs, orbits, swaps,
traversals), on synthetic data and an untrained model."""
from __future__ import annotations

import math

import pytest
import torch

from galib.datasets import ImageSet
from galib.models import build_model
from galib.notebook import latents as ex


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(0)
    return ImageSet(torch.randint(0, 256, (40, 28, 28), generator=gen, dtype=torch.uint8),
                    torch.arange(40) % 10)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("c4", latent_channels=8).eval()


def test_display_elements():
    els, names = ex.display_elements("c4")
    assert els.tolist() == [0, 1, 2, 3] and names == ["0°", "90°", "180°", "270°"]
    els, names = ex.display_elements("translate", max_finite=12)      # 49 elements, thinned
    assert len(els) == len(names) == 12 and els[0] == 0 and els[-1] == 48
    els, names = ex.display_elements("so2", n=6)
    assert els.dtype.is_floating_point and len(names) == 6


def test_pairs_and_counts(images):
    p = ex.pair_examples(images, "c4", per_element=2, seed=1)
    assert p["x"].shape == p["gx"].shape == (4, 2, 1, 28, 28)
    torch.testing.assert_close(p["gx"][1, 0], torch.rot90(p["x"][1, 0], 1, dims=(-2, -1)))
    c = ex.pairing_counts(images, "c4", batch_size=16, seed=0)
    assert sum(c["class_counts"]) == sum(c["element_counts"]) == c["n_pairs"] == 40
    s = ex.pairing_summary(c)
    assert s["class_imbalance"] == 1.0 and s["element_max_rel_dev"] >= 0
    assert ex.roundtrip_error(images, "c4") == 0.0


def test_latent_views(images, model):
    els, _ = ex.display_elements("c4")
    r = ex.transformed_reconstructions(model, images, torch.arange(4), els)
    assert r["x"].shape == r["gx"].shape == r["recon"].shape == (4, 1, 28, 28)
    o = ex.orbit(model, images, 3, els)
    torch.testing.assert_close(o["truth"][2], torch.rot90(o["truth"][0], 2, dims=(-2, -1)))
    xa, xb = ex.swap_examples(images, "c4", n=3)
    s = ex.latent_swap(model, xa, xb)
    assert s["ab"].shape == s["ba"].shape == (3, 1, 28, 28)
    x = ex.images_of(images, slice(0, 8))
    inv = ex.invariant_channels(model, x)
    assert set(inv) == set((model.hard_mask() == 0).nonzero().flatten().tolist())
    t = ex.channel_traversal(model, x[:1], inv[:2], [0.0, 1.0, 2.0])
    assert t.shape == (len(inv[:2]), 3, 1, 28, 28)
    maps = ex.magnitude_maps(model, x, torch.ones(8, dtype=torch.long))
    assert set(maps) == {"|z|", "|z_v|", "|z_i|", "|Φ_g z_v|"}
    assert all(m.shape == (7, 7) for m in maps.values())
    # |z|^2 = |z_v|^2 + |z_i|^2 location-wise, so the mean norms obey the triangle inequality
    assert bool((maps["|z|"] <= maps["|z_v|"] + maps["|z_i|"] + 1e-5).all())
    errs = ex.orbit_errors(model, images, torch.arange(4), els, ["a", "b", "c", "d"])
    assert list(errs) == ["a", "b", "c", "d"] and all(math.isfinite(v) for v in errs.values())
    assert 0.0 <= ex.latent_energy_share(model, x) <= 1.0
