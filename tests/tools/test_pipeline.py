"""Fast checks of galib.tools.pipeline's bookkeeping: RESULTS.md, --set and --only parsing, one-line
errors for bad folders and profiles, and where each profile writes its figures."""
from __future__ import annotations

import pytest

from galib.notebook.context import write_metrics
from galib.tools import pipeline


def test_write_results(tmp_path):
    for stem, summ in (("01_data_pairing", {"n_train": 5}), ("02_training", {"recon_mse": 0.0123456})):
        write_metrics({"dataset": "glyphs", "summary": summ}, tmp_path, stem)
    out = pipeline.write_results(tmp_path, "smoke", {"01_data_pairing": 1.0, "02_training": 2.5}, "abc")
    text = out.read_text()
    assert "profile **smoke**" in text and "dataset **glyphs**" in text and "`abc`" in text
    assert "| 02_training | recon_mse | 0.01235 |" in text and "| total | 4 |" in text


def test_parse_set():
    assert pipeline._parse_set(["epochs=3", "dataset=mnist", "taus=[0.1, 0.2]", "max_train=None"]) == \
        {"epochs": 3, "dataset": "mnist", "taus": [0.1, 0.2], "max_train": None}
    with pytest.raises(pipeline.PipelineError):
        pipeline._parse_set(["epochs"])


def test_flat_and_injected_parameters(tmp_path):
    prof = {"name": "p", "common": {"epochs": 2, "interactive": True},
            "notebooks": {"05_linear_probe": {"epochs": 3, "seeds": [1, 2]}}}
    flat = pipeline.flat_parameters(prof, "05_linear_probe")
    assert flat == {"epochs": 3, "interactive": False, "seeds": [1, 2]}
    full = pipeline.notebook_parameters(prof, "05_linear_probe", tmp_path / "f", tmp_path / "r")
    assert {k: v for k, v in full.items() if k not in ("run_dir", "fig_dir", "baseline_dir")} == flat
    assert full["run_dir"] == str(tmp_path / "r" / "p" / "auto" / "ald")
    assert full["baseline_dir"] == str(tmp_path / "r" / "p" / "auto")


def test_line_stream_keeps_progress_lines():
    seen = []
    s = pipeline.LineStream("02_training", echo=seen.append)
    s.write("TrainConfig(...)\nepoch   1/5  train 0.1\n[galib] run fol")
    s.write("der runs/x: new\n  0%|   | 0/9\r 50%|## | 4/9\rplain\n")
    assert seen == ["  [02_training] epoch   1/5  train 0.1", "  [02_training] [galib] run folder runs/x: new"]


def test_publish_notebook_makes_paths_relative(tmp_path):
    import json
    root = tmp_path / "repo"
    nb = {"cells": [{"cell_type": "code", "source": [f"run_dir = '{root}/runs/x'\n"],
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": [f"saved {root}/figures\n"]},
                                 {"output_type": "display_data",
                                  "data": {"image/png": f"{root}/AAAA", "text/plain": [f"{root}"]}}]}],
          "metadata": {"papermill": {"input_path": f"{root}/notebooks/a.ipynb"}}}
    src = tmp_path / "exec.ipynb"
    src.write_text(json.dumps(nb))
    out = json.loads(pipeline.publish_notebook(src, tmp_path / "pub" / "a.ipynb", root).read_text())
    cell = out["cells"][0]
    assert cell["source"] == ["run_dir = 'runs/x'\n"]
    assert cell["outputs"][0]["text"] == ["saved figures\n"]
    assert cell["outputs"][1]["data"] == {"image/png": f"{root}/AAAA", "text/plain": ["."]}   # images untouched
    assert out["metadata"]["papermill"]["input_path"] == "notebooks/a.ipynb"


def test_missing_checkout_is_a_clear_error(monkeypatch, tmp_path):
    from galib.tools import profiles
    monkeypatch.setattr(profiles, "NOTEBOOK_DIR", tmp_path / "none")
    with pytest.raises(pipeline.PipelineError, match="source checkout"):
        pipeline.load_profile("quick")


def test_only_is_strict():
    """Spaces are ignored; an empty entry or one that matches no notebook is an error (it used to
    run 02 alone for "02, 03", and all six for ",")."""
    assert pipeline.select_notebooks(" 02, 03") == ["02_training", "03_mask_sparsity_vs_tau"]
    assert pipeline.select_notebooks(None) == list(pipeline.NOTEBOOKS)
    for bad in (",", "02,", "07", "02,xx"):
        with pytest.raises(pipeline.PipelineError, match="matches no notebook"):
            pipeline.select_notebooks(bad)


def _main_fails(argv, capsys) -> str:
    assert pipeline.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("[pipeline] FAILED:") and "Traceback" not in err
    return err


