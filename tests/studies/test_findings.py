"""galib.studies (each study's findings): sentences built from a metrics dict, never hand-written numbers.

Each changed sentence has a known-answer test at both ends: a constructed metrics dict where the
effect is fully present and one where it is fully absent."""
from __future__ import annotations

import math

from pathlib import Path

import pytest

from galib.evaluation.stats import paired_comparison
from galib.studies import blocked, probes, registry, tau, training, wording
from galib.studies.probes import control_sentence

ROOT = Path(__file__).resolve().parents[2]


def _training(inv=1.08, ref=1.40, unsettled=49, channels=64):
    hist = [{"mask_probs": [0.5] * channels}]
    return {"notebook": "02_training", "history": hist,
            "summary": {"epochs": 5, "val_loss_first": 0.0691, "val_loss_last": 0.0251,
                        "n_variant": 44, "tau": 0.5, "n_unsettled": unsettled, "n_images": 2000,
                        "recon_mse": 0.0232, "recon_psnr": 22.8, "recon_ssim": 0.78,
                        "equivariance_error": 0.0557, "equivariance_error_centred": 0.21,
                        "equivariance_error_centred_shuffled": 1.05,
                        "invariance_error_centred": inv, "invariance_error_centred_shuffled": ref,
                        "energy_share_zi": 0.07}}


def test_numbers_come_from_the_metrics():
    text = str(registry.report(_training()))
    for s in ("In 5 epochs", "0.0691 to 0.0251", "factor 2.8", "44 of 64 channels", "τ = 0.5",
              "MSE 0.0232", "PSNR 22.8 dB", "SSIM 0.78", "0.056", "1.08", "against 1.40", "77%",
              "centred error is 0.21 against 1.05", "(20% of that level)", "non-identity", "7%"):
        assert s in text, s
    other = str(registry.report(_training(inv=0.2, unsettled=3)))
    assert "1.08" not in other and "0.20" in other


def test_no_hard_coded_reference():
    """The invariance reference is the run's own shuffled level, not a constant √2."""
    for fn in (training.findings, probes.findings, tau.findings, blocked.findings):
        assert fn.__doc__ is None or "1.41" not in fn.__doc__
    text = str(registry.report(_training(inv=0.9, ref=3.0)))
    assert "1.41" not in text and "√2" not in text and "against 3.00" in text
    assert "largely invariant" in text                    # 0.9 / 3.0 = 30 % < INVARIANT
    assert "not invariant" in str(registry.report(_training(inv=0.9, ref=1.0)))   # 90 %


@pytest.mark.parametrize("inv, verdict", [(0.0, "largely invariant"), (0.2, "largely invariant"),
                                          (0.7, "only partly invariant"), (1.2, "is not invariant"),
                                          (1.4, "is not invariant")])
def test_verdicts_follow_thresholds_relative_to_the_reference(inv, verdict):
    # fully present (0: exact) to fully absent (at the shuffled reference itself)
    assert verdict in str(registry.report(_training(inv=inv, ref=1.4)))


def test_threshold_fractions_are_named_and_ordered():
    assert 0 < wording.INVARIANT < wording.NOT_INVARIANT < 1
    assert wording.invariance_verdict(wording.INVARIANT * 2 - 1e-9, 2.0) == "largely invariant"
    assert wording.invariance_verdict(wording.INVARIANT * 2, 2.0) == "only partly invariant"
    assert wording.invariance_verdict(wording.NOT_INVARIANT * 2, 2.0).startswith("not invariant")


def test_empty_or_missing_reference():
    empty = str(registry.report(_training(inv=0.0, ref=0.0)))          # z_i empty: 0/0
    assert "tells nothing" in empty and "largely invariant" not in empty
    m = _training()
    del m["summary"]["invariance_error_centred_shuffled"]
    text = str(registry.report(m))
    assert "1.08" in text and "no shuffled reference" in text and "invariant" not in text.split("1.08")[1][:60]


def test_unsettled_mask():
    assert "not settled" in str(registry.report(_training(unsettled=20)))
    assert "looks settled" in str(registry.report(_training(unsettled=2)))


def test_missing_or_nan_numbers_skip_their_sentence():
    m = _training()
    m["summary"]["invariance_error_centred"] = math.nan
    del m["summary"]["recon_psnr"]
    text = str(registry.report(m))
    assert "invariance error" not in text and "PSNR" not in text and "In 5 epochs" in text


