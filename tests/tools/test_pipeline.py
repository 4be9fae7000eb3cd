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
