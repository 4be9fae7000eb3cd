"""Tests for galib.studies.baselines (and the galib.tools.baseline_table CLI): configs, a tiny end-to-end run with reuse, tables and the CLI."""
import json
import math

import numpy as np
import pytest

from galib.studies.baselines import (BASELINES, DEFAULT_NAMES, baseline_config, baseline_trainings,
                                        format_markdown, results_table, run_baselines, write_table)
from galib.experiments.scoring import EvalSettings
from galib.tools.baseline_table import main
from galib.train import TrainConfig
from tests.synthetic import synthetic_splits

FAST = {"settings": EvalSettings(max_images=32, probe_max_train=96, probe_max_test=64, probe_iters=20,
                                  probe_l2=(1e-2,))}




def tiny_cfg(**kw):
    return TrainConfig(dataset="glyphs", epochs=1, batch_size=64, latent_channels=8, device="cpu",
                       seed=0, **kw)


def test_baseline_configs_differ_only_where_they_should():
    base = tiny_cfg(lambda_inv=0.7)
    assert baseline_config(base, "pixels") is None
    assert baseline_config(base, "ae").mask == "none"
    assert baseline_config(base, "manual").mask == "manual"
    ald = baseline_config(base, "ald")
    assert (ald.mask, ald.lambda_inv, ald.lambda_const) == ("learned", 0.7, 1.0)
    assert baseline_config(base, "recon+inv").lambda_const == 0.0
    rc = baseline_config(base, "recon+const")
    assert rc.lambda_inv == 0.0 and rc.lambda_const == 1.0
    for name in DEFAULT_NAMES[1:]:                       # same encoder/decoder, data, epochs, seed
        cfg = baseline_config(base, name)
        assert (cfg.latent_channels, cfg.epochs, cfg.seed, cfg.dataset) == (8, 1, 0, "glyphs")
    with pytest.raises(ValueError):
        baseline_config(base, "bogus")


# columns that are undefined (None) by design for a row
MATCHED = {f"random-orbit-zv {p}" for p in "abc"}          # the matched control: ald rows only
UNDEFINED = {"ae": {"inv err", "inv err c", "E(z_i) share", "E(z_i) share c", "variant frac", "z_i a", "z_i b",
                    "z_i c", "z_v a", "z_v b", "z_v c"} | MATCHED,
             **{name: MATCHED for name in ("manual", "recon+inv", "recon+const")}}


def test_run_baselines_end_to_end_and_reuse(tmp_path):
    data = synthetic_splits(n_test=96)
    rows = run_baselines(tiny_cfg(), DEFAULT_NAMES, tmp_path / "runs", data=data, verbose=False, **FAST)
    assert [r["name"] for r in rows] == list(DEFAULT_NAMES)
    table = results_table(rows)
    expected_cols = {"model", "recon MSE", "PSNR", "SSIM", "equiv err", "inv err", "equiv err c",
                     "inv err c", "E(z_i) share", "E(z_i) share c", "variant frac"} | MATCHED | {
        f"{f} {p}" for f in ("pixels", "z", "z_i", "z_v", "orbit") for p in "abc"}
    for row, line in zip(rows, table):
        assert set(line) == expected_cols
        for col, value in line.items():
            if col == "model":
                continue
            defined = col.startswith("pixels ") if row["name"] == "pixels" else not (
                col.startswith("pixels ") or col in UNDEFINED.get(row["name"], set()))
            if not defined:
                assert value is None, (row["name"], col)
            else:
                assert isinstance(value, float) and math.isfinite(value), (row["name"], col, value)
    by_name = {r["name"]: r for r in rows}
    assert by_name["manual"]["variant_fraction"] == 0.5
    assert by_name["pixels"]["probe/pixels/a"] > 0.9
    assert all(by_name[n]["epochs"] == 1 for n in DEFAULT_NAMES[1:])

    paths = write_table(rows, tmp_path / "out", stem="tab")
    md = paths["md"].read_text()
    assert md.startswith("| model |") and md.count("\n") == len(rows) + 2
    saved = json.loads(paths["json"].read_text())
    assert saved["table"] == json.loads(json.dumps(table)) and len(saved["rows"]) == len(rows)

    # a second call loads the finished runs and the cached rows: nothing is retrained
    stamps = {n: (tmp_path / "runs" / n / "last.pt").stat().st_mtime_ns for n in DEFAULT_NAMES[1:]}
    again = run_baselines(tiny_cfg(), DEFAULT_NAMES, tmp_path / "runs", data=data, verbose=False, **FAST)
    assert again == json.loads(json.dumps(rows))
    assert stamps == {n: (tmp_path / "runs" / n / "last.pt").stat().st_mtime_ns
                      for n in DEFAULT_NAMES[1:]}
    history = json.loads((tmp_path / "runs" / "ald" / "history.json").read_text())["history"]
    assert len(history) == 1