def test_data_pairing():
    m = {"notebook": "01_data_pairing", "element_counts": [1, 1, 1, 1],
         "summary": {"n_train": 5000, "n_val": 1250, "n_test": 2000, "n_classes": 10,
                     "class_imbalance": 1.11, "element_max_rel_dev": 0.043,
                     "element_rel_sd_expected": 0.024, "roundtrip_error": 0.0}}
    text = str(registry.report(m))
    assert "5000 images of 10 classes" in text and "1.11×" in text and "4.3%" in text
    assert "consistent with uniform" in text and "exact" in text
    m["summary"].update(element_max_rel_dev=0.2, roundtrip_error=0.3)
    text = str(registry.report(m))
    assert "not uniform" in text and "not exact" in text


# ----------------------------------------------------------------------------- 03
def _sweep_rows(kappa: float) -> list[dict]:
    """:func:`sweep_tau`-like rows whose initial/final sides agree with Cohen's κ = ``kappa``
    (chance 0.5: half the channels start and end variant)."""
    agree = 0.5 + 0.5 * kappa
    return [{"tau": t, "seed": s, "variant_fraction": 0.5, "agreement": agree, "agreement_chance": 0.5,
             "kappa": kappa, "rank_correlation": kappa} for t in (0.3, 0.5) for s in (42, 43)]


def _init_rows(logits: float, weights: float) -> list[dict]:
    return [{"tau": 0.5, "seed": s, "kappa_follows_logits": logits, "kappa_follows_weights": weights}
            for s in (42, 43)]


def _tau_metrics(kappa=1.0, logits=1.0, weights=-1.0):
    rows = [{"tau": t, "n_seeds": 2, "variant_fraction": vf, "variant_fraction_sd": 0.0,
             "recon_mse": mse, "recon_mse_sd": 0.001, "probe_b_zv_orbit": orb, "kappa": kappa}
            for t, vf, mse, orb in ((0.3, 1.0, 0.022, 0.79), (0.5, 0.6, 0.03, 0.75),
                                    (0.7, 0.0, 0.284, math.nan))]
    init = _init_rows(logits, weights)
    return {"notebook": "03_mask_sparsity_vs_tau", "by_tau": rows,
            "mask_dynamics": tau.mask_dynamics_sentence(_sweep_rows(kappa)),
            "init_test": init, "init_test_text": tau.init_test_sentence(init),
            "summary": {"init_final_kappa": kappa}}


def test_tau_sweep():
    text = str(registry.report(_tau_metrics()))
    assert "τ = 0.3 … 0.7 (3 values, 2 seed(s) each)" in text and "never rising" in text
    assert "0.0220 ± 0.0010" in text and "0.2840" in text and "less room" in text
    assert "every channel is variant" in text and "none is" in text
    assert "0.790 at τ = 0.3 and 0.750 at τ = 0.5" in text and "non-identity" in text


def test_tau_sweep_mask_dynamics_by_kappa():
    follows = registry.report(_tau_metrics(kappa=1.0))                   # fully present
    assert any("κ = 1.00" in s and "follows the initial logits" in s for s in follows)
    learned = registry.report(_tau_metrics(kappa=0.0))                   # fully absent
    assert any("κ = 0.00" in s and "do not decide" in s for s in learned)
    assert not any("follows the initial logits:" in s for s in learned)


def test_tau_sweep_init_test():
    logits = str(registry.report(_tau_metrics(logits=1.0, weights=-1.0)))
    assert "Initialisation test (2 runs" in logits
    assert "follows the initial logits, not what the channels encode" in logits
    weights = str(registry.report(_tau_metrics(logits=-1.0, weights=1.0)))
    assert "follows the weights" in weights and "not what the channels encode" not in weights
    m = _tau_metrics()
    del m["init_test_text"]
    assert "Initialisation test" not in str(registry.report(m))


def test_latent_traversals():
    m = {"notebook": "04_latent_traversals", "params": {"latent_channels": 64},
         "orbit_mse": {"0°": 0.021, "90°": 0.0233, "180°": 0.0234, "270°": 0.0236},
         "summary": {"n_invariant_channels": 20, "energy_share_zi": 0.07}}
    text = str(registry.report(m))
    assert "worst g = 270°: 0.0236" in text and "equally well" in text and "20 of 64" in text
    m["orbit_mse"]["270°"] = 0.2
    assert "worse than others" in str(registry.report(m))


