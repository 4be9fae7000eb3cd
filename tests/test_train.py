"""Training loop: learning, determinism, resume, checkpoints and bad input."""
import json
from dataclasses import replace

import pytest
import torch

from galib.datasets import load_dataset
from galib.io import atomic_write
from galib.train import TrainConfig, load_checkpoint, train


@pytest.fixture(scope="module")
def glyphs():
    return load_dataset("glyphs", seed=0, glyphs_sizes=(3000, 200))


@pytest.fixture(scope="module")
def tiny(glyphs):
    return load_dataset("glyphs", seed=0, glyphs_sizes=(3000, 200), max_train=256)


SMALL = TrainConfig(dataset="glyphs", epochs=2, batch_size=32, latent_channels=16, seed=7,
                    device="cpu")


def test_training_lowers_validation_loss(glyphs):
    cfg = TrainConfig(dataset="glyphs", epochs=4, device="cpu")      # paper model, 2400 images
    hist = train(cfg, data=glyphs, progress=False, verbose=False).history
    first, last = hist[0]["val_loss"], hist[-1]["val_loss"]
    # measured: 0.106 after epoch 1 -> 0.031 after epoch 4 on these 2400 glyphs (seed 42)
    assert last < 0.5 * first, (first, last)
    assert all(0.0 <= h["variant_fraction"] <= 1.0 for h in hist)
    assert {"train_recon", "val_inv", "val_const", "seconds", "mask_probs"} <= set(hist[0])


def test_same_seed_gives_identical_history(tiny):
    a = train(SMALL, data=tiny, progress=False, verbose=False).history
    b = train(SMALL, data=tiny, progress=False, verbose=False).history
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(a) == strip(b)
    c = train(replace(SMALL, seed=8), data=tiny, progress=False, verbose=False).history
    assert strip(a) != strip(c)


def test_resume_gives_the_same_weights(tiny, tmp_path):
    full = train(replace(SMALL, epochs=3), tmp_path / "full", data=tiny, progress=False, verbose=False)
    train(replace(SMALL, epochs=1), tmp_path / "cut", data=tiny, progress=False, verbose=False)
    resumed = train(replace(SMALL, epochs=3), tmp_path / "cut", data=tiny, progress=False, verbose=False)
    assert len(resumed.history) == 3
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for k, v in full.model.state_dict().items():                  # best weights returned
        assert torch.equal(v, resumed.model.state_dict()[k])


def test_run_dir_files_and_best_checkpoint(tiny, tmp_path):
    res = train(SMALL, tmp_path, data=tiny, progress=False, verbose=False)
    saved = json.loads((tmp_path / "history.json").read_text())
    assert len(saved["history"]) == 2 and saved["config"]["latent_channels"] == 16
    model, cfg, ckpt = load_checkpoint(tmp_path / "best.pt", SMALL)
    best_epoch = min(res.history, key=lambda h: h["val_loss"])["epoch"]
    assert ckpt["epoch"] + 1 == best_epoch and replace(cfg, threads=None) == SMALL
    assert isinstance(cfg.threads, int) and cfg.threads >= 1         # the count it trained at, recorded
    assert not list(tmp_path.glob("*.tmp"))                      # no temp files left behind
    # a finished run is not retrained when asked again
    again = train(SMALL, tmp_path, data=tiny, progress=False, verbose=False)
    assert again.history == res.history


def test_incompatible_checkpoint_is_a_clear_error(tiny, tmp_path):
    train(replace(SMALL, epochs=1), tmp_path, data=tiny, progress=False, verbose=False)
    with pytest.raises(ValueError, match="latent_channels: checkpoint 16 vs config 32"):
        load_checkpoint(tmp_path / "best.pt", replace(SMALL, latent_channels=32))
    with pytest.raises(ValueError, match="incompatible"):
        train(replace(SMALL, lr=0.01), tmp_path, data=tiny, progress=False, verbose=False)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_write(path, lambda p: torch.save({"v": 1}, p))

    def crash(p):
        open(p, "wb").write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, crash)
    assert torch.load(path, weights_only=True) == {"v": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["ckpt.pt"]


@pytest.mark.parametrize("field,value,match", [
    ("tau", 1.0, "tau must lie in the open interval"), ("tau", 0, "tau"),
    ("epochs", 0, "epochs must be a positive integer"), ("batch_size", -1, "batch_size"),
    ("group", "so5", "unknown group 'so5'"), ("device", "tpu", "unknown device 'tpu'"),
    ("zi_design", "bogus", "unknown zi_design 'bogus'"), ("mask", "bogus", "unknown mask 'bogus'"), ("mask_variant", 99, "mask_variant"),
])
def test_bad_config_values_are_named(field, value, match, tiny):
    with pytest.raises(ValueError, match=match):
        train(replace(SMALL, **{field: value}), data=tiny, progress=False, verbose=False)


def test_images_the_group_cannot_act_on(tiny):
    from galib.datasets import DataSplits, ImageSet
    rect = ImageSet(torch.zeros(8, 28, 32, dtype=torch.uint8), torch.zeros(8, dtype=torch.long))
    bad = DataSplits("rect", "test", rect, rect, rect)
    with pytest.raises(ValueError, match="square"):
        train(SMALL, data=bad, progress=False, verbose=False)


def test_run_epoch_keyword_options(tiny):
    """``run_epoch`` takes its call forms (6 positional, then progress/desc/step/epoch as
    keywords, the same means whichever are given) and names an unknown keyword."""
    from galib.losses import PairLoss
    from galib.train import model_from_config, run_epoch
    torch.manual_seed(0)
    model = model_from_config(SMALL, tiny.image_shape)
    cpu, gen = torch.device("cpu"), lambda: torch.Generator().manual_seed(1)
    plain = run_epoch(model, tiny.val, SMALL, gen(), cpu)
    keyed = run_epoch(model, tiny.val, SMALL, gen(), cpu, None, progress=False, desc="val",
                      step=PairLoss.from_config(model, SMALL), epoch=3)
    assert plain == keyed
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'epochs'; its options "
                                        r"are: progress, desc, step, epoch"):
        run_epoch(model, tiny.val, SMALL, gen(), cpu, epochs=3)