def test_markdown_formatting_known_answer():
    rows = [{"name": "x", "label": "X", "recon_mse": 0.0123456, "recon_psnr": 20.0,
             "equivariance_error": 1e-7, "probe/z/a": 0.5, "probe/z/b": 0.25, "probe/z/c": 1.0}]
    table = results_table(rows)
    assert list(table[0])[-3:] == ["z a", "z b", "z c"] and table[0]["SSIM"] is None
    md = format_markdown(table)
    assert "| X | 0.012 | 20.000 | — | 1e-07 |" in md
    assert md.splitlines()[1].startswith("| --- | ---: |")


def test_cli_writes_table(tmp_path, capsys):
    splits = synthetic_splits(n_train=160, n_val=40, n_test=64)
    npz = tmp_path / "tiny.npz"
    np.savez(npz, train_images=splits.train.images.numpy(), train_labels=splits.train.labels.numpy(),
             val_images=splits.val.images.numpy(), val_labels=splits.val.labels.numpy(),
             test_images=splits.test.images.numpy(), test_labels=splits.test.labels.numpy())
    out = tmp_path / "out"
    rows = main(["--dataset", f"npz:{npz}", "--epochs", "1", "--latent-channels", "8",
                 "--device", "cpu", "--names", "pixels", "ald", "--out", str(out), "--no-progress",
                 "--eval-max-images", "16", "--probe-max-train", "64", "--probe-max-test", "32",
                 "--probe-iters", "10"])
    assert [r["name"] for r in rows] == ["pixels", "ald"]
    assert (out / "baselines.md").is_file() and (out / "runs" / "ald" / "best.pt").is_file()
    meta = json.loads((out / "baselines.json").read_text())["meta"]
    assert meta["config"]["epochs"] == 1
    assert "| pixels |" in capsys.readouterr().out


def test_every_baseline_is_known():
    assert set(DEFAULT_NAMES) <= set(BASELINES) and "recon" in BASELINES


def test_seeds_and_the_random_mask_control(tmp_path):
    data = synthetic_splits(n_test=64)
    rows = run_baselines(tiny_cfg(), ["ald", "random"], tmp_path / "runs", data=data, verbose=False,
                         seeds=[0, 1], settings=EvalSettings(max_images=32, probe=False))
    assert [(r["name"], r["seed"]) for r in rows] == [("ald", 0), ("random", 0), ("ald", 1), ("random", 1)]
    for s in (0, 1):
        ald, rnd = rows[2 * s], rows[2 * s + 1]
        assert rnd["n_variant"] == ald["n_variant"] and rnd["mask"] == "random"
        assert ald["diverged_epoch"] is None                   # one epoch: nothing to diverge from
    assert (tmp_path / "runs" / "ald").is_dir() and (tmp_path / "runs" / "random_seed1").is_dir()
    table = results_table(rows)
    assert [t["model"] for t in table] == ["ALD (all three)", "random mask"]
    assert table[0]["seeds"] == 2 and table[0]["recon MSE sd"] >= 0
    assert " ± " in format_markdown(table)
    with pytest.raises(ValueError, match="'ald' before 'random'"):
        run_baselines(tiny_cfg(), ["random"], tmp_path / "r2", data=data, verbose=False,
                      settings=EvalSettings(probe=False))


def test_the_plan_names_each_run_once_and_random_needs_ald(tmp_path):
    plan = baseline_trainings(tiny_cfg(), ["pixels", "ald", "random", "manual"], tmp_path, seeds=[0, 1])
    assert [t.key for t in plan] == ["baselines/ald/seed0", "baselines/random/seed0",
                                     "baselines/manual/seed0", "baselines/ald/seed1",
                                     "baselines/random/seed1", "baselines/manual/seed1"]
    assert len({t.run_dir for t in plan}) == len(plan)
    rnd = plan[4]
    assert rnd.needs == ("baselines/ald/seed1",) and rnd.derive == "random-mask-size"
    assert rnd.run_dir == str(tmp_path / "random_seed1") and rnd.data.seed == 0   # base seed's split


def test_a_designs_random_mask_control_needs_that_design(tmp_path):
    names = ["ald-spectrum-norm", "random-mask-spectrum-norm"]
    plan = baseline_trainings(tiny_cfg(), names, tmp_path, seeds=[0])
    rnd = plan[1]
    assert rnd.needs == ("baselines/ald-spectrum-norm/seed0",) and rnd.derive == "random-mask-size"
    assert (rnd.config.mask, rnd.config.zi_design, rnd.config.inv_form) == ("random", "spectrum", "normalised")
    with pytest.raises(ValueError, match="list 'ald-spectrum-norm' before 'random-mask-spectrum-norm'"):
        baseline_trainings(tiny_cfg(), names[::-1], tmp_path)
    with pytest.raises(ValueError, match="list 'ald-orbit-norm' before"):
        baseline_trainings(tiny_cfg(), ["ald", "random-mask-orbit-norm"], tmp_path)


