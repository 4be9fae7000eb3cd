"""Known-answer tests for galib.evaluation.scores (evaluate_model) and galib.evaluation.features
(features, probe_model)."""
import math

import pytest
import torch
from torch import nn

from galib.datasets import ImageSet
from galib.evaluation.features import compute_features, coordinate_orbit_representatives, probe_model
from galib.evaluation.scores import evaluate_model
from galib.groups import get_group
from galib.models import ALDMask, GroupLatentAutoencoder
from tests.synthetic import synthetic_splits

C4_NAMES = ["0°", "90°", "180°", "270°"]


def exact_model(group="c4", channels=8, variant=(0, 1, 2, 5)):
    """Exactly equivariant: non-overlapping 4x4 average pooling + 1x1 conv (28² → 7²)."""
    torch.manual_seed(0)
    enc = nn.Sequential(nn.AvgPool2d(4), nn.Conv2d(1, channels, 1))
    dec = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Upsample(scale_factor=4), nn.Tanh())
    logits = torch.full((channels,), -10.0)
    logits[list(variant)] = 10.0
    mask = ALDMask(channels, trainable=False, init_logits=logits)
    return GroupLatentAutoencoder(enc, dec, group, channels, mask=mask).eval()


def unmasked(model):
    """``model`` without its mask, as ``build_model(mask='none')`` makes the plain autoencoder."""
    model.mask = None
    return model


def random_images(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g),
                    torch.randint(0, 4, (n,), generator=g))




FAST_FIT = {"l2_grid": (1e-2,), "max_iter": 25}


# ----------------------------------------------------------------------------- evaluate_model
def test_exact_model_has_zero_equivariance_error_for_every_element():
    out = evaluate_model(exact_model(), random_images(24), batch_size=10)   # uneven last batch
    assert out["elements"] == C4_NAMES and out["n_pairs"] == 4 * 24
    for name in C4_NAMES:
        for key in ("recon_mse", "recon_psnr", "recon_ssim", "invariance_error"):
            assert f"{key}/{name}" in out
        assert out[f"equivariance_error/{name}"] <= 1e-6
    assert out["equivariance_error"] <= 1e-6 and out["equivariance_error_max"] <= 1e-6
    assert out["equivariance_error_centred"] <= 1e-6
    assert out["invariance_error/0°"] == 0.0          # the identity leaves z_i alone
    assert out["invariance_error/90°"] > 0.01         # z_i of this model rotates: not invariant
    assert out["variant_fraction"] == 0.5 and out["variant_channels"] == [0, 1, 2, 5]
    assert out["n_unsettled"] == 0 and out["tau"] == 0.5 and len(out["mask_probs"]) == 8


def test_centred_invariance_error_ignores_a_constant_offset():
    m, data = exact_model(), random_images(16)
    before = evaluate_model(m, data)
    with torch.no_grad():
        m.encoder[1].bias[[3, 4, 6, 7]] += 100.0        # a large input-independent part of z_i
    after = evaluate_model(m, data)
    assert after["invariance_error"] < 0.01 * before["invariance_error"]     # raw error hides it
    assert after["invariance_error_centred"] == pytest.approx(before["invariance_error_centred"],
                                                               rel=1e-3)
    assert 0.1 < before["invariance_error_centred"] < 2.0
    assert after["equivariance_error_centred"] <= 1e-6


@pytest.mark.parametrize("variant,share,fraction", [((), 1.0, 0.0), (tuple(range(8)), 0.0, 1.0)])
def test_energy_share_all_invariant_and_all_variant(variant, share, fraction):
    out = evaluate_model(exact_model(variant=variant), random_images(16))
    assert out["energy_share_zi"] == pytest.approx(share, abs=1e-12)
    assert out["variant_fraction"] == fraction
    if not variant:                                   # z_v = 0 on both sides: 0/0 = 0
        assert out["equivariance_error"] == 0 and out["equivariance_n_zero_target"] == 3 * 16
    else:                                             # counted over the 3 non-identity elements
        assert out["invariance_error"] == 0 and out["invariance_n_zero_target"] == 3 * 16


def test_perfect_reconstruction_stub_scores_ssim_one():
    stub = GroupLatentAutoencoder(nn.Identity(), nn.Identity(), "c4", 1,
                                  mask=ALDMask(1, trainable=False, init_logits=torch.tensor([10.0])))
    out = evaluate_model(stub, random_images(16))      # D(Phi_g E(x)) = rot90^g x = T_g x exactly
    assert out["recon_ssim"] == pytest.approx(1.0, abs=1e-9)
    assert out["recon_mse"] == 0.0 and out["recon_psnr"] == 100.0
    assert all(out[f"recon_ssim/{n}"] == pytest.approx(1.0, abs=1e-9) for n in C4_NAMES)


