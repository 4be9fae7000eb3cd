"""What every study's findings share: how a run's ``metrics.json`` becomes sentences.

Each study's ``findings(metrics) -> list[str]`` (in its module) is a pure function: every number in
a sentence comes from the metrics dict; every verdict ("is invariant", "keeps its accuracy")
compares a number with a threshold named in the study or here, or with a reference level the run
itself computed (the shuffled-pairing errors of :mod:`galib.evaluation.scores`), so the text changes
with the run and is never hand-written. Comparisons between models are the paired verdicts the
studies wrote (:mod:`galib.evaluation.stats`); nothing re-derives them from spreads. A sentence
whose numbers are missing or nan is skipped (:func:`num` gives ``None``).

    from galib.studies import report
    report(ctx.metrics)        # a Findings: shows as a bullet list, prints as text
"""
from __future__ import annotations

import math
from typing import Mapping


# A centred error is read against its shuffled reference (each prediction paired with another
# image's target: what "no relation at all" scores, computed by the run). The fractions keep the
# verdicts of the former absolute thresholds 0.5 and 1.0 at the reference of independent
# unit-norm data, √2: 0.5/√2 ≈ 0.35 and 1/√2 ≈ 0.71.
INVARIANT = 0.35         # centred invariance error below this fraction of its reference: "largely invariant"
NOT_INVARIANT = 0.7      # ... at or above this fraction: "not invariant"
WORSE = 1.5              # a ratio above this counts as "worse"


class Findings(list):
    """Sentences; a notebook cell ending in one shows a bullet list (markdown), ``print`` gives text."""

    def _repr_markdown_(self) -> str:
        return "\n".join("- " + s.replace("_", r"\_").replace("*", r"\*") for s in self)

    def __str__(self) -> str:
        return "\n".join(f"• {s}" for s in self)

    __repr__ = __str__


def num(x) -> float | None:
    """``x`` as a float, or ``None`` if missing, not a number or nan."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return None if math.isnan(x) else float(x)


def nums(d: Mapping, *keys) -> list[float] | None:
    vals = [num(d.get(k)) for k in keys]
    return None if any(v is None for v in vals) else vals


def pm(row: Mapping, key: str, fmt: str = ".4f") -> str:
    """``row[key]``, with ``± row[key_sd]`` when several seeds give a spread."""
    v, sd = num(row.get(key)), num(row.get(f"{key}_sd"))
    if v is None:
        return "—"
    return f"{v:{fmt}}" + (f" ± {sd:{fmt}}" if sd is not None and row.get("n_seeds", 1) > 1 else "")


def n_seeds(metrics: Mapping) -> int:
    seeds = (metrics.get("params") or {}).get("seeds")
    return len(seeds) if isinstance(seeds, list) and seeds else 1


def text_of(m: Mapping, key: str) -> list[str]:
    """``[m[key]]`` when it is a non-empty string (a sentence a study wrote), else ``[]``."""
    v = m.get(key)
    return [v] if isinstance(v, str) and v.strip() else []


def invariance_verdict(error: float, reference: float) -> str:
    """Words for a centred invariance error against its shuffled reference (same units)."""
    ratio = error / reference
    return ("largely invariant" if ratio < INVARIANT else
            "only partly invariant" if ratio < NOT_INVARIANT else
            "not invariant: under the group it changes nearly as much as it differs between images")
