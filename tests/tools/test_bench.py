"""The benchmark's code path on a tiny run: structure and finite values (never speed)."""
import json
import math

import pytest
import torch

from galib.tools import bench
from galib.datasets import to_float
from galib.losses import ald_losses
from galib.train import TrainConfig, model_from_config

# Paper model, per sample: encoder 0.200704 + 3.211264 MFLOP, decoder the same (its last layer
# as a matmul), so a forward pass over x, T_g x (encoder) and the decoder is 3 x 3.411968 MFLOP;
# backward: conv1 weight grad 0.200704, conv2 and convT1 2 x 3.211264 each, last layer 0.401408.
GALIB_FLOPS = {"train": 23_683_072, "val": 10_235_904}
NAIVE_EXTRA = 3_411_968                          # the naive pipeline also decodes T_g x


def test_flops_per_sample_are_the_counted_convolutions():
    assert bench.flops_per_sample("galib") == GALIB_FLOPS
    assert bench.flops_per_sample("naive") == {k: v + NAIVE_EXTRA for k, v in GALIB_FLOPS.items()}


def test_naive_pipeline_computes_the_same_losses():
    torch.manual_seed(0)
    model = model_from_config(TrainConfig(dataset="glyphs"), (28, 28))
    images = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8)
    pairs = bench.PerSamplePairs(images, torch.zeros(8, dtype=torch.long), seed=1)
    x, gx, k, _ = torch.utils.data.default_collate([pairs[i] for i in range(8)])
    assert torch.allclose(x, to_float(images), atol=1e-6)
    assert torch.equal(gx, model.group.act_image(x, k))
    ours = ald_losses(model, x, gx, k)
    naive = bench.naive_losses(bench.naive_model(model), x, gx, k)
    for key in ("loss", "recon", "inv", "const"):
        assert naive[key].item() == pytest.approx(ours[key].item(), rel=1e-5, abs=1e-7), key


def test_tiny_benchmark_run_writes_a_complete_report(tmp_path, capsys):
    out = tmp_path / "res.json"
    res = bench.main(["--dataset", "glyphs", "--n-train", "256", "--n-val", "64", "--repeats", "1",
                      "--threads", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert res["meta"]["dataset"] == "glyphs" and res["meta"]["n_train"] == 256
    assert res["matmul_gflops"]["peak"] > 0
    for name in ("galib", "naive"):
        p = res["pipelines"][name]
        assert len(p["runs"]) == 1 and p["runs"][0]["n_val"] == 64
        for key in ("train_s", "val_s", "epoch_s", "epoch_cpu_s", "window_step_s", "peak_rss_mb"):
            assert math.isfinite(p[key]["min"]) and p[key]["min"] > 0, (name, key)
        assert math.isfinite(p["train_pct_of_matmul_peak"]) and p["train_pct_of_matmul_peak"] > 0
        assert all(math.isfinite(v) and v > 0 for v in p["val_loss"])
        assert p["peak_rss_mb"]["min"] >= p["rss_before_epoch_mb"]["min"]
    assert res["pipelines"]["galib"]["flops_per_train_sample"] == GALIB_FLOPS["train"]
    assert set(res["speedup"]) == {"epoch_min", "epoch_median", "train_min", "epoch_cpu_min"}
    table = capsys.readouterr().out
    assert "galib speed-up over naive" in table and "MFLOP / train sample" in table


def test_glyphs_fallback_is_announced(monkeypatch):
    real = bench.load_dataset

    def missing(name, *args, **kwargs):                  # as on a machine without the package
        if name != "glyphs":
            raise bench.DatasetUnavailable(f"dataset {name!r} not found")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(bench, "load_dataset", missing)
    data, note = bench.load_bench_data("fashion-mnist", 64, 16)
    assert data.name == "glyphs" and "fell back to glyphs" in note
    assert (len(data.train), len(data.val)) == (64, 16)
