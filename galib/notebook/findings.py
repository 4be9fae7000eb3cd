"""What a run shows, in sentences computed from its ``metrics.json`` (the closing cell of each notebook).

Every number in a sentence comes from the metrics dict; every verdict ("is invariant", "keeps its
accuracy") compares a number with a threshold named below or with a reference level the run itself
computed (the shuffled-pairing errors of :mod:`galib.evaluation.scores`), so the text changes with
the run and is never hand-written. Comparisons between models are the paired verdicts the studies
wrote (:mod:`galib.evaluation.stats`); nothing here re-derives them from spreads. :func:`report`
dispatches on ``metrics["notebook"]``; each builder is a pure function ``metrics -> list[str]`` that
skips a sentence whose numbers are missing or nan. ``BUILDERS`` is keyed by the notebook stems of
:data:`galib.experiments.registry.STEMS` (:func:`check_builders`).

    findings.report(ctx.metrics)        # a Findings: shows as a bullet list, prints as text
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

from ..evaluation.stats import VERDICTS
from ..experiments.registry import STEMS

UNIFORM_SDS = 3.0        # an element count within this many expected sds of uniform is "uniform"
EXACT = 1e-5             # a round-trip error below this is "exact" (float error)
# A centred error is read against its shuffled reference (each prediction paired with another
# image's target: what "no relation at all" scores, computed by the run). The fractions keep the
# verdicts of the former absolute thresholds 0.5 and 1.0 at the reference of independent
# unit-norm data, √2: 0.5/√2 ≈ 0.35 and 1/√2 ≈ 0.71.
INVARIANT = 0.35         # centred invariance error below this fraction of its reference: "largely invariant"
NOT_INVARIANT = 0.7      # ... at or above this fraction: "not invariant"
KEEP_POINTS = 5.0        # a probe feature "keeps" its accuracy if protocol b loses at most this many points
UNSETTLED_SHARE = 0.25   # more than this share of channels within 0.05 of τ: the split is "unsettled"
WORSE = 1.5              # a ratio above this counts as "worse"
BLOCK_DRAWN = 0.25       # block gain below this: the model hardly draws the block (no verdict on where)
BLOCK_IN_PART = 0.75     # block share of z_i at or above this: drawn by z_i; at or below 1 − this: by z_v


class Findings(list):
    """Sentences; a notebook cell ending in one shows a bullet list (markdown), ``print`` gives text."""

    def _repr_markdown_(self) -> str:
        return "\n".join("- " + s.replace("_", r"\_").replace("*", r"\*") for s in self)

    def __str__(self) -> str:
        return "\n".join(f"• {s}" for s in self)

    __repr__ = __str__


def _num(x) -> float | None:
    """``x`` as a float, or ``None`` if missing, not a number or nan."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return None if math.isnan(x) else float(x)


def _nums(d: Mapping, *keys) -> list[float] | None:
    vals = [_num(d.get(k)) for k in keys]
    return None if any(v is None for v in vals) else vals


def _pm(row: Mapping, key: str, fmt: str = ".4f") -> str:
    """``row[key]``, with ``± row[key_sd]`` when several seeds give a spread."""
    v, sd = _num(row.get(key)), _num(row.get(f"{key}_sd"))
    if v is None:
        return "—"
    return f"{v:{fmt}}" + (f" ± {sd:{fmt}}" if sd is not None and row.get("n_seeds", 1) > 1 else "")


def _seeds(metrics: Mapping) -> int:
    seeds = (metrics.get("params") or {}).get("seeds")
    return len(seeds) if isinstance(seeds, list) and seeds else 1


def _text(m: Mapping, key: str) -> list[str]:
    """``[m[key]]`` when it is a non-empty string (a sentence a study wrote), else ``[]``."""
    v = m.get(key)
    return [v] if isinstance(v, str) and v.strip() else []


def invariance_verdict(error: float, reference: float) -> str:
    """Words for a centred invariance error against its shuffled reference (same units)."""
    ratio = error / reference
    return ("largely invariant" if ratio < INVARIANT else
            "only partly invariant" if ratio < NOT_INVARIANT else
            "not invariant: under the group it changes nearly as much as it differs between images")


