"""galib.experiments.so2_actions without training: the plan (one run per action × seed, folders from
run_folder, every seed on the base seed's split), the table's angle means and the sentences."""
from __future__ import annotations

from pathlib import Path

from galib.experiments.plan import merge
from galib.experiments.so2_actions import ACTIONS, SO2Comparison, row_value, so2_sentences, so2_trainings, table_md
from galib.train import TrainConfig

CFG = TrainConfig(dataset="glyphs", epochs=1, latent_channels=8, device="cpu", seed=42, max_train=64)


def test_plan_one_training_per_action_and_seed(tmp_path):
    plan = so2_trainings(CFG, ACTIONS, tmp_path, seeds=[42, 43])
    assert [t.key for t in plan] == ["so2/resample/seed42", "so2/learned/seed42",
                                     "so2/resample/seed43", "so2/learned/seed43"]
    assert [Path(t.run_dir).name for t in plan] == [
        "glyphs_resample_auto", "glyphs_learned_auto",
        "glyphs_resample_auto_seed43", "glyphs_learned_auto_seed43"]
    assert all(t.config.group == "so2" for t in plan)
    assert [t.config.latent_action for t in plan] == list(ACTIONS) * 2
    assert {t.data.seed for t in plan} == {42}                         # the base seed's split
    assert len(merge(plan)) == 4                                       # distinct folders
    assert [t.key for t in so2_trainings(CFG, ["learned"], tmp_path)] == ["so2/learned/seed42"]


def _scores(recon, equiv, channel=None):
    angles = [0.0, 45.0, 90.0, 135.0]
    return {"angles_deg": angles, "recon_mse_per_angle": [0.0, recon, recon / 2, recon],
            "equivariance_error_per_angle": [0.0, equiv, equiv / 2, equiv], "recon_mse": recon,
            "recon_ssim": 0.9, "equivariance_error": equiv, "homomorphism_error": 0.3,
            "homomorphism_error_channel": channel, "variant_fraction": 0.5, "best_epoch": 2,
            "epochs_run": 2, "val_const_per_epoch": [0.2, 0.1], "seed": 42,
            "learned_frequencies": [0, 1] if channel is not None else None}


def test_table_and_sentences():
    res, lrn = _scores(0.02, 0.5), _scores(0.01, 0.52, channel=1e-6)
    assert row_value(res, "recon_mse@90") == 0.005                     # mean of 0° and 90°
    assert row_value(res, "recon_mse@off90") == 0.02
    assert row_value(res, "equivariance_error@90") == 0.25             # 90° only: 0° is 0 by construction
    assert row_value(res, "val_const@best") == 0.1 and row_value(res, "val_const@last") == 0.1
    md = table_md({"resample": res, "learned": lrn})
    assert "| metric | resample | learned |" in md and "0, 1" in md
    rec = SO2Comparison("glyphs", 0.5, 2, "auto", 64, 32, 8, 42, 4,
                        {"n_train": 64, "n_val": 16, "n_test": 32, "image_shape": [28, 28]},
                        {"resample": res, "learned": lrn}, {})
    text = " ".join(so2_sentences(rec))
    assert "reconstructs better than resampling" in text
    assert "about the same as it" in text                               # 0.52 vs 0.5: within 5 %
    assert "one training seed" in text and "1e-06" in text
