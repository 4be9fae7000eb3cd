"""Run folders and checkpoints written before the renaming (commit 4624a4a) load and resume under
today's names: ``invariant`` → ``zi_design``, ``invariance`` → ``inv_form``, ``objective="ae"`` →
``mask="none"`` (its unused mask logits leave the weights and the optimizer state)."""
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from galib.datasets import load_dataset
from galib.studies.registry import run_key
from galib.train import TrainConfig, load_checkpoint, train
from galib.train.config import key_fields, upgrade_config

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_4624a4a"
TODAY = {"designs": {"zi_design": "orbit", "inv_form": "normalised", "mask_init": "negated"},
         "ae": {"mask": "none"}}


def _cfg(name, epochs):
    return TrainConfig(dataset="glyphs", epochs=epochs, batch_size=32, latent_channels=8, seed=0,
                       device="cpu", **TODAY[name])


def _data():
    return load_dataset("glyphs", seed=0, glyphs_sizes=(200, 40), max_train=64, verbose=False)


def test_the_fixture_is_in_the_old_names():
    old = json.loads((FIXTURE / "designs" / "history.json").read_text())["config"]
    assert old["invariant"] == "orbit" and old["invariance"] == "normalised" and "zi_design" not in old
    assert json.loads((FIXTURE / "ae" / "history.json").read_text())["config"]["objective"] == "ae"


@pytest.mark.parametrize("name", ["designs", "ae"])
def test_an_old_run_folder_reads_as_finished(name):
    from galib.train.runs import run_status
    assert run_status(FIXTURE / name, _cfg(name, 1))[0] == "finished"         # its config, today's names
    assert run_status(FIXTURE / name, _cfg(name, 2))[0] == "unfinished"


def test_an_old_checkpoint_loads_under_todays_names():
    model, cfg, _ = load_checkpoint(FIXTURE / "designs" / "best.pt", _cfg("designs", 1))
    assert (cfg.zi_design, cfg.inv_form, cfg.mask_init) == ("orbit", "normalised", "negated")
    assert model.zi_design == "orbit" and model.mask is not None
    ae, cfg, _ = load_checkpoint(FIXTURE / "ae" / "best.pt", _cfg("ae", 1))
    assert cfg.mask == "none" and ae.mask is None and ae.hard_mask() is None
    raw = torch.load(FIXTURE / "ae" / "best.pt", weights_only=True)["model"]
    assert set(raw) - set(ae.state_dict()) == {"mask.logits"}               # the unused logits left
    assert all(torch.equal(v, raw[k]) for k, v in ae.state_dict().items())  # every other weight kept


@pytest.mark.parametrize("name", ["designs", "ae"])
def test_an_old_run_folder_resumes_under_todays_names(tmp_path, name):
    run = tmp_path / name
    shutil.copytree(FIXTURE / name, run)
    first = json.loads((run / "history.json").read_text())["history"][0]
    res = train(_cfg(name, 2), run, data=_data(), progress=False, verbose=False)
    assert [r["epoch"] for r in res.history] == [1, 2]                      # resumed, not restarted
    assert res.history[0]["val_loss"] == first["val_loss"]
    saved = torch.load(run / "last.pt", weights_only=True)["config"]           # rewritten today
    assert saved["epochs"] == 2 and "invariant" not in saved and "objective" not in saved
    assert {k: saved[k] for k in TODAY[name]} == TODAY[name]


def test_an_old_config_dict_upgrades_and_keys_stay():
    old = {"invariant": "spectrum", "invariance": "normalised", "objective": "group", "tau": 0.3}
    cfg = TrainConfig.from_dict(old)
    assert (cfg.zi_design, cfg.inv_form, cfg.mask, cfg.tau) == ("spectrum", "normalised", "learned", 0.3)
    assert TrainConfig.from_dict({"objective": "ae"}).mask == "none"
    with pytest.raises(ValueError, match="objective"):
        TrainConfig.from_dict({"objective": "gan"})                        # an unknown one is named
    back = key_fields(TrainConfig(mask="none"))
    assert (back["objective"], back["mask"], back["invariant"]) == ("ae", "learned", "paper")
    assert run_key(TrainConfig()) == "bd3919f7cd"         # the key commit cdef14a (before it) gave
    assert upgrade_config(asdict(TrainConfig())) == asdict(TrainConfig())   # today's dicts: unchanged