def test_evaluate_is_deterministic_and_json_friendly():
    import json
    m, data = exact_model(), random_images(24)
    a, b = evaluate_model(m, data, seed=3), evaluate_model(m, data, seed=3)
    assert a == b
    json.dumps(a, allow_nan=False)


def test_a_model_without_a_mask_is_read_with_the_whole_latent_variant():
    out = evaluate_model(unmasked(exact_model()), random_images(16))
    assert out["equivariance_error"] <= 1e-6 and "split" not in out
    assert out["invariance_error"] is None and out["energy_share_zi"] is None
    assert out["variant_fraction"] is None


def test_continuous_group_uses_its_evaluation_grid():
    so2 = get_group("so2")
    els, names = so2.evaluation_grid(8)
    assert len(els) == len(names) == 8
    out = evaluate_model(exact_model("so2"), random_images(8), n_eval=4)
    assert out["elements"] == so2.evaluation_grid(4)[1] == C4_NAMES
    assert out["equivariance_error/0°"] <= 1e-6 and math.isfinite(out["equivariance_error"])


# ----------------------------------------------------------------------------- features
def test_feature_shapes():
    m, data = exact_model(), random_images(10)
    f = compute_features(m, data)
    assert {k: tuple(v.shape) for k, v in f.items()} == {
        "pixels": (10, 784), "z": (10, 8 * 49), "z_i": (10, 4 * 49), "z_v": (10, 4 * 49),
        "orbit": (10, 3 * 4 * 13)}    # rfft over the 4-orbit: 3 bins; 13 position orbits of 49
    assert compute_features(None, data, ("pixels",))["pixels"].shape == (10, 784)
    full = compute_features(unmasked(exact_model()), data, ("z_v", "orbit"))
    assert full["z_v"] is None and full["orbit"].shape == (10, 3 * 8 * 13)
    every = compute_features(m, data, ("orbit",), distinct=False)["orbit"]
    assert every.shape == (10, 3 * 4 * 49)


@pytest.mark.parametrize("group,n_reps", [("c4", 13), ("d4", 10), ("translate", 1), ("so2", None)])
def test_coordinate_orbit_representatives(group, n_reps):
    G = get_group(group)
    els, _ = G.evaluation_grid(8)
    reps = coordinate_orbit_representatives(G.act_latent, els, (2, 7, 7))
    if n_reps is None:                               # interpolating action: keep everything
        assert reps is None
    else:                                            # Burnside: orbits of the 7x7 positions
        assert reps.shape == (2, 7, 7) and int(reps[0].sum()) == int(reps[1].sum()) == n_reps


@pytest.mark.parametrize("group,kind", [("c4", "fourier"), ("d4", "moments")])
def test_orbit_features_are_invariant_for_an_exact_model(group, kind):
    m, data = exact_model(group), random_images(12)
    G = get_group(group)
    assert G.orbit_kind() == kind
    ref = compute_features(m, data, ("orbit", "z_v"))
    for g in range(len(G)):
        moved = compute_features(m, data, ("orbit", "z_v"), g=torch.full((12,), g))
        assert torch.allclose(moved["orbit"], ref["orbit"], atol=1e-5)
        if g:                                         # z_v itself does move
            assert not torch.allclose(moved["z_v"], ref["z_v"], atol=1e-3)


# ----------------------------------------------------------------------------- probe_model
def test_pixel_probe_beats_chance_on_separable_data():
    out = probe_model(None, synthetic_splits(), features=("pixels", "z"), fit_kwargs=FAST_FIT)
    assert set(out) == {"pixels"}                     # no model: pixels only
    res = out["pixels"]
    assert {"a", "b", "c", "dim"} <= set(res) and res["dim"] == 784
    assert res["a"] > 0.9 and res["c"] > 0.5


def test_probe_model_features_and_orbit_protocol_b():
    splits = synthetic_splits(n_train=96, n_val=32, n_test=64)
    out = probe_model(exact_model(), splits, seed=1, fit_kwargs=FAST_FIT)
    assert set(out) == {"pixels", "z", "z_i", "z_v", "orbit"}       # DEFAULT_FEATURES
    assert out["orbit"]["a"] == pytest.approx(out["orbit"]["b"], abs=0.02)   # invariant features
    again = probe_model(exact_model(), splits, features=("orbit",), seed=1, fit_kwargs=FAST_FIT)
    assert again["orbit"] == out["orbit"]             # deterministic for a seed
    ae = probe_model(unmasked(exact_model()), splits, max_train=48, max_test=32,
                     fit_kwargs=FAST_FIT)
    assert set(ae) == {"pixels", "z", "orbit"}        # z_i / z_v undefined without a mask


