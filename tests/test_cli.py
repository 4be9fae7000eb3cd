"""The command lines: help from TrainConfig's metadata, --config replay, one-line errors (case 12
of issue 14; the CLI items of issue 13)."""
import json
import os
import subprocess
import sys
from dataclasses import asdict, fields, replace

import numpy as np
import torch
import pytest

from galib.datasets import load_dataset
from galib.train import TrainConfig, config_from_args, config_parser, saved_config, train
from galib.train.cli import main, run_cli
from galib.train.config import describe_field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = TrainConfig(dataset="glyphs", max_train=256, epochs=1, latent_channels=8, device="cpu",
                  tau=0.4, seed=3)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A 1-epoch run of ``CFG`` on glyphs stored as an npz file (so a replay loads the same data)."""
    tiny = load_dataset("glyphs", seed=3, glyphs_sizes=(400, 64), max_train=256, verbose=False)
    root = tmp_path_factory.mktemp("cli")
    np.savez(root / "tiny.npz", **{f"{k}_{part}": getattr(getattr(tiny, k), part).numpy()
                                   for k in ("train", "val", "test") for part in ("images", "labels")})
    cfg = replace(CFG, dataset=f"npz:{root / 'tiny.npz'}")
    before = torch.get_num_threads()
    torch.set_num_threads(1)                # the count is recorded in the run (cfg.threads=1)
    try:
        train(replace(cfg, threads=1), root / "run", progress=False, verbose=False)
    finally:
        torch.set_num_threads(before)
    return root / "run", cfg


def _python(*args, env=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT, **(env or {})}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=240,
                          env=env, cwd=ROOT)


def test_every_field_has_help_and_its_choices():
    text = config_parser().format_help()
    for f in fields(TrainConfig):
        help_text, choices, strict = describe_field(f.name)
        assert help_text, f.name
        assert "--" + f.name.replace("_", "-") in text
        if choices:
            assert all(c in text for c in choices), f.name
    assert "{learned,manual,random,none}" in text and "{paper,pooled,orbit,spectrum}" in text
    assert "fashion-mnist" in text and "c4" in text and "(default: 0.001)" in text
    with pytest.raises(SystemExit):
        config_parser().parse_args(["--mask", "bogus"])


@pytest.mark.parametrize("source", ["dir", "history.json", "last.pt", "best.pt"])
def test_config_replays_a_saved_run_and_flags_override_it(saved_run, source):
    run_dir, saved = saved_run
    path = run_dir if source == "dir" else run_dir / source
    args = config_parser().parse_args(["--config", str(path), "--epochs", "4"])
    replayed = config_from_args(args)
    assert replace(replayed, threads=None) == replace(saved, epochs=4)
    assert isinstance(replayed.threads, int) and replayed.threads >= 1   # the count it trained at
    plain = config_from_args(config_parser().parse_args(["--epochs", "4"]))
    assert plain == TrainConfig(epochs=4)                      # without --config: the defaults


@pytest.mark.parametrize("damage", ["garbage", "no config", "folder"])
def test_config_of_a_run_dir_with_a_bad_history_json_falls_back_to_last_pt(saved_run, tmp_path,
                                                                          damage, capsys):
    import shutil
    run_dir, saved = saved_run
    shutil.copytree(run_dir, tmp_path / "run")
    (tmp_path / "run" / "history.json").unlink()
    if damage == "garbage":
        (tmp_path / "run" / "history.json").write_text("{ not json")
    elif damage == "no config":
        (tmp_path / "run" / "history.json").write_text("[1, 2]")
    else:
        (tmp_path / "run" / "history.json").mkdir()
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    args = config_parser().parse_args(["--config", str(tmp_path / "run")])
    assert replace(config_from_args(args), threads=None) == saved
    if damage != "folder":                                     # a folder is skipped like a missing file
        assert f"using the configuration in {tmp_path / 'run' / 'last.pt'}" in capsys.readouterr().err
    assert before == {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}


def test_config_of_a_folder_named_last_pt_says_it_is_a_folder(tmp_path):
    (tmp_path / "last.pt").mkdir()
    with pytest.raises(FileNotFoundError, match="last.pt: a folder, not a file"):
        saved_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="last.pt: a folder, not a file, and it holds no"):
        saved_config(tmp_path / "last.pt")


def test_config_of_an_old_run_gets_the_legacy_values(tmp_path):
    old = {k: v for k, v in asdict(CFG).items() if k not in ("consistency", "zi_design")}
    (tmp_path / "history.json").write_text(json.dumps({"config": old, "history": []}))
    assert saved_config(tmp_path)["consistency"] == "direct"
    assert config_from_args(config_parser().parse_args(["--config", str(tmp_path)])).tau == 0.4


def test_replay_trains_the_same_run(saved_run, tmp_path, capsys):
    saved_run, saved = saved_run
    res = main(["--config", str(saved_run), "--run-dir", str(tmp_path / "again"), "--no-progress"])
    again = json.loads((tmp_path / "again" / "history.json").read_text())
    first = json.loads((saved_run / "history.json").read_text())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(again["history"]) == strip(first["history"])
    assert replace(res.config, threads=None) == saved and res.config.threads == first["config"]["threads"]
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["best_epoch"] == 1


@pytest.mark.parametrize("argv,match", [
    (["--config", "/no/such/run"], "--config /no/such/run: no such file"),
    (["--lr", "inf"], "lr must be positive and be a finite number; got inf"),
    (["--lambda-inv", "nan"], "lambda_inv must be >= 0 and be a finite number; got nan"),
    (["--dataset", "npz:/no/such.npz"], "/no/such.npz"),
])
def test_errors_are_one_line_and_exit_1(argv, match, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli(main, argv + ["--device", "cpu", "--no-progress"], prog="galib.train")
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("galib.train: error: ") and match in err[0], err


def test_bad_config_file_names_it(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{oops")
    (tmp_path / "bad.pt").write_bytes(b"\0" * 64)
    for name, match in (("bad.json", "is not valid JSON"), ("bad.pt", "bad.pt is not an intact")):
        with pytest.raises(SystemExit):
            run_cli(main, ["--config", str(tmp_path / name)], prog="galib.train")
        err = capsys.readouterr().err
        assert str(tmp_path / name) in err and match in err and "weights_only" not in err


def test_distributed_and_baselines_errors_are_one_line(capsys):
    from galib.tools import baseline_table as baselines, train_ddp as distributed
    for mod, argv in ((distributed, ["--lr", "inf", "--device", "cpu"]),
                      (baselines, ["--config", "/no/such/run"])):
        with pytest.raises(SystemExit) as exit_:
            run_cli(mod.main, argv, prog=mod.__name__)
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 1 and len(err) == 1 and "error:" in err[0], (mod, err)


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="lr must"):
        run_cli(main, ["--lr", "inf", "--debug"])


def test_module_entry_points_without_runpy_warning_and_with_exit_status(tmp_path):
    out = _python("-W", "error", "-m", "galib.train", "--help")
    assert out.returncode == 0 and "--config PATH" in out.stdout and not out.stderr, out.stderr
    bad = _python("-m", "galib.train", "--lr", "inf", "--device", "cpu")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 1 and len(lines) == 1 and "lr must be positive" in lines[0], bad.stderr
    debug = _python("-m", "galib.train", "--lr", "inf", "--device", "cpu", env={"GALIB_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


@pytest.mark.parametrize("argv,match", [
    (["--seed", "1099511627776000"], "argument --seed: must be an integer in [0, 1099511627775]; got 1099511627776000"),
    (["--mask-seed", "1e23"], "argument --mask-seed: must be an integer in [0, 9223372036854775807]; got '1e23'"),
    (["--seed", "-1"], "argument --seed: must be an integer in [0, 1099511627775]; got -1"),
])
def test_huge_seeds_are_refused_up_front_naming_the_flag(argv, match, capsys):
    """Issue 27, 10: "Overflow when unpacking long long", naming no field, after loading the data.
    Now argparse's error, the error line first and a one-line pointer to --help."""
    with pytest.raises(SystemExit) as exit_:
        main(argv + ["--device", "cpu"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and match in err[0] and "--help" in err[1], err


def test_a_replayed_config_with_a_huge_seed_is_refused_before_the_data(tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"config": {"seed": 2 ** 50, "dataset": "npz:/no/such.npz"}}))
    with pytest.raises(SystemExit):
        run_cli(main, ["--config", str(tmp_path / "c.json")], prog="galib.train")
    err = capsys.readouterr().err
    assert f"seed must be an integer in [0, 1099511627775]; got {2 ** 50}" in err and "such.npz" not in err


