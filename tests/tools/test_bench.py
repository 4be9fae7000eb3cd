"""The benchmark's code path on a tiny run: structure and finite values (never speed)."""
import json
import math

import pytest
import torch

from galib.tools import bench
from galib.tools.score_bench import ROW_FEATURES
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
    res = bench.main(["--quick", "--pipelines", "galib,naive", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert res["meta"]["dataset"] == "glyphs" and res["meta"]["n_train"] == 4 * bench.BATCH
    assert res["meta"]["threads"] == 1 and res["meta"]["repeats"] == 1
    assert res["matmul_gflops"]["peak"] > 0
    for name in ("galib", "naive"):
        p = res["pipelines"][name]
        assert len(p["runs"]) == 1 and p["runs"][0]["n_val"] == bench.BATCH
        for key in ("train_s", "val_s", "epoch_s", "epoch_cpu_s", "window_step_s", "peak_rss_mb"):
            assert math.isfinite(p[key]["min"]) and p[key]["min"] > 0, (name, key)
        assert math.isfinite(p["train_pct_of_matmul_peak"]) and p["train_pct_of_matmul_peak"] > 0
        assert all(math.isfinite(v) and v > 0 for v in p["val_loss"])
        assert p["peak_rss_mb"]["min"] >= p["rss_before_epoch_mb"]["min"]
    assert res["pipelines"]["galib"]["flops_per_train_sample"] == GALIB_FLOPS["train"]
    assert set(res["speedups"]) == {"galib"} and res["speedup"] == res["speedups"]["galib"]
    assert set(res["speedup"]) == {"epoch_min", "epoch_median", "train_min", "epoch_cpu_min",
                                   "epoch_paired"}
    assert len(res["speedup"]["epoch_paired"]) == 1                  # one ratio per repeat
    table = capsys.readouterr().out
    assert "galib speed-up over naive" in table and "MFLOP / train sample" in table
    assert list(res["probe"]["variants"]) == list(bench.PROBE_VARIANTS)      # make bench scores too
    assert res["probe"]["fit_over_training_epoch"] > 0 and "one galib probe fit" in table
    row = res["score_row"]                                   # one scored row against its training
    assert set(row["parts_cpu_s"]) >= {"test scores", "encoding + feature maps", "swap scores"}
    assert sum(k.startswith("probe fits ") for k in row["parts_cpu_s"]) == len(ROW_FEATURES)
    assert row["row_cpu_s"] == sum(row["parts_cpu_s"].values()) > 0
    assert row["row_over_training"] == row["row_cpu_s"] / (50 * row["epoch_cpu_s"])
    assert row["probe"]["evals"] > 0 and row["probe"]["gflops"] > 0
    assert "one scored row" in table and "the row costs" in table


def test_default_pipelines_follow_the_cpu(monkeypatch):
    monkeypatch.setattr(bench, "amp_problem", lambda device: None)
    assert bench.default_pipelines() == ["galib", "galib-bf16", "naive"]
    monkeypatch.setattr(bench, "amp_problem", lambda device: "no bf16")
    assert bench.default_pipelines() == ["galib", "naive"]


def test_unknown_pipeline_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--pipelines", "galib,fast", "--out", str(tmp_path / "r.json")])
    assert "--pipelines 'galib,fast': unknown ['fast']; choose from" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_speedups_pair_each_repeat():
    def pipe(epochs):
        runs = [{"repeat": r, "epoch_s": e} for r, e in enumerate(epochs)]
        mm = {"min": min(epochs), "median": sorted(epochs)[len(epochs) // 2]}
        return {"runs": runs, "epoch_s": mm, "train_s": mm, "epoch_cpu_s": mm}
    sp = bench._speedups({"galib": pipe([1.0, 2.0, 1.0]), "naive": pipe([3.0, 3.0, 4.0])})
    assert sp["galib"]["epoch_paired"] == [3.0, 1.5, 4.0]
    assert sp["galib"]["epoch_min"] == 3.0
    assert bench._speedups({"galib": pipe([1.0])}) == {}             # no naive run: no ratio


def test_background_load_starts_and_stops():
    procs = bench.start_load(2, limit_s=60)
    assert all(p.poll() is None for p in procs)                       # running
    bench.stop_load(procs)
    assert all(p.returncode is not None for p in procs)               # ended, reaped
    assert bench.start_load(0) == []


def test_thread_study_worker_trains_with_the_asked_threads(capsys):
    before = torch.get_num_threads()
    try:
        bench.main(["--train-worker", "--dataset", "glyphs", "--n-train", "64", "--epochs", "1",
                    "--threads", "1"])
    finally:
        torch.set_num_threads(before)
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["threads"] == 1 and len(row["epoch_s"]) == 1 and math.isfinite(row["val_loss"])


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


def test_epoch_parts_names_every_part(tmp_path):
    res = bench.main(["--epoch-parts", "--dataset", "glyphs", "--n-train", "160", "--threads", "1",
                      "--out", str(tmp_path / "parts.json")])
    assert set(res["cpu_s"]) == {"train steps", "pair building alone", "validation",
                                 "check params + row + best clone",
                                 "save (last.pt, best.pt, history.json)", "save, wall seconds (fsync)"}
    assert all(v >= 0 and math.isfinite(v) for v in res["cpu_s"].values())


@pytest.mark.skipif(bench.amp_problem("cpu") is not None, reason="this CPU has no native bf16")
def test_amp_check_compares_fp32_and_bf16_per_seed(tmp_path):
    res = bench.main(["--amp-check", "--dataset", "glyphs", "--n-train", "96", "--epochs", "1",
                      "--threads", "1", "--out", str(tmp_path / "amp.json")])
    assert [(r["seed"], r["amp"]) for r in res["rows"]] == [(42, False), (42, True), (7, False), (7, True)]
    assert res["max_abs_diff"] >= 0 and res["fp32_seed_spread"] > 0
    assert isinstance(res["same_mask"], bool)


def test_step_ab_times_every_variant(tmp_path):
    res = bench.main(["--step-ab", "--threads", "1", "--repeats", "0", "--out", str(tmp_path / "s.json")])
    native = bench.amp_problem("cpu") is None
    expected = [k for k, (amp, *_) in bench.STEP_VARIANTS.items() if native or not amp]
    assert list(res["cpu_ms_per_step"]) == expected
    assert all(v > 0 and math.isfinite(v) for v in res["cpu_ms_per_step"].values())


@pytest.mark.parametrize("argv,match", [
    (["--seed", "1099511627776000"], "argument --seed: must be an integer in [0, 1099511627775]"),
    (["--threads", "0"], "argument --threads: must be an integer >= 1; got 0"),
    (["--repeats", "-1"], "argument --repeats: must be an integer >= 0; got -1"),
    (["--pipelines", "xx"], "--pipelines 'xx': unknown ['xx']"),
    (["--epochs-fraction", "nan"], "--epochs-fraction must be in (0, 1]; got nan"),
])
def test_bad_values_are_one_line_before_anything_runs(argv, match, capsys):
    """Issue 27: every CLI turns a bad value into one line (the error first, no usage block)."""
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and match in err[0] and len(err) == 2, err


def test_quick_probe_section_compares_the_fits(tmp_path, capsys):
    """Issue 24: the probe fit before and after, timed in one run; structure, never speed."""
    out = tmp_path / "probe.json"
    res = bench.main(["--quick", "--probe", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    m = res["meta"]
    assert (m["n_train"], m["features"], m["threads"]) == (4 * bench.BATCH, 3136, 1)
    assert m["repeats"] == 1
    assert list(res["variants"]) == list(bench.PROBE_VARIANTS)
    for name, v in res["variants"].items():
        assert v["cpu_s"] > 0 and v["evals"] > 0 and math.isfinite(v["gflops"]), name
        assert 0 <= v["max_val_diff"] <= 1 and v["l2"] in v["val_scores"], name   # see test_probe
    assert res["variants"][bench.PROBE_BEFORE]["speedup"] == 1.0
    assert res["matmul_gflops"]["peak"] > 0
    assert "galib's probe fit over the old protocol's autograd fit" in capsys.readouterr().out