def test_bad_folders_and_profiles_are_one_line_errors(tmp_path, capsys):
    """A --run-root that is a file or cannot be created, and a profile with a JSON syntax error, give
    one line (rc 1) before anything runs, never a traceback."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "is a file, not a folder" in _main_fails(["--profile", "smoke", "--run-root", str(a_file)], capsys)
    assert "cannot be created" in _main_fails(
        ["--profile", "smoke", "--run-root", "/proc/galib-no-such-dir/runs"], capsys)
    broken = tmp_path / "broken.json"
    broken.write_text('{"common": {"epochs": 1,}')
    assert "cannot be read" in _main_fails(["--profile", str(broken), "--run-root", str(tmp_path)], capsys)
    assert "matches no notebook" in _main_fails(["--profile", "smoke", "--only", ","], capsys)


def test_ctrl_c_is_a_clean_line(monkeypatch, capsys):
    def interrupted(*_a, **_k):
        raise KeyboardInterrupt
    monkeypatch.setattr(pipeline, "run_pipeline", interrupted)
    assert pipeline.main(["--profile", "smoke"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_other_profiles_do_not_write_into_the_committed_figures():
    assert pipeline.default_fig_dir(pipeline.load_profile("quick")) == (pipeline.ROOT / "figures").resolve()
    for name in ("smoke", "paper"):
        assert pipeline.default_fig_dir(pipeline.load_profile(name)) == \
            (pipeline.ROOT / "runs" / name / "figures").resolve()


# ----------------------------------------------------------------------------- issue 27: bad input
def _write_profile(tmp_path, prof: dict):
    import json
    path = tmp_path / "p.json"
    path.write_text(json.dumps(prof))
    return str(path)


def _nothing_made(tmp_path) -> bool:
    return sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def _fails_before_anything(tmp_path, capsys, profile: dict, extra=()) -> str:
    """The pipeline and the sweep both refuse ``profile`` in one line, creating no folder."""
    from galib.tools import sweep
    prof = _write_profile(tmp_path, profile)
    folders = ["--run-root", str(tmp_path / "runs")]
    err = _main_fails(["--profile", prof, *folders, "--fig-dir", str(tmp_path / "figs"), *extra], capsys)
    assert len(err.strip().splitlines()) == 1 and _nothing_made(tmp_path), err
    if "--set" not in extra:
        assert sweep.main(["--profile", prof, *folders, "--dry-run", *extra]) == 1
        assert capsys.readouterr().err.strip() == err.strip().replace("[pipeline]", "[sweep]")
    return err


@pytest.mark.parametrize("profile,match", [
    ({"common": {"epoch": 3}}, "common: unknown parameter(s) ['epoch'] ('epoch': did you mean 'epochs'?)"),
    ({"notebooks": {"05_linear_probe": {"baseline": ["ald"]}}},
     "notebooks.05_linear_probe: unknown parameter(s) ['baseline'] ('baseline': did you mean 'baselines'?)"),
    ({"common": {"taus": [0.5]}}, "'taus' is not declared by 01_data_pairing, 02_training"),
    ({"common": "epochs=3"}, "common must be a JSON object of parameters for every notebook"),
    ({"notebooks": {"02_training": "x"}}, "notebooks.02_training must be a JSON object"),
    ({"notebooks": []}, "notebooks must be a JSON object"),
    ({"threads": 0}, "threads must be a positive integer; got 0"),
])
def test_unknown_profile_keys_and_entries_that_are_not_mappings(tmp_path, capsys, profile, match):
    """Issue 27, 2 and 7: "epoch": 3 under common planned 5 epochs and exited 0; a string for
    common was a TypeError traceback."""
    assert match in _fails_before_anything(tmp_path, capsys, profile)


@pytest.mark.parametrize("setting,match", [
    ("nosuch_param=1", "--set: unknown parameter(s) ['nosuch_param'] ('nosuch_param' is declared by no notebook)"),
    ("epochs=abc", "01_data_pairing: epochs must be a positive integer; got 'abc'"),
    ("epochs=-1", "epochs must be a positive integer; got -1"),
    ("tau=1.5", "tau must lie in the open interval (0, 1) and be a finite number; got 1.5"),
    ("taus=0.5", "03_mask_sparsity_vs_tau: taus must be a non-empty list of thresholds in (0, 1)"),
    ("seed=1099511627776000", "seed must be an integer in [0, 1099511627775]; got 1099511627776000"),
    ("seeds=[42, 1e23]", "seeds must be a list of training seeds"),
])
def test_bad_set_values_are_one_line_and_leave_nothing(tmp_path, capsys, setting, match):
    """Issue 27, 2, 6 and 10: a bad --set trained first, or gave a 30-line traceback and left empty
    figure and run folders."""
    common = {"dataset": "glyphs", "epochs": 1, "device": "cpu"}
    assert match in _fails_before_anything(tmp_path, capsys, {"common": common}, ["--set", setting])


@pytest.mark.parametrize("flag", ["--threads", "--jobs"])
def test_zero_threads_or_jobs_are_refused_as_the_sweep_does(tmp_path, capsys, flag):
    """Issue 27, 4: they quietly became the defaults."""
    prof = _write_profile(tmp_path, {"common": {"dataset": "glyphs"}})
    err = _main_fails(["--profile", prof, "--run-root", str(tmp_path / "r"), flag, "0"], capsys)
    assert f"{flag} must be at least 1" in err and "got 0" in err and _nothing_made(tmp_path)


def test_set_reaches_the_notebooks_that_declare_it(tmp_path):
    prof = {"name": "p", "common": {"epochs": 2}}
    over = {"taus": [0.3], "epochs": 4}
    assert pipeline.flat_parameters(prof, "02_training", over) == {"epochs": 4, "interactive": False}
    assert pipeline.flat_parameters(prof, "03_mask_sparsity_vs_tau", over)["taus"] == [0.3]


def test_every_committed_profile_passes_its_checks():
    from galib.tools.profiles import check_profile
    for path in sorted(pipeline.PARAMS_DIR.glob("*.json")):
        check_profile(pipeline.load_profile(path.stem))
