"""Studies over several seeds: per-seed rows → mean ± sd per model, and when a difference counts.

A difference between two models is reported as a finding only when it exceeds the spread across
seeds: ``|mean_a − mean_b| > sd_a + sd_b`` (:func:`compare`).
"""
from __future__ import annotations

import math
import statistics
from typing import Iterable, Sequence

from .tables import format_pm, format_value


def mean_sd(values: Iterable) -> tuple[float, float, int]:
    """``(mean, sample sd, n)`` of the finite numbers in ``values`` (sd 0 for one value; nan, nan, 0
    for none)."""
    vals = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]
    if not vals:
        return math.nan, math.nan, 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0), len(vals)


def aggregate(rows: Sequence[dict], keys: Sequence[str], by: str = "name") -> list[dict]:
    """One row per value of ``by`` (in first-seen order): ``by``, ``label``, ``n_seeds``, ``seeds``
    and, per key, ``<key>`` (mean), ``<key>_sd`` and ``<key>_per_seed`` (the values, seed order)."""
    out: dict = {}
    for r in rows:
        out.setdefault(r[by], []).append(r)
    table = []
    for name, group in out.items():
        row = {by: name, "label": group[0].get("label", name), "n_seeds": len(group),
               "seeds": [r.get("seed") for r in group]}
        for k in keys:
            vals = [r.get(k) for r in group]
            if all(v is None for v in vals):
                continue
            m, sd, _ = mean_sd(vals)
            row.update({k: m, f"{k}_sd": sd, f"{k}_per_seed": vals})
        table.append(row)
    return table


def format_spread(row: dict, key: str, spec: str = "sig3") -> str:
    """``"mean ± sd"`` of an :func:`aggregate` row (just the mean for one seed; ``—`` if absent)."""
    if row.get(key) is None or row.get("n_seeds", 1) < 2:
        return format_value(row.get(key), spec, nan="—")
    return format_pm(row[key], row.get(f"{key}_sd"), spec)


def compare(a: dict, b: dict, key: str, lower_is_better: bool) -> dict:
    """Model ``a`` against ``b`` on ``key`` (both :func:`aggregate` rows): ``diff`` (a − b),
    ``spread`` (sd_a + sd_b), ``finding`` (|diff| > spread) and ``verdict`` in words."""
    diff = a[key] - b[key]
    spread = a.get(f"{key}_sd", 0.0) + b.get(f"{key}_sd", 0.0)
    finding = bool(abs(diff) > spread) if math.isfinite(diff) else False
    better = (diff < 0) == lower_is_better
    verdict = ("better" if better else "worse") if finding else "no different (within the spread)"
    return {"key": key, "diff": diff, "spread": spread, "finding": finding, "verdict": verdict}