def test_probe_rows_record_the_budget(tmp_path):
    rows = run_baselines(tiny_cfg(), ["pixels"], tmp_path / "runs", data=synthetic_splits(), verbose=False,
                         **FAST)
    assert rows[0]["probe/pixels/iters"] >= 1 and rows[0]["probe/pixels/grad_norm"] >= 0


def test_scoring_in_processes_gives_the_serial_rows(tmp_path, capsys):
    """jobs=2 scores the uncached rows in two spawned processes (one task per seed, the untrained
    baselines in a task of their own); the caller then reads them from the cache, and every score
    equals the serial run's."""
    import shutil
    from dataclasses import replace
    data = synthetic_splits(n_test=64)
    names, seeds = ["pixels", "ald", "random"], [0, 1]
    serial = run_baselines(tiny_cfg(), names, tmp_path / "a", data=data, seeds=seeds, verbose=False, **FAST)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for row in (tmp_path / "b").rglob("row.json"):
        row.unlink()
    capsys.readouterr()
    par = run_baselines(tiny_cfg(), names, tmp_path / "b", data=data, seeds=seeds,
                        settings=replace(FAST["settings"], jobs=2))
    out = capsys.readouterr().out
    assert "scoring 3 tasks (seeds) in 2 processes" in out and out.count("reusing") == 5
    assert "evaluated in" not in out                     # nothing left for the serial pass
    strip = [{k: v for k, v in r.items() if k != "eval_seconds"} for r in serial]
    assert [{k: v for k, v in r.items() if k != "eval_seconds"} for r in par] == strip
    with pytest.raises(ValueError, match="jobs must be a positive integer; got 0"):
        EvalSettings(jobs=0)


def test_probe_budget_reuses_the_rows_fits_exactly(tmp_path):
    """The budget check's base fit is the scored row's probe (same model, seed and budget), so
    reusing the row gives the numbers a refit gives; with every image in use, no '2x images' fit."""
    from galib.experiments.plan import train_or_load
    from galib.studies.probes import probe_budget
    data = synthetic_splits(n_test=64)
    settings = EvalSettings(probe_max_train=None, probe_iters=15)
    (row,) = run_baselines(tiny_cfg(), ["ald"], tmp_path, data=data, verbose=False, settings=settings)
    (t,) = baseline_trainings(tiny_cfg(), ["ald"], tmp_path)
    model = train_or_load(t, data, verbose=False).model
    fresh = probe_budget(model, data, max_train=None, fit={"max_iter": 15})
    reused = probe_budget(model, data, max_train=None, fit={"max_iter": 15}, base=row)
    assert set(fresh["budgets"]) == {"base", "2x iterations"} and reused["base_reused"]
    assert fresh["features"] == reused["features"] and fresh["max_change"] == reused["max_change"]


def test_fewer_seeds_for_some_baselines(tmp_path):
    """05's baseline_seed_counts: random2 and manual train on the first seeds only; the plan, the
    scorings and the rows agree, and a random control without its learned mask is an error."""
    from galib.studies.baselines import all_seeds, baseline_scorings, seed_table
    from galib.studies.probes import baseline_seeds
    from galib.experiments.plan import DataRequest
    names = ["pixels", "ald", "random", "random2", "manual"]
    params = {"seeds": [42, 43, 44, 45], "baselines": names, "baseline_seed_counts": {"random2": 2, "manual": 1}}
    seeds = baseline_seeds(params)
    assert seeds["random2"] == [42, 43] and seeds["manual"] == [42] and seeds["ald"] == [42, 43, 44, 45]
    assert baseline_seeds({**params, "baseline_seed_counts": None}) == [42, 43, 44, 45]
    base = TrainConfig(dataset="glyphs", epochs=1, max_train=64)
    keys = [t.key for t in baseline_trainings(base, names, tmp_path, seeds)]
    assert sum(k.startswith("baselines/random2/") for k in keys) == 2 and "baselines/manual/seed43" not in keys
    assert len(keys) == 4 + 4 + 2 + 1                                        # ald, random, random2, manual
    table = seed_table(base, names, seeds)
    assert all_seeds(table) == [42, 43, 44, 45]
    rows = [s.key for s in baseline_scorings(base, names, tmp_path, seeds, EvalSettings(), DataRequest.of(base))]
    assert "baselines/rows/random2/seed44" not in rows and "baselines/rows/pixels/seed42" in rows
    with pytest.raises(ValueError, match="does not train on seeds \\[44\\]"):
        seed_table(base, ["ald", "random"], {"ald": [42, 43], "random": [42, 44]})
