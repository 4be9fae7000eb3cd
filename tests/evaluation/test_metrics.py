"""Known-answer tests for galib.evaluation.metrics."""
import math

import numpy as np
import pytest
import torch

from galib.evaluation import metrics as M


def _rand_img(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * 2 - 1


def _ssim_reference(a: np.ndarray, b: np.ndarray, data_range=2.0, size=11, sigma=1.5):
    """Straightforward loop SSIM on one 2-D image: gaussian window, valid positions only."""
    x = np.arange(size) - (size - 1) / 2
    g1 = np.exp(-x ** 2 / (2 * sigma ** 2))
    w = np.outer(g1, g1)
    w /= w.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    H, W = a.shape
    vals = []
    for i in range(H - size + 1):
        for j in range(W - size + 1):
            pa, pb = a[i:i + size, j:j + size], b[i:i + size, j:j + size]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * (pa - ma) ** 2).sum()
            vb = (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            vals.append((2 * ma * mb + c1) * (2 * cov + c2)
                        / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


# ----------------------------------------------------------------------------- mse / psnr

def test_mse_and_psnr_known_offset():
    a = _rand_img(4, 1, 28, 28) * 0.5
    b = a + 0.1
    assert M.mse(a, b) == pytest.approx(0.01, rel=1e-5)
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(4 / 0.01), rel=1e-5)
    assert M.psnr(a, b, data_range=1.0) == pytest.approx(10 * math.log10(1 / 0.01), rel=1e-5)


def test_psnr_identical_is_capped():
    a = _rand_img(3, 1, 8, 8)
    assert M.psnr(a, a) == M.PSNR_CAP_DB
    # the cap applies per image: one identical, one at 0.01 MSE
    b = a.clone()
    b[1] += 0.1
    b[2] += 0.1
    expected = (M.PSNR_CAP_DB + 2 * 10 * math.log10(400)) / 3
    assert M.psnr(a, b) == pytest.approx(expected, rel=1e-5)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        M.mse(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5))


# ----------------------------------------------------------------------------- ssim

def test_ssim_identical_is_one():
    a = _rand_img(5, 3, 28, 28)
    assert M.ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    v = _rand_img(2, 2, 12, 12, 12)
    assert M.ssim(v, v) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("c1,c2", [(0.3, -0.2), (-1.0, 1.0), (0.5, 0.5), (0.0, 0.9)])
def test_ssim_constant_images_is_luminance_term(c1, c2):
    a = torch.full((2, 1, 28, 28), c1)
    b = torch.full((2, 1, 28, 28), c2)
    C1 = (0.01 * 2.0) ** 2
    expected = (2 * c1 * c2 + C1) / (c1 ** 2 + c2 ** 2 + C1)
    assert M.ssim(a, b) == pytest.approx(expected, abs=1e-6)
    # same closed form for volumes (conv3d path)
    av, bv = torch.full((1, 1, 12, 12, 12), c1), torch.full((1, 1, 12, 12, 12), c2)
    assert M.ssim(av, bv) == pytest.approx(expected, abs=1e-6)


def test_ssim_matches_loop_reference():
    a = _rand_img(2, 2, 16, 14, seed=1)
    b = (a + 0.3 * _rand_img(2, 2, 16, 14, seed=2)).clamp(-1, 1)
    ref = np.mean([_ssim_reference(a[i, c].double().numpy(), b[i, c].double().numpy())
                   for i in range(2) for c in range(2)])
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-6)
    assert M.ssim_map(a, b).shape == (2, 2, 6, 4)                     # valid padding


def test_ssim_3d_separable_matches_axiswise_expectation():
    # a volume constant along D reduces to the 2-D SSIM of its slice (window weights sum to 1)
    sl_a = _rand_img(1, 1, 13, 13, seed=3)
    sl_b = (sl_a + 0.2 * _rand_img(1, 1, 13, 13, seed=4)).clamp(-1, 1)
    va, vb = sl_a.unsqueeze(2).expand(1, 1, 11, 13, 13), sl_b.unsqueeze(2).expand(1, 1, 11, 13, 13)
    assert M.ssim(va, vb) == pytest.approx(M.ssim(sl_a, sl_b), abs=1e-9)


def test_ssim_small_images_shrink_window():
    a = _rand_img(1, 1, 7, 7, seed=5)
    b = _rand_img(1, 1, 7, 7, seed=6)
    assert M.ssim_map(a, b).shape == (1, 1, 1, 1)
    ref = _ssim_reference(a[0, 0].double().numpy(), b[0, 0].double().numpy(), size=7)
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-6)


def test_ssim_decreases_with_noise():
    a = _rand_img(2, 1, 28, 28, seed=7)
    n = _rand_img(2, 1, 28, 28, seed=8)
    s = [M.ssim(a, (a + eps * n).clamp(-1, 1)) for eps in (0.0, 0.1, 0.5)]
    assert s[0] > s[1] > s[2]


def test_image_scores_keys():
    a = _rand_img(2, 1, 28, 28)
    assert set(M.image_scores(a, a)) == {"mse", "psnr", "ssim"}


# ----------------------------------------------------------------------------- latent errors

def test_relative_error_known_values():
    t = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[3.0, 4.0], [1.0, 1.0], [0.0, 0.0], [0.0, 2.0]])
    err = M.relative_error(p, t)
    assert err[0] == 0 and err[1] == pytest.approx(1.0) and err[2] == 0   # 0/0 = 0
    assert math.isinf(err[3])


