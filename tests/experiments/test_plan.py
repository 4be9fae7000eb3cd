"""galib.experiments.plan: run folders named in one place, plans merged by folder with their needs
kept, dependencies first, train-or-load refusing to train under GALIB_EXPECT_TRAINED, and the
initialisation test's negated logits (same weights, opposite sides)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from galib.experiments.plan import (EXPECT_ENV, DataRequest, NotSweptError, Training, is_finished,
                                    merge, order, resolve, run_folder, run_status, train_or_load)
from galib.train import TrainConfig, model_from_config
from tests.synthetic import synthetic_splits

CFG = TrainConfig(dataset="glyphs", epochs=1, latent_channels=8, device="cpu", seed=0)


def _t(key, folder, needs=(), cfg=CFG, derive=None):
    return Training(key, cfg, str(folder), DataRequest.of(cfg), needs=needs, derive=derive)


def test_run_folders():
    assert run_folder("r", "ald", 42, 42) == Path("r/ald")
    assert run_folder("r", "ald", 43, 42) == Path("r/ald_seed43")
    assert run_folder("r", "tau_0.5") == Path("r/tau_0.5")


def test_merge_keeps_one_training_per_folder_and_points_needs_at_it(tmp_path):
    a = _t("02:ald", tmp_path / "ald")
    b = _t("05:ald", tmp_path / "ald")                               # the same run, another key
    r = _t("05:random", tmp_path / "random", needs=("05:ald",), derive="random-mask-size")
    plan = merge([r, a, b])
    assert [t.key for t in plan] == ["02:ald", "05:random"]          # needs first
    assert plan[1].needs == ("02:ald",)
    other = _t("05:ald", tmp_path / "ald", cfg=replace(CFG, lr=0.5))
    with pytest.raises(ValueError, match="two trainings want one run folder"):
        merge([a, other])


def test_order_refuses_missing_and_circular_needs(tmp_path):
    with pytest.raises(ValueError, match="does not hold"):
        order([_t("x", tmp_path / "x", needs=("nowhere",))])
    with pytest.raises(ValueError, match="circular"):
        order([_t("x", tmp_path / "x", needs=("y",)), _t("y", tmp_path / "y", needs=("x",))])


def test_train_or_load_refuses_to_train_when_the_sweep_should_have(tmp_path, monkeypatch):
    data = synthetic_splits(n_train=64, n_val=16, n_test=16)
    t = _t("05:ald", tmp_path / "ald")
    monkeypatch.setenv(EXPECT_ENV, "1")
    with pytest.raises(NotSweptError, match="05:ald"):
        train_or_load(t, data)
    assert not (tmp_path / "ald" / "last.pt").exists()
    monkeypatch.delenv(EXPECT_ENV)
    train_or_load(t, data)                                          # trains
    assert is_finished(t.run_dir, 1)
    monkeypatch.setenv(EXPECT_ENV, "1")
    assert train_or_load(t, data).history[0]["epoch"] == 1          # finished: loads


def test_random_mask_takes_the_learned_mask_size(tmp_path):
    data = synthetic_splits(n_train=64, n_val=16, n_test=16)
    ald = _t("ald", tmp_path / "ald")
    rnd = _t("random", tmp_path / "random", needs=("ald",), derive="random-mask-size",
             cfg=replace(CFG, mask="random", mask_seed=7))
    learned = train_or_load(ald, data).model
    control = train_or_load(rnd, data, plan=[ald, rnd]).model
    assert int(control.hard_mask().sum()) == int(learned.hard_mask().sum())


def test_negated_initial_logits_keep_every_weight():
    torch.manual_seed(0)
    a = model_from_config(CFG, (28, 28)).state_dict()
    torch.manual_seed(0)
    b = model_from_config(replace(CFG, mask_init="negated"), (28, 28)).state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == ["mask.logits"]
    assert torch.equal(a["mask.logits"], -b["mask.logits"])
    with pytest.raises(ValueError, match="mask_init"):
        replace(CFG, mask_init="flipped").validate()


def test_plateau_epoch_known_answers():
    from galib.studies.training import plateau_epoch
    falling = [{"epoch": e, "val_loss": 1.0 * 0.9 ** e} for e in range(1, 21)]     # 10 % an epoch
    assert plateau_epoch(falling) is None                                        # never settles
    flat_after_8 = [{"epoch": e, "val_loss": 0.9 ** min(e, 8)} for e in range(1, 21)]
    assert plateau_epoch(flat_after_8) == 8
    noisy = [{"epoch": e, "val_loss": v} for e, v in enumerate([1, 0.5, 0.4, 0.41, 0.399, 0.4, 0.402,
                                                                0.398, 0.4], start=1)]
    assert plateau_epoch(noisy) == 3                                             # 0.4 → 0.398: < 1 %
    assert plateau_epoch(noisy[:5]) is None                                      # too short to tell


# ----------------------------------------------------------------------------- finished = verified
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A finished 2-epoch run (``ald``) and one of another seed (``other``), on synthetic data."""
    root = tmp_path_factory.mktemp("finished")
    data = synthetic_splits(n_train=64, n_val=16, n_test=16)
    cfg = replace(CFG, epochs=2)
    for name, seed in (("ald", 0), ("other", 1)):
        train_or_load(_t(name, root / name, cfg=replace(cfg, seed=seed)), data)
    return root, cfg