# ----------------------------------------------------------------------------- non-identity elements
def test_overall_errors_are_over_the_non_identity_elements():
    out = evaluate_model(exact_model(), random_images(16))
    per = [out[f"invariance_error/{n}"] for n in C4_NAMES]
    assert per[0] == 0.0 and out["n_pairs_moved"] == 3 * 16
    assert out["invariance_error"] == pytest.approx(sum(per[1:]) / 3)        # identity left out
    assert out["invariance_error"] > sum(per) / 4                            # the old, diluted mean


def test_shuffled_reference_is_computed_and_far_above_an_exact_model():
    out = evaluate_model(exact_model(), random_images(32), batch_size=16)
    assert out["equivariance_error_centred"] <= 1e-6
    assert 1.0 < out["equivariance_error_centred_shuffled"] < 2.0            # ≈ √2 for iid images
    assert out["invariance_error_centred"] < out["invariance_error_centred_shuffled"]
    assert evaluate_model(unmasked(exact_model()), random_images(8))[
        "invariance_error_centred_shuffled"] is None


def test_random_pairing_error_known_answers():
    from galib.evaluation.scores import random_pairing_error
    g = torch.Generator().manual_seed(0)
    t = torch.randn(4000, 16, generator=g)
    same = random_pairing_error(t, t)
    assert same["matched"] == 0.0 and same["shuffled"] == pytest.approx(math.sqrt(2), abs=0.03)
    other = random_pairing_error(torch.randn(4000, 16, generator=g), t)     # unrelated predictions
    assert other["matched"] == pytest.approx(math.sqrt(2), abs=0.03)
    with pytest.raises(ValueError):
        random_pairing_error(t[:1], t[:1])


@pytest.mark.parametrize("group", ["c4", "d4", "translate", "so2"])
def test_sample_moved_never_draws_the_identity(group):
    from galib.evaluation.features import SO2_AWAY, is_identity, sample_moved
    G = get_group(group)
    g = sample_moved(G, 20000, torch.Generator().manual_seed(0))
    assert not any(is_identity(G, e) for e in g)
    if G.finite:                                      # uniform over the others
        counts = torch.bincount(g, minlength=len(G))
        assert counts[0] == 0 and (counts[1:] > 0.8 * 20000 / (len(G) - 1)).all()
    else:
        assert bool((g >= SO2_AWAY).all() and (g <= 2 * math.pi - SO2_AWAY).all())


def _quadrant_toy(n_train=400, n_val=200, n_test=400, k=4):
    """The class is written in the top-left quadrant only, the rest is noise: rotating by any
    non-identity element of C4 replaces that quadrant by noise, so upright probes see no class."""
    protos = (torch.rand(k, 14, 14, generator=torch.Generator().manual_seed(5)) > 0.5).float() * 200
    g = torch.Generator().manual_seed(1)

    def make(n):
        y = torch.arange(n) % k
        x = torch.rand(n, 28, 28, generator=g) * 255
        x[:, :14, :14] = protos[y] + torch.rand(n, 14, 14, generator=g) * 55
        return ImageSet(x.clamp(0, 255).to(torch.uint8), y)
    from galib.datasets import DataSplits
    return DataSplits("quadrants", "tests", make(n_train), make(n_val), make(n_test))


def test_pixel_probe_protocol_b_is_at_chance_on_a_symmetric_toy():
    splits = _quadrant_toy()
    out = probe_model(None, splits, features=("pixels",), fit_kwargs=FAST_FIT)["pixels"]
    assert out["a"] > 0.95 and out["val_a"] > 0.95
    assert abs(out["b"] - 0.25) < 0.08 and abs(out["val_b"] - 0.25) < 0.1   # chance: 1/4
    assert {"b/90°", "b/180°", "b/270°", "c/90°", "val_b/90°"} <= set(out) and "b/0°" not in out
    assert all(abs(out[f"b/{n}"] - 0.25) < 0.12 for n in C4_NAMES[1:])
    old = probe_model(None, splits, features=("pixels",), fit_kwargs=FAST_FIT,
                      include_identity=True)["pixels"]
    assert old["b"] > 0.35 and old["b/0°"] > 0.95    # the old draw: a quarter of "b" upright