def test_equivariance_errors_exact_and_per_element():
    z = torch.randn(8, 4, 7, 7)
    g = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    out = M.equivariance_errors(z, z.clone(), g)
    assert out["mean"] == 0 and out["max"] == 0 and out["n_zero_target"] == 0
    assert out["per_element"] == {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0}

    # scale prediction by (1 + 0.1*g): relative error is exactly 0.1*g
    pred = z * (1 + 0.1 * g.view(-1, 1, 1, 1).float())
    out = M.equivariance_errors(pred, z, g, elements=[0, 1, 2, 3, 4])
    for e in range(4):
        assert out["per_element"][e] == pytest.approx(0.1 * e, rel=1e-5)
    assert math.isnan(out["per_element"][4])
    assert out["mean"] == pytest.approx(0.15, rel=1e-5)


def test_errors_with_empty_variant_part_are_zero():
    zv = torch.zeros(4, 0, 7, 7)                                      # no variant channel at all
    out = M.equivariance_errors(zv, zv, torch.arange(4))
    assert out["mean"] == 0 and out["n_zero_target"] == 4
    masked = torch.zeros(4, 8, 7, 7)                                  # mask kept every channel off
    assert M.equivariance_errors(masked, masked)["mean"] == 0


def test_invariance_errors_uses_zi_x_as_reference():
    zi_x = torch.tensor([[2.0, 0.0]])
    zi_gx = torch.tensor([[0.0, 0.0]])
    out = M.invariance_errors(zi_x, zi_gx, torch.tensor([1]))
    assert out["mean"] == pytest.approx(1.0) and out["per_element"] == {1: 1.0}
    assert M.invariance_errors(zi_x, zi_x, None)["mean"] == 0
    assert "per_element" not in M.invariance_errors(zi_x, zi_x, None)


def test_energy_share():
    z = torch.randn(3, 8, 7, 7)
    assert M.energy_share(z, z) == pytest.approx(1.0)
    assert M.energy_share(torch.zeros_like(z), z) == 0.0
    mask = torch.zeros(1, 8, 1, 1)
    mask[:, :2] = 1
    half = torch.ones(3, 8, 7, 7)
    assert M.energy_share((1 - mask) * half, half) == pytest.approx(6 / 8)
    assert math.isnan(M.energy_share(torch.zeros(2), torch.zeros(2)))


# ----------------------------------------------------------------------------- mask

def test_mask_stats_known_answer():
    # sigmoid(0) = 0.5, sigmoid(+-3) ~ 0.953 / 0.047, sigmoid(0.1) ~ 0.525
    logits = torch.tensor([3.0, -3.0, 0.0, 0.1, 2.0])
    s = M.mask_stats(logits, tau=0.5)
    assert s["variant_channels"] == [0, 3, 4]
    assert s["n_variant"] == 3 and s["variant_fraction"] == pytest.approx(0.6)
    assert s["n_unsettled"] == 2                                      # channels 2 and 3
    assert s["probs"] == pytest.approx(torch.sigmoid(logits.double()).tolist())
    s = M.mask_stats(logits, tau=0.9)
    assert s["variant_channels"] == [0] and s["n_unsettled"] == 1     # only sigmoid(2) = 0.881 is within 0.05 of 0.9


def test_mask_side_agreement_known_answers():
    from galib.evaluation.metrics import mask_side_agreement
    same = mask_side_agreement([0.4, 0.6, 0.45, 0.55], [0.1, 0.9, 0.2, 0.8], 0.5)
    assert same["agreement"] == 1.0 and same["agreement_chance"] == 0.5
    assert same["rank_correlation"] == pytest.approx(1.0)
    flipped = mask_side_agreement([0.4, 0.6, 0.45, 0.55], [0.9, 0.1, 0.8, 0.2], 0.5)
    assert flipped["agreement"] == 0.0 and flipped["rank_correlation"] == pytest.approx(-1.0)
    all_up = mask_side_agreement([0.4, 0.6], [0.7, 0.9], 0.5)     # everything ends variant
    assert all_up["agreement"] == 0.5 and all_up["agreement_chance"] == 0.5


def test_mask_side_kappa_known_answers():
    from galib.evaluation.metrics import cohen_kappa, mask_side_agreement
    same = mask_side_agreement([0.4, 0.6, 0.45, 0.55], [0.1, 0.9, 0.2, 0.8], 0.5)
    assert same["kappa"] == 1.0                                       # identical sides
    flipped = mask_side_agreement([0.4, 0.6, 0.45, 0.55], [0.9, 0.1, 0.8, 0.2], 0.5)
    assert flipped["kappa"] == -1.0                                   # every side swapped
    all_up = mask_side_agreement([0.4, 0.6], [0.7, 0.9], 0.5)         # chance level 0.5, observed 0.5
    assert all_up["kappa"] == 0.0
    # independent sides: agreement sits at its chance level, kappa near 0 (and chance differs by τ)
    g = torch.Generator().manual_seed(0)
    p0, p1 = torch.rand(4000, generator=g), torch.rand(4000, generator=g)
    for tau in (0.3, 0.5, 0.8):
        ind = mask_side_agreement(p0, p1, tau)
        assert abs(ind["kappa"]) < 0.05 and abs(ind["agreement"] - ind["agreement_chance"]) < 0.03
    assert math.isnan(cohen_kappa(1.0, 1.0))                          # one side throughout: undefined
    assert cohen_kappa(0.75, 0.5) == 0.5
