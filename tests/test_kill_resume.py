"""Kill/resume: a training process SIGKILLed at random points (a training step, a temporary file
written, a file renamed), and right after it replaces ``last.pt`` (inside the save of an epoch),
resumes to the same weights, optimizer state and ``history.json`` as an uninterrupted run, with
nothing left behind.

The kills are placed by events, not by clocks, so that their number and places do not depend on
the machine's speed or load: the training process reports each optimizer step and each
``os.replace`` (before: its temporary file is written; after: the file is replaced) through a
pipe and waits for the test's go-ahead, and the test SIGKILLs it while it waits at the chosen
event. Every attempt is killed before a second epoch is saved, so 10 epochs take at least 10 kills.

The training processes are forked from this one (no interpreter start-up per run) and use one
thread each, like a DataLoader worker, so that the forked runs are reproducible.
"""
import json
import os
import random
import select
import signal
import traceback
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from galib.datasets import load_dataset
from galib.train import TrainConfig, train

CFG = TrainConfig(dataset="glyphs", max_train=256, epochs=10, latent_channels=8, device="cpu", threads=1)
STALL_S = 300                 # a child silent this long is hung: fail (a guard, not a schedule)


@pytest.fixture(scope="module")
def tiny():
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])     # its first use imports torch._dynamo
    return load_dataset("glyphs", seed=0, glyphs_sizes=(400, 64), max_train=256, verbose=False)


def _report_events(run_dir: Path, to_parent: int, from_parent: int) -> None:
    """In the child: report each optimizer step and each os.replace into ``run_dir``, and wait for
    the parent's go-ahead after each."""
    def event(name: str) -> None:
        os.write(to_parent, name.encode() + b"\n")
        if os.read(from_parent, 1) != b"g":
            os._exit(3)                                        # the parent went away

    register_optimizer_step_post_hook(lambda *_: event("step"))
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        inside = Path(dst).parent == run_dir
        if inside:
            event(f"tmp {Path(dst).name}")
        real_replace(src, dst, *args, **kwargs)
        if inside:
            event(f"replaced {Path(dst).name}")
    os.replace = replace                                       # this forked child only


def _spawn(run_dir: Path, data, gated: bool = False):
    """Fork a training process; ``(pid, events)`` where ``events`` (gated only) is
    ``(read end of its reports, write end of its go-aheads)``."""
    pipes = (os.pipe(), os.pipe()) if gated else None
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            torch.set_num_threads(1)
            if gated:
                os.close(pipes[0][0])
                os.close(pipes[1][1])
                _report_events(run_dir, pipes[0][1], pipes[1][0])
            train(CFG, run_dir, data=data, progress=False, verbose=False)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    if not gated:
        return pid, None
    os.close(pipes[0][1])
    os.close(pipes[1][0])
    return pid, (pipes[0][0], pipes[1][1])


def _events(fd: int):
    """The child's reports, one per line, until it exits (EOF)."""
    buf = b""
    while True:
        ready, _, _ = select.select([fd], [], [], STALL_S)
        assert ready, f"the training process reported nothing for {STALL_S} s"
        chunk = os.read(fd, 4096)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode()


def _kill_once(run_dir: Path, data, rng: random.Random, at_write: bool) -> bool:
    """Run a training process and SIGKILL it at a random event of its first epoch (any time), or
    at a random event from the moment it replaces last.pt (at a write); False if it finished."""
    pid, (reports, go) = _spawn(run_dir, data, gated=True)
    target, armed, killed = rng.randint(1, 14), None, False
    try:
        for n, name in enumerate(_events(reports), 1):
            if at_write and armed is None and name == "replaced last.pt":
                armed = n + rng.randint(0, 4)                  # inside best.pt / history.json writes
            stop = (armed is not None and n >= armed) if at_write else \
                (n >= target or name == "replaced history.json")
            if stop:
                os.kill(pid, signal.SIGKILL)                   # it waits for our go-ahead
                killed = True
                break
            os.write(go, b"g")
    finally:
        os.close(reports)
        os.close(go)
        _, status = os.waitpid(pid, 0)
    if not killed:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return killed and os.WIFSIGNALED(status)


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
    pid, _ = _spawn(run_dir, data)
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
        if not _kill_once(run_dir, tiny, rng, at_write):
            break
        kills.append(f"{'at a write' if at_write else 'any time'}: {_after_kill(run_dir)}")
    print("\n".join(["after each SIGKILL:", *kills]))
    _run_to_end(run_dir, tiny)
    got = _state(run_dir)
    assert len(kills) >= CFG.epochs, kills                    # at most one epoch saved per kill
    assert _equal(got["last"]["model"], ref["last"]["model"])
    assert _equal(got["last"]["optimizer"], ref["last"]["optimizer"])
    assert _equal(got["best"]["model"], ref["best"]["model"])
    assert (got["last"]["epoch"], got["last"]["best_val"]) == (ref["last"]["epoch"], ref["last"]["best_val"])
    assert got["rows"] == ref["rows"] and len(got["rows"]) == CFG.epochs
    assert (got["config"], got["data"]) == (ref["config"], ref["data"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.pt", "history.json", "last.pt"]
