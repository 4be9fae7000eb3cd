"""galib.tools.probe_agreement: the largest change between the two solvers' readings, split at
chance; a run compared with itself changes nothing."""
from __future__ import annotations

import copy

from galib.tools import probe_agreement as pa


def _result(shift: float = 0.0) -> dict:
    probes = {f: {"a": 0.9, "b": 0.11 if f != "orbit" else 0.85, "c": 0.8, "val_a": 0.9,
                  "val_b": 0.1, "val_c": 0.8, "l2_upright": 1e-3, "l2_transformed": 1e-3}
              for f in pa.FEATURES}
    new = copy.deepcopy(probes)
    new["orbit"]["b"] += shift                                      # above chance
    new["z"]["b"] += shift / 2                                      # at chance (0.11, K = 10)
    return {"run": "/x/runs/seed1", "chance": 0.1, "old": {"probes": probes, "cpu_s": 3.0},
            "new": {"probes": new, "cpu_s": 1.0}}


def test_a_run_against_itself_changes_nothing():
    ch = pa.largest_changes(_result(0.0))
    assert ch["above_chance"][0] == 0.0 and ch["at_chance"][0] == 0.0 and ch["same_l2"]


def test_the_largest_changes_are_found_on_each_side_of_chance():
    ch = pa.largest_changes(_result(0.004))
    assert ch["above_chance"][1] == "orbit/b" and abs(ch["above_chance"][0] - 0.004) < 1e-12
    assert ch["at_chance"][1] == "z/b" and abs(ch["at_chance"][0] - 0.002) < 1e-12
    assert "0.0040 (orbit/b: 0.8500 → 0.8540)" in pa.table([_result(0.004)])


def test_missing_runs_are_one_line(tmp_path, capsys):
    assert pa.main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "no best.pt" in capsys.readouterr().err and not (tmp_path / "o").exists()
