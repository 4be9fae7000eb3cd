"""Fast checks of galib.tools.pipeline's bookkeeping: RESULTS.md and --set parsing."""
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
    monkeypatch.setattr(pipeline, "NOTEBOOK_DIR", tmp_path / "none")
    with pytest.raises(pipeline.PipelineError, match="source checkout"):
        pipeline.load_profile("quick")
