"""Kill/resume: a training process SIGKILLed at random moments, and right after it replaces
``last.pt`` (inside the save of an epoch), resumes to the same weights, optimizer state and
``history.json`` as an uninterrupted run, with nothing left behind.

The training processes are forked from this one (no interpreter start-up per run) and use one
thread each, like a DataLoader worker, so that the forked runs are reproducible.
"""
import json
import os
import random
import signal
import time
import traceback
from pathlib import Path

import pytest
import torch

from galib.datasets import load_dataset
from galib.train import TrainConfig, train

CFG = TrainConfig(dataset="glyphs", max_train=256, epochs=10, latent_channels=8, device="cpu")


@pytest.fixture(scope="module")
def tiny():
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])     # its first use imports torch._dynamo
    return load_dataset("glyphs", seed=0, glyphs_sizes=(400, 64), max_train=256, verbose=False)


def _spawn(run_dir: Path, data) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            torch.set_num_threads(1)
            train(CFG, run_dir, data=data, progress=False, verbose=False)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _stamp(path: Path):
    try:
        st = os.stat(path)
        return st.st_ino, st.st_mtime_ns
    except FileNotFoundError:
        return None


def _kill_once(pid: int, run_dir: Path, rng: random.Random, at_write: bool) -> bool:
    """SIGKILL ``pid`` at a random moment, or just after it replaces last.pt; False if it had
    already finished."""
    deadline = time.monotonic() + (rng.uniform(0.02, 0.4) if not at_write else 30)
    before = _stamp(run_dir / "last.pt")
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return False
        if at_write and _stamp(run_dir / "last.pt") != before:
            time.sleep(rng.uniform(0, 0.003))                  # inside best.pt / history.json writes
            break
        time.sleep(0.0002)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status)


def _after_kill(run_dir: Path) -> str:
    """What a kill left: last.pt's epoch, history.json's rows, best.pt's epoch, temp files."""
    def epoch(name):
        try:
            return torch.load(run_dir / name, weights_only=True)["epoch"] + 1
        except FileNotFoundError:
            return "-"
    try:
        rows = len(json.loads((run_dir / "history.json").read_text())["history"])
    except FileNotFoundError:
        rows = "-"
    temps = len(list(run_dir.glob(".*.tmp")))
    return f"last {epoch('last.pt')} best {epoch('best.pt')} history {rows} tmp {temps}"


def _run_to_end(run_dir: Path, data) -> None:
    pid = _spawn(run_dir, data)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def _state(run_dir: Path) -> dict:
    last = torch.load(run_dir / "last.pt", weights_only=True)
    best = torch.load(run_dir / "best.pt", weights_only=True)
    saved = json.loads((run_dir / "history.json").read_text())
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in saved["history"]]
    return {"last": last, "best": best, "rows": rows, "config": saved["config"], "data": saved["data"]}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_sigkill_at_random_points_then_resume_is_bit_identical(tiny, tmp_path):
    _run_to_end(tmp_path / "reference", tiny)
    ref = _state(tmp_path / "reference")
    rng, run_dir, kills = random.Random(int(os.environ.get("GALIB_KILL_SEED", "14"))), tmp_path / "killed", []
    for attempt in range(14):                                  # alternately: any time / at a write
        at_write = attempt % 2 == 1
        if not _kill_once(_spawn(run_dir, tiny), run_dir, rng, at_write):
            break
        kills.append(f"{'at a write' if at_write else 'any time'}: {_after_kill(run_dir)}")
    print("\n".join(["after each SIGKILL:", *kills]))
    _run_to_end(run_dir, tiny)
    got = _state(run_dir)
    assert len(kills) >= 8, kills
    assert _equal(got["last"]["model"], ref["last"]["model"])
    assert _equal(got["last"]["optimizer"], ref["last"]["optimizer"])
    assert _equal(got["best"]["model"], ref["best"]["model"])
    assert (got["last"]["epoch"], got["last"]["best_val"]) == (ref["last"]["epoch"], ref["last"]["best_val"])
    assert got["rows"] == ref["rows"] and len(got["rows"]) == CFG.epochs
    assert (got["config"], got["data"]) == (ref["config"], ref["data"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.pt", "history.json", "last.pt"]
