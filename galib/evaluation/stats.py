"""Paired comparisons over seeds: differences, 95 % intervals and a verdict with an equivalence margin.

Pure functions on numbers, lists and arrays (no models, no data). Two models ``a`` and ``b`` trained
with the same seeds (and scored on the same test images) are compared *paired*: per seed the
difference ``d_s = a_s − b_s``, then

* :func:`t_interval` — mean difference with a Student-t interval over the seeds;
* :func:`bootstrap_interval` — a percentile bootstrap over seeds × test images, when per-image
  values ``(seeds, images)`` are available (seeds and images resampled with replacement, the same
  draw for both models, so the pairing is kept);
* :func:`verdict` — the rule that turns an interval into words (see there): *equivalent* by two
  one-sided tests at 5 % each (the 90 % interval inside the margin), *better* / *worse* (or
  *higher* / *lower* for a score without a direction, :data:`UNDIRECTED`) by the 95 % interval;
* :func:`spread_margin` — the equivalence margin of a comparison from the spread of its control
  over the reseeded runs (the basis every learned-vs-control comparison uses);
* :func:`paired_comparison` — all of it for one score, with the margin and direction of
  ``MARGINS`` / ``LOWER_IS_BETTER`` unless given; a score whose both sides sit at chance gets no
  verdict (``at chance``).

The t quantile is computed here (regularised incomplete beta by continued fraction, then
bisection): scipy is not a dependency.
"""
from __future__ import annotations

import math
import statistics
from typing import Sequence

import torch

VERDICTS = ("better", "worse", "higher", "lower", "equivalent", "inconclusive", "at chance")
EQUIVALENCE_CONFIDENCE = 0.90      # two one-sided tests at 5 %: the 90 % interval inside ±margin
# Scores with no better or worse side for a learned code: their verdicts say higher / lower.
UNDIRECTED = ("energy_share_zi", "variant_fraction")
# A score sits at chance when both sides' means lie at or below chance × (1 + this): no verdict.
CHANCE_BAND = 0.5

# Fixed equivalence margins (absolute units of the score), for comparisons whose control has no
# measured spread (fewer than MIN_SPREAD_SEEDS reseeded runs): a difference smaller than this is
# of no practical consequence. Looked up by exact key, then by the longest matching prefix. Their
# basis is stated in docs/results.md ("Margins").
MARGINS: dict[str, float] = {
    "probe/": 0.01,                          # probe accuracy: one percentage point
    "recon_mse": 0.001, "recon_psnr": 0.25, "recon_ssim": 0.005,
    "equivariance_error": 0.02, "invariance_error": 0.02,
    "equivariance_error_centred": 0.05, "invariance_error_centred": 0.05,
    "energy_share_zi": 0.05, "variant_fraction": 0.05,
    "block_share_zi": 0.05, "image_share_zi": 0.05, "block_swap_zi": 0.05, "block_gain": 0.05,
    "swap_content_a": 0.02, "agreement": 0.05, "kappa": 0.1,
}
LOWER_IS_BETTER_PREFIXES = ("recon_mse", "equivariance_error", "invariance_error")


def _lookup(key: str, table: dict):
    if key in table:
        return table[key]
    hits = [p for p in table if key.startswith(p)]
    return table[max(hits, key=len)] if hits else None


def margin_for(key: str) -> float:
    """The equivalence margin of score ``key`` (``MARGINS``), or a ``ValueError`` naming it."""
    m = _lookup(key, MARGINS)
    if m is None:
        raise ValueError(f"no equivalence margin known for score {key!r}; pass margin= explicitly "
                         f"(known: {sorted(MARGINS)})")
    return float(m)


def lower_is_better(key: str) -> bool:
    """Whether a lower value of score ``key`` is better (errors, MSE) — else higher is better."""
    return key.startswith(LOWER_IS_BETTER_PREFIXES)


def is_undirected(key: str) -> bool:
    """Whether score ``key`` has no better or worse side (:data:`UNDIRECTED`, also centred)."""
    return key.startswith(UNDIRECTED)


MIN_SPREAD_SEEDS = 3     # a control's spread needs this many reseeded runs


