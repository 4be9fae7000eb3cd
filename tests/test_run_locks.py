"""Run dir locks with real processes: readers share a finished run, a writer excludes everyone.

No sleeps: the processes meet at multiprocessing barriers and events placed inside the code that
runs while a lock is held, so each test holds whatever the machine's speed (the barrier and join
timeouts only turn a hang into a failure).
"""
import hashlib
import multiprocessing
import os
import shutil
import traceback
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from galib.io import FolderLock, FolderLocked
from galib.train import RunError, TrainConfig, train
from galib.train import loop, runs

CFG = TrainConfig(dataset="glyphs", max_train=256, epochs=2, latent_channels=8, device="cpu",
                  threads=1)     # forked children train at one thread (OpenMP does not survive fork)
QUIET = {"progress": False, "verbose": False}
GUARD_S = 120                 # a barrier or join that takes longer is a hang: fail
MP = multiprocessing.get_context("fork")


@pytest.fixture(scope="module")
def finished(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("locks") / "run"
    result = train(CFG, root, data=tiny, **QUIET)
    return root, result


@pytest.fixture
def run(finished, tmp_path):
    shutil.copytree(finished[0], tmp_path / "run")
    return tmp_path / "run"


def hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _digest(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode() + v.numpy().tobytes())
    return h.hexdigest()


def _child(queue, work) -> None:
    """Run ``work()`` in a forked process; put ``("ok", value)`` or ``("error", message)``."""
    try:
        torch.set_num_threads(1)
        queue.put(("ok", work()))
    except RunError as err:
        queue.put(("error", str(err)))
    except BaseException:                                      # noqa: BLE001 (report, then exit)
        queue.put(("crash", traceback.format_exc()))
    finally:
        queue.close()
        queue.join_thread()
        os._exit(0)


def _run_all(works) -> list:
    queue = MP.Queue()
    procs = [MP.Process(target=_child, args=(queue, w)) for w in works]
    for p in procs:
        p.start()
    results = [queue.get(timeout=GUARD_S) for _ in procs]
    for p in procs:
        p.join(GUARD_S)
        assert p.exitcode == 0, p.exitcode
    return results


def test_folder_lock_shared_and_exclusive(tmp_path):
    a, b = FolderLock(tmp_path).acquire(shared=True), FolderLock(tmp_path).acquire(shared=True)
    with pytest.raises(FolderLocked, match="being read by other processes") as err:
        FolderLock(tmp_path).acquire()                         # a writer waits for no one here
    assert not err.value.writer
    a.release()
    b.release()
    assert not (tmp_path / "run.lock").exists()               # the last reader removed it
    with FolderLock(tmp_path):
        with pytest.raises(FolderLocked, match=f"pid {os.getpid()}") as err:
            FolderLock(tmp_path).acquire(shared=True)
        assert err.value.writer
    assert not (tmp_path / "run.lock").exists()


def test_concurrent_readers_of_a_finished_run_all_succeed(run, tiny, finished, monkeypatch):
    """4 processes read one finished run at once: each waits at a barrier while it holds its lock,
    which only a shared lock lets all 4 reach (an exclusive one refused 48 of 80 reads)."""
    n, before = 4, hashes(run)
    barrier = MP.Barrier(n)
    real_fit = loop._fit

    def fit_at_barrier(*args, **kwargs):                       # runs while open() holds the lock
        barrier.wait(GUARD_S)
        return real_fit(*args, **kwargs)
    monkeypatch.setattr(loop, "_fit", fit_at_barrier)          # inherited by the forked readers
    results = _run_all([lambda: _digest(train(CFG, run, data=tiny, **QUIET).model)] * n)
    assert results == [("ok", _digest(finished[1].model))] * n, results
    assert hashes(run) == before and not (run / "run.lock").exists()


def test_a_reader_during_a_training_gets_a_clear_error(run, tiny, monkeypatch):
    """A training (the run extended to 3 epochs) is held inside its first save; a reader then is
    refused at once, naming the trainer's pid, and changes nothing; after it, reading works."""
    saving, go = MP.Event(), MP.Event()
    real_save = runs.RunDir.save

    def held_save(self, *args, **kwargs):
        saving.set()
        assert go.wait(GUARD_S)
        return real_save(self, *args, **kwargs)
    monkeypatch.setattr(runs.RunDir, "save", held_save)
    queue = MP.Queue()
    writer = MP.Process(target=_child, args=(queue, lambda: len(
        train(replace(CFG, epochs=3), run, data=tiny, **QUIET).history)))
    writer.start()
    try:
        assert saving.wait(GUARD_S)
        monkeypatch.setattr(runs.RunDir, "save", real_save)
        before = hashes(run)
        with pytest.raises(RunError, match="in use by another training") as err:
            train(CFG, run, data=tiny, **QUIET)
        assert f"pid {writer.pid}" in str(err.value) and hashes(run) == before
    finally:
        go.set()
        result = queue.get(timeout=GUARD_S)
        writer.join(GUARD_S)
    assert result == ("ok", 3)
    assert len(train(replace(CFG, epochs=3), run, data=tiny, **QUIET).history) == 3


def test_two_readers_that_both_must_write_never_deadlock(run, tiny, finished, monkeypatch):
    """history.json deleted: both readers must complete it, so both trade their shared lock for
    the exclusive one at the same moment (a barrier). One writes; the other either finds the run
    complete after it or is told who holds the lock. Neither waits for the other forever."""
    original = (run / "history.json").read_bytes()
    (run / "history.json").unlink()
    barrier = MP.Barrier(2)
    real_exclusive = runs.RunDir._exclusive

    def exclusive_at_barrier(self):                            # both hold the shared lock here
        barrier.wait(GUARD_S)
        return real_exclusive(self)
    monkeypatch.setattr(runs.RunDir, "_exclusive", exclusive_at_barrier)
    results = _run_all([lambda: len(train(CFG, run, data=tiny, **QUIET).history)] * 2)
    assert ("ok", 2) in results, results
    assert all(r == ("ok", 2) or (r[0] == "error" and "in use by another training" in r[1])
               for r in results), results
    assert (run / "history.json").read_bytes() == original