# ----------------------------------------------------------------------------- 05
def _probe_rows(orbit_b=0.775):
    rows = []
    for s in (42, 43, 44):
        rows.append({"name": "ald", "seed": s, "probe/orbit/a": 0.814, "probe/orbit/b": orbit_b,
                     "probe/orbit/b/90°": orbit_b + 0.01, "probe/orbit/b/180°": orbit_b - 0.02,
                     "probe/orbit/b/270°": orbit_b + 0.01})
        rows.append({"name": "pixels-orbit", "seed": s, "single_valued": True,
                     "probe/pixels-orbit/a": 0.61, "probe/pixels-orbit/b": 0.61})
        rows.append({"name": "random-orbit", "seed": s, "single_valued": True,
                     "probe/random-orbit/a": 0.70, "probe/random-orbit/b": 0.70})
    return rows


def _comparison(key, a, b):
    return {"key": key, "learned": sum(a) / len(a), "random": sum(b) / len(b), "n_seeds": len(a),
            "n_draws": 3, **paired_comparison(a, b, key)}


def _probe(orbit_b=0.775, comparisons=None, best_acc=0.79):
    s = {"pixels pixels a": 0.8285, "pixels pixels b": 0.2565, "ald z a": 0.836, "ald z b": 0.29,
         "ald z_i a": 0.821, "ald z_i b": 0.293, "ald orbit a": 0.814, "ald orbit b": orbit_b}
    comps = comparisons if comparisons is not None else [
        _comparison("recon_mse", [0.020, 0.021, 0.022], [0.030, 0.031, 0.0325]),       # better
        _comparison("probe/z/a", [0.80, 0.81, 0.82], [0.80, 0.81, 0.82])]               # equivalent
    return {"notebook": "05_linear_probe", "params": {"seeds": [42, 43, 44]}, "summary": s,
            "rows": _probe_rows(orbit_b), "chance": 0.1,
            "best_invariant": {"baseline": "manual", "feature": "orbit", "accuracy_table": best_acc},
            "learned_vs_random": comps, "learned_vs_random_text": control_sentence(comps)}


def test_linear_probe():
    text = str(registry.report(_probe()))
    assert "0.829" in text and "0.257" in text and "57 points lower (means over 3 seeds)" in text
    assert "non-identity group element (protocol b)" in text
    assert "orbit invariants of z_v from 0.814 to 0.775 (4 points lower)" in text
    assert ("Invariant under the non-identity group elements (protocol b losing at most 5 points): "
            "the orbit invariants of z_v (worst element 180°: 0.755); not invariant: the whole "
            "latent z, z_i") in text
    assert "manual model, at 0.790 on the test images (chance 0.10)" in text
    assert "Chosen on validation accuracy" in text


def test_linear_probe_invariance_fully_absent():
    text = str(registry.report(_probe(orbit_b=0.30)))
    assert "none of them; not invariant: the whole latent z, z_i, the orbit invariants of z_v" in text


def test_linear_probe_controls():
    text = str(registry.report(_probe()))
    assert "orbit invariants of the pixels 0.610 upright and 0.610 moved" in text
    assert "orbit invariants of an untrained encoder 0.700 upright and 0.700 moved" in text
    # the best invariant feature against the better control (0.700): 9 points above → buys something
    assert "9 points above the better control" in text and "training buys" in text
    assert "no better than invariance alone" in str(registry.report(_probe(best_acc=0.72)))
    assert "falls behind" in str(registry.report(_probe(best_acc=0.50)))
    m = _probe()
    m["rows"] = [r for r in m["rows"] if r["name"] == "ald"]
    assert "controls" not in str(registry.report(m)) and "control (" not in str(registry.report(m))


def test_linear_probe_paired_verdicts():
    text = str(registry.report(_probe()))
    assert "of the same size" in text and "better on recon_mse" in text
    assert "equivalent within the margin on probe/z/a" in text
    assert "recon_mse -0.01" in text and "→ better" in text and "→ equivalent" in text
    assert "sd" not in text.replace("seeds", "")                           # no sd-sum rule
    undecided = [_comparison("recon_mse", [0.02, 0.03, 0.01], [0.03, 0.01, 0.02])]
    assert undecided[0]["verdict"] == "inconclusive"
    text = str(registry.report(_probe(comparisons=undecided)))
    assert "No paired comparison" in text and "(1 inconclusive)" in text and "inconclusive on recon_mse" in text
    assert "→" not in text


