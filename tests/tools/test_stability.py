"""Known answers for the divergence check (galib.experiments.training) and its command line."""
import json

import pytest

from galib.experiments.training import divergence_epoch, stability
from galib.tools import stability as tool


def _hist(vals, inv=None):
    inv = inv or [0.001] * len(vals)
    return [{"epoch": i + 1, "val_loss": v, "val_recon": v - w, "val_inv": w, "val_const": 0.0}
            for i, (v, w) in enumerate(zip(vals, inv))]


def test_divergence_epoch_known_answers():
    assert divergence_epoch(_hist([1.0, 0.5, 0.4, 0.3])) is None            # steadily falling
    assert divergence_epoch(_hist([1.0, 0.5, 0.4, 0.79, 0.81])) == 5          # 0.81 > 2 × 0.4
    assert divergence_epoch(_hist([1.0, 1.9, 0.5])) is None                   # below 2 × the best
    assert divergence_epoch(_hist([1.0, 0.5, 0.6]), factor=1.1) == 3


def test_stability_names_the_term_that_blew_up_first():
    # inv jumps at epoch 3 (0.01 → 0.1) while the total is still below twice its best
    hist = _hist([0.10, 0.05, 0.09, 0.5], inv=[0.01, 0.01, 0.1, 0.4])
    r = stability(hist)
    assert (r["diverged_epoch"], r["first_term"], r["best_epoch"]) == (4, "inv", 2)
    assert r["max_val_loss"] == 0.5 and r["last_val_loss"] == 0.5
    assert stability(_hist([1.0, 0.5]))["first_term"] is None


def test_command_line_writes_the_table_and_figure(tmp_path):
    for name, vals in (("ald", [1.0, 0.5, 0.4]), ("random", [1.0, 0.5, 3.0])):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "history.json").write_text(json.dumps({"history": _hist(vals)}))
    meta = tool.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert meta["n_runs"] == 2 and meta["n_diverged"] == 1
    assert meta["runs"]["random"]["diverged_epoch"] == 3 and meta["runs"]["ald"]["diverged_epoch"] is None
    saved = json.loads((tmp_path / "out" / "stability.json").read_text())
    assert saved["command"].startswith("python -m galib.tools.stability") and saved["commit"]
    assert "| random | 3 | 2 |" in (tmp_path / "out" / "stability.md").read_text()
    assert (tmp_path / "out" / "val_loss.png").stat().st_size > 1000
    with pytest.raises(SystemExit, match="no run folder"):
        tool.main([str(tmp_path / "out"), "--out", str(tmp_path / "o2")])
    with pytest.raises(SystemExit, match="--factor must be above 1"):
        tool.main([str(tmp_path / "runs"), "--out", str(tmp_path / "o3"), "--factor", "1"])
