"""Known answers for the divergence check (galib.studies.training) and its command line."""
import json

import pytest

from galib.studies.training import (departure_epoch, divergence_epoch, first_signal, positive_epoch,
                                         stability)
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
    for bad in ("1", "nan", "inf"):
        with pytest.raises(SystemExit, match="--factor must be a finite number above 1"):
            tool.main([str(tmp_path / "runs"), "--out", str(tmp_path / "o3"), "--factor", bad])


@pytest.mark.parametrize("text, message", [
    ('{"history": [{"epoch": 1, "val_loss": 0.5}', "not readable JSON"),          # truncated
    ('[{"epoch": 1, "val_loss": 0.5}]', "must hold an object with a 'history' list"),
    ('{"history": [{"epoch": 1, "train_loss": 0.5}]}', "row 1 needs numeric 'epoch' and 'val_loss'"),
])
def test_bad_histories_are_one_line_errors(tmp_path, text, message):
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "history.json").write_text(text)
    with pytest.raises(SystemExit, match=message) as err:
        tool.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()


def test_out_naming_a_file_is_refused(tmp_path):
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "history.json").write_text(json.dumps({"history": _hist([1.0, 0.5])}))
    (tmp_path / "f").write_text("x")
    with pytest.raises(SystemExit, match="is a file; give a folder"):
        tool.main([str(tmp_path / "runs"), "--out", str(tmp_path / "f")])


def test_a_nan_loss_is_a_divergence():
    nan = float("nan")
    assert divergence_epoch(_hist([1.0, 0.5, nan, 0.4])) == 3
    r = stability(_hist([1.0, 0.5, nan]))
    assert r["diverged_epoch"] == 3 and r["best_epoch"] == 2 and r["best_val_loss"] == 0.5


def test_departure_ignores_transients_and_finds_the_lasting_rise():
    assert departure_epoch([1.0, 0.5, 0.4, 0.35]) is None                  # falling: no departure
    assert departure_epoch([1.0, 0.5, 1.5, 0.5, 0.45, 0.4]) is None         # one-epoch spike
    assert departure_epoch([1.0, 0.5, 1.5, 3.0, 6.0, 12.0]) == 3           # stays above 2 × 0.5
    assert departure_epoch([1.0, 0.5, 0.6, 1.1]) == 4                      # rises at the very end
    assert departure_epoch([0.0, 0.0, 5.0, 5.0, 5.0]) is None              # no scale to leave
    assert departure_epoch([1.0, 0.5, float("nan"), float("nan")]) == 3    # non-finite counts as up
    assert positive_epoch([-0.1, 0.2, -0.1, 0.1, 0.2, 0.3]) == 4
    assert positive_epoch([-0.1, -0.2]) is None


def test_first_signal_on_a_constructed_divergence():
    """The offset of z_v grows from epoch 3, L_inv has a transient at 6, the loss blows up at 8:
    the offset is named, at epoch 3 (and the drive turning positive at 4 is found beside it)."""
    n = 10
    loss = [0.02, 0.015, 0.013, 0.012, 0.012, 0.013, 0.02, 0.05, 0.2, 1.0]
    inv = [0.002, 0.0015, 0.0014, 0.0014, 0.0014, 0.01, 0.0014, 0.005, 0.05, 0.3]
    offset = [0.5, 0.45, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]
    drive = [-0.01, -0.01, -0.001, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07]
    hist = [{"epoch": i + 1, "val_loss": loss[i], "val_recon": loss[i] - inv[i], "val_inv": inv[i],
             "val_const": 0.001, "zv_offset": offset[i], "zv_varying": 0.3, "zi_offset": 0.2,
             "zi_varying": 0.1, "const_drive": drive[i]} for i in range(n)]
    name, epoch, found = first_signal(hist)
    assert (name, epoch) == ("zv_offset", 3) and found["const_drive"] == 4
    assert "val_inv" not in found or found["val_inv"] >= 8                  # the spike at 6 is not it
    r = stability(hist)
    assert (r["diverged_epoch"], r["first_signal"], r["first_signal_epoch"]) == (8, "zv_offset", 3)
    clean = [dict(h, zv_offset=0.5, const_drive=-0.01) for h in hist[:5]]
    assert first_signal(clean) == (None, None, {})
