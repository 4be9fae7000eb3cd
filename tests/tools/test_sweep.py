"""galib.tools.sweep: one tiny plan through every executor gives bit-identical weights; a killed
sweep, run again, ends bit-identical to an uninterrupted one; a failing training is reported, the
trainings that need it are skipped and the rest finish; the profiles' dry runs count the plan."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from galib.experiments.plan import DataRequest, NotSweptError, Scoring, Training, merge
from galib.tools.executors import EngineOptions
from galib.tools.sweep import main, profile_plan, summary, sweep
from galib.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = {"common": {"dataset": "glyphs", "max_train": 320, "max_test": 64, "epochs": 2,
                   "latent_channels": 8, "device": "cpu"},
        "notebooks": {"05_linear_probe": {"baselines": ["pixels", "ald", "random"], "seeds": [42, 43]}}}


def _profile(tmp_path: Path, epochs: int = 2) -> Path:
    prof = json.loads(json.dumps(TINY))
    prof["common"]["epochs"] = epochs
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(prof))
    return path


def _weights(run_root: Path) -> dict[str, dict]:
    """Every run's checkpoints under ``run_root``: {relative path: state dict}."""
    out = {}
    for ckpt in sorted(run_root.rglob("*.pt")):
        out[str(ckpt.relative_to(run_root))] = torch.load(ckpt, weights_only=True)["model"]
    return out


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        for k in a[name]:
            assert torch.equal(a[name][k], b[name][k]), (name, k)


def test_the_plan_of_a_profile(tmp_path):
    plan = profile_plan(str(_profile(tmp_path)), tmp_path / "runs", only="05")
    trainings = [t for t in plan if isinstance(t, Training)]
    assert [t.key for t in trainings] == ["05:baselines/ald/seed42", "05:baselines/ald/seed43",
                                          "05:baselines/random/seed42", "05:baselines/random/seed43"]
    assert trainings[2].needs == ("05:baselines/ald/seed42",)
    scorings = {s.key: s for s in plan if isinstance(s, Scoring)}
    assert sorted(scorings) == sorted(["05:baselines/rows/pixels/seed42", "05:baselines/budget"] + [
        f"05:baselines/rows/{n}/seed{s}" for n in ("ald", "random") for s in (42, 43)])
    assert scorings["05:baselines/rows/pixels/seed42"].needs == ()          # no model: scored once
    assert scorings["05:baselines/rows/random/seed43"].needs == (
        "05:baselines/random/seed43", "05:baselines/ald/seed43")
    assert scorings["05:baselines/budget"].needs == ("05:baselines/ald/seed42",
                                                     "05:baselines/rows/ald/seed42")
    keys = [t.key for t in plan]                  # every task after what it needs
    assert all(keys.index(n) < keys.index(t.key) for t in plan for n in t.needs)
    shared = profile_plan(str(_profile(tmp_path)), tmp_path / "runs", only="02,05")
    assert sum(isinstance(t, Training) for t in shared) == 4   # 02's run is 05's ald of the base seed
    assert "02:baselines/ald/seed42/test" in {t.key for t in shared}
    shared = {s.key: s for s in shared}
    assert shared["02:baselines/ald/seed42/test"].needs == ("02:baselines/ald/seed42",)
    assert shared["05:baselines/rows/ald/seed42"].needs == ("02:baselines/ald/seed42",)  # merged


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    assert main(["--profile", str(_profile(tmp)), "--only", "05", "--run-root", str(tmp / "runs"),
                 "--jobs", "2", "--threads", "1", "--no-progress"]) == 0
    return tmp / "runs"


def test_a_second_sweep_trains_nothing(local_run, capsys):
    prof = next(local_run.parent.glob("tiny.json"))
    assert main(["--profile", str(prof), "--only", "05", "--run-root", str(local_run),
                 "--no-progress"]) == 0
    assert "4 already finished, 0 to run; 6 scorings, 0 to score" in capsys.readouterr().out


