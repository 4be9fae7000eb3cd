"""Data-parallel training: 2 gloo ranks under torchrun give the single-process weights, and both
ranks exit cleanly (barrier, then destroy_process_group)."""
import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from galib.datasets import load_dataset
from galib.train import TrainConfig, train
from galib.train.loop import _shard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def npz_dataset(tmp_path_factory):
    """97 training glyphs (batches of 32, 32, 32 and 1: one rank gets an empty slice) + 40 val."""
    d = load_dataset("glyphs", seed=0, glyphs_sizes=(137, 8), val_fraction=40 / 137, verbose=False)
    path = tmp_path_factory.mktemp("ddp") / "tiny.npz"
    np.savez(path, train_images=d.train.images.numpy(), train_labels=d.train.labels.numpy(),
             val_images=d.val.images.numpy(), val_labels=d.val.labels.numpy(),
             test_images=d.test.images.numpy(), test_labels=d.test.labels.numpy())
    assert (len(d.train), len(d.val)) == (97, 40)
    return f"npz:{path}"


CFG = TrainConfig(epochs=2, batch_size=32, latent_channels=8, seed=3, device="cpu", lr=3e-3)


def test_two_gloo_ranks_match_single_process(npz_dataset, tmp_path):
    cfg = replace(CFG, dataset=npz_dataset)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                     # like each rank: same kernels, closest rounding
    try:
        single = train(cfg, tmp_path / "single", progress=False, verbose=False)
    finally:
        torch.set_num_threads(threads)
    # --standalone: torchrun binds a free port itself (a port picked here and released could be
    # taken by another process before torchrun binds it)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "galib.tools.train_ddp", "--dataset", npz_dataset, "--epochs", "2", "--batch-size", "32",
           "--latent-channels", "8", "--seed", "3", "--lr", "0.003", "--device", "cpu",
           "--run-dir", str(tmp_path / "ddp"), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    summary = json.loads(out.stdout[out.stdout.index("{"):])           # printed by rank 0 only
    assert summary["world_size"] == 2 and summary["backend"] == "gloo"
    assert out.stdout.count('"world_size"') == 1

    a = torch.load(tmp_path / "single" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    assert "mask.logits" in b["model"]                                   # the ALD mask is trained too
    for k in a["model"]:
        ref, got = a["model"][k], b["model"][k]
        rel = ((got - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
        assert rel < 1e-5, (k, rel)
    for ra, rb in zip(a["history"], b["history"]):
        for key in ("train_loss", "val_loss", "val_recon", "val_inv", "val_const"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-5), key
    assert [h["variant_channels"] for h in single.history] == \
        [h["variant_channels"] for h in b["history"]]
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["best.pt", "history.json", "last.pt"]


def test_shard_weights_sum_to_the_global_mean():
    batch = (torch.arange(5.0), torch.arange(5.0) * 2)
    parts = [_shard(batch, r, 2) for r in range(2)]
    assert [p[1] for p in parts] == [3, 2]
    assert torch.equal(torch.cat([p[0][0] for p in parts]), batch[0])
    # each rank's mean loss weighted by world*own/n, averaged over ranks = the global mean
    means = [p[0][0].mean() * (2 * p[1] / 5) for p in parts]
    assert torch.isclose(sum(means) / 2, batch[0].mean())
    (x,), own = _shard((torch.ones(1),), 1, 2)                         # empty slice: weight 0
    assert own == 0 and len(x) == 1
    assert _shard(batch, 0, 1) == (batch, 5)


def test_amp_needs_cuda_or_a_native_bf16_cpu(monkeypatch):
    """(amp's rule is tested in full in test_amp.py; this CPU-only config is the one DDP uses.)"""
    from galib import devices
    if torch.cuda.is_available():
        pytest.skip("CUDA present: amp is allowed")
    monkeypatch.setattr(devices, "cpu_bf16_support", lambda flags=None: None)
    with pytest.raises(ValueError, match="amp=True .* needs a CUDA device or a CPU with native bf16"):
        replace(CFG, dataset="glyphs", amp=True).validate()
