"""Fast test of galib.tools.compare_actions (the command line of galib.experiments.so2_actions): tiny glyph
set, 1 epoch, 8 latent channels."""
import json
import math

from galib.tools.compare_actions import ACTIONS, main


def test_compare_actions_tiny(tmp_path):
    out, runs = tmp_path / "fig", tmp_path / "runs"
    assert main(["--dataset", "glyphs", "--epochs", "1", "--max-train", "64", "--max-test", "32",
                 "--latent-channels", "8", "--n-angles", "8", "--device", "cpu",
                 "--out", str(out), "--run-root", str(runs)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (out / "table.md").is_file() and (out / "so2_actions.png").stat().st_size > 0
    assert set(m["actions"]) == set(ACTIONS) and m["epochs"] == 1 and m["command"]
    assert m["commit"] and m["group"] == "so2" and len(m["sentences"]) == 5
    assert m["table_md"] in (out / "table.md").read_text()
    for name, a in m["actions"].items():
        assert len(a["angles_deg"]) == 8 and a["angles_deg"][1] == 45.0
        for key in ("recon_mse_per_angle", "equivariance_error_per_angle"):
            assert len(a[key]) == 8 and all(math.isfinite(v) for v in a[key])
        for key in ("recon_mse", "equivariance_error", "homomorphism_error", "variant_fraction"):
            assert math.isfinite(a[key])
    learned, resample = m["actions"]["learned"], m["actions"]["resample"]
    assert resample["homomorphism_error_channel"] is None and resample["learned_frequencies"] is None
    assert learned["homomorphism_error_channel"] < 1e-4       # integer frequencies: exact
    assert len(learned["learned_frequencies"]) == 4            # 8 channels → 4 rotating pairs
    assert "| metric | resample | learned |" in (out / "table.md").read_text()