def spread_margin(control: Sequence[float], key: str = "") -> tuple[float, str]:
    """``(margin, basis)``: the sample sd of the control's values over its reseeded runs — a
    difference smaller than what reseeding the control alone moves it by is of no practical
    consequence — or, with fewer than :data:`MIN_SPREAD_SEEDS` runs or no spread at all, the fixed
    margin of ``key`` (:func:`margin_for`)."""
    vals = [float(v) for v in control]
    if len(vals) >= MIN_SPREAD_SEEDS:
        sd = statistics.stdev(vals)
        if sd > 0 and math.isfinite(sd):
            return sd, f"sd of the control over its {len(vals)} reseeded runs"
    return margin_for(key), "fixed (MARGINS)"


def at_chance(a: Sequence[float], b: Sequence[float], chance: float | None) -> bool:
    """Whether both sides' means sit at or below ``chance × (1 + CHANCE_BAND)`` (a score that
    reads chance on both sides says nothing either way); ``False`` without a chance level."""
    if chance is None:
        return False
    top = chance * (1.0 + CHANCE_BAND)
    return statistics.fmean(a) <= top and statistics.fmean(b) <= top


# ----------------------------------------------------------------------------- t quantile
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student-t distribution function with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (``t_quantile(0.975, 4) ≈ 2.776``), by bisection."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0; got p={p!r}, df={df!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


# ----------------------------------------------------------------------------- intervals
def _paired(a: Sequence[float], b: Sequence[float]) -> list[float]:
    if len(a) != len(b):
        raise ValueError(f"paired values need one value per seed on both sides; got {len(a)} and {len(b)}")
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    if not all(math.isfinite(d) for d in diffs):
        raise ValueError(f"paired values must be finite numbers; got differences {diffs}")
    return diffs


def t_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean paired difference ``a − b`` over seeds with a Student-t interval: ``diff``, ``sd``
    (sample sd of the differences), ``n``, ``low``, ``high``. One seed gives an infinite interval
    (nothing is known about the spread)."""
    d = _paired(a, b)
    if not d:
        raise ValueError("t_interval needs at least one paired value")
    n, mean = len(d), statistics.fmean(d)
    if n < 2:
        return {"diff": mean, "sd": math.nan, "n": n, "low": -math.inf, "high": math.inf}
    sd = statistics.stdev(d)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    return {"diff": mean, "sd": sd, "n": n, "low": mean - half, "high": mean + half}


def bootstrap_interval(a, b, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Percentile bootstrap of the mean paired difference over seeds × images.

    ``a``, ``b``: per-image values, nested lists or arrays ``(seeds, images)`` (same images on both
    sides). Each replicate draws seeds with replacement and, independently, images with
    replacement, the same draw for ``a`` and ``b``. Returns ``diff``, ``low``, ``high``, ``n_seeds``,
    ``n_images``, ``n_boot``.
    """
    A = torch.as_tensor(a, dtype=torch.float64)
    B = torch.as_tensor(b, dtype=torch.float64)
    if A.shape != B.shape or A.dim() != 2 or A.numel() == 0:
        raise ValueError(f"bootstrap_interval needs two equal (seeds, images) tables with at least "
                         f"one seed and one image; got shapes {tuple(A.shape)} and {tuple(B.shape)}")
    D = A - B                                                         # (S, N)
    if not bool(torch.isfinite(D).all()):
        raise ValueError("bootstrap_interval needs finite per-image values")
    S, N = D.shape
    gen = torch.Generator().manual_seed(seed)
    reps = []
    for start in range(0, n_boot, 256):                               # chunks of replicates
        k = min(256, n_boot - start)
        seeds = torch.randint(S, (k, S), generator=gen)
        images = torch.randint(N, (k, N), generator=gen)
        s_count = torch.zeros(k, S, dtype=torch.float64).scatter_add_(
            1, seeds, torch.ones(k, S, dtype=torch.float64))          # (k, S)
        i_count = torch.zeros(k, N, dtype=torch.float64).scatter_add_(
            1, images, torch.ones(k, N, dtype=torch.float64))         # (k, N)
        reps.append(((s_count @ D) * i_count).sum(1) / (S * N))       # (k,)
    reps = torch.cat(reps).sort().values
    tail = (1.0 - confidence) / 2.0
    lo = float(reps[max(0, math.floor(tail * n_boot))])
    hi = float(reps[min(n_boot - 1, math.ceil((1.0 - tail) * n_boot) - 1)])
    return {"diff": float(D.mean()), "low": lo, "high": hi, "n_seeds": S, "n_images": N,
            "n_boot": n_boot}