# ----------------------------------------------------------------------------- exact controls
@pytest.mark.parametrize("group", ["c4", "d4"])
@pytest.mark.parametrize("name", ["pixels-orbit", "random-orbit"])
def test_control_features_are_exactly_invariant(group, name):
    G = get_group(group)
    data = random_images(6)
    ref = compute_features(None, data, (name, "pixels"), group=group)
    for g in range(1, len(G)):
        moved = compute_features(None, data, (name, "pixels"), group=group, g=torch.full((6,), g))
        assert torch.allclose(moved[name], ref[name], atol=1e-5, rtol=0)
        assert not torch.allclose(moved["pixels"], ref["pixels"], atol=1e-3)   # the images do move
    if name == "pixels-orbit" and group == "c4":
        assert ref[name].shape == (6, 3 * 196)        # rfft over 4: 3 bins; 196 pixel orbits of 784


def test_control_features_protocol_a_equals_b_on_a_toy():
    splits = synthetic_splits(n_train=200, n_val=100, n_test=200)
    out = probe_model(None, splits, features=("pixels-orbit", "random-orbit"), fit_kwargs=FAST_FIT)
    for f in ("pixels-orbit", "random-orbit"):
        assert out[f]["a"] == out[f]["b"] and out[f]["a"] > 0.6      # invariant: same features
        assert out[f]["val_a"] == out[f]["val_b"]
    m = exact_model(channels=4, variant=(0, 1))
    with_model = probe_model(m, splits, features=("random-orbit",), fit_kwargs=FAST_FIT,
                             max_train=64, max_test=32)
    assert with_model["random-orbit"]["dim"] == 3 * 4 * 49          # the model's channel count


# ----------------------------------------------------------------------------- centred energy share
def _model_with(invariant_weight: float, invariant_bias: float, variant_weight: float):
    """exact_model with its 1x1 conv set by hand: the invariant channels (3, 4, 6, 7) read the image
    with ``invariant_weight`` plus ``invariant_bias``, the variant ones (0, 1, 2, 5) with
    ``variant_weight`` and no bias."""
    m = exact_model()
    conv = m.encoder[1]
    with torch.no_grad():
        variant = torch.zeros(8, dtype=torch.bool)
        variant[[0, 1, 2, 5]] = True
        conv.weight[:] = torch.where(variant, variant_weight, invariant_weight).view(8, 1, 1, 1)
        conv.bias[:] = torch.where(variant, 0.0, invariant_bias)
    return m


def test_centred_energy_share_ignores_a_constant_offset():
    """Fully absent: z_i a constant offset (no image in it) reads 0 centred, though it holds
    nearly all the energy; fully present: z_i holds all the variation (z_v constant) reads 1."""
    images = random_images(32)
    offset = evaluate_model(_model_with(0.0, 5.0, 1.0), images)
    assert offset["energy_share_zi"] > 0.9 and offset["energy_share_zi_centred"] == pytest.approx(0.0, abs=1e-9)
    carries = evaluate_model(_model_with(1.0, 0.0, 0.0), images)
    assert carries["energy_share_zi_centred"] == pytest.approx(1.0, abs=1e-9)
    assert evaluate_model(unmasked(exact_model()), images)["energy_share_zi_centred"] is None


# ----------------------------------------------------------------------------- matched random-encoder control
def test_matched_control_has_the_orbit_features_count_and_is_exactly_invariant():
    from galib.models import build_model
    torch.manual_seed(0)
    m = build_model("c4", 16).eval()
    data = random_images(24)
    f = compute_features(m, data, ("orbit", "random-orbit", "random-orbit-zv"))
    n_variant = int(m.hard_mask().sum())
    assert f["random-orbit-zv"].shape == f["orbit"].shape == (24, n_variant * 13 * 3)   # like for like
    assert f["random-orbit"].shape == (24, 16 * 49 * 3)                                  # all channels
    every = compute_features(m, data, ("orbit", "random-orbit-zv"), distinct=False)        # every position
    assert every["random-orbit-zv"].shape == every["orbit"].shape == (24, n_variant * 49 * 3)
    g = torch.randint(1, 4, (24,), generator=torch.Generator().manual_seed(1))
    moved = compute_features(m, data, ("random-orbit-zv",), g=g)["random-orbit-zv"]
    assert torch.allclose(moved, f["random-orbit-zv"], atol=1e-5)                       # exactly invariant
    assert compute_features(unmasked(build_model("c4", 16)), data, ("random-orbit-zv",))["random-orbit-zv"] is None