# ----------------------------------------------------------------------------- 01
def data_pairing(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    n = _nums(s, "n_train", "n_val", "n_test", "n_classes")
    if n:
        out.append(f"The training split holds {n[0]:.0f} images of {n[3]:.0f} classes "
                   f"({n[1]:.0f} validation, {n[2]:.0f} test images).")
    imb = _num(s.get("class_imbalance"))
    if imb is not None:
        out.append(f"The largest class has {imb:.2f}× as many training images as the smallest.")
    dev, sd = _num(s.get("element_max_rel_dev")), _num(s.get("element_rel_sd_expected"))
    k = len(m.get("element_counts") or [])
    if dev is not None and sd is not None and k:
        ok = dev <= UNIFORM_SDS * sd
        out.append(f"In one epoch of pairs every one of the {k} group elements (or bins) was drawn "
                   f"within {dev:.1%} of its uniform share, against about {sd:.1%} expected from "
                   f"sampling noise alone: " + ("consistent with uniform sampling." if ok else
                   f"more than {UNIFORM_SDS:g} times that, so the sampler is not uniform."))
    rt = _num(s.get("roundtrip_error"))
    if rt is not None:
        out.append("Undoing each transform, T_(g⁻¹)(T_g x), gives back x "
                   + (f"up to {rt:.1e}: the " if rt > 0 else "exactly (bit for bit): the ")
                   + ("image action is exact." if rt < EXACT else
                      "image action is not exact (it interpolates and loses the corners)."))
    return out


# ----------------------------------------------------------------------------- 02
def training(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    hist = m.get("history") or []
    channels = len(hist[-1].get("mask_probs") or []) if hist else 0
    v = _nums(s, "epochs", "val_loss_first", "val_loss_last")
    if v:
        change = (f"down by a factor {v[1] / v[2]:.1f}" if v[2] < v[1] else "it did not fall") if v[2] > 0 else ""
        out.append(f"In {v[0]:.0f} epochs the validation loss went from {v[1]:.4f} to {v[2]:.4f}"
                   + (f" ({change})." if change else "."))
    nv, tau = _num(s.get("n_variant")), _num(s.get("tau"))
    if nv is not None and tau is not None and channels:
        text = (f"The learned mask made {nv:.0f} of {channels} channels variant at τ = {tau:g} "
                f"({nv / channels:.0%} of the latent is z_v).")
        uns = _num(s.get("n_unsettled"))
        if uns is not None:
            text += (f" {uns:.0f} channels end within 0.05 of τ, so "
                     + ("the split is not settled yet: more epochs may move channels across τ."
                        if uns > UNSETTLED_SHARE * channels else "the split looks settled."))
        out.append(text)
    r = _nums(s, "n_images", "recon_mse", "recon_psnr", "recon_ssim")
    if r:
        out.append(f"On {r[0]:.0f} test images, the prediction D(z_i + Φ_g z_v) from the untransformed x "
                   f"matches T_g x with MSE {r[1]:.4f} (PSNR {r[2]:.1f} dB, SSIM {r[3]:.2f}).")
    eq = _num(s.get("equivariance_error"))
    if eq is not None:
        text = (f"Over the non-identity group elements, z_v is equivariant up to a relative error of "
                f"{eq:.3f} (‖Φ_g z_v(x) − z_v(T_g x)‖ / ‖z_v(T_g x)‖, mean over test pairs)")
        c = _nums(s, "equivariance_error_centred", "equivariance_error_centred_shuffled")
        if c and c[1] > 0:
            text += (f"; its centred error is {c[0]:.2f} against {c[1]:.2f} when each prediction is "
                     f"paired with another image's target ({c[0] / c[1]:.0%} of that level)")
        out.append(text + ".")
    inv = _num(s.get("invariance_error_centred"))
    ref = _num(s.get("invariance_error_centred_shuffled"))
    if inv is not None:
        head = f"The centred invariance error of z_i over the non-identity group elements is {inv:.2f}"
        if ref is None:
            out.append(head + " (0 is exact; this run holds no shuffled reference to read it against).")
        elif ref <= 0:
            out.append(head + f" and its shuffled reference {ref:.2f}: z_i does not vary between test "
                       f"images (empty or constant), so its invariance tells nothing.")
        else:
            out.append(head + f", against {ref:.2f} when each image's z_i is paired with another "
                       f"image's transform (no relation at all; 0 is exact): {inv / ref:.0%} of that "
                       f"level (below {INVARIANT:.0%} counts as largely invariant, from "
                       f"{NOT_INVARIANT:.0%} as not invariant), so z_i is {invariance_verdict(inv, ref)}.")
    e = _num(s.get("energy_share_zi"))
    if e is not None:
        out.append(f"z_i carries {e:.0%} of the latent energy.")
    return out


# ----------------------------------------------------------------------------- 03
def tau_sweep(m: Mapping) -> list[str]:
    rows = sorted(m.get("by_tau") or [], key=lambda r: r["tau"])
    out = []
    if rows:
        lo, hi = rows[0], rows[-1]
        seeds = max(int(r.get("n_seeds", 1)) for r in rows)
        vf = [_num(r.get("variant_fraction")) for r in rows]
        if None not in vf:
            mono = all(b <= a + 1e-9 for a, b in zip(vf, vf[1:]))
            out.append(f"Over τ = {lo['tau']:g} … {hi['tau']:g} ({len(rows)} values, {seeds} seed(s) each) "
                       f"the variant fraction goes from {_pm(lo, 'variant_fraction', '.2f')} to "
                       f"{_pm(hi, 'variant_fraction', '.2f')}"
                       + (", never rising with τ." if mono else ", but not monotonically in τ."))
            full = [r["tau"] for r, v in zip(rows, vf) if v >= 1.0]
            empty = [r["tau"] for r, v in zip(rows, vf) if v <= 0.0]
            parts = []
            if full:
                parts.append(f"at τ = {', '.join(f'{t:g}' for t in full)} every channel is variant (z_i is empty)")
            if empty:
                parts.append(f"at τ = {', '.join(f'{t:g}' for t in empty)} none is (z_v is empty)")
            if parts:
                out.append("; ".join(parts).capitalize() + ".")
        mse = [_num(r.get("recon_mse")) for r in (lo, hi)]
        if None not in mse:
            worse = mse[1] > WORSE * mse[0]
            out.append(f"The transformed-reconstruction MSE is {_pm(lo, 'recon_mse')} at τ = {lo['tau']:g} "
                       f"and {_pm(hi, 'recon_mse')} at τ = {hi['tau']:g}: "
                       + ("fewer variant channels leave the model less room to express the transformation."
                          if worse else f"within a factor {WORSE:g} across the sweep."))
        orbit = [(r["tau"], _num(r.get("probe_b_zv_orbit"))) for r in rows]
        orbit = [(t, v) for t, v in orbit if v is not None]
        if len(orbit) >= 2:
            out.append(f"Protocol-b probe accuracy (test images each moved by a non-identity element) "
                       f"of the orbit invariants of z_v is {orbit[0][1]:.3f} at τ = {orbit[0][0]:g} and "
                       f"{orbit[-1][1]:.3f} at τ = {orbit[-1][0]:g} (the largest τ with a non-empty z_v).")
    out += _text(m, "mask_dynamics")        # κ of initial vs final sides per τ (galib.experiments.tau)
    out += _text(m, "init_test_text")       # the same weights with the initial logits negated
    return out


# ----------------------------------------------------------------------------- 04
def latent_traversals(m: Mapping) -> list[str]:
    s, out = m.get("summary", {}), []
    orbit = {k: _num(v) for k, v in (m.get("orbit_mse") or {}).items()}
    orbit = {k: v for k, v in orbit.items() if v is not None}
    if orbit:
        worst = max(orbit, key=orbit.get)
        best = min(orbit, key=orbit.get)
        mean = sum(orbit.values()) / len(orbit)
        even = orbit[worst] <= WORSE * max(orbit[best], 1e-12)
        out.append(f"Decoding the latent orbit D(z_i + Φ_g z_v) of an untransformed test image reproduces "
                   f"T_g x with MSE {mean:.4f} on average over {len(orbit)} group elements (best g = {best}: "
                   f"{orbit[best]:.4f}, worst g = {worst}: {orbit[worst]:.4f}); "
                   + ("the latent action serves every element about equally well." if even else
                      f"some elements are reproduced more than {WORSE:g}× worse than others."))
    n_inv = _num(s.get("n_invariant_channels"))
    channels = _num((m.get("params") or {}).get("latent_channels"))
    e = _num(s.get("energy_share_zi"))
    if n_inv is not None and channels:
        if n_inv == 0:
            out.append(f"Every one of the {channels:.0f} channels is variant: there is no invariant "
                       f"channel to traverse.")
        else:
            out.append(f"{n_inv:.0f} of {channels:.0f} latent channels are invariant"
                       + (f"; together they carry {e:.0%} of the latent energy." if e is not None else "."))
    return out


# ----------------------------------------------------------------------------- 05
FEATURE_WORDS = {"pixels": "pixels", "z": "the whole latent z", "z_i": "z_i",
                 "orbit": "the orbit invariants of z_v",
                 "pixels-orbit": "the orbit invariants of the pixels",
                 "random-orbit": "the orbit invariants of an untrained encoder"}
CONTROLS = ("pixels-orbit", "random-orbit")      # exactly invariant features that need no training


def _drop(s: Mapping, name: str, feature: str) -> tuple[float, float, float] | None:
    v = _nums(s, f"{name} {feature} a", f"{name} {feature} b")
    return None if v is None else (v[0], v[1], 100 * (v[0] - v[1]))


def _row_mean(rows, name: str, key: str) -> float | None:
    """Mean of ``key`` over the rows of baseline ``name`` (``None`` if none holds a number)."""
    vals = [_num(r.get(key)) for r in rows if r.get("name") == name]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def _worst_element(rows, name: str, feature: str) -> tuple[str, float] | None:
    """The non-identity element with the lowest protocol-b accuracy (``probe/<f>/b/<e>``, mean
    over the rows of ``name``)."""
    prefix = f"probe/{feature}/b/"
    elements = dict.fromkeys(k[len(prefix):] for r in rows if r.get("name") == name for k in r
                             if k.startswith(prefix))
    accs = {e: _row_mean(rows, name, prefix + e) for e in elements}
    accs = {e: v for e, v in accs.items() if v is not None}
    return min(accs.items(), key=lambda kv: kv[1]) if accs else None


def _comparisons(m: Mapping) -> list[dict]:
    """The paired learned-vs-random comparisons 05 wrote, those with an interval and a known verdict."""
    out = []
    for c in m.get("learned_vs_random") or []:
        if (isinstance(c, Mapping) and c.get("verdict") in VERDICTS and isinstance(c.get("key"), str)
                and _nums(c, "diff", "low", "high", "margin")):
            out.append(c)
    return out


def _ald_drops(s: Mapping, rows: list) -> list[str]:
    """The learned mask's features under protocol b, and which of them keep their accuracy."""
    drops = {f: _drop(s, "ald", f) for f in ("z", "z_i", "orbit")}
    drops = {f: d for f, d in drops.items() if d}
    if not drops:
        return []
    parts = [f"{FEATURE_WORDS[f]} from {a:.3f} to {b:.3f} "
             + (f"({d:.0f} points lower)" if d > 0.5 else "(no loss)")
             for f, (a, b, d) in drops.items()]
    out = ["With the learned mask (ALD), protocol b takes "
           + (", ".join(parts[:-1]) + " and " if len(parts) > 1 else "") + parts[-1] + "."]
    keep = [f for f, (_, _, d) in drops.items() if d <= KEEP_POINTS]
    lose = [FEATURE_WORDS[f] for f, (_, _, d) in drops.items() if d > KEEP_POINTS]
    words = []
    for f in keep:
        w = _worst_element(rows, "ald", f)
        words.append(FEATURE_WORDS[f] + (f" (worst element {w[0]}: {w[1]:.3f})" if w else ""))
    text = (f"Invariant under the non-identity group elements (protocol b losing at most "
            f"{KEEP_POINTS:g} points): {', '.join(words) if words else 'none of them'}")
    if lose:
        text += f"; not invariant: {', '.join(lose)}"
    return out + [text + "."]


def _best_against_controls(m: Mapping, controls: dict) -> list[str]:
    """The best invariant feature (chosen on validation) against the better untrained control."""
    best, chance = m.get("best_invariant"), _num(m.get("chance"))
    if not isinstance(best, Mapping) or _num(best.get("accuracy_table")) is None:
        return []
    acc = float(best["accuracy_table"])
    text = (f"Chosen on validation accuracy, the best invariant feature under protocol b is "
            f"{FEATURE_WORDS.get(best['feature'], best['feature'])} of the {best['baseline']} model, "
            f"at {acc:.3f} on the test images" + (f" (chance {chance:.2f})" if chance is not None else ""))
    if controls:
        ctrl, (_, cb) = max(controls.items(), key=lambda kv: kv[1][1])
        d = 100 * (acc - cb)
        text += (f"; that is {abs(d):.0f} points " + ("above" if d > 0 else "below")
                 + f" the better control ({FEATURE_WORDS[ctrl]}, {cb:.3f}): "
                 + ("training buys invariant class information beyond it" if d > KEEP_POINTS else
                    "training falls behind it" if d < -KEEP_POINTS else
                    f"within {KEEP_POINTS:g} points, no better than invariance alone"))
    return [text + "."]


def _paired_words(m: Mapping) -> list[str]:
    comps = _comparisons(m)
    if not comps:
        return []
    decided = [c for c in comps if c["verdict"] != "inconclusive"]
    if decided:
        return ["Paired by seed, learned minus random (95 % interval; equivalence margin): "
                + "; ".join(f"{c['key']} {c['diff']:+.3g} [{c['low']:+.3g}, {c['high']:+.3g}]; "
                            f"±{c['margin']:g} → {c['verdict']}" for c in decided) + "."]
    return [f"No paired comparison of the learned mask with random masks is decided "
            f"({len(comps)} inconclusive): every 95 % interval holds 0 and reaches beyond "
            f"its equivalence margin, so more seeds are needed to tell."]


def linear_probe(m: Mapping) -> list[str]:
    s, out, rows = m.get("summary", {}), [], m.get("rows") or []
    n = _seeds(m)
    px = _drop(s, "pixels", "pixels")
    if px:
        out.append(f"A linear probe on pixels trained on upright images scores {px[0]:.3f} on upright test "
                   f"images (protocol a) and {px[1]:.3f} on test images each moved by a non-identity "
                   f"group element (protocol b), {px[2]:.0f} points lower"
                   + (f" (means over {n} seeds)." if n > 1 else "."))
    out += _ald_drops(s, rows)
    controls = {c: (_row_mean(rows, c, f"probe/{c}/a"), _row_mean(rows, c, f"probe/{c}/b"))
                for c in CONTROLS}
    controls = {c: v for c, v in controls.items() if None not in v}
    if controls:
        parts = [f"{FEATURE_WORDS[c]} {a:.3f} upright and {b:.3f} moved" for c, (a, b) in controls.items()]
        out.append("The exactly invariant controls, which need no training, score: "
                   + "; ".join(parts) + " — what invariance alone gives a linear probe.")
    out += _best_against_controls(m, controls)
    out += _text(m, "learned_vs_random_text")
    return out + _paired_words(m)


# ----------------------------------------------------------------------------- 06
def _block_verdict(r: Mapping) -> str | None:
    """Where the learned mask draws the block, from one ``table`` row (``None`` without a gain)."""
    gain = _num(r.get("block_gain"))
    if gain is None:
        return None
    ds = r.get("dataset", "this dataset")
    if gain < BLOCK_DRAWN:
        drawn = (f"removes only {gain:.0%} of a blank decode's error in the block (less than "
                 f"{BLOCK_DRAWN:.0%}), so it hardly draws the block" if gain > 0 else
                 f"draws the block no better than a blank decode D(0) (block gain {gain:.0%})")
        return f"Where the block lives on {ds} cannot be told: the learned mask {drawn}."
    share = _num(r.get("block_share_zi"))
    if share is None:
        return None
    where = (f"the learned mask draws it with z_i (share {share:.0%}, at least {BLOCK_IN_PART:.0%}), "
             f"as the paper claims" if share >= BLOCK_IN_PART else
             f"the learned mask draws it with z_v (share of z_i {share:.0%}, at most "
             f"{1 - BLOCK_IN_PART:.0%}), not with the invariant part the paper expects"
             if share <= 1 - BLOCK_IN_PART else
             f"the learned mask draws it with both parts (share of z_i {share:.0%}, between "
             f"{1 - BLOCK_IN_PART:.0%} and {BLOCK_IN_PART:.0%})")
    img = _num(r.get("image_share_zi"))
    if img is not None:
        where += f"; the rest of the image takes {img:.0%} from z_i"
    return f"Where the block lives on {ds} (block gain {gain:.0%}): " + where + "."


SAME_SWAP = 0.05   # other models whose block swap toward z_i is within this of the learned mask's: "the same"


def _block_others(table: list, ald: Mapping) -> str | None:
    """Whether the other models with a z_i route the block as the learned mask does (swap measure)."""
    a = _num(ald.get("block_swap_zi"))
    others = {r["name"]: _num(r.get("block_swap_zi")) for r in table if isinstance(r, Mapping)
              and r.get("dataset") == ald.get("dataset") and r.get("name") not in ("ald", "all-variant")}
    others = {k: v for k, v in others.items() if v is not None}
    if a is None or not others:
        return None
    same = sorted(k for k, v in others.items() if abs(v - a) <= SAME_SWAP)
    text = (f"On {ald.get('dataset')}, in swaps the block follows z_i {a:.0%} of the way with the learned "
            f"mask; {', '.join(same) or 'no other model'} "
            f"{'do' if len(same) > 1 else 'does'} the same within {SAME_SWAP:.0%}")
    if {"random", "recon"} <= set(same):
        text += (": a random mask of its size and L_recon alone route the block as well, so neither "
                 "the learned choice of channels nor L_inv/L_const is what sends it to z_i")
    return text + "."


def blocked(m: Mapping) -> list[str]:
    out = [a for a in (m.get("answer") or []) if isinstance(a, str)]   # block_sentences: numbers, paired verdicts
    table = m.get("table") or []
    for r in table:
        if isinstance(r, Mapping) and r.get("name") == "ald":
            out += [v for v in (_block_verdict(r), _block_others(table, r)) if v]
    return out


BUILDERS: dict[str, Callable[[Mapping], list[str]]] = {
    "01_data_pairing": data_pairing,
    "02_training": training,
    "03_mask_sparsity_vs_tau": tau_sweep,
    "04_latent_traversals": latent_traversals,
    "05_linear_probe": linear_probe,
    "06_blocked": blocked,
}


# The top-level metrics.json keys each builder reads. tests/test_notebooks.py checks that every
# smoke notebook writes them, so a key renamed in a study cannot silently drop a sentence.
READS: dict[str, tuple[str, ...]] = {
    "01_data_pairing": ("summary", "element_counts"),
    "02_training": ("summary", "history"),
    "03_mask_sparsity_vs_tau": ("by_tau", "mask_dynamics", "init_test_text"),
    "04_latent_traversals": ("summary", "orbit_mse", "params"),
    "05_linear_probe": ("summary", "rows", "best_invariant", "chance", "learned_vs_random",
                        "learned_vs_random_text"),
    "06_blocked": ("answer", "table"),
}


def missing_keys(metrics: Mapping) -> list[str]:
    """The keys :data:`READS` names for ``metrics["notebook"]`` that ``metrics`` lacks."""
    return [k for k in READS.get(metrics.get("notebook"), ()) if k not in metrics]


def check_builders(builders: Mapping = BUILDERS, stems=STEMS) -> None:
    """Every key of ``builders`` is a notebook stem of the registry (a ``ValueError`` names the
    others: a renamed notebook must not silently lose its findings)."""
    unknown = sorted(set(builders) - set(stems))
    if unknown:
        raise ValueError(f"findings builders for unknown notebooks {unknown}; the registry's stems "
                         f"are {list(stems)}")


check_builders()


def report(metrics: Mapping | None) -> Findings:
    """The sentences for ``metrics`` (what ``Context.finish`` wrote), by its ``notebook`` entry."""
    if not metrics:
        return Findings(["No metrics: run the notebook's last cell (ctx.finish) first."])
    build = BUILDERS.get(str(metrics.get("notebook")))
    if build is None:
        return Findings([f"No findings are defined for notebook {metrics.get('notebook')!r}."])
    return Findings(build(metrics))