def verdict(low: float, high: float, margin: float, lower_is_better: bool,
            equivalence: tuple[float, float] | None = None, directed: bool = True) -> str:
    """Words for an interval ``[low, high]`` of the difference ``a − b``.

    The rule (direction aware): first flip the sign when lower is better, so that a positive
    difference means ``a`` is better. Then

    * ``equivalent`` iff the equivalence interval (``equivalence``, the 90 % interval of two
      one-sided tests; default ``[low, high]``) lies inside ``(−margin, +margin)`` (checked first:
      a difference that is significant but smaller than the margin is of no consequence);
    * else ``better`` iff ``[low, high]`` lies above 0, ``worse`` iff it lies below 0 (``higher``
      / ``lower`` when not ``directed``: a score without a better side);
    * else ``inconclusive`` (the interval holds 0 and reaches beyond the margin).
    """
    if not margin > 0:
        raise ValueError(f"the equivalence margin must be a positive number; got {margin!r}")
    if math.isnan(low) or math.isnan(high) or low > high:
        raise ValueError(f"need an interval low <= high; got [{low!r}, {high!r}]")
    e_low, e_high = equivalence if equivalence is not None else (low, high)
    if -margin < e_low and e_high < margin:
        return "equivalent"
    if lower_is_better and directed:
        low, high = -high, -low
    if low > 0:
        return "better" if directed else "higher"
    if high < 0:
        return "worse" if directed else "lower"
    return "inconclusive"


def paired_comparison(a: Sequence[float], b: Sequence[float], key: str = "",
                      margin: float | tuple[float, str] | None = None, lower_is_better_: bool | None = None,
                      confidence: float = 0.95, per_image: tuple | None = None,
                      chance: float | None = None) -> dict:
    """Model ``a`` against ``b`` on score ``key`` (values per seed, the same seeds in order).

    Returns :func:`t_interval`'s keys (the ``confidence`` interval, 95 %) plus ``tost_low`` /
    ``tost_high`` (the :data:`EQUIVALENCE_CONFIDENCE` interval, 90 %), ``margin`` and
    ``margin_basis``, ``lower_is_better``, ``directed``, ``verdict`` (:func:`verdict`; ``at
    chance`` when both sides sit at ``chance``, :func:`at_chance`) and ``significant`` (the 95 %
    interval excludes 0). With ``per_image = (A, B)`` (``(seeds, images)`` tables) also
    ``bootstrap`` (the :func:`bootstrap_interval` dict) and ``bootstrap_verdict``. ``margin`` and
    the direction default to :func:`margin_for` / :func:`lower_is_better` of ``key``; ``margin``
    may come with its basis, ``(margin, basis)`` as :func:`spread_margin` gives it.
    """
    margin, margin_basis = margin if isinstance(margin, tuple) else (margin, None)
    m = margin_for(key) if margin is None else float(margin)
    low_better = lower_is_better(key) if lower_is_better_ is None else bool(lower_is_better_)
    directed = not is_undirected(key)
    tost = t_interval(a, b, EQUIVALENCE_CONFIDENCE)
    out = {"key": key, **t_interval(a, b, confidence), "tost_low": tost["low"], "tost_high": tost["high"],
           "margin": m, "margin_basis": margin_basis or ("given" if margin is not None else "fixed (MARGINS)"),
           "lower_is_better": low_better, "directed": directed}
    out["verdict"] = ("at chance" if at_chance(a, b, chance) else
                      verdict(out["low"], out["high"], m, low_better, (tost["low"], tost["high"]), directed))
    out["significant"] = out["low"] > 0 or out["high"] < 0
    if per_image is not None:
        boot = bootstrap_interval(*per_image, confidence=confidence)
        out["bootstrap"] = boot
        out["bootstrap_verdict"] = verdict(boot["low"], boot["high"], m, low_better, directed=directed)
    return out