def _copy_run(two_runs, tmp_path, name="ald") -> Path:
    import shutil
    shutil.copytree(two_runs[0] / name, tmp_path / name)
    return tmp_path / name


def test_a_finished_run_verifies(two_runs, tmp_path):
    run = _copy_run(two_runs, tmp_path)
    t = _t("ald", run, cfg=two_runs[1])
    assert run_status(t)[0] == "finished" and is_finished(t) and is_finished(run, 2)
    assert not is_finished(run, 3) and run_status(replace(t, config=replace(t.config, epochs=3)))[0] == "unfinished"
    assert run_status(_t("new", tmp_path / "new"))[0] == "new"
    asked_other = replace(t, config=replace(t.config, lr=0.5))        # the plan asks another run
    status, why = run_status(asked_other)
    assert status == "damaged" and "belongs to another run" in why and "lr" in why


def test_a_truncated_last_pt_is_not_finished(two_runs, tmp_path):
    """Issue 27, 1: the sweep counted history.json's rows and called this run finished."""
    run = _copy_run(two_runs, tmp_path)
    with open(run / "last.pt", "r+b") as f:
        f.truncate(1000)
    t = _t("ald", run, cfg=two_runs[1])
    status, why = run_status(t)
    assert status == "damaged" and "last.pt is damaged" in why and "--repair" in why
    assert not is_finished(t) and not is_finished(run, 2)


def test_another_runs_history_json_is_not_finished(two_runs, tmp_path):
    run = _copy_run(two_runs, tmp_path)
    (run / "history.json").write_bytes((two_runs[0] / "other" / "history.json").read_bytes())
    status, why = run_status(_t("ald", run, cfg=two_runs[1]))
    assert status == "damaged" and "history.json does not match last.pt" in why
    assert not is_finished(run, 2)


def test_a_missing_best_pt_is_completed_not_finished(two_runs, tmp_path, monkeypatch):
    """Every epoch is there, but best.pt must be rebuilt: incomplete (the sweep opens it, which
    completes it), and a notebook under GALIB_EXPECT_TRAINED opens it without training."""
    run = _copy_run(two_runs, tmp_path)
    (run / "best.pt").unlink()
    t = _t("ald", run, cfg=two_runs[1])
    assert run_status(t)[0] == "incomplete" and not is_finished(t)
    monkeypatch.setenv(EXPECT_ENV, "1")
    train_or_load(t, synthetic_splits(n_train=64, n_val=16, n_test=16))
    assert run_status(t)[0] == "finished"


def test_a_damaged_run_under_expect_trained_names_the_file(two_runs, tmp_path, monkeypatch):
    from galib.train import RunError
    run = _copy_run(two_runs, tmp_path)
    (run / "last.pt").write_bytes(b"")
    monkeypatch.setenv(EXPECT_ENV, "1")
    with pytest.raises(RunError, match="last.pt is damaged"):
        train_or_load(_t("ald", run, cfg=two_runs[1]), synthetic_splits(n_train=64, n_val=16, n_test=16))


def test_a_derived_training_is_checked_with_its_derived_fields_from_the_run(tmp_path):
    data = synthetic_splits(n_train=64, n_val=16, n_test=16)
    ald = _t("ald", tmp_path / "ald")
    rnd = _t("random", tmp_path / "random", needs=("ald",), derive="random-mask-size",
             cfg=replace(CFG, mask="random", mask_seed=7))
    train_or_load(rnd, data, plan=[ald, rnd])
    assert run_status(rnd)[0] == "finished"                      # mask_variant: the run's own
    assert run_status(rnd, replace(resolve(rnd, [ald, rnd], data), lr=0.5))[0] == "damaged"
