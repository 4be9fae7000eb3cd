"""Studies over several seeds: per-seed rows → mean ± sd per model, and when a difference counts.

The spread describes; it does not decide: comparisons between models are paired over seeds, with
intervals and equivalence margins, in :mod:`galib.evaluation.stats`.
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


def aggregate(rows: Sequence[dict], keys: Sequence[str], by: str = "name",
              single_valued: Iterable = ()) -> list[dict]:
    """One row per value of ``by`` (in first-seen order): ``by``, ``label``, ``n_seeds``, ``seeds``
    and, per key, ``<key>`` (mean), ``<key>_sd`` and ``<key>_per_seed`` (the values, seed order).

    Single-valued rows — ``by`` values listed in ``single_valued``, or rows marked
    ``"single_valued": True`` (e.g. an untrained baseline scored once and copied per seed) — are
    one value, not a spread: ``n_seeds`` 1, ``single_valued`` True, ``<key>_sd`` None and
    ``<key>_per_seed`` the one value. Their copies must agree (a ``ValueError`` names the key that
    differs)."""
    out: dict = {}
    for r in rows:
        out.setdefault(r[by], []).append(r)
    single_valued = set(single_valued)
    table = []
    for name, group in out.items():
        single = name in single_valued or any(r.get("single_valued") for r in group)
        row = {by: name, "label": group[0].get("label", name), "n_seeds": 1 if single else len(group),
               "seeds": [r.get("seed") for r in group][:1 if single else None]}
        if single:
            row["single_valued"] = True
        for k in keys:
            vals = [r.get(k) for r in group]
            if all(v is None for v in vals):
                continue
            if single:
                row.update(_single(name, k, vals))
                continue
            m, sd, _ = mean_sd(vals)
            row.update({k: m, f"{k}_sd": sd, f"{k}_per_seed": vals})
        table.append(row)
    return table


def _single(name, key: str, vals: list) -> dict:
    """The one value of a single-valued row's ``key`` (its copies must agree)."""
    def same(u, v):
        return u == v or (isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v))
    if not all(same(v, vals[0]) for v in vals):
        raise ValueError(f"row {name!r} is marked single-valued but its copies of {key!r} differ: "
                         f"{vals}; aggregate it over seeds instead")
    m = mean_sd(vals[:1])[0]
    return {key: m, f"{key}_sd": None, f"{key}_per_seed": vals[:1]}


def format_spread(row: dict, key: str, spec: str = "sig3") -> str:
    """``"mean ± sd"`` of an :func:`aggregate` row (just the mean for one seed or a single-valued
    row; ``—`` if absent)."""
    if row.get(key) is None or row.get("n_seeds", 1) < 2 or row.get(f"{key}_sd") is None:
        return format_value(row.get(key), spec, nan="—")
    return format_pm(row[key], row.get(f"{key}_sd"), spec)
