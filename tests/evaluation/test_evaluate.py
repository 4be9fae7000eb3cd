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
        assert out["equivariance_error"] == 0 and out["equivariance_n_zero_target"] == 4 * 16
    else:
        assert out["invariance_error"] == 0 and out["invariance_n_zero_target"] == 4 * 16


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


def test_full_split_treats_whole_latent_as_variant():
    out = evaluate_model(exact_model(variant=()), random_images(16), split="full")
    assert out["equivariance_error"] <= 1e-6 and out["split"] == "full"
    assert out["invariance_error"] is None and out["energy_share_zi"] is None
    assert out["variant_fraction"] is None
    with pytest.raises(ValueError):
        evaluate_model(exact_model(), random_images(4), split="bogus")


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
    full = compute_features(m, data, ("z_v", "orbit"), split="full")
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
    assert set(out) == {"pixels", "z", "z_i", "z_v", "orbit"}
    assert out["orbit"]["a"] == pytest.approx(out["orbit"]["b"], abs=0.02)   # invariant features
    again = probe_model(exact_model(), splits, features=("orbit",), seed=1, fit_kwargs=FAST_FIT)
    assert again["orbit"] == out["orbit"]             # deterministic for a seed
    ae = probe_model(exact_model(), splits, split="full", max_train=48, max_test=32,
                     fit_kwargs=FAST_FIT)
    assert set(ae) == {"pixels", "z", "orbit"}        # z_i / z_v undefined without a mask