def test_the_largest_seeds_are_usable():
    from galib.train import epoch_generator
    from galib.train.limits import MAX_MASK_SEED, MAX_SEED, check_seeds
    check_seeds(replace(CFG, seed=MAX_SEED, mask_seed=MAX_MASK_SEED))
    epoch_generator(MAX_SEED, 10 ** 9)                              # seed × 1_000_003 + epoch fits
    torch.Generator().manual_seed(MAX_MASK_SEED)


@pytest.mark.parametrize("argv,match", [
    (["--epochs", "100000000000000000000000"], "epochs must be at most 100000"),
    (["--latent-channels", "4000000"], "latent_channels must be at most 4096"),
])
def test_absurd_sizes_are_refused_unless_asked_for(argv, match, capsys, monkeypatch):
    """Issue 27, 13: no bounds (a typo trained for ever or grew past 2.5 GB); GALIB_NO_LIMITS=1
    lifts them for someone who means it."""
    with pytest.raises(SystemExit) as exit_:
        run_cli(main, argv + ["--device", "cpu", "--dataset", "npz:/no/such.npz"], prog="galib.train")
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 1 and len(err) == 1 and match in err[0] and "GALIB_NO_LIMITS=1" in err[0]
    monkeypatch.setenv("GALIB_NO_LIMITS", "1")
    args = config_parser().parse_args(argv)
    assert config_from_args(args)                                  # checked, then allowed
