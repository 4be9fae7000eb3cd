"""A lone training uses the cores it may run on; the count is recorded and a replay reuses it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from galib.devices import available_cores, training_threads

SCRIPT = """
import json, os, sys, torch
os.sched_setaffinity(0, set(json.loads(sys.argv[1])))
from galib.train.cli import main
res = main(sys.argv[2:])
torch.save({k: v for k, v in res.model.state_dict().items()}, os.path.join(sys.argv[-1], "weights.pt"))
"""


def _train(cores, args, run_dir: Path, env=None):
    env = {k: v for k, v in (env or os.environ).items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    cmd = [sys.executable, "-c", SCRIPT, json.dumps(sorted(cores)), *args, "--no-progress",
           "--run-dir", str(run_dir)]
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    ckpt = torch.load(run_dir / "last.pt", weights_only=False)
    return ckpt["config"]["threads"], torch.load(run_dir / "weights.pt")


def test_the_default_is_the_available_cores_and_a_replay_keeps_the_recorded_count(tmp_path):
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs a process allowed on 2 cores")
    args = ["--dataset", "glyphs", "--max-train", "256", "--epochs", "1", "--latent-channels", "8",
            "--device", "cpu"]
    recorded, weights = _train(cores[:2], args, tmp_path / "a")
    assert recorded == 2                                         # the default: both allowed cores
    replay, again = _train(cores[:1], ["--config", str(tmp_path / "a")], tmp_path / "b")
    assert replay == 2                                           # one core allowed, the recorded 2 kept
    assert all(torch.equal(weights[k], again[k]) for k in weights)


def test_training_threads_rule(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    import galib.devices as dev
    monkeypatch.setattr(dev, "_PROCESS_THREADS", [])
    assert training_threads(3, None) == (3, None)
    n, note = training_threads(1, 2)
    assert n == 1 and "resuming at 1 threads" in note and "ran at 2" in note
    assert training_threads(None, 2) == (2, None)                # a resume keeps the recorded count
    assert training_threads(None, None) == (available_cores(), None)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert training_threads(None, None) == (1, None)
    monkeypatch.setattr(dev, "_PROCESS_THREADS", [1])            # a sweep worker configured 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert training_threads(None, None) == (1, None)