def test_linear_probe_ignores_malformed_comparisons():
    bad = [{"key": "recon_mse", "verdict": "finding", "diff": 0.1, "low": 0.0, "high": 0.2, "margin": 0.001},
           {"key": "recon_mse", "verdict": "better"}]
    m = {**_probe(comparisons=[]), "learned_vs_random": bad}
    del m["learned_vs_random_text"]
    text = str(registry.report(m))
    assert "Paired by seed" not in text and "paired comparison" not in text


# ----------------------------------------------------------------------------- 06
def _block_table(share=0.9, gain=0.8, img=0.3):
    return [{"dataset": "blocked:bright:glyphs", "name": "ald", "n_seeds": 2, "block_gain": gain,
             "block_share_zi": share, "image_share_zi": img},
            {"dataset": "blocked:bright:glyphs", "name": "all-variant", "n_seeds": 2,
             "block_gain": 0.7, "block_share_zi": 0.0}]


def test_blocked_and_dispatch():
    assert list(registry.report({"notebook": "06_blocked", "answer": ["a.", "b."]})) == ["a.", "b."]
    assert "No findings" in str(registry.report({"notebook": "99_new"}))
    assert "No metrics" in str(registry.report(None))


@pytest.mark.parametrize("share, gain, words", [
    (1.0, 0.8, "draws it with z_i (share 100%"),          # fully present: the paper's claim
    (0.0, 0.8, "draws it with z_v (share of z_i 0%"),     # fully absent
    (0.5, 0.8, "with both parts (share of z_i 50%"),
    (1.3, 0.8, "draws it with z_i (share 130%"),          # signed shares may leave [0, 1]
    (math.nan, 0.0, "no better than a blank decode D(0) (block gain 0%)"),   # nothing to share
    (math.nan, -0.68, "no better than a blank decode D(0) (block gain -68%)"),
    (0.9, 0.1, "removes only 10%")])
def test_blocked_verdict(share, gain, words):
    m = {"notebook": "06_blocked", "answer": ["The answer."], "table": _block_table(share, gain)}
    out = list(registry.report(m))
    assert out[0] == "The answer." and len(out) == 2 and words in out[1]
    assert "blocked:bright:glyphs" in out[1]


def test_blocked_verdict_skips_missing_numbers():
    t = _block_table()
    del t[0]["block_gain"]
    assert list(registry.report({"notebook": "06_blocked", "answer": [], "table": t})) == []


# ----------------------------------------------------------------------------- registry
def test_every_study_of_the_registry_has_its_findings():
    assert registry.STEMS == tuple(registry.STUDIES)
    for stem, study in registry.STUDIES.items():
        assert callable(study.module.findings), stem
        assert study.notebook == f"notebooks/{stem}.ipynb" and (ROOT / study.notebook).is_file()
    assert list(registry.report({"notebook": "99_new"})) == ["No findings are defined for notebook '99_new'."]


def test_markdown_escapes_underscores():
    f = wording.Findings(["z_i and z_v", "a*b"])
    assert f._repr_markdown_() == "- z\\_i and z\\_v\n- a\\*b"
    assert str(f) == "• z_i and z_v\n• a*b"


def test_blocked_says_when_every_split_routes_the_block_alike():
    def row(name, swap):
        return {"dataset": "blocked:bright:toy", "name": name, "block_swap_zi": swap, "block_gain": 0.99,
                "block_share_zi": 1.0, "image_share_zi": 0.1}
    alike = blocked.findings({"table": [row("ald", 0.93), row("random", 0.92), row("recon", 0.94),
                                        row("all-variant", 0.0)]})
    assert any("neither the learned choice of channels nor L_inv/L_const" in s for s in alike)
    apart = blocked.findings({"table": [row("ald", 0.93), row("random", 0.20), row("recon", 0.10)]})
    assert any("no other model does the same" in s for s in apart)
    assert not any("neither the learned choice" in s for s in apart)


def test_missing_keys_names_what_a_builder_would_lack():
    assert registry.missing_keys({"notebook": "06_blocked", "answer": [], "table": []}) == []
    assert registry.missing_keys({"notebook": "06_blocked", "answer": []}) == ["table"]
    assert registry.missing_keys({"notebook": "not-a-notebook"}) == []