def test_the_sweep_scores_every_row_and_the_study_only_reads_them(local_run, monkeypatch):
    """After the sweep every row 05 reads is cached: run_baselines under GALIB_EXPECT_TRAINED
    reads them all (it would raise naming a row it had to score); a row with other settings is
    an error naming it."""
    from galib.studies.baselines import run_baselines
    from galib.experiments.plan import EXPECT_ENV
    from galib.studies.probes import eval_settings
    from galib.studies.params import notebook_config
    from galib.tools.profiles import load_profile, notebook_parameters
    prof = load_profile(str(next(local_run.parent.glob("tiny.json"))))
    params, cfg = notebook_config("05_linear_probe", notebook_parameters(
        prof, "05_linear_probe", local_run.parent / "fig", local_run, {}))
    settings = eval_settings(params)
    data = DataRequest.of(cfg, max_test=params["max_test"]).load()
    monkeypatch.setenv(EXPECT_ENV, "1")
    rows = run_baselines(cfg, params["baselines"], params["baseline_dir"], data=data,
                         settings=settings, seeds=params["seeds"], verbose=False)
    assert len(rows) == 6 and all("probe/z/a" in r for r in rows if r["name"] != "pixels")
    assert all(r["eval_seconds"] > 0 for r in rows)
    missing = replace(settings, seed=settings.seed + 1)          # a row nobody scored
    with pytest.raises(NotSweptError, match=r"ald \(seed 42\) is not scored .*sweep should have"):
        run_baselines(cfg, ["ald"], params["baseline_dir"], data=data, settings=missing,
                      seeds=[42], verbose=False)


@pytest.mark.parametrize("executor", ["submitit-local", "ray"])
def test_every_executor_gives_the_same_weights(local_run, tmp_path, executor):
    pytest.importorskip("submitit" if executor != "ray" else "ray")
    runs = tmp_path / "runs"
    assert main(["--profile", str(_profile(tmp_path)), "--only", "05", "--run-root", str(runs),
                 "--executor", executor, "--threads", "1", "--no-progress"]) == 0
    _same(_weights(local_run), _weights(runs))


def test_a_killed_sweep_resumes_bit_identical(local_run, tmp_path):
    """SIGKILL the whole sweep (workers included) once the first epoch is on disk, run it again."""
    prof = _profile(tmp_path)
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "galib.tools.sweep", "--profile", str(prof), "--only", "05",
           "--run-root", str(runs), "--jobs", "2", "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and not _an_epoch_written(runs):
            time.sleep(0.05)                      # polling a file: the event is "epoch 1 written"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _an_epoch_written(runs) and not all(
        (runs / "tiny" / "glyphs" / n / "best.pt").is_file()
        for n in ("ald", "ald_seed43", "random", "random_seed43")), "the sweep ended before the kill"
    assert main(["--profile", str(prof), "--only", "05", "--run-root", str(runs), "--jobs", "2",
                 "--threads", "1", "--no-progress"]) == 0
    _same(_weights(local_run), _weights(runs))


def _an_epoch_written(runs: Path) -> bool:
    for hist in runs.rglob("history.json"):
        try:
            if json.loads(hist.read_text()).get("history"):
                return True
        except (OSError, ValueError):
            pass
    return False


def test_a_failing_training_is_reported_and_the_rest_finish(tmp_path, capsys):
    cfg = TrainConfig(dataset="glyphs", max_train=160, epochs=1, latent_channels=8, device="cpu")
    good = DataRequest.of(cfg, max_test=16)
    bad = DataRequest("npz:/no/such/file.npz", None, 42, 160, 16)
    plan = merge([
        Training("bad", cfg, str(tmp_path / "bad"), bad),
        Training("needs-bad", cfg, str(tmp_path / "needs"), good, needs=("bad",)),
        Training("good", cfg, str(tmp_path / "good"), good),
    ])
    outcomes = {o.key: o for o in sweep(plan, "local", EngineOptions(jobs=1, threads=1), progress=False)}
    assert outcomes["bad"].status == "failed" and "no/such/file.npz" in outcomes["bad"].error
    assert outcomes["needs-bad"].status == "skipped" and "bad" in outcomes["needs-bad"].error
    assert outcomes["good"].status == "done" and (tmp_path / "good" / "best.pt").is_file()
    text, status = summary(list(outcomes.values()))
    assert status == 1 and "failed: bad" in text and "skipped: needs-bad" in text
    assert Path(outcomes["bad"].log).is_file()
    out = capsys.readouterr().out                 # no bar (not a terminal): a line per training
    assert "[sweep] failed: bad" in out and "[sweep] 3/3 done: good" in out and "to go" in out


