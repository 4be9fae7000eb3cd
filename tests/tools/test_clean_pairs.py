"""galib.tools.clean_pairs: rows of diverged runs are marked from stability.json and left out."""
import json

import pytest

from galib.tools import clean_pairs as tool


def test_rows_are_marked_by_run_folder():
    rows = [{"name": "ald", "seed": 42}, {"name": "ald", "seed": 43}, {"name": "random", "seed": 43}]
    runs = {"ald": {"diverged_epoch": None}, "ald_seed43": {"diverged_epoch": 8}, "random_seed43": {}}
    got = tool.mark_diverged(rows, runs, base_seed=42)
    assert [r["diverged_epoch"] for r in got] == [None, 8, None]


def test_command_line_leaves_diverged_pairs_out(tmp_path):
    rows = []
    for s, gap in zip(range(42, 47), (0.2, 0.1, -0.3, 0.1, 0.1)):
        rows += [{"name": "ald", "seed": s, "probe/z/a": 0.5 + gap}, {"name": "random", "seed": s, "probe/z/a": 0.5}]
    (tmp_path / "m.json").write_text(json.dumps({"params": {"seed": 42}, "rows": rows}))
    (tmp_path / "s.json").write_text(json.dumps({"runs": {"ald_seed44": {"diverged_epoch": 8}}}))
    doc = tool.main([str(tmp_path / "m.json"), str(tmp_path / "s.json"), "--out", str(tmp_path / "o")])
    (c,) = [c for c in doc["comparisons"] if c["key"] == "probe/z/a"]
    assert c["seeds"] == [42, 43, 45, 46] and c["excluded_seeds"] == [44]
    assert c["diff"] == pytest.approx(0.125) and "1 seed pair left out" in doc["text"]
    assert "| probe/z/a | 42, 43, 45, 46 |" in (tmp_path / "o" / "clean_pairs.md").read_text()
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(SystemExit, match="cannot read metrics"):
        tool.main([str(tmp_path / "bad.json"), str(tmp_path / "s.json"), "--out", str(tmp_path / "o")])
