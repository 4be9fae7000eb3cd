"""Seeds and spread: aggregation, formatting, and when a difference counts (galib.evaluation.spread)."""
import math

import pytest

from galib.evaluation.spread import aggregate, format_spread, mean_sd


def test_mean_sd_known_answers():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    assert mean_sd([5.0]) == (5.0, 0.0, 1)
    m, sd, n = mean_sd([None, float("nan")])
    assert n == 0 and math.isnan(m) and math.isnan(sd)


def test_aggregate_groups_by_name_in_order_with_per_seed_values():
    rows = [{"name": "a", "seed": 1, "x": 1.0}, {"name": "b", "seed": 1, "x": 10.0},
            {"name": "a", "seed": 2, "x": 3.0}, {"name": "b", "seed": 2, "x": None}]
    a, b = aggregate(rows, ["x", "missing"])
    assert (a["name"], a["n_seeds"], a["seeds"], a["x"], a["x_sd"]) == ("a", 2, [1, 2], 2.0, math.sqrt(2))
    assert a["x_per_seed"] == [1.0, 3.0] and "missing" not in a
    assert b["x"] == 10.0 and b["x_sd"] == 0.0 and b["x_per_seed"] == [10.0, None]
    assert format_spread(a, "x", ".2f") == "2.00 ± 1.41"
    assert format_spread({"n_seeds": 1, "x": 0.5, "x_sd": 0.0}, "x", ".1f") == "0.5"
    assert format_spread(a, "missing") == "—"


def test_single_valued_rows_have_no_spread():
    rows = [{"name": "pixels", "seed": s, "x": 0.7} for s in (1, 2, 3)] + \
           [{"name": "ald", "seed": s, "x": v} for s, v in ((1, 0.5), (2, 0.6))]
    px, ald = aggregate(rows, ["x"], single_valued=["pixels"])
    assert px["n_seeds"] == 1 and px["single_valued"] and px["x"] == 0.7 and px["x_sd"] is None
    assert px["x_per_seed"] == [0.7] and px["seeds"] == [1]
    assert ald["n_seeds"] == 2 and ald["x_sd"] > 0 and "single_valued" not in ald
    assert format_spread(px, "x", ".2f") == "0.70"
    marked = aggregate([{"name": "p", "seed": 1, "x": 1.0, "single_valued": True},
                        {"name": "p", "seed": 2, "x": 1.0, "single_valued": True}], ["x"])[0]
    assert marked["n_seeds"] == 1 and marked["x_sd"] is None
    with pytest.raises(ValueError, match="copies of 'x' differ"):
        aggregate(rows, ["x"], single_valued=["ald"])