def test_dry_run_counts_the_paper_profile(capsys):
    assert main(["--profile", "paper", "--dry-run", "--run-root", "/nonexistent-galib-runs"]) == 0
    out = capsys.readouterr().out
    assert "profile paper:" in out and "CPU hours" in out


def test_bad_layouts_are_clear_errors(capsys):
    cores = os.cpu_count() or 1
    assert main(["--profile", "smoke", "--jobs", str(cores + 1), "--threads", "1", "--dry-run"]) == 1
    assert "threads" in capsys.readouterr().err
    assert main(["--profile", "smoke", "--only", "xx", "--dry-run"]) == 1
    assert "matches no notebook" in capsys.readouterr().err


def test_a_run_folder_of_another_run_is_reported_with_what_to_do(tmp_path):
    """A run folder holding another run's files fails that training with the run-dir error and a
    hint the sweep can act on (it cannot pass --fresh on)."""
    cfg = TrainConfig(dataset="glyphs", max_train=160, epochs=1, latent_channels=8, device="cpu")
    data = DataRequest.of(cfg, max_test=16)
    (first,) = sweep(merge([Training("a", cfg, str(tmp_path / "run"), data)]), "local",
                     EngineOptions(jobs=1, threads=1), progress=False)
    assert first.status == "done"
    other = TrainConfig(dataset="glyphs", max_train=160, epochs=2, latent_channels=8, device="cpu", lr=0.5)
    (second,) = sweep(merge([Training("b", other, str(tmp_path / "run"), data)]), "local",
                      EngineOptions(jobs=1, threads=1), progress=False)
    assert second.status == "failed" and "move the run folder aside" in second.error


def test_a_profile_names_the_notebooks_it_is_for(capsys):
    """The 3-D profile is meant for 01, 02 and 04 (its "only"); a bad dataset is a one-line error."""
    plan = profile_plan("o3d", "/nonexistent-galib-runs")
    assert [t.key for t in plan] == ["02:baselines/ald/seed42", "02:baselines/ald/seed42/test",
                                     "04:baselines/ald/seed42/swaps"]        # 04 reads its swaps
    assert main(["--profile", "smoke", "--dataset", "no-such", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("[sweep] FAILED: ValueError: unknown dataset 'no-such'") and "Traceback" not in err


def test_a_damaged_run_is_not_counted_finished(tmp_path, monkeypatch, capsys):
    """Issue 27, 1: a finished run whose last.pt was cut to 1000 bytes was "already finished"
    (history.json's rows were counted); now it is reported and handed to the engine, whose
    trainer refuses it naming --repair (the sweep's failure line then says how)."""
    from galib.experiments.plan import train_or_load
    from galib.tools import sweep as sweep_mod
    from tests.synthetic import synthetic_splits
    cfg = TrainConfig(dataset="glyphs", epochs=1, latent_channels=8, device="cpu", seed=0)
    plan = [Training("ok", cfg, str(tmp_path / "ok"), DataRequest.of(cfg)),
            Training("cut", cfg, str(tmp_path / "cut"), DataRequest.of(cfg))]
    data = synthetic_splits(n_train=64, n_val=16, n_test=16)
    for t in plan:
        train_or_load(t, data)
    with open(tmp_path / "cut" / "last.pt", "r+b") as f:
        f.truncate(1000)
    handed = []

    class Engine:
        def close(self):
            pass
    monkeypatch.setattr(sweep_mod, "make_engine", lambda *_a: Engine())
    monkeypatch.setattr(sweep_mod, "run_plan", lambda todo, *_a, **_k: handed.extend(todo) or [])
    sweep(plan, progress=False)
    out = capsys.readouterr().out
    assert [t.key for t in handed] == ["cut"]
    assert "2 trainings, 1 already finished, 1 to run" in out
    assert "[sweep] cut: not counted as finished, its run folder does not verify:" in out
    assert "last.pt is damaged" in out
