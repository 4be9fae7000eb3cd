"""galib.notebook.findings: sentences built from a metrics dict, never hand-written numbers."""
from __future__ import annotations

import math

import pytest

from galib.notebook import findings


def _training(inv=1.08, unsettled=49, channels=64):
    hist = [{"mask_probs": [0.5] * channels}]
    return {"notebook": "02_training", "history": hist,
            "summary": {"epochs": 5, "val_loss_first": 0.0691, "val_loss_last": 0.0251,
                        "n_variant": 44, "tau": 0.5, "n_unsettled": unsettled, "n_images": 2000,
                        "recon_mse": 0.0232, "recon_psnr": 22.8, "recon_ssim": 0.78,
                        "equivariance_error": 0.0557, "invariance_error_centred": inv,
                        "energy_share_zi": 0.07}}


def test_numbers_come_from_the_metrics():
    text = str(findings.report(_training()))
    for s in ("In 5 epochs", "0.0691 to 0.0251", "factor 2.8", "44 of 64 channels", "τ = 0.5",
              "MSE 0.0232", "PSNR 22.8 dB", "SSIM 0.78", "0.056", "1.08", "7%"):
        assert s in text, s
    other = str(findings.report(_training(inv=0.2, unsettled=3)))
    assert "1.08" not in other and "0.20" in other


@pytest.mark.parametrize("inv, verdict", [(0.2, "largely invariant"), (0.7, "only partly invariant"),
                                          (1.2, "is not invariant")])
def test_verdicts_follow_thresholds(inv, verdict):
    assert verdict in str(findings.report(_training(inv=inv)))


def test_unsettled_mask():
    assert "not settled" in str(findings.report(_training(unsettled=20)))
    assert "looks settled" in str(findings.report(_training(unsettled=2)))


def test_missing_or_nan_numbers_skip_their_sentence():
    m = _training()
    m["summary"]["invariance_error_centred"] = math.nan
    del m["summary"]["recon_psnr"]
    text = str(findings.report(m))
    assert "invariance error" not in text and "PSNR" not in text and "In 5 epochs" in text


def test_data_pairing():
    m = {"notebook": "01_data_pairing", "element_counts": [1, 1, 1, 1],
         "summary": {"n_train": 5000, "n_val": 1250, "n_test": 2000, "n_classes": 10,
                     "class_imbalance": 1.11, "element_max_rel_dev": 0.043,
                     "element_rel_sd_expected": 0.024, "roundtrip_error": 0.0}}
    text = str(findings.report(m))
    assert "5000 images of 10 classes" in text and "1.11×" in text and "4.3%" in text
    assert "consistent with uniform" in text and "exact" in text
    m["summary"].update(element_max_rel_dev=0.2, roundtrip_error=0.3)
    text = str(findings.report(m))
    assert "not uniform" in text and "not exact" in text


def test_tau_sweep():
    rows = [{"tau": t, "n_seeds": 2, "variant_fraction": vf, "variant_fraction_sd": 0.0,
             "recon_mse": mse, "recon_mse_sd": 0.001, "probe_b_zv_orbit": orb}
            for t, vf, mse, orb in ((0.3, 1.0, 0.022, 0.79), (0.5, 0.6, 0.03, 0.75),
                                    (0.7, 0.0, 0.284, math.nan))]
    text = str(findings.report({"notebook": "03_mask_sparsity_vs_tau", "by_tau": rows,
                                "mask_dynamics": "The split follows the initial logits."}))
    assert "τ = 0.3 … 0.7 (3 values, 2 seed(s) each)" in text and "never rising" in text
    assert "0.0220 ± 0.0010" in text and "0.2840" in text and "less room" in text
    assert "every channel is variant" in text and "none is" in text
    assert "0.790 at τ = 0.3 and 0.750 at τ = 0.5" in text and "initial logits" in text


def test_latent_traversals():
    m = {"notebook": "04_latent_traversals", "params": {"latent_channels": 64},
         "orbit_mse": {"0°": 0.021, "90°": 0.0233, "180°": 0.0234, "270°": 0.0236},
         "summary": {"n_invariant_channels": 20, "energy_share_zi": 0.07}}
    text = str(findings.report(m))
    assert "worst g = 270°: 0.0236" in text and "equally well" in text and "20 of 64" in text
    m["orbit_mse"]["270°"] = 0.2
    assert "worse than others" in str(findings.report(m))


def test_linear_probe():
    s = {"pixels pixels a": 0.8285, "pixels pixels b": 0.2565, "ald z a": 0.836, "ald z b": 0.29,
         "ald z_i a": 0.821, "ald z_i b": 0.293, "ald orbit a": 0.814, "ald orbit b": 0.775}
    m = {"notebook": "05_linear_probe", "params": {"seeds": [42, 43, 44]}, "summary": s,
         "chance": 0.1, "best_invariant": {"baseline": "manual", "feature": "orbit", "accuracy_table": 0.79},
         "learned_vs_random_text": "Over 3 seeds, the learned mask beats random masks on nothing."}
    text = str(findings.report(m))
    assert "0.829" in text and "0.257" in text and "57 points lower (means over 3 seeds)" in text
    assert "orbit invariants of z_v from 0.814 to 0.775 (4 points lower)" in text
    assert "losing at most 5 points): the orbit invariants of z_v; not invariant: the whole latent z, z_i" in text
    assert "manual model, at 0.790 (chance 0.10)" in text and "beats random masks" in text


def test_blocked_and_dispatch():
    assert list(findings.report({"notebook": "06_blocked", "answer": ["a.", "b."]})) == ["a.", "b."]
    assert "No findings" in str(findings.report({"notebook": "99_new"}))
    assert "No metrics" in str(findings.report(None))
    assert set(findings.BUILDERS) >= {"01_data_pairing", "02_training", "03_mask_sparsity_vs_tau",
                                      "04_latent_traversals", "05_linear_probe", "06_blocked"}


def test_markdown_escapes_underscores():
    f = findings.Findings(["z_i and z_v", "a*b"])
    assert f._repr_markdown_() == "- z\\_i and z\\_v\n- a\\*b"
    assert str(f) == "• z_i and z_v\n• a*b"
