"""Known answers for paired comparisons (galib.evaluation.stats)."""
import math

import pytest
import torch

from galib.evaluation.stats import (MIN_SPREAD_SEEDS, at_chance, bootstrap_interval, margin_for,
                                    paired_comparison, spread_margin, t_interval, t_quantile, verdict)


@pytest.mark.parametrize("df,q", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (1000, 1.9623)])
def test_t_quantile_matches_tables(df, q):
    assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-3)
    assert t_quantile(0.025, df) == pytest.approx(-q, abs=1e-3)


def test_verdict_rule():
    assert verdict(0.02, 0.05, 0.01, lower_is_better=False) == "better"
    assert verdict(0.02, 0.05, 0.01, lower_is_better=True) == "worse"      # a higher error
    assert verdict(-0.005, 0.004, 0.01, lower_is_better=False) == "equivalent"
    assert verdict(0.001, 0.004, 0.01, lower_is_better=False) == "equivalent"   # inside the margin first
    assert verdict(-0.03, 0.05, 0.01, lower_is_better=False) == "inconclusive"
    with pytest.raises(ValueError, match="margin"):
        verdict(0, 1, 0.0, False)


def _seeds(n, diff, sd, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = 0.8 + 0.05 * torch.randn(n, generator=g)                      # seed-to-seed spread, shared
    return (b + diff + sd * torch.randn(n, generator=g)).tolist(), b.tolist()


def test_large_true_difference_is_better_or_worse():
    a, b = _seeds(5, 0.05, 0.005)
    c = paired_comparison(a, b, "probe/z_i/b")
    assert c["verdict"] == "better" and c["significant"] and c["diff"] == pytest.approx(0.05, abs=0.01)
    assert paired_comparison(a, b, "recon_mse", margin=0.001)["verdict"] == "worse"   # lower is better


def test_zero_difference_many_tight_seeds_is_equivalent():
    a, b = _seeds(30, 0.0, 0.002)
    c = paired_comparison(a, b, "probe/orbit/b")
    assert c["verdict"] == "equivalent" and c["margin"] == 0.01 and c["n"] == 30
    assert c["low"] > -0.01 and c["high"] < 0.01


def test_two_noisy_seeds_are_inconclusive():
    a, b = _seeds(2, 0.0, 0.05, seed=3)
    c = paired_comparison(a, b, "probe/z/a")
    assert c["verdict"] == "inconclusive" and c["n"] == 2
    one = t_interval([0.5], [0.4])
    assert one["low"] == -math.inf and verdict(one["low"], one["high"], 0.01, False) == "inconclusive"


def test_bootstrap_over_seeds_and_images():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(4, 500, generator=g)
    shifted = base + 0.1 + 0.01 * torch.randn(4, 500, generator=g)
    boot = bootstrap_interval(shifted, base, n_boot=500)
    assert boot["low"] < 0.1 < boot["high"] and boot["high"] - boot["low"] < 0.01
    same = bootstrap_interval(base, base, n_boot=200)
    assert same["low"] == same["high"] == 0.0
    c = paired_comparison(shifted.mean(1).tolist(), base.mean(1).tolist(), "probe/z/b",
                          per_image=(shifted, base))
    assert c["bootstrap_verdict"] == "better" == c["verdict"]
    with pytest.raises(ValueError, match="seeds, images"):
        bootstrap_interval(base, base[:, :3])


def test_margins_and_bad_input():
    assert margin_for("probe/pixels-orbit/c") == 0.01 and margin_for("equivariance_error_centred") == 0.05
    with pytest.raises(ValueError, match="no equivalence margin"):
        margin_for("mystery")
    with pytest.raises(ValueError, match="one value per seed"):
        t_interval([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        t_interval([1, math.nan], [1, 2])


# ----------------------------------------------------------------------------- TOST, spread margins, chance
def test_equivalence_is_two_one_sided_tests_at_90_percent():
    """A difference whose 95 % interval reaches past the margin but whose 90 % interval does not is
    equivalent (two one-sided tests at 5 %); a true difference stays better."""
    a = [0.500, 0.504, 0.497, 0.503, 0.499, 0.502]
    b = [0.500, 0.500, 0.500, 0.500, 0.500, 0.500]
    c95, c90 = t_interval(a, b, 0.95), t_interval(a, b, 0.90)
    margin = (c95["high"] + c90["high"]) / 2                   # between the two upper ends
    out = paired_comparison(a, b, "probe/z/a", margin=margin)
    assert out["tost_high"] < margin < out["high"] and out["verdict"] == "equivalent"
    assert verdict(out["low"], out["high"], margin, False) == "inconclusive"   # the 95 % rule would not
    far = paired_comparison([x + 0.1 for x in a], b, "probe/z/a", margin=margin)
    assert far["verdict"] == "better" and far["significant"]


def test_a_score_without_a_direction_is_higher_or_lower_never_better():
    a, b = [0.30, 0.31, 0.29, 0.30], [0.10, 0.11, 0.09, 0.10]
    up = paired_comparison(a, b, "energy_share_zi_centred", margin=0.01)
    assert up["verdict"] == "higher" and not up["directed"]
    assert paired_comparison(b, a, "energy_share_zi_centred", margin=0.01)["verdict"] == "lower"
    assert paired_comparison(a, a, "energy_share_zi_centred", margin=0.01)["verdict"] == "equivalent"


def test_spread_margin_is_the_controls_seed_sd_else_the_fixed_table():
    control = [0.80, 0.82, 0.84, 0.86]
    m, basis = spread_margin(control, "probe/orbit/b")
    assert m == pytest.approx(t_interval(control, [0.0] * 4)["sd"]) and "4 reseeded runs" in basis
    assert spread_margin(control[:MIN_SPREAD_SEEDS - 1], "probe/orbit/b") == (margin_for("probe/orbit/b"),
                                                                               "fixed (MARGINS)")
    assert spread_margin([0.5] * 5, "recon_mse")[0] == margin_for("recon_mse")        # no spread at all


def test_no_verdict_at_chance_and_one_above_it():
    chance = 0.1
    low = [0.11, 0.12, 0.10, 0.13]                               # both sides at chance
    assert at_chance(low, [0.09, 0.10, 0.12, 0.11], chance)
    assert paired_comparison(low, [0.09, 0.10, 0.12, 0.11], "probe/z_i/b", chance=chance)["verdict"] == "at chance"
    below = [0.04, 0.05, 0.05, 0.04]                             # below chance counts as at chance
    assert paired_comparison(below, [0.05, 0.05, 0.04, 0.05], "swap_content_a", chance=chance)["verdict"] == "at chance"
    high = [0.85, 0.86, 0.84, 0.85]                              # one side far above chance: a verdict
    assert not at_chance(high, low, chance)
    assert paired_comparison(high, low, "probe/z_i/b", chance=chance)["verdict"] == "better"
    assert not at_chance(low, low, None)
