"""galib.experiments.plan: run folders named in one place, plans merged by folder with their needs
kept, dependencies first, train-or-load refusing to train under GALIB_EXPECT_TRAINED, and the
initialisation test's negated logits (same weights, opposite sides)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from galib.experiments.plan import (EXPECT_ENV, DataRequest, NotSweptError, Training, is_finished,
                                    merge, order, run_folder, train_or_load)
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
    from galib.experiments.training import plateau_epoch
    falling = [{"epoch": e, "val_loss": 1.0 * 0.9 ** e} for e in range(1, 21)]     # 10 % an epoch
    assert plateau_epoch(falling) is None                                        # never settles
    flat_after_8 = [{"epoch": e, "val_loss": 0.9 ** min(e, 8)} for e in range(1, 21)]
    assert plateau_epoch(flat_after_8) == 8
    noisy = [{"epoch": e, "val_loss": v} for e, v in enumerate([1, 0.5, 0.4, 0.41, 0.399, 0.4, 0.402,
                                                                0.398, 0.4], start=1)]
    assert plateau_epoch(noisy) == 3                                             # 0.4 → 0.398: < 1 %
    assert plateau_epoch(noisy[:5]) is None                                      # too short to tell
