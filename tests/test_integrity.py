"""Run integrity (issue 14): each numbered case of the fault campaign, on small glyphs runs.

Each test asserts the outcome (an exception or exit status, or an exact repair), that the
message names the file or value, and that nothing already written changed (file hashes).
"""
import hashlib
import json
import os
import shutil
import signal
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from galib.datasets import DataError
from galib.io import FolderLock, WriteError, atomic_write, write_bytes
from galib.train import (CheckpointError, NonFiniteError, RunError, TrainConfig, load_checkpoint,
                         train)
from galib.train.cli import main, run_cli
from galib.train.runs import RunState, history_up_to

CFG = TrainConfig(dataset="glyphs", max_train=256, epochs=3, latent_channels=8, device="cpu")
QUIET = {"progress": False, "verbose": False}


@pytest.fixture(scope="module")
def tiny_npz(tiny, tmp_path_factory):
    """``tiny`` as an npz file with its own val split, so the CLI loads exactly the same data."""
    path = tmp_path_factory.mktemp("npz") / "tiny.npz"
    np.savez(path, **{f"{k}_{part}": getattr(getattr(tiny, k), part).numpy()
                      for k in ("train", "val", "test") for part in ("images", "labels")})
    return path


@pytest.fixture(scope="module")
def finished(tiny, tmp_path_factory):
    """A finished 3-epoch run, plus the epoch-1 and epoch-2 states of the same run (``epoch1/``,
    ``epoch2/``)."""
    root = tmp_path_factory.mktemp("finished")
    train(replace(CFG, epochs=1), root / "epoch1", data=tiny, **QUIET)
    shutil.copytree(root / "epoch1", root / "epoch2")
    train(replace(CFG, epochs=2), root / "epoch2", data=tiny, **QUIET)
    shutil.copytree(root / "epoch2", root / "run")
    result = train(CFG, root / "run", data=tiny, **QUIET)
    return root, result


@pytest.fixture
def run(finished, tmp_path):
    """A private copy of the finished run."""
    shutil.copytree(finished[0] / "run", tmp_path / "run")
    return tmp_path / "run"


def hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def rows(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def refused(run_dir, cfg=CFG, data=None, match="", **kw) -> str:
    """Train on ``run_dir``, expect a RunError matching ``match``, and that no file changed."""
    before = hashes(run_dir)
    with pytest.raises(RunError, match=match) as err:
        train(cfg, run_dir, data=data, **QUIET, **kw)
    assert hashes(run_dir) == before
    return str(err.value)


# ----------------------------------------------------------------------------- 1-6: one run per dir
def test_1_missing_last_pt_is_refused_not_retrained(run, tiny, finished):
    (run / "last.pt").unlink()
    msg = refused(run, replace(CFG, tau=0.3), tiny, match="belongs to another run")
    assert "tau: checkpoint 0.5 vs config 0.3" in msg and str(run / "best.pt") in msg
    msg = refused(run, CFG, tiny, match="last.pt is missing")
    assert "--repair" in msg and "--fresh" in msg


def test_1_repair_resumes_from_best_and_ends_bit_identical(tmp_path, tiny, finished):
    """Only an epoch-2 best.pt and a 3-epoch history.json: --repair trains epoch 3 again and gets
    the same weights and rows as the uninterrupted run."""
    root, full = finished
    shutil.copytree(root / "run", tmp_path / "run")
    shutil.copy(root / "epoch2" / "best.pt", tmp_path / "run" / "best.pt")
    (tmp_path / "run" / "last.pt").unlink()
    result = train(CFG, tmp_path / "run", data=tiny, repair=True, **QUIET)
    assert same_weights(weights(tmp_path / "run" / "last.pt"), weights(root / "run" / "last.pt"))
    assert same_weights(result.model.state_dict(), full.model.state_dict())
    saved = json.loads((tmp_path / "run" / "history.json").read_text())["history"]
    assert rows(saved) == rows(full.history)
    # the good history.json, one row ahead of the rebuilt last.pt, is no other run's: it was kept
    # (and rewritten with the same rows by the retrained epoch), not set aside
    assert not list((tmp_path / "run").glob("*.damaged*"))


def test_2_a_second_writer_is_locked_out_naming_the_holder(run, tiny):
    with FolderLock(run):
        msg = refused(run, CFG, tiny, match="in use by another training")
    assert f"pid {os.getpid()}" in msg


def test_2_the_lock_dies_with_its_process(run, tiny):
    pid = os.fork()
    if pid == 0:                                               # child: hold the lock, then hang
        try:
            FolderLock(run).acquire()
            time.sleep(60)
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + 30
        while not (run / "run.lock").exists() or b"pid" not in (run / "run.lock").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert f"pid {pid}" in refused(run, CFG, tiny, match="in use")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert len(train(CFG, run, data=tiny, **QUIET).history) == 3   # free again after SIGKILL


def test_2_best_pt_of_another_run_is_caught(run, tiny, tmp_path):
    other = train(replace(CFG, epochs=1, tau=0.3), tmp_path / "other", data=tiny, **QUIET)
    assert other.config.tau == 0.3
    shutil.copy(tmp_path / "other" / "best.pt", run / "best.pt")
    msg = refused(run, CFG, tiny, match="best.pt is another run's file")
    assert str(run / "best.pt") in msg and "tau" in msg


def test_2_best_pt_of_another_seed_is_rebuilt_by_repair_when_last_pt_holds_the_best_epoch(
        run, tiny, finished, tmp_path, capsys):
    """Issue 27, 12: --repair refused this and offered only --fresh, though a damaged best.pt in
    the same position is rebuilt from last.pt."""
    train(replace(CFG, epochs=1, seed=7), tmp_path / "other", data=tiny, **QUIET)
    foreign = (tmp_path / "other" / "best.pt").read_bytes()
    (run / "best.pt").write_bytes(foreign)
    msg = refused(run, CFG, tiny, match="best.pt is another run's file \\(seed: checkpoint 7 vs config 42")
    assert "--repair (repair=True) rebuilds it from last.pt, which holds the best epoch (3)" in msg
    res = train(CFG, run, data=tiny, repair=True, progress=False)
    out = capsys.readouterr().out
    assert "best.pt was another run's file (seed" in out and "rebuilt from last.pt (epoch 3)" in out
    assert (run / "best.pt").read_bytes() == (run / "last.pt").read_bytes()
    assert (run / "best.pt.damaged").read_bytes() == foreign          # set aside, not overwritten
    assert same_weights(res.model.state_dict(), finished[1].model.state_dict())


def test_2_best_pt_of_another_run_whose_best_epoch_is_kept_nowhere_is_refused(run, tiny, finished,
                                                                              tmp_path):
    _best_at_epoch_2(run, finished[0])
    train(replace(CFG, epochs=1, seed=7), tmp_path / "other", data=tiny, **QUIET)
    shutil.copy(tmp_path / "other" / "best.pt", run / "best.pt")
    msg = refused(run, CFG, tiny, match="another run's file .*kept nowhere else", repair=True)
    assert "--fresh" in msg


def _best_at_epoch_2(run: Path, root: Path) -> None:
    """Make ``run`` a consistent run whose best epoch is 2 of 3: epoch 3's validation loss
    raised in last.pt, best.pt the epoch-2 state, history.json left to be rebuilt."""
    last = torch.load(run / "last.pt", weights_only=True)
    last["history"][2]["val_loss"] = 9.9
    torch.save(last, run / "last.pt")
    shutil.copy(root / "epoch2" / "best.pt", run / "best.pt")
    (run / "history.json").unlink()


def test_3_fewer_epochs_than_a_longer_run_return_it_whole_when_their_best_is_not_kept(
        run, tiny, finished, capsys):
    """A run extended beyond what a notebook asks (3 epochs vs 2 here, 400 vs 5 in the report):
    the best of the first 2 is not kept, so the run is returned as it is, said, changing no file."""
    history = json.loads((run / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert min(history, key=lambda h: h["val_loss"])["epoch"] == 3      # measured: loss falls
    before = hashes(run)
    res = train(replace(CFG, epochs=2), run, data=tiny, progress=False)
    out = capsys.readouterr().out
    assert "holds 3 epochs, more than the 2 asked for" in out and "returning the run as it is" in out
    assert len(res.history) == 3 and res.config.epochs == 3 and res.best["epoch"] == 3
    assert same_weights(res.model.state_dict(), finished[1].model.state_dict())
    assert hashes(run) == before


def test_3_fewer_epochs_return_the_kept_best_and_say_so(run, tiny, finished, capsys):
    _best_at_epoch_2(run, finished[0])
    res = train(replace(CFG, epochs=2), run, data=tiny, progress=False)
    assert "returning the best of the first 2 (epoch 2, kept in best.pt)" in capsys.readouterr().out
    assert len(res.history) == 2
    assert same_weights(res.model.state_dict(), weights(finished[0] / "epoch2" / "best.pt"))
    assert len(json.loads((run / "history.json").read_text())["history"]) == 3   # run kept whole


def test_3_fewer_epochs_unit():
    hist = [{"epoch": e, "val_loss": v} for e, v in ((1, 0.5), (2, 0.3), (3, 0.4))]
    state = RunState(last={"epoch": 2, "history": hist}, best={"epoch": 1, "history": hist[:2]})
    assert history_up_to(state, 2, Path("R"), verbose=False) == hist[:2]
    assert history_up_to(state, 1, Path("R"), verbose=False) == hist     # epoch 1 is not kept


def test_4_another_dataset_or_other_data_is_caught(run, tiny):
    msg = refused(run, replace(CFG, dataset="auto"), replace(tiny, name="mnist"),
                  match="data dataset: run 'glyphs' vs now 'mnist'")
    assert "last.pt" in msg
    labels = tiny.train.labels.clone()
    labels[0] = (labels[0] + 1) % 10
    changed = replace(tiny, train=replace(tiny.train, labels=labels))
    refused(run, CFG, changed, match="fingerprint")


def test_5_deleted_best_pt_is_rebuilt_from_last_pt(run, tiny, finished, capsys):
    (run / "best.pt").unlink()                                 # the best epoch is the last (3)
    res = train(CFG, run, data=tiny, progress=False)
    assert "best.pt was missing: rebuilt from last.pt (epoch 3)" in capsys.readouterr().out
    assert (run / "best.pt").read_bytes() == (run / "last.pt").read_bytes()
    assert same_weights(res.model.state_dict(), finished[1].model.state_dict())
    assert res.best["epoch"] == 3


def test_5_deleted_best_pt_that_cannot_be_rebuilt_is_refused(run, tiny, finished):
    _best_at_epoch_2(run, finished[0])
    (run / "best.pt").unlink()
    msg = refused(run, CFG, tiny, match="best.pt is missing, and the best epoch \\(2\\) is kept nowhere")
    assert "--fresh" in msg


@pytest.mark.parametrize("damage", ["missing", "garbage", "one row short"])
def test_6_history_json_is_rebuilt_from_last_pt(run, tiny, damage):
    path = run / "history.json"
    original = json.loads(path.read_text())
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_text("{ not json")
    else:
        path.write_text(json.dumps({**original, "history": original["history"][:-1]}))
    last = hashes(run)["last.pt"]
    train(CFG, run, data=tiny, **QUIET)
    assert json.loads(path.read_text())["history"] == original["history"]
    assert hashes(run)["last.pt"] == last
    assert (run / "history.json.damaged").exists() == (damage == "garbage")


def test_6_history_json_of_another_run_is_refused_then_repaired(run, tiny):
    saved = json.loads((run / "history.json").read_text())
    (run / "history.json").write_text(json.dumps({**saved, "config": {**saved["config"], "lr": 0.1}}))
    refused(run, CFG, tiny, match="history.json does not match last.pt .*lr")
    train(CFG, run, data=tiny, repair=True, **QUIET)
    assert json.loads((run / "history.json").read_text())["config"]["lr"] == CFG.lr


# ----------------------------------------------------------------------------- 7-8: poisoned runs
@pytest.mark.parametrize("field,value", [("lr", float("inf")), ("lambda_inv", float("nan")),
                                         ("lambda_const", float("inf")), ("val_fraction", float("nan")),
                                         ("tau", float("nan")), ("lr", -1.0), ("max_train", 0),
                                         ("seed", 1.5), ("epochs", True)])
def test_7_non_finite_and_out_of_range_config_values(field, value):
    with pytest.raises(ValueError, match=f"{field} must") as err:
        replace(CFG, **{field: value}).validate()
    assert repr(value) in str(err.value)


def test_7_empty_and_one_image_training_sets(tmp_path):
    for n in (0, 1):
        imgs, labels = np.zeros((n, 28, 28), np.uint8), np.zeros(n, np.int64)
        np.savez(tmp_path / f"n{n}.npz", train_images=imgs, train_labels=labels,
                 test_images=np.zeros((2, 28, 28), np.uint8), test_labels=np.zeros(2, np.int64))
        with pytest.raises(DataError, match="split is empty") as err:
            train(replace(CFG, dataset=f"npz:{tmp_path / f'n{n}.npz'}"), **QUIET)
        assert f"n{n}.npz" in str(err.value)


def _poison_step(monkeypatch, nth: int, term: str = "recon"):
    """Make the loss term ``term`` NaN at the ``nth`` training step from now on."""
    from galib import losses
    real, calls = losses.ald_losses, {"n": 0}

    def poisoned(model, x, gx, g, *args):
        out = real(model, x, gx, g, *args)
        if model.training:
            calls["n"] += 1
            if calls["n"] == nth:
                out = {**out, term: out[term] * float("nan")}
                out["loss"] = out["recon"] + out["inv"] + out["const"]
        return out
    monkeypatch.setattr(losses, "ald_losses", poisoned)     # PairLoss picks it up when built


def test_7_non_finite_loss_stops_keeps_last_good_and_exits_non_zero(monkeypatch, tiny_npz,
                                                                      tmp_path, capsys):
    cfg = replace(CFG, dataset=f"npz:{tiny_npz}")
    train(replace(cfg, epochs=1), tmp_path / "r", **QUIET)
    before = hashes(tmp_path / "r")
    _poison_step(monkeypatch, nth=3)                          # epoch 2 (resumed), step 3 of 4
    with pytest.raises(NonFiniteError, match="epoch 2, step 3 of 4: term recon") as err:
        train(cfg, tmp_path / "r", **QUIET)
    assert "last.pt (epoch 1) is kept" in str(err.value)
    assert hashes(tmp_path / "r") == before
    _poison_step(monkeypatch, nth=1, term="inv")
    with pytest.raises(SystemExit) as exit_:
        run_cli(main, ["--dataset", cfg.dataset, "--max-train", "256", "--epochs", "3",
                       "--latent-channels", "8", "--device", "cpu", "--no-progress",
                       "--run-dir", str(tmp_path / "r")])
    assert exit_.value.code == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "epoch 2, step 1 of 4: term inv" in err_lines[0]
    assert hashes(tmp_path / "r") == before


# ----------------------------------------------------------------------------- 9-11: errors, files
def _damaged_copies(src: Path, folder: Path) -> dict:
    data = src.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2: len(data) // 2 + 4] = bytes(b ^ 0xFF for b in flipped[len(data) // 2:
                                                                                 len(data) // 2 + 4])
    torch.save({"weights": torch.zeros(3)}, folder / "keyless.pt")
    torch.save({"config": {}, "model": {}, "image_shape": [], "x": Path("p")}, folder / "unsafe.pt")
    out = {"truncated": data[: len(data) // 2], "empty": b"", "random": os.urandom(4096),
           "flipped": bytes(flipped)}
    for name, content in out.items():
        (folder / f"{name}.pt").write_bytes(content)
    return {name: folder / f"{name}.pt" for name in [*out, "keyless", "unsafe"]}


def test_9_bad_checkpoints_name_the_file_and_never_suggest_unsafe_loading(run, tmp_path):
    for kind, path in _damaged_copies(run / "best.pt", tmp_path).items():
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        msg = str(err.value)
        assert str(path) in msg and "weights_only" not in msg, (kind, msg)
        assert err.value.__cause__ is None, kind
    assert "CRC" in str(pytest.raises(CheckpointError, load_checkpoint, tmp_path / "flipped.pt").value)


@pytest.mark.parametrize("side", [30, 14])
def test_9_image_sizes_the_model_cannot_take(side):
    from galib.datasets import DataSplits, ImageSet
    s = ImageSet(torch.zeros(8, side, side, dtype=torch.uint8), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match=f"images of size {side}x{side} do not fit") as err:
        train(replace(CFG, epochs=1), data=DataSplits("odd", "test", s, s, s), **QUIET)
    assert f"Sizes that fit near {side}: " in str(err.value)
    assert ("28, 32" if side == 30 else "12, 16") in str(err.value)


def test_9_disk_full_names_the_path_and_keeps_the_old_file(tmp_path):
    import errno
    path = tmp_path / "last.pt"
    write_bytes(path, b"old")

    def full(p):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(WriteError, match="no space left") as err:
        atomic_write(path, full)
    assert str(path) in str(err.value) and path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]


def test_10_unwritable_run_dir_fails_before_training(tiny, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    from galib.train import loop
    monkeypatch.setattr(loop, "run_epoch", lambda *a, **k: pytest.fail("trained before failing"))
    with pytest.raises(RunError, match="cannot be written") as err:
        train(CFG, tmp_path / "a-file" / "run", data=tiny, **QUIET)
    assert str(tmp_path / "a-file" / "run") in str(err.value)


def test_11_stale_temp_files_are_removed(run, tiny):
    (run / ".last.pt.abc123.tmp").write_bytes(b"half")
    (run / ".history.json.x.tmp").write_bytes(b"half")
    train(CFG, run, data=tiny, **QUIET)
    assert not list(run.glob(".*.tmp"))


def test_11_flipped_bytes_in_last_pt_are_caught_then_repaired(run, tiny, finished):
    data = bytearray((run / "last.pt").read_bytes())
    for i in range(4):
        data[len(data) // 2 + 97 * i] ^= 0x5A
    (run / "last.pt").write_bytes(bytes(data))
    msg = refused(run, CFG, tiny, match="last.pt is damaged .*CRC-32")
    assert "--repair" in msg
    res = train(CFG, run, data=tiny, repair=True, **QUIET)
    assert (run / "last.pt.damaged").read_bytes() == bytes(data)
    assert same_weights(res.model.state_dict(), finished[1].model.state_dict())


def test_11_an_empty_last_pt_then_deleting_it_is_never_a_silent_restart(run, tiny):
    (run / "last.pt").write_bytes(b"")
    refused(run, CFG, tiny, match="last.pt is damaged \\(empty")
    (run / "last.pt").unlink()
    refused(run, CFG, tiny, match="last.pt is missing")


def test_11_writes_are_flushed_to_disk(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    write_bytes(tmp_path / "x.bin", b"data")
    assert len(synced) == 2                                    # the file, then its folder entry


def test_fresh_moves_the_old_run_aside(run, tiny):
    before = hashes(run)
    res = train(replace(CFG, epochs=1, tau=0.3), run, data=tiny, fresh=True, **QUIET)
    assert res.config.tau == 0.3 and len(res.history) == 1
    assert {f"previous-1/{k}": v for k, v in before.items()} .items() <= hashes(run).items()


# ----------------------------------------------------------------------------- files of older galib
def test_runs_written_before_the_fingerprint_still_resume(finished, tiny, tmp_path):
    """Checkpoints and history.json without ``data_fingerprint`` (written by the code before
    issue 14) load, resume and end where the uninterrupted run ends."""
    root, full = finished
    shutil.copytree(root / "epoch2", tmp_path / "old")
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / "old" / name, weights_only=True)
        del ckpt["data_fingerprint"]
        torch.save(ckpt, tmp_path / "old" / name)
    saved = json.loads((tmp_path / "old" / "history.json").read_text())
    del saved["data_fingerprint"]
    (tmp_path / "old" / "history.json").write_text(json.dumps(saved))
    res = train(CFG, tmp_path / "old", data=tiny, **QUIET)
    assert same_weights(weights(tmp_path / "old" / "last.pt"), weights(root / "run" / "last.pt"))
    assert same_weights(res.model.state_dict(), full.model.state_dict())
    assert rows(res.history) == rows(full.history)


def test_a_save_interrupted_by_the_older_write_order_is_completed(finished, tiny, tmp_path):
    """The code before issue 14 wrote best.pt before last.pt: a kill between them left best.pt one
    epoch ahead. That best.pt is the newer state, and becomes last.pt."""
    root, full = finished
    shutil.copytree(root / "epoch2", tmp_path / "old")
    shutil.copy(root / "run" / "best.pt", tmp_path / "old" / "best.pt")      # epoch 3 (improved)
    assert torch.load(tmp_path / "old" / "best.pt", weights_only=True)["epoch"] == 2
    res = train(CFG, tmp_path / "old", data=tiny, **QUIET)
    assert (tmp_path / "old" / "last.pt").read_bytes() == (root / "run" / "best.pt").read_bytes()
    assert same_weights(res.model.state_dict(), full.model.state_dict())


# ----------------------------------------------------------------------------- swapped, stale, odd
def _consistent_best_at_epoch_2(run: Path, root: Path, tiny) -> tuple[bytes, bytes]:
    """``run`` as a finished run whose best epoch (2) is not its last (3); its (last, best) bytes."""
    _best_at_epoch_2(run, root)
    train(CFG, run, data=tiny, **QUIET)                        # rebuilds history.json: consistent
    assert not list(run.glob("*.damaged*"))
    return (run / "last.pt").read_bytes(), (run / "best.pt").read_bytes()


def test_swapped_last_and_best_are_refused_changing_nothing_then_swapped_back(
        run, tiny, finished, capsys):
    """last.pt and best.pt swapped by hand (best epoch 2, last 3; 40 and 41 in the report): a plain
    resume must not copy best.pt over last.pt (that lost the best epoch's weights)."""
    last, best = _consistent_best_at_epoch_2(run, finished[0], tiny)
    (run / "last.pt").write_bytes(best)
    (run / "best.pt").write_bytes(last)
    before = hashes(run)
    with pytest.raises(RunError, match="are swapped") as err:
        train(CFG, run, data=tiny, progress=False)
    assert hashes(run) == before
    assert "copied" not in capsys.readouterr().out and "--repair" in str(err.value)
    res = train(CFG, run, data=tiny, repair=True, progress=False)
    assert "swapped last.pt and best.pt back" in capsys.readouterr().out
    assert (run / "last.pt").read_bytes() == last and (run / "best.pt").read_bytes() == best
    assert (run / "best.pt.damaged").read_bytes() == last      # set aside, never overwritten
    assert res.best["epoch"] == 2 and same_weights(res.model.state_dict(), weights(run / "best.pt"))


def test_a_save_cut_by_the_older_write_order_still_completes_without_repair(finished, tiny, tmp_path):
    """The other end: best.pt one epoch ahead *and* the best of its own history is a cut save,
    completed as before (the swap above is not)."""
    root, _ = finished
    shutil.copytree(root / "epoch2", tmp_path / "old")
    shutil.copy(root / "run" / "best.pt", tmp_path / "old" / "best.pt")
    train(CFG, tmp_path / "old", data=tiny, **QUIET)
    assert not list((tmp_path / "old").glob("*.damaged*"))


def test_stale_last_pt_is_refused_then_resumed_from_the_newer_best_pt(run, tiny, finished, capsys):
    """last.pt of epoch 1 of the same run put back into a finished run whose best epoch is 2 of 3
    (epoch 20 in a 41-epoch run in the report): refused changing nothing; --repair sets only
    last.pt aside, resumes from best.pt (epoch 2), keeps history.json (one row ahead of it) and
    ends where the uninterrupted run ends."""
    root, full = finished
    _consistent_best_at_epoch_2(run, root, tiny)
    good_history = (run / "history.json").read_bytes()
    stale = (root / "epoch1" / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(stale)
    msg = refused(run, CFG, tiny, match="last.pt is an older state of the same run")
    assert "resumes from best.pt (epoch 2)" in msg and "not the best epoch" not in msg
    res = train(CFG, run, data=tiny, repair=True, progress=False)
    out = capsys.readouterr().out
    assert "history.json is 1 epoch(s) ahead of last.pt" in out and "another run" not in out
    assert sorted(p.name for p in run.glob("*.damaged*")) == ["last.pt.damaged"]
    assert (run / "last.pt.damaged").read_bytes() == stale
    assert json.loads(good_history)["history"][2]["val_loss"] == 9.9   # the kept row (edited)
    assert same_weights(weights(run / "last.pt"), weights(root / "run" / "last.pt"))
    assert same_weights(res.model.state_dict(), full.model.state_dict())
    assert rows(res.history) == rows(full.history)


def test_a_folder_named_last_pt_is_named_as_such(run, tiny):
    (run / "last.pt").unlink()
    (run / "last.pt").mkdir()
    msg = refused(run, CFG, tiny, match="last.pt is damaged \\(a folder, not a checkpoint file\\)")
    assert "--repair" in msg
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        load_checkpoint(run / "last.pt")


def test_a_run_dir_that_is_a_file_is_named_as_such(tiny, tmp_path):
    (tmp_path / "run").write_text("not a folder")
    before = hashes(tmp_path)
    with pytest.raises(RunError, match="is a file, not a folder") as err:
        train(CFG, tmp_path / "run", data=tiny, **QUIET)
    assert str(tmp_path / "run") in str(err.value) and "Errno" not in str(err.value)
    assert hashes(tmp_path) == before
